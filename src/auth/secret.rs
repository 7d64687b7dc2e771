//! The command secret(s). A [`Secret`] never prints: `Debug` shows its length only, and the
//! bytes are wiped when it is dropped.

use crate::unix;
use std::fmt;
use std::path::Path;

/// The minimum length of a secret, in bytes of its configured text.
pub const MIN_SECRET_BYTES: usize = 32;

/// Why the secret cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum SecretError {
    /// Neither `AGENT_SECRET` nor the secret file gives a secret.
    #[error("no command secret: set AGENT_SECRET or run `pane-agent init` to create {0}")]
    Missing(String),
    /// The secret file could not be read.
    #[error("cannot read secret file {path}: {source}")]
    Read {
        /// The file.
        path: String,
        /// Why.
        source: std::io::Error,
    },
    /// The secret file can be read by group or others.
    #[error("secret file {path} has mode {mode:o}: it must be readable by its owner only (chmod 600 {path})")]
    Permissions {
        /// The file.
        path: String,
        /// Its permission bits.
        mode: u32,
    },
    /// The secret is too short to resist guessing.
    #[error("{origin} is {len} bytes; a command secret must be at least {MIN_SECRET_BYTES} bytes (use `openssl rand -hex 32`)")]
    TooShort {
        /// Where it came from (never its value).
        origin: String,
        /// Its length.
        len: usize,
    },
}

/// One HMAC key: the secret's UTF-8 bytes exactly as configured.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(Vec<u8>);

impl Secret {
    /// Wraps configured text; surrounding whitespace (a trailing newline in a file) is not
    /// part of the secret.
    pub fn new(text: &str) -> Secret {
        Secret(text.trim().as_bytes().to_vec())
    }

    /// The key bytes.
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }

    /// The text, for the redactor to find and remove wherever it appears.
    pub fn as_text(&self) -> String {
        String::from_utf8_lossy(&self.0).into_owned()
    }

    fn check_len(self, origin: &str) -> Result<Secret, SecretError> {
        if self.0.len() < MIN_SECRET_BYTES {
            return Err(SecretError::TooShort {
                origin: origin.to_string(),
                len: self.0.len(),
            });
        }
        Ok(self)
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Secret(<{} bytes>)", self.0.len())
    }
}

impl Drop for Secret {
    fn drop(&mut self) {
        for b in self.0.iter_mut() {
            // SAFETY: a volatile write to an owned, initialised byte.
            unsafe { std::ptr::write_volatile(b, 0) };
        }
    }
}

/// The current secret (which signs) and the previous ones still accepted after a rotation.
#[derive(Debug, Clone)]
pub struct SecretSet {
    /// Signs and verifies.
    pub current: Secret,
    /// Verify only.
    pub previous: Vec<Secret>,
}

impl SecretSet {
    /// Loads the secrets: `AGENT_SECRET`, else the systemd credential `agent-secret`, else
    /// `<data_dir>/agent.secret` (which must be
    /// mode 0600 or stricter); previous ones from `AGENT_SECRET_PREVIOUS` (comma-separated)
    /// and the config's `previous_secrets`. Every secret must be at least 32 bytes.
    pub fn load(data_dir: &Path, configured_previous: &[String]) -> Result<SecretSet, SecretError> {
        let current = match std::env::var("AGENT_SECRET") {
            Ok(v) if !v.trim().is_empty() => Secret::new(&v).check_len("AGENT_SECRET")?,
            _ => match crate::systemd::credential("agent-secret") {
                Some(v) => Secret::new(&v).check_len("the agent-secret credential")?,
                None => load_file(&data_dir.join("agent.secret"))?,
            },
        };
        let mut previous = Vec::new();
        let env_prev = std::env::var("AGENT_SECRET_PREVIOUS").unwrap_or_default();
        for (i, text) in env_prev
            .split(',')
            .filter(|s| !s.trim().is_empty())
            .enumerate()
        {
            previous.push(
                Secret::new(text).check_len(&format!("AGENT_SECRET_PREVIOUS entry {}", i + 1))?,
            );
        }
        for (i, text) in configured_previous.iter().enumerate() {
            previous.push(
                Secret::new(text).check_len(&format!("[auth] previous_secrets entry {}", i + 1))?,
            );
        }
        let now = chrono::Utc::now().timestamp();
        previous.extend(rotated_secrets(data_dir, now)?);
        if let Some(text) = crate::systemd::credential("previous-secrets") {
            previous.extend(parse_rotated(
                &text,
                now,
                "the previous-secrets credential",
            )?);
        }
        Ok(SecretSet { current, previous })
    }

    /// A short, one-way fingerprint of the current secret, for the audit log.
    pub fn fingerprint(&self) -> String {
        use sha2::Digest;
        let mut h = sha2::Sha256::new();
        h.update(b"pane-agent secret fingerprint\n");
        h.update(self.current.as_bytes());
        hex::encode(&h.finalize()[..6])
    }

    /// Every accepted secret, current first.
    pub fn all(&self) -> impl Iterator<Item = &Secret> {
        std::iter::once(&self.current).chain(self.previous.iter())
    }
}

/// The file `rotate-secret` keeps previous secrets in, each with the Unix time it stops
/// being accepted: lines of `<expires> <secret>`.
pub const ROTATED_FILE: &str = "previous.secrets";

/// The rotated secrets still inside their grace period.
pub fn rotated_secrets(data_dir: &Path, now: i64) -> Result<Vec<Secret>, SecretError> {
    let path = data_dir.join(ROTATED_FILE);
    if !path.exists() {
        return Ok(Vec::new());
    }
    let shown = path.display().to_string();
    let mode = unix::mode_of(&path).map_err(|source| SecretError::Read {
        path: shown.clone(),
        source,
    })?;
    if mode & 0o077 != 0 {
        return Err(SecretError::Permissions { path: shown, mode });
    }
    let text = std::fs::read_to_string(&path).map_err(|source| SecretError::Read {
        path: shown.clone(),
        source,
    })?;
    parse_rotated(&text, now, &shown)
}

/// Parses `<expires> <secret>` lines, keeping the secrets whose expiry is after `now`.
pub fn parse_rotated(text: &str, now: i64, origin: &str) -> Result<Vec<Secret>, SecretError> {
    let mut out = Vec::new();
    for line in text.lines() {
        let Some((expires, secret)) = line.trim().split_once(' ') else {
            continue;
        };
        if expires.parse::<i64>().is_ok_and(|e| e > now) {
            out.push(Secret::new(secret).check_len(origin)?);
        }
    }
    Ok(out)
}

fn load_file(path: &Path) -> Result<Secret, SecretError> {
    let shown = path.display().to_string();
    if !path.exists() {
        return Err(SecretError::Missing(shown));
    }
    let mode = unix::mode_of(path).map_err(|source| SecretError::Read {
        path: shown.clone(),
        source,
    })?;
    if mode & 0o077 != 0 {
        return Err(SecretError::Permissions { path: shown, mode });
    }
    let text = std::fs::read_to_string(path).map_err(|source| SecretError::Read {
        path: shown.clone(),
        source,
    })?;
    Secret::new(&text).check_len(&shown)
}
