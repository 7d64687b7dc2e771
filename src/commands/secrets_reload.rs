//! `secrets.reload`: after `pane-agent rotate-secret`, the running daemon reads its secrets
//! again (the new one signs from now on; the old one is accepted for the grace period).
//! Console only.

use super::Args;
use crate::reply::CommandError;

/// `secrets.reload` takes no arguments.
#[derive(Debug, Clone, PartialEq)]
pub struct SecretsReload;

impl SecretsReload {
    /// Parses the (empty) arguments.
    pub fn parse(_args: &Args<'_>) -> Result<SecretsReload, CommandError> {
        Ok(SecretsReload)
    }
}
