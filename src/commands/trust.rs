//! `trust`: the operator, at the console, confirms the owner's new Signal safety number after
//! verifying it, and commands from Signal are accepted again. Refused on every other channel.

use super::Args;
use crate::actors::agent::{Channel, Core, Invocation, IDENTITY_BLOCK_KEY};
use crate::reply::{CommandError, ErrorKind};
use serde_json::{json, Value};

/// `trust` takes no arguments.
#[derive(Debug, Clone, PartialEq)]
pub struct Trust;

impl Trust {
    /// Parses the (empty) arguments.
    pub fn parse(args: &Args<'_>) -> Result<Trust, CommandError> {
        args.only(&[])?;
        Ok(Trust)
    }

    /// Lifts the block, if the command came over the control socket.
    pub fn execute(self, core: &mut Core, inv: &Invocation) -> Result<Value, CommandError> {
        if inv.channel != Channel::Socket {
            return Err(CommandError::new(
                ErrorKind::NotGranted,
                "trust is accepted only at the console (pane-agent trust)",
            ));
        }
        let was = core
            .store
            .meta
            .remove(IDENTITY_BLOCK_KEY)
            .map_err(|e| core.internal(e))?;
        Ok(json!({"status": if was.is_some() { "trusted" } else { "nothing to trust" }}))
    }
}
