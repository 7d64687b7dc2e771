//! The MCP key, `<data-dir>/mcp.key`: a credential of its own for the MCP server
//! (`pane-agent mcp`), distinct from the command secret. An envelope it signed is judged as
//! coming from the `mcp` channel, with a narrower scope (`[mcp] tools`), rate limits of its
//! own, and never the policy's own controls; see `policy::mcp`.

use super::secret::{load_file, Secret, SecretError, SecretSet};
use std::path::{Path, PathBuf};

/// The key's file name in the data dir.
pub const MCP_KEY_FILE: &str = "mcp.key";

/// Where the MCP key of `data_dir` lives.
pub fn path(data_dir: &Path) -> PathBuf {
    data_dir.join(MCP_KEY_FILE)
}

/// The MCP key, or None when `pane-agent mcp-key` has not made one. Like the command secret
/// it must be mode 0600 or stricter and at least 32 bytes.
pub fn load(data_dir: &Path) -> Result<Option<Secret>, SecretError> {
    // A sealed installation's key lives in its vault, held in memory while unsealed.
    if let Some(key) = crate::systemd::credential("mcp-key") {
        return Secret::new(&key).check_len("the MCP key").map(Some);
    }
    let path = path(data_dir);
    if !path.exists() {
        return Ok(None);
    }
    load_file(&path).map(Some)
}

/// The key as a set of one, for [`super::Envelope::authenticate`].
pub fn as_set(key: Secret) -> SecretSet {
    SecretSet {
        current: key,
        previous: Vec::new(),
    }
}

/// A short one-way fingerprint of the key (its own domain, so it never equals the command
/// secret's fingerprint form).
pub fn fingerprint(key: &Secret) -> String {
    use sha2::Digest;
    let mut h = sha2::Sha256::new();
    h.update(b"pane-agent mcp key fingerprint\n");
    h.update(key.as_bytes());
    hex::encode(&h.finalize()[..6])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fingerprints_differ_from_the_secret_form() {
        let key = Secret::new(&"k".repeat(64));
        let set = as_set(key.clone());
        assert_ne!(fingerprint(&key), set.fingerprint());
        assert_eq!(fingerprint(&key).len(), 12);
    }
}
