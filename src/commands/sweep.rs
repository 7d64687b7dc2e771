//! `sweep`: run the breach monitor over every source now (the schedule does it hourly).

use super::Args;
use crate::reply::CommandError;

/// `sweep` takes no arguments.
#[derive(Debug, Clone, PartialEq)]
pub struct Sweep;

impl Sweep {
    /// Parses the (empty) arguments.
    pub fn parse(_args: &Args<'_>) -> Result<Sweep, CommandError> {
        Ok(Sweep)
    }
}
