//! `secrets.reload`: after `pane-agent rotate-secret`, the running daemon reads its secrets
//! again (the new one signs from now on; the old one is accepted for the grace period).
//! Console only.

use super::Args;
use crate::actors::agent::{Channel, Core, Invocation};
use crate::reply::{CommandError, ErrorKind};
use serde_json::{json, Value};

/// `secrets.reload` takes no arguments.
#[derive(Debug, Clone, PartialEq)]
pub struct SecretsReload;

impl SecretsReload {
    /// Parses the (empty) arguments.
    pub fn parse(args: &Args<'_>) -> Result<SecretsReload, CommandError> {
        args.only(&[])?;
        Ok(SecretsReload)
    }

    /// Reloads, and audits the rotation by fingerprint (never the secret).
    pub fn execute(self, core: &mut Core, inv: &Invocation) -> Result<Value, CommandError> {
        if inv.channel != Channel::Socket {
            return Err(CommandError::new(
                ErrorKind::NotGranted,
                "secrets.reload is accepted only at the console",
            ));
        }
        let fresh =
            crate::auth::SecretSet::load(&core.data_dir, &core.config.auth.previous_secrets)
                .map_err(|e| CommandError::new(ErrorKind::Internal, e.to_string()))?;
        core.redactor = core.redactor.with_more(fresh.all().map(|s| s.as_text()));
        // The audit log and the daemon's log redact the new secrets too.
        core.audit.set_redactor(core.redactor.clone());
        crate::logging::set_redactor(core.redactor.clone());
        core.secrets = fresh;
        let rotated = core.note_secret_fingerprint(inv)?;
        Ok(
            json!({"status": "reloaded", "rotated": rotated, "accepted_secrets": core.secrets.all().count()}),
        )
    }
}
