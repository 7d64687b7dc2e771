//! `unlock`: ends a lockdown. At the console (`pane-agent unlock`, the control socket) it
//! takes effect at once; from Signal it needs an approval whose code goes to the owner's phone
//! and is answered there; from anywhere else it is refused. So someone who holds only the
//! command secret cannot undo a lockdown.

use super::Args;
use crate::reply::CommandError;

/// `unlock` takes no arguments.
#[derive(Debug, Clone, PartialEq)]
pub struct Unlock;

impl Unlock {
    /// Parses the (empty) arguments.
    pub fn parse(_args: &Args<'_>) -> Result<Unlock, CommandError> {
        Ok(Unlock)
    }
}
