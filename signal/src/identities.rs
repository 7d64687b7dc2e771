//! Safety-number changes, and refusing to send across one.
//!
//! presage trusts a contact's new identity key and replaces the old one in its store without
//! telling its caller, so the gateway keeps its own record
//! (`<data-dir>/signal/known-identities`): for each contact the identity key last
//! *confirmed*, and a *pending* key when a different one has been seen since. The first key
//! seen for a contact is confirmed at once (trust on first use, as Signal does).
//!
//! While a key is pending the gateway sends nothing to that contact. It becomes confirmed
//! when the core acknowledges a message it read after the gateway's `identity_changed`
//! line: from then on the core knows, and the core holds its own sends until the operator
//! runs `pane-agent trust` (see `relay`).
//!
//! The record names the owner's and contacts' ACIs, so the file is sealed with a key derived
//! from the store passphrase ([`crate::sealing`]); a record in clear from an earlier version
//! is read once and written again sealed.

use crate::sealing::{is_sealed, SealKey};
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use zeroize::{Zeroize, Zeroizing};

/// The additional data the record is sealed with.
const CONTEXT: &[u8] = b"pane-signal known-identities";

#[derive(Debug, Clone, PartialEq, Eq)]
struct Known {
    confirmed: String,
    pending: Option<String>,
}

/// The identity keys confirmed and pending, persisted.
pub struct KnownIdentities {
    path: PathBuf,
    key: SealKey,
    keys: BTreeMap<String, Known>,
}

impl Drop for KnownIdentities {
    fn drop(&mut self) {
        for (mut aci, mut known) in std::mem::take(&mut self.keys) {
            aci.zeroize();
            known.confirmed.zeroize();
            known.pending.zeroize();
        }
    }
}

fn hex(key: &[u8]) -> String {
    key.iter().map(|b| format!("{b:02x}")).collect()
}

