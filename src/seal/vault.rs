//! The credentials of a sealed installation, inside the sealed store (the `vault` tree): the
//! command secret, the rotated-out secrets still in their grace, the MCP key, the provider
//! keys (with the IMAP password) and the Signal store's passphrase.
//!
//! They arrive as files, as before sealing (`init` writes `agent.secret`, `mcp-key` writes
//! `mcp.key`, the owner drops `provider-keys` into `<data-dir>/credentials/`, systemd passes
//! `LoadCredential=` files): each unseal and each `secrets.reload` imports what it finds and
//! removes the files it may remove, so from then on they exist only sealed. While unsealed,
//! the vault's contents are handed to the process's credential lookup
//! ([`crate::systemd::set_unsealed_credentials`]), where every reader of a credential looks
//! first; sealing clears them.

use super::SealError;
use crate::store::{Store, Table, TableId};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use zeroize::Zeroizing;

/// One credential the vault holds, by its systemd credential name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Credential {
    /// The command secret (`agent.secret`).
    CommandSecret,
    /// Rotated-out secrets with their expiry (`previous.secrets`).
    PreviousSecrets,
    /// The MCP key (`mcp.key`).
    McpKey,
    /// `NAME=value` lines: the provider keys and `PANE_IMAP_PASSWORD`.
    ProviderKeys,
    /// The SQLCipher passphrase of the Signal gateway's store.
    SignalPassphrase,
}

impl Credential {
    /// Every credential.
    pub const ALL: [Credential; 5] = [
        Credential::CommandSecret,
        Credential::PreviousSecrets,
        Credential::McpKey,
        Credential::ProviderKeys,
        Credential::SignalPassphrase,
    ];

    /// Its name: the systemd credential's, and the file's in `<data-dir>/credentials/`.
    pub fn name(self) -> &'static str {
        match self {
            Credential::CommandSecret => "agent-secret",
            Credential::PreviousSecrets => "previous-secrets",
            Credential::McpKey => "mcp-key",
            Credential::ProviderKeys => "provider-keys",
            Credential::SignalPassphrase => "signal-passphrase",
        }
    }

    /// The file in the data dir the agent itself writes it to on an unsealed installation.
    fn data_dir_file(self) -> Option<&'static str> {
        match self {
            Credential::CommandSecret => Some("agent.secret"),
            Credential::PreviousSecrets => Some(crate::auth::secret::ROTATED_FILE),
            Credential::McpKey => Some(crate::auth::mcp_key::MCP_KEY_FILE),
            Credential::ProviderKeys | Credential::SignalPassphrase => None,
        }
    }
}

/// The record that tells a sealed store's key is the right one: written at the first unseal,
/// and found at every later one (a key file swapped for another store's opens nothing here).
const CANARY_KEY: &str = "seal.canary";
const CANARY: &str = "pane-agent sealed store";

/// The drop directory for credential files in the data dir.
pub const DROP_DIR: &str = "credentials";

/// One credential taken in by [`Vault::import`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Imported {
    /// Which.
    pub credential: Credential,
    /// From where.
    pub from: PathBuf,
    /// True when the file was removed (a systemd credential is a read-only copy: its source
    /// under /etc is the operator's to remove).
    pub removed: bool,
}

/// The vault over the sealed store.
#[derive(Clone)]
pub struct Vault {
    table: Table,
}

impl Vault {
    /// The vault of `store` (which must be sealed: a vault in clear would be the files again).
    pub fn new(store: &Store) -> Result<Vault, SealError> {
        if !store.is_sealed() {
            return Err(SealError::NotSealed);
        }
        Ok(Vault {
            table: store.table(TableId::Vault),
        })
    }

    /// The credential's value.
    pub fn get(&self, c: Credential) -> Result<Option<Zeroizing<String>>, SealError> {
        Ok(self
            .table
            .get(c.name())?
            .map(|b| Zeroizing::new(String::from_utf8_lossy(&b).into_owned())))
    }

    /// Sets the credential.
    pub fn set(&self, c: Credential, value: &str) -> Result<(), SealError> {
        self.table.insert(c.name(), value.as_bytes())?;
        Ok(())
    }

    /// Checks that this store is the one the key opens: a new store gets the canary, an old
    /// one must show it.
    pub fn check_canary(&self, store_was_empty: bool) -> Result<(), SealError> {
        match self.table.get(CANARY_KEY)? {
            Some(found) if found.as_ref() == CANARY.as_bytes() => Ok(()),
            Some(_) => Err(SealError::WrongStore("its canary does not read".into())),
            None if store_was_empty => {
                self.table.insert(CANARY_KEY, CANARY)?;
                Ok(())
            }
            None => Err(SealError::WrongStore(
                "the key belongs to another store, or the store is in clear (`pane-agent seal-init` converts one)".into(),
            )),
        }
    }

    /// The Signal store's passphrase: the vault's, else a new random one when the gateway
    /// has no store yet (it creates its store with it at `pane-signal link`). None when the
    /// gateway has a store whose passphrase was never imported (said in the log).
    pub fn signal_passphrase(
        &self,
        data_dir: &Path,
    ) -> Result<Option<Zeroizing<String>>, SealError> {
        if let Some(p) = self.get(Credential::SignalPassphrase)? {
            return Ok(Some(p));
        }
        if data_dir.join("signal").join("presage.db3").exists() {
            tracing::warn!(
                "the Signal gateway has a store but the vault holds no passphrase for it: put it in <data-dir>/credentials/signal-passphrase, then secrets.reload or unseal again"
            );
            return Ok(None);
        }
        let mut bytes = Zeroizing::new([0u8; 32]);
        getrandom::fill(&mut bytes[..])
            .map_err(|e| SealError::Io(format!("no randomness: {e}")))?;
        let passphrase = Zeroizing::new(hex::encode(&bytes[..]));
        self.set(Credential::SignalPassphrase, &passphrase)?;
        Ok(Some(passphrase))
    }

