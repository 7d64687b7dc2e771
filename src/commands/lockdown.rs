//! `lockdown`: the panic button. Revokes every non-read grant and denies every pending
//! approval, immediately and without asking; `grant` (with approval) undoes it tool by tool.

use super::Args;
use crate::reply::CommandError;

/// `lockdown` takes no arguments.
#[derive(Debug, Clone, PartialEq)]
pub struct Lockdown;

impl Lockdown {
    /// Parses the (empty) arguments.
    pub fn parse(_args: &Args<'_>) -> Result<Lockdown, CommandError> {
        Ok(Lockdown)
    }
}
