//! Safety-number changes. presage trusts a contact's new identity key and replaces the old
//! one in its store without telling its caller, so the gateway keeps its own record of the
//! identity key it last saw for each sender (`<data-dir>/signal/known-identities`, one
//! `ACI HEX-KEY` line each) and reports a difference as `IdentityChanged`. The first key
//! seen for a sender is recorded without a report (trust on first use, as Signal does).

use std::collections::HashMap;
use std::io::Write;
use std::path::{Path, PathBuf};

/// The identity keys last seen, persisted.
pub struct KnownIdentities {
    path: PathBuf,
    keys: HashMap<String, String>,
}

impl KnownIdentities {
    /// Loads the record at `path` (empty when the file does not exist yet).
    pub fn load(path: &Path) -> std::io::Result<KnownIdentities> {
        let text = match std::fs::read_to_string(path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
            Err(e) => return Err(e),
        };
        let keys = text
            .lines()
            .filter_map(|l| l.split_once(' '))
            .map(|(aci, key)| (aci.to_string(), key.to_string()))
            .collect();
        Ok(KnownIdentities {
            path: path.to_path_buf(),
            keys,
        })
    }

    /// Records `key` (raw identity key bytes) for `aci`; true when it replaced a different key.
    pub fn observe(&mut self, aci: &str, key: &[u8]) -> std::io::Result<bool> {
        let hex: String = key.iter().map(|b| format!("{b:02x}")).collect();
        let changed = match self.keys.get(aci) {
            Some(old) if *old == hex => return Ok(false),
            Some(_) => true,
            None => false,
        };
        self.keys.insert(aci.to_string(), hex);
        self.save()?;
        Ok(changed)
    }

    fn save(&self) -> std::io::Result<()> {
        let tmp = self.path.with_extension("tmp");
        let mut f = std::fs::File::create(&tmp)?;
        for (aci, key) in &self.keys {
            writeln!(f, "{aci} {key}")?;
        }
        f.sync_all()?;
        std::fs::rename(&tmp, &self.path)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reports_a_changed_key_and_remembers_it_across_restarts() {
        let dir = std::env::temp_dir().join(format!("pane-signal-ids-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("known-identities");
        let _ = std::fs::remove_file(&path);
        let mut known = KnownIdentities::load(&path).unwrap();
        assert!(
            !known.observe("a", &[1, 2]).unwrap(),
            "first sight is trusted"
        );
        assert!(!known.observe("a", &[1, 2]).unwrap());
        assert!(known.observe("a", &[1, 3]).unwrap());
        let mut reloaded = KnownIdentities::load(&path).unwrap();
        assert!(!reloaded.observe("a", &[1, 3]).unwrap());
        assert!(reloaded.observe("a", &[9]).unwrap());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
