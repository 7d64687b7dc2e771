//! The command secret at the gate: its fingerprint, to notice a rotation, and
//! `secrets.reload` (console only), which reads the secrets and the MCP key again.

use super::Gate;
use crate::commands::secrets_reload::Reloaded;
use crate::origin::{Channel, Invocation};
use crate::reply::CommandError;
use crate::store::records::{Key, Text};
use serde_json::json;

/// The fingerprint of the secret in use, to notice rotations.
const SECRET_FINGERPRINT: Key<Text<String>> = Key::new("auth.fingerprint");

impl Gate {
    /// Audits a rotation when the current secret is not the one seen before (by fingerprint,
    /// never the secret). Returns true when it was a rotation.
    pub(super) fn note_secret_fingerprint(
        &mut self,
        inv: &Invocation,
    ) -> Result<bool, CommandError> {
        let now = self.admission.secrets().fingerprint();
        let before = self
            .store
            .records()
            .set(&SECRET_FINGERPRINT, &now)
            .map_err(|e| self.internal(e))?;
        let before = before.map(|b| String::from_utf8_lossy(&b).into_owned());
        let rotated = before.as_deref().is_some_and(|b| b != now);
        if rotated {
            self.audit_event(
                "auth.rotated",
                inv,
                json!({"from": before, "to": now, "accepted_secrets": self.admission.secrets().all().count()}),
            )?;
        }
        Ok(rotated)
    }

    /// `secrets.reload` (console only): the secrets are read again from the data dir, and
    /// the redactors of the replies, the audit log and the daemon's log learn them.
    pub(super) fn reload_secrets(&mut self, inv: &Invocation) -> Result<Reloaded, CommandError> {
        if inv.channel != Channel::Socket {
            return Err(CommandError::new(
                crate::reply::ErrorKind::NotGranted,
                "secrets.reload is accepted only at the console",
            ));
        }
        // What the start refuses, a reload refuses too; nothing is reloaded then.
        crate::ownership::check_reload(&self.data_dir).map_err(|e| {
            CommandError::new(
                crate::reply::ErrorKind::Internal,
                format!("nothing reloaded: {e}"),
            )
        })?;
        if self.store.is_sealed() {
            // A sealed installation takes new credential files into its vault (and removes
            // them) before reading its credentials again.
            let vault =
                crate::seal::vault::Vault::new(&self.store).map_err(|e| self.internal(e))?;
            vault
                .import_blocking(&self.store, &self.data_dir)
                .map_err(|e| self.internal(e))?;
            crate::systemd::set_unsealed_credentials(Some(
                vault.all().map_err(|e| self.internal(e))?,
            ));
        }
        let fresh =
            crate::auth::SecretSet::load(&self.data_dir, &self.config.auth.previous_secrets)
                .map_err(|e| CommandError::new(crate::reply::ErrorKind::Internal, e.to_string()))?;
        let mcp_key = crate::auth::mcp_key::load(&self.data_dir)
            .map_err(|e| CommandError::new(crate::reply::ErrorKind::Internal, e.to_string()))?;
        if let Some(key) = &mcp_key {
            // As at start: a copy of a command secret is no scoped credential. Nothing is
            // reloaded.
            if fresh.all().any(|s| s.as_bytes() == key.as_bytes()) {
                return Err(CommandError::new(
                    crate::reply::ErrorKind::Internal,
                    format!(
                        "nothing reloaded: {} is the same as a command secret; the MCP key must be a credential of its own (delete it and run `pane-agent mcp-key`)",
                        crate::auth::mcp_key::path(&self.data_dir).display()
                    ),
                ));
            }
        }
        let known = fresh.all().chain(mcp_key.iter()).map(|s| s.as_text());
        self.redactor = self.redactor.with_more(known.collect::<Vec<_>>());
        self.audit.set_redactor(self.redactor.clone());
        crate::logging::set_redactor(self.redactor.clone());
        self.admission
            .set_credentials(fresh, mcp_key.map(crate::auth::mcp_key::as_set));
        let rotated = self.note_secret_fingerprint(inv)?;
        Ok(Reloaded {
            status: "reloaded",
            rotated,
            accepted_secrets: self.admission.secrets().all().count(),
        })
    }
}