    /// Every credential held, by name.
    pub fn all(&self) -> Result<BTreeMap<String, Zeroizing<String>>, SealError> {
        let mut out = BTreeMap::new();
        for c in Credential::ALL {
            if let Some(v) = self.get(c)? {
                out.insert(c.name().to_string(), v);
            }
        }
        Ok(out)
    }

    /// Takes in every credential file found (the data dir's own files, its `credentials/`
    /// drop directory, then systemd's `$CREDENTIALS_DIRECTORY`), the last found winning, and
    /// flushes; only then removes the files it may. A file that is empty is left alone.
    pub async fn import(&self, store: &Store, data_dir: &Path) -> Result<Vec<Imported>, SealError> {
        let mut found = self.take_in(data_dir)?;
        if !found.is_empty() {
            store.flush().await?;
            remove_taken(&mut found);
        }
        Ok(found)
    }

    /// [`Vault::import`] for code that is not async (`secrets.reload` at the gate).
    pub fn import_blocking(
        &self,
        store: &Store,
        data_dir: &Path,
    ) -> Result<Vec<Imported>, SealError> {
        let mut found = self.take_in(data_dir)?;
        if !found.is_empty() {
            store.flush_blocking()?;
            remove_taken(&mut found);
        }
        Ok(found)
    }

    /// The vault's rotated-out secrets with `more` added: each `<expires> <secret>` line
    /// once, those whose grace has ended dropped.
    fn merged_previous(&self, more: &str) -> Result<Zeroizing<String>, SealError> {
        let now = chrono::Utc::now().timestamp();
        let held = self.get(Credential::PreviousSecrets)?.unwrap_or_default();
        let mut lines: Vec<&str> = Vec::new();
        for line in held.lines().chain(more.lines()).map(str::trim) {
            let live = line
                .split_once(' ')
                .and_then(|(e, _)| e.parse::<i64>().ok())
                .is_some_and(|e| e > now);
            if live && !lines.contains(&line) {
                lines.push(line);
            }
        }
        Ok(Zeroizing::new(lines.join("\n")))
    }

    /// Takes in every credential file found, as [`Vault::import`] does, but leaves the files
    /// where they are (`seal-init`, which removes them only once the sealed store has
    /// replaced the old one: a conversion cut off before that starts over from them).
    pub fn import_keeping_files(&self, data_dir: &Path) -> Result<Vec<Imported>, SealError> {
        let mut found = self.take_in(data_dir)?;
        for f in &mut found {
            f.removed = false;
        }
        Ok(found)
    }

    fn take_in(&self, data_dir: &Path) -> Result<Vec<Imported>, SealError> {
        let mut found: Vec<Imported> = Vec::new();
        for c in Credential::ALL {
            let mut sources: Vec<(PathBuf, bool)> = Vec::new();
            if let Some(f) = c.data_dir_file() {
                sources.push((data_dir.join(f), true));
            }
            sources.push((data_dir.join(DROP_DIR).join(c.name()), true));
            if let Some(dir) = std::env::var_os("CREDENTIALS_DIRECTORY") {
                sources.push((PathBuf::from(dir).join(c.name()), false));
            }
            for (path, removable) in sources {
                let text = match std::fs::read_to_string(&path) {
                    Ok(t) => Zeroizing::new(t),
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                    Err(e) => {
                        return Err(SealError::Io(format!(
                            "cannot read {}: {e}",
                            path.display()
                        )))
                    }
                };
                let value = text.trim();
                if value.is_empty() {
                    continue;
                }
                if c == Credential::PreviousSecrets {
                    // Rotated-out secrets add up: a rotation hands in only its own line.
                    let merged = self.merged_previous(value)?;
                    self.set(c, &merged)?;
                } else {
                    self.set(c, value)?;
                }
                found.push(Imported {
                    credential: c,
                    from: path,
                    removed: removable,
                });
            }
        }
        Ok(found)
    }
}

/// Removes the credential files of `data_dir` that a sealed installation keeps in its vault
/// (its own files and the drop directory's; never systemd's copies). What was removed.
pub fn remove_credential_files(data_dir: &Path) -> Vec<PathBuf> {
    let mut removed = Vec::new();
    for c in Credential::ALL {
        let mut paths = vec![data_dir.join(DROP_DIR).join(c.name())];
        if let Some(f) = c.data_dir_file() {
            paths.push(data_dir.join(f));
        }
        for p in paths {
            if p.exists() && remove_file(&p) {
                removed.push(p);
            }
        }
    }
    removed
}

/// Removes the files taken in that may be removed (once the vault is on disk).
fn remove_taken(found: &mut [Imported]) {
    for item in found.iter_mut().filter(|i| i.removed) {
        item.removed = remove_file(&item.from);
    }
}

/// Overwrites a credential file with zeros, syncs, and unlinks it. On a journaling or
/// copy-on-write file system, and on an SSD, the old blocks may survive: `docs/sealing.md`
/// says to rotate the keys imported from files.
fn remove_file(path: &Path) -> bool {
    if let Ok(meta) = std::fs::metadata(path) {
        if let Ok(mut f) = std::fs::OpenOptions::new().write(true).open(path) {
            use std::io::Write;
            let zeros = vec![0u8; meta.len() as usize];
            let _ = f.write_all(&zeros).and_then(|_| f.sync_all());
        }
    }
    std::fs::remove_file(path).is_ok()
}
