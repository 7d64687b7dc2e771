//! The sent-id log (`pane_protocol::sent_log`), with keyed digests.
//!
//! The log keeps, for each outbox id sent, a digest of what went out under it: recipient,
//! Signal timestamp and text. A plain SHA-256 of that lets whoever reads the file test a
//! guess of a reply (the core's replies are short and mostly set phrases, the recipient is
//! the owner, the timestamp falls in a narrow range). So the gateway keeps HMAC-SHA256 of
//! that digest instead, under a key derived from the store passphrase
//! ([`crate::sealing::DigestKey`]), in `sent-ids.keyed`. The ids themselves (the core's
//! `<seq>.<nonce>`) say nothing of the owner.
//!
//! A log from an earlier version (`sent-ids`, plain digests) is converted once: each digest
//! is keyed as it is (the keyed digest of a message is the HMAC of its plain one, so a send
//! logged before the conversion is still recognised, and a conflict still refused); lines
//! from before digests keep their id alone. The keyed log is written and synced before the
//! old one is removed; a crash in between leaves both, and the keyed one is kept.

use crate::relay::Outgoing;
use crate::sealing::DigestKey;
use pane_protocol::sent_log::{content_digest, Seen, SentLog};
use std::io::Write;
use std::path::Path;

/// The log of an earlier version, with plain digests.
pub const LEGACY_FILE: &str = "sent-ids";
/// The log with keyed digests.
pub const FILE: &str = "sent-ids.keyed";

/// The sent-id log with keyed digests.
pub struct SentIds {
    log: SentLog,
    key: DigestKey,
}

impl SentIds {
    /// Opens the log in `state_dir`, converting an earlier version's first.
    pub fn open(state_dir: &Path, key: DigestKey) -> std::io::Result<SentIds> {
        let legacy = state_dir.join(LEGACY_FILE);
        let path = state_dir.join(FILE);
        match std::fs::read_to_string(&legacy) {
            Ok(text) => {
                if !path.exists() {
                    convert(&text, &path, &key)?;
                    tracing::info!("keyed the digests of an earlier version's sent-id log");
                }
                std::fs::remove_file(&legacy)?;
                sync_dir(state_dir)?;
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(e),
        }
        Ok(SentIds {
            log: SentLog::open(&path)?,
            key,
        })
    }

    /// What the log knows of `id` sent as `out`.
    pub fn check(&self, id: &str, out: &Outgoing) -> Seen {
        self.log.check(id, &self.digest(out))
    }

    /// Records `id` as sent as `out`, on disk before returning.
    pub fn record(&mut self, id: &str, out: &Outgoing) -> std::io::Result<()> {
        let digest = self.digest(out);
        self.log.record(id, &digest)
    }

    fn digest(&self, out: &Outgoing) -> String {
        self.key
            .digest(&content_digest(&out.recipient, out.timestamp, &out.body))
    }
}

/// Writes the lines of an earlier log to `path` with their digests keyed (synced, renamed
/// into place, the directory synced).
fn convert(text: &str, path: &Path, key: &DigestKey) -> std::io::Result<()> {
    let mut out = String::new();
    for line in text.lines().filter(|l| !l.is_empty()) {
        match line.rsplit_once(' ') {
            Some((id, digest))
                if digest.len() == 64 && digest.bytes().all(|b| b.is_ascii_hexdigit()) =>
            {
                out.push_str(id);
                out.push(' ');
                out.push_str(&key.digest(digest));
            }
            // From before digests: the id alone, counted as sent whatever the content.
            _ => out.push_str(line),
        }
        out.push('\n');
    }
    let tmp = path.with_extension("tmp");
    let mut f = std::fs::File::create(&tmp)?;
    f.write_all(out.as_bytes())?;
    f.sync_all()?;
    std::fs::rename(&tmp, path)?;
    match path.parent() {
        Some(dir) => sync_dir(dir),
        None => Ok(()),
    }
}

fn sync_dir(dir: &Path) -> std::io::Result<()> {
    std::fs::File::open(dir)?.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sealing::StateKeys;

    fn out(body: &str) -> Outgoing {
        Outgoing {
            recipient: "0b5c6a5e-2f6e-4a7b-9d35-6a1c1f1f2c3d".into(),
            body: body.into(),
            timestamp: 1_700,
            expire_timer: None,
        }
    }

    #[test]
    fn an_earlier_log_is_keyed_and_still_recognises_what_it_sent() {
        let dir = std::env::temp_dir().join(format!("pane-signal-sent-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let reply = out("✓ granted card.fund");
        let plain = content_digest(&reply.recipient, reply.timestamp, &reply.body);
        std::fs::write(dir.join(LEGACY_FILE), format!("1.00ff {plain}\n7\n")).unwrap();
        let key = || StateKeys::derive("sent ids test").sent_ids;
        let mut log = SentIds::open(&dir, key()).unwrap();
        assert!(!dir.join(LEGACY_FILE).exists(), "the earlier log is gone");
        let text = std::fs::read_to_string(dir.join(FILE)).unwrap();
        assert!(!text.contains(&plain), "no plain digest stays: {text}");
        assert_eq!(log.check("1.00ff", &reply), Seen::Sent);
        assert_eq!(log.check("1.00ff", &out("✓ denied")), Seen::Conflict);
        assert_eq!(log.check("7", &out("anything")), Seen::Sent, "an id alone");
        assert_eq!(log.check("2.00aa", &reply), Seen::New);
        log.record("2.00aa", &reply).unwrap();
        let text = std::fs::read_to_string(dir.join(FILE)).unwrap();
        assert!(!text.contains(&plain), "{text}");
        drop(log);
        // Opened again (and with another passphrase, nothing matches).
        let log = SentIds::open(&dir, key()).unwrap();
        assert_eq!(log.check("2.00aa", &reply), Seen::Sent);
        let other = SentIds::open(&dir, StateKeys::derive("other").sent_ids).unwrap();
        assert_eq!(other.check("2.00aa", &reply), Seen::Conflict);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
