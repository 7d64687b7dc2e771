//! `unlock`: ends a lockdown. At the console (`pane-agent unlock`, the control socket) it
//! takes effect at once; from Signal it needs an approval whose code goes to the owner's phone
//! and is answered there; from anywhere else it is refused. So someone who holds only the
//! command secret cannot undo a lockdown.

use super::{Args, Cmd, Fast, GateAction, Run, Spec};
use crate::context::Contexts;
use crate::policy::tools::Tier;
use crate::reply::{CommandError, Words};
use serde::Serialize;

/// `unlock` takes no arguments.
#[derive(Debug, Clone, PartialEq)]
pub struct Unlock;

/// What `unlock` answers: `unlocked`, with the reminder that tools stay revoked, or `not
/// locked down`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Unlocked {
    /// `unlocked` or `not locked down`.
    pub status: &'static str,
    /// What unlocking does not undo.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub note: Option<&'static str>,
}

impl Unlocked {
    /// The lockdown ended.
    pub fn ended() -> Unlocked {
        Unlocked {
            status: "unlocked",
            note: Some("tools stay revoked until granted again"),
        }
    }

    /// There was no lockdown to end.
    pub fn not_locked_down() -> Unlocked {
        Unlocked {
            status: "not locked down",
            note: None,
        }
    }
}

impl Words for Unlocked {
    fn words(&self, cmd: &str) -> String {
        crate::words::fields_of(cmd, self)
    }
}

impl Cmd for Unlock {
    const SPECS: &'static [Spec] = &[Spec::new(
        "unlock",
        Tier::External,
        false,
        &[],
        "end a lockdown: at the console at once (pane-agent unlock), from Signal with an approval",
    )];

    fn parse(_name: &str, _args: &Args<'_>) -> Result<Unlock, CommandError> {
        Ok(Unlock)
    }

    /// The gate holds the lockdown switch.
    fn run(self, _fast: &Fast<'_>) -> Result<Run, CommandError> {
        Ok(Run::Gate(GateAction::Unlock))
    }

    fn describe(&self, _contexts: &Contexts) -> String {
        "end the lockdown: grant and approve work again (tools stay revoked until granted)".into()
    }
}
