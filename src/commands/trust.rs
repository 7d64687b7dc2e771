//! `trust`: the operator, at the console, confirms the owner's new Signal safety number after
//! verifying it, and commands from Signal are accepted again. Refused on every other channel.

use super::Args;
use crate::origin::{Channel, Invocation};
use crate::reply::{internal, CommandError, ErrorKind};
use crate::store::signal::SignalState;
use serde_json::{json, Value};

/// `trust` takes no arguments.
#[derive(Debug, Clone, PartialEq)]
pub struct Trust;

impl Trust {
    /// Parses the (empty) arguments.
    pub fn parse(_args: &Args<'_>) -> Result<Trust, CommandError> {
        Ok(Trust)
    }

    /// Lifts the block, if the command came over the control socket.
    pub fn apply(self, signal: &SignalState, inv: &Invocation) -> Result<Value, CommandError> {
        if inv.channel != Channel::Socket {
            return Err(CommandError::new(
                ErrorKind::NotGranted,
                "trust is accepted only at the console (pane-agent trust)",
            ));
        }
        let was = signal.trust().map_err(internal)?;
        Ok(json!({"status": if was { "trusted" } else { "nothing to trust" }}))
    }
}
