//! `trust`: the operator, at the console, confirms the owner's new Signal safety number after
//! verifying it, and commands from Signal are accepted again. Refused on every other channel.

use super::Args;
use crate::origin::{Channel, Invocation};
use crate::reply::{internal, CommandError, ErrorKind};
use serde_json::{json, Value};

/// Set in the store's `meta` while the owner's safety number changed and the operator has
/// not run `trust`.
pub const IDENTITY_BLOCK_KEY: &[u8] = b"signal.identity_blocked";

/// `trust` takes no arguments.
#[derive(Debug, Clone, PartialEq)]
pub struct Trust;

impl Trust {
    /// Parses the (empty) arguments.
    pub fn parse(_args: &Args<'_>) -> Result<Trust, CommandError> {
        Ok(Trust)
    }

    /// Lifts the block, if the command came over the control socket.
    pub fn apply(self, meta: &sled::Tree, inv: &Invocation) -> Result<Value, CommandError> {
        if inv.channel != Channel::Socket {
            return Err(CommandError::new(
                ErrorKind::NotGranted,
                "trust is accepted only at the console (pane-agent trust)",
            ));
        }
        let was = meta.remove(IDENTITY_BLOCK_KEY).map_err(internal)?;
        Ok(json!({"status": if was.is_some() { "trusted" } else { "nothing to trust" }}))
    }
}
