//! `sweep`: run the breach monitor over every source now (the schedule does it hourly).

use super::Args;
use crate::actors::agent::{Core, Invocation};
use crate::reply::CommandError;
use serde_json::Value;

/// `sweep` takes no arguments.
#[derive(Debug, Clone, PartialEq)]
pub struct Sweep;

impl Sweep {
    /// Parses the (empty) arguments.
    pub fn parse(args: &Args<'_>) -> Result<Sweep, CommandError> {
        args.only(&[])?;
        Ok(Sweep)
    }

    /// Sweeps, then alerts and queues burns for what is new.
    pub async fn execute(self, core: &mut Core, inv: &Invocation) -> Result<Value, CommandError> {
        core.sweep(inv).await
    }
}
