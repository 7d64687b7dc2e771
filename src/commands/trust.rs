//! `trust`: the operator, at the console, confirms the owner's new Signal safety number after
//! verifying it, and commands from Signal are accepted again. Refused on every other channel.

use super::{Args, Cmd, Fast, Run, Spec};
use crate::origin::Channel;
use crate::policy::tools::Tier;
use crate::reply::{internal, CommandError, ErrorKind, Words};
use serde::Serialize;

/// `trust` takes no arguments.
#[derive(Debug, Clone, PartialEq)]
pub struct Trust;

/// What `trust` answers.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Trusted {
    /// `trusted`, or `nothing to trust`.
    pub status: &'static str,
}

impl Words for Trusted {
    fn words(&self, cmd: &str) -> String {
        crate::words::fields_of(cmd, self)
    }
}

impl Cmd for Trust {
    const SPECS: &'static [Spec] = &[Spec::new(
        "trust",
        Tier::Write,
        false,
        &[],
        "accept the owner's new Signal safety number (console only)",
    )];

    fn parse(_name: &str, _args: &Args<'_>) -> Result<Trust, CommandError> {
        Ok(Trust)
    }

    /// Lifts the block, if the command came over the control socket.
    fn run(self, fast: &Fast<'_>) -> Result<Run, CommandError> {
        if fast.inv.channel != Channel::Socket {
            return Err(CommandError::new(
                ErrorKind::NotGranted,
                "trust is accepted only at the console (pane-agent trust)",
            ));
        }
        let was = fast.signal.trust().map_err(internal)?;
        Run::done(Trusted {
            status: if was { "trusted" } else { "nothing to trust" },
        })
    }
}
