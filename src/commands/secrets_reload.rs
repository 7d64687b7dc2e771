//! `secrets.reload`: after `pane-agent rotate-secret`, the running daemon reads its secrets
//! again (the new one signs from now on; the old one is accepted for the grace period).
//! Console only.

use super::{Args, Cmd, Fast, GateAction, Run, Spec};
use crate::policy::tools::Tier;
use crate::reply::{CommandError, Words};
use serde::Serialize;

/// `secrets.reload` takes no arguments.
#[derive(Debug, Clone, PartialEq)]
pub struct SecretsReload;

/// What `secrets.reload` answers.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Reloaded {
    /// `reloaded`.
    pub status: &'static str,
    /// True when the secret in use changed since it was last seen (a rotation, audited).
    pub rotated: bool,
    /// How many command secrets are accepted now (the current one and previous ones).
    pub accepted_secrets: usize,
}

impl Words for Reloaded {
    fn words(&self, cmd: &str) -> String {
        crate::words::fields_of(cmd, self)
    }
}

impl Cmd for SecretsReload {
    const SPECS: &'static [Spec] = &[Spec::new(
        "secrets.reload",
        Tier::Write,
        false,
        &[],
        "read the command secrets again (console only)",
    )];

    fn parse(_name: &str, _args: &Args<'_>) -> Result<SecretsReload, CommandError> {
        Ok(SecretsReload)
    }

    /// The gate holds the secrets.
    fn run(self, _fast: &Fast<'_>) -> Result<Run, CommandError> {
        Ok(Run::Gate(GateAction::ReloadSecrets))
    }
}
