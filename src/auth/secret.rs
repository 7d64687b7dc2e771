//! The command secret(s). A [`Secret`] never prints: `Debug` shows its length only, and the
//! bytes are wiped when it is dropped.
//!
//! A secret rotated out by `rotate-secret` carries the Unix time its grace ends, and
//! [`SecretSet::accepted_at`] leaves it out from that second on: the expiry is judged each
//! time an envelope is verified, so a running daemon stops accepting it on time without a
//! reload or a restart.

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

/// One HMAC key: the secret's UTF-8 bytes exactly as configured, and, for a secret rotated
/// out, the Unix time from which it is no longer accepted.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret {
    bytes: Vec<u8>,
    expires: Option<i64>,
}

impl Secret {
    /// Wraps configured text; surrounding whitespace (a trailing newline in a file) is not
    /// part of the secret. It never expires.
    pub fn new(text: &str) -> Secret {
        Secret {
            bytes: text.trim().as_bytes().to_vec(),
            expires: None,
        }
    }

    /// The same key, accepted only before the Unix time `expires` (a rotated-out secret in
    /// its grace period).
    pub fn until(mut self, expires: i64) -> Secret {
        self.expires = Some(expires);
        self
    }

    /// The Unix time from which this secret is refused, if it expires at all.
    pub fn expires(&self) -> Option<i64> {
        self.expires
    }

    /// True when the secret may verify an envelope that arrived at `now` (Unix seconds).
    pub fn accepted_at(&self, now: i64) -> bool {
        self.expires.is_none_or(|e| now < e)
    }

    /// The key bytes.
    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes
    }

    /// The text, for the redactor to find and remove wherever it appears.
    pub fn as_text(&self) -> String {
        String::from_utf8_lossy(&self.bytes).into_owned()
    }

    pub(super) fn check_len(self, origin: &str) -> Result<Secret, SecretError> {
        if self.bytes.len() < MIN_SECRET_BYTES {
            return Err(SecretError::TooShort {
                origin: origin.to_string(),
                len: self.bytes.len(),
            });
        }
        Ok(self)
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.expires {
            Some(e) => write!(f, "Secret(<{} bytes>, until {e})", self.bytes.len()),
            None => write!(f, "Secret(<{} bytes>)", self.bytes.len()),
        }
    }
}

impl Drop for Secret {
    fn drop(&mut self) {
        for b in self.bytes.iter_mut() {
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
    /// Verify only: those from the config and the environment until they are removed there,
    /// rotated-out ones until their grace ends ([`Secret::until`]).
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

    /// Every secret loaded, current first, expired or not (the redactor keeps hiding a
    /// secret after it stops being accepted).
    pub fn all(&self) -> impl Iterator<Item = &Secret> {
        std::iter::once(&self.current).chain(self.previous.iter())
    }

    /// The secrets that verify an envelope arriving at `now`: [`all`](Self::all) without
    /// those whose grace has ended.
    pub fn accepted_at(&self, now: i64) -> impl Iterator<Item = &Secret> {
        self.all().filter(move |s| s.accepted_at(now))
    }
}

/// The file `rotate-secret` keeps previous secrets in, each with the Unix time it stops
/// being accepted: lines of `<expires> <secret>`.
pub const ROTATED_FILE: &str = "previous.secrets";

/// The rotated secrets still inside their grace period at `now`, each with its expiry.
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

/// Parses `<expires> <secret>` lines, keeping the secrets whose expiry is after `now`, each
/// carrying its expiry so that verification refuses it from then on.
pub fn parse_rotated(text: &str, now: i64, origin: &str) -> Result<Vec<Secret>, SecretError> {
    let mut out = Vec::new();
    for (expires, secret) in rotated_lines(text) {
        if expires > now {
            out.push(Secret::new(secret).check_len(origin)?.until(expires));
        }
    }
    Ok(out)
}

/// The `(expires, secret)` pairs of a rotated-secrets file; lines of another shape are
/// skipped.
fn rotated_lines(text: &str) -> impl Iterator<Item = (i64, &str)> {
    text.lines().filter_map(|line| {
        let (expires, secret) = line.trim().split_once(' ')?;
        Some((expires.parse::<i64>().ok()?, secret.trim()))
    })
}

/// The text of a rotated-secrets file after a rotation at `now`: the lines still in their
/// grace kept, and `old` added until `now + grace_days` days. A grace of 0 days adds
/// nothing: the old secret is refused at once (as for a secret known to be stolen).
pub fn rotated_file_after(text: &str, old: &Secret, now: i64, grace_days: u64) -> String {
    let mut out = String::new();
    for (expires, secret) in rotated_lines(text).filter(|(e, _)| *e > now) {
        out.push_str(&format!("{expires} {secret}\n"));
    }
    if grace_days > 0 {
        let days = i64::try_from(grace_days).unwrap_or(i64::MAX / 86_400);
        let expires = now.saturating_add(days.saturating_mul(86_400));
        out.push_str(&format!("{expires} {}\n", old.as_text()));
    }
    out
}

pub(super) fn load_file(path: &Path) -> Result<Secret, SecretError> {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rotated_secrets_carry_their_expiry() {
        let (a, b) = ("a".repeat(40), "b".repeat(40));
        let text = format!("100 {a}\n200 {b}\nnot a line\n");
        let kept = parse_rotated(&text, 150, "test").unwrap();
        assert_eq!(kept.len(), 1);
        assert_eq!(kept[0].as_text(), b);
        assert_eq!(kept[0].expires(), Some(200));
        assert!(kept[0].accepted_at(199));
        assert!(!kept[0].accepted_at(200));
        assert!(Secret::new(&a).accepted_at(i64::MAX));
    }

    #[test]
    fn a_rotation_drops_ended_lines_and_a_zero_grace_keeps_nothing() {
        let (a, b) = ("a".repeat(40), "b".repeat(40));
        let old = Secret::new(&"o".repeat(40));
        let text = format!("100 {a}\n200 {b}\n");
        assert_eq!(
            rotated_file_after(&text, &old, 150, 1),
            format!("200 {b}\n{} {}\n", 150 + 86_400, old.as_text())
        );
        assert_eq!(
            rotated_file_after(&text, &old, 150, 0),
            format!("200 {b}\n")
        );
    }
}