impl KnownIdentities {
    /// Loads the record at `path` (empty when the file does not exist yet), sealed with
    /// `key`. Lines are `ACI CONFIRMED-KEY [PENDING-KEY]`, keys in hex. A record in clear from
    /// an earlier version is sealed at once.
    pub fn load(path: &Path, key: SealKey) -> std::io::Result<KnownIdentities> {
        let file = match std::fs::read(path) {
            Ok(f) => Zeroizing::new(f),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Zeroizing::new(Vec::new()),
            Err(e) => return Err(e),
        };
        let in_clear = !file.is_empty() && !is_sealed(&file);
        let text = if file.is_empty() || in_clear {
            file
        } else {
            key.open(CONTEXT, &file)
                .map_err(|e| std::io::Error::new(e.kind(), format!("{}: {e}", path.display())))?
        };
        let text = std::str::from_utf8(&text).map_err(|e| {
            std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                format!("{}: {e}", path.display()),
            )
        })?;
        let mut keys = BTreeMap::new();
        for line in text.lines() {
            let mut parts = line.split(' ');
            if let (Some(aci), Some(confirmed)) = (parts.next(), parts.next()) {
                let pending = parts.next().map(str::to_string);
                keys.insert(
                    aci.to_string(),
                    Known {
                        confirmed: confirmed.to_string(),
                        pending,
                    },
                );
            }
        }
        let known = KnownIdentities {
            path: path.to_path_buf(),
            key,
            keys,
        };
        if in_clear {
            known.save()?;
            tracing::info!(
                "sealed the known identity keys an earlier version had written in clear"
            );
        }
        Ok(known)
    }

    /// Records `key` (raw identity key bytes) seen for `aci`; true when it is a change not
    /// reported before (it is now pending and must be reported).
    pub fn observe(&mut self, aci: &str, key: &[u8]) -> std::io::Result<bool> {
        let key = hex(key);
        let changed = match self.keys.get_mut(aci) {
            None => {
                self.keys.insert(
                    aci.to_string(),
                    Known {
                        confirmed: key,
                        pending: None,
                    },
                );
                false
            }
            Some(k) if k.confirmed == key => {
                if k.pending.is_none() {
                    return Ok(false);
                }
                // Back to the confirmed key: nothing is pending any more.
                k.pending = None;
                false
            }
            Some(k) if k.pending.as_deref() == Some(key.as_str()) => return Ok(false),
            Some(k) => {
                k.pending = Some(key);
                true
            }
        };
        self.save()?;
        Ok(changed)
    }

    /// True while a changed key of `aci` waits for the core to know of it.
    pub fn is_pending(&self, aci: &str) -> bool {
        self.keys.get(aci).is_some_and(|k| k.pending.is_some())
    }

    /// The contacts with a pending key.
    pub fn pending(&self) -> Vec<String> {
        self.keys
            .iter()
            .filter(|(_, k)| k.pending.is_some())
            .map(|(aci, _)| aci.clone())
            .collect()
    }

    /// The core knows of the change: the pending key becomes the confirmed one.
    pub fn confirm(&mut self, aci: &str) -> std::io::Result<()> {
        let Some(k) = self.keys.get_mut(aci) else {
            return Ok(());
        };
        let Some(pending) = k.pending.take() else {
            return Ok(());
        };
        k.confirmed = pending;
        self.save()
    }

    /// Writes the record sealed (a temporary file, synced, renamed over the old one).
    fn save(&self) -> std::io::Result<()> {
        let mut text = Zeroizing::new(String::new());
        for (aci, k) in &self.keys {
            // Writing to a String cannot fail.
            let _ = match &k.pending {
                Some(p) => writeln!(text, "{aci} {} {p}", k.confirmed),
                None => writeln!(text, "{aci} {}", k.confirmed),
            };
        }
        let sealed = self.key.seal(CONTEXT, text.as_bytes())?;
        let tmp = self.path.with_extension("tmp");
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&tmp)?;
        f.write_all(&sealed)?;
        f.sync_all()?;
        std::fs::rename(&tmp, &self.path)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sealing::StateKeys;

    fn key() -> SealKey {
        StateKeys::derive("identities test passphrase").identities
    }

    #[test]
    fn a_record_in_clear_is_sealed_and_names_no_aci() {
        let dir =
            std::env::temp_dir().join(format!("pane-signal-ids-clear-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("known-identities");
        let aci = "0b5c6a5e-2f6e-4a7b-9d35-6a1c1f1f2c3d";
        std::fs::write(&path, format!("{aci} 0102 0103\n")).unwrap();
        let known = KnownIdentities::load(&path, key()).unwrap();
        assert!(known.is_pending(aci), "read from the file in clear");
        let file = std::fs::read(&path).unwrap();
        assert!(is_sealed(&file), "written again sealed");
        let text = String::from_utf8_lossy(&file);
        assert!(!text.contains(aci) && !text.contains("0b5c6a5e"), "{text}");
        drop(known);
        assert!(KnownIdentities::load(&path, key()).unwrap().is_pending(aci));
        let other = StateKeys::derive("another").identities;
        assert!(
            KnownIdentities::load(&path, other).is_err(),
            "another passphrase"
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_changed_key_is_pending_until_confirmed_across_restarts() {
        let dir = std::env::temp_dir().join(format!("pane-signal-ids-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("known-identities");
        let _ = std::fs::remove_file(&path);
        let mut known = KnownIdentities::load(&path, key()).unwrap();
        assert!(
            !known.observe("a", &[1, 2]).unwrap(),
            "first sight is trusted"
        );
        assert!(!known.is_pending("a"));
        assert!(!known.observe("a", &[1, 2]).unwrap());
        assert!(
            known.observe("a", &[1, 3]).unwrap(),
            "a new key is reported"
        );
        assert!(known.is_pending("a"));
        assert!(!known.observe("a", &[1, 3]).unwrap(), "and reported once");
        assert_eq!(known.pending(), ["a"]);

        let mut reloaded = KnownIdentities::load(&path, key()).unwrap();
        assert!(reloaded.is_pending("a"), "pending survives a restart");
        reloaded.confirm("a").unwrap();
        assert!(!reloaded.is_pending("a"));
        assert!(
            !reloaded.observe("a", &[1, 3]).unwrap(),
            "the new key is now the confirmed one"
        );
        assert!(reloaded.observe("a", &[9]).unwrap());
        // Seen with the confirmed key again: no longer pending.
        let mut again = KnownIdentities::load(&path, key()).unwrap();
        assert!(again.is_pending("a"));
        assert!(!again.observe("a", &[1, 3]).unwrap());
        assert!(!again.is_pending("a"));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
