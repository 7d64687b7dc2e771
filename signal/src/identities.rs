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

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};

#[derive(Debug, Clone, PartialEq, Eq)]
struct Known {
    confirmed: String,
    pending: Option<String>,
}

/// The identity keys confirmed and pending, persisted.
pub struct KnownIdentities {
    path: PathBuf,
    keys: BTreeMap<String, Known>,
}

fn hex(key: &[u8]) -> String {
    key.iter().map(|b| format!("{b:02x}")).collect()
}

impl KnownIdentities {
    /// Loads the record at `path` (empty when the file does not exist yet). Lines are
    /// `ACI CONFIRMED-KEY [PENDING-KEY]`, keys in hex.
    pub fn load(path: &Path) -> std::io::Result<KnownIdentities> {
        let text = match std::fs::read_to_string(path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
            Err(e) => return Err(e),
        };
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
        Ok(KnownIdentities {
            path: path.to_path_buf(),
            keys,
        })
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

    fn save(&self) -> std::io::Result<()> {
        let tmp = self.path.with_extension("tmp");
        let mut f = std::fs::File::create(&tmp)?;
        for (aci, k) in &self.keys {
            match &k.pending {
                Some(p) => writeln!(f, "{aci} {} {p}", k.confirmed)?,
                None => writeln!(f, "{aci} {}", k.confirmed)?,
            }
        }
        f.sync_all()?;
        std::fs::rename(&tmp, &self.path)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_changed_key_is_pending_until_confirmed_across_restarts() {
        let dir = std::env::temp_dir().join(format!("pane-signal-ids-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("known-identities");
        let _ = std::fs::remove_file(&path);
        let mut known = KnownIdentities::load(&path).unwrap();
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

        let mut reloaded = KnownIdentities::load(&path).unwrap();
        assert!(reloaded.is_pending("a"), "pending survives a restart");
        reloaded.confirm("a").unwrap();
        assert!(!reloaded.is_pending("a"));
        assert!(
            !reloaded.observe("a", &[1, 3]).unwrap(),
            "the new key is now the confirmed one"
        );
        assert!(reloaded.observe("a", &[9]).unwrap());
        // Seen with the confirmed key again: no longer pending.
        let mut again = KnownIdentities::load(&path).unwrap();
        assert!(again.is_pending("a"));
        assert!(!again.observe("a", &[1, 3]).unwrap());
        assert!(!again.is_pending("a"));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
