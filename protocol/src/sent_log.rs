//! The gateway's log of the outbox ids it has sent (`<state-dir>/sent-ids`), so that a send
//! id already sent is answered `sent` without sending again: flushed before `sent` is
//! reported, so even a restart of either side never delivers a message twice. It lives here,
//! beside the protocol, because it needs nothing of presage: it is tested beside the core
//! (whose test gateway keeps one too), and the gateway uses it as it is.
//!
//! Each id is kept with a digest of what was sent under it (recipient, Signal timestamp and
//! text). The same id with the same content is the core asking again for a message already
//! sent: answered `sent`. The same id with other content is a new message under a used id
//! (say, from a core whose store was restored from an older copy): answering `sent` would
//! drop it silently, so it is refused instead ([`Seen::Conflict`], answered `send_failed`
//! with [`crate::messages::ID_CONFLICT`]). Lines written before digests were kept
//! hold an id alone; such an id counts as sent whatever the content, as it always did.

use sha2::{Digest, Sha256};
use std::collections::{HashMap, VecDeque};
use std::io::Write;
use std::path::{Path, PathBuf};

/// Sent ids remembered (older ones are forgotten when the log is compacted).
const KEEP_SENT: usize = 10_000;

/// What the log knows of a send's id.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Seen {
    /// Not sent: send it.
    New,
    /// Sent with this content: answer `sent` without sending again.
    Sent,
    /// Sent with other content: refuse it (`id_conflict`), never claim it was sent.
    Conflict,
}

/// The digest of a send's content, as the log keeps it: SHA-256 of the recipient, the
/// Signal timestamp and the text (hex). The disappearing-message timer is left out: the core
/// sends a retry with the owner's latest timer, and it is still the same message.
pub fn content_digest(recipient: &str, timestamp: u64, body: &str) -> String {
    let mut h = Sha256::new();
    h.update(recipient.as_bytes());
    h.update([0]);
    h.update(timestamp.to_be_bytes());
    h.update(body.as_bytes());
    hex::encode(h.finalize())
}

/// The ids already sent with their content's digest, persisted one per line (`id digest`).
pub struct SentLog {
    path: PathBuf,
    ids: HashMap<String, Option<String>>,
    order: VecDeque<String>,
}

/// Splits a line into its id and digest (None for a line from before digests).
fn parse_line(line: &str) -> (String, Option<String>) {
    match line.rsplit_once(' ') {
        Some((id, digest))
            if digest.len() == 64 && digest.bytes().all(|b| b.is_ascii_hexdigit()) =>
        {
            (id.to_string(), Some(digest.to_string()))
        }
        _ => (line.to_string(), None),
    }
}

impl SentLog {
    /// Opens (or creates) the log at `path`.
    pub fn open(path: &Path) -> std::io::Result<SentLog> {
        let text = match std::fs::read_to_string(path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
            Err(e) => return Err(e),
        };
        let mut ids = HashMap::new();
        let mut order = VecDeque::new();
        for line in text.lines().filter(|l| !l.is_empty()) {
            let (id, digest) = parse_line(line);
            // The first record of an id is what was sent under it.
            if !ids.contains_key(&id) {
                ids.insert(id.clone(), digest);
                order.push_back(id);
            }
        }
        Ok(SentLog {
            path: path.to_path_buf(),
            ids,
            order,
        })
    }

    /// What the log knows of `id` sent with content `digest` ([`content_digest`]).
    pub fn check(&self, id: &str, digest: &str) -> Seen {
        match self.ids.get(id) {
            None => Seen::New,
            // Logged before digests were kept: sent, as it was always answered.
            Some(None) => Seen::Sent,
            Some(Some(d)) if d == digest => Seen::Sent,
            Some(Some(_)) => Seen::Conflict,
        }
    }

    /// Records `id` as sent with content `digest`, on disk before returning. An id already
    /// recorded keeps its first digest. An id with a line break (the core's ids have none)
    /// cannot be one line of the file: it is kept until the gateway stops, not written.
    pub fn record(&mut self, id: &str, digest: &str) -> std::io::Result<()> {
        if self.ids.contains_key(id) {
            return Ok(());
        }
        self.ids.insert(id.to_string(), Some(digest.to_string()));
        if id.contains(['\n', '\r']) {
            tracing::warn!("a send id with a line break: remembered until restart only");
            return Ok(());
        }
        self.order.push_back(id.to_string());
        if self.order.len() > 2 * KEEP_SENT {
            while self.order.len() > KEEP_SENT {
                if let Some(old) = self.order.pop_front() {
                    self.ids.remove(&old);
                }
            }
            return self.compact();
        }
        let mut f = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.path)?;
        writeln!(f, "{id} {digest}")?;
        f.sync_data()
    }

    /// Writes the ids kept to a new file and puts it in place, synced before and after the
    /// rename so that a crash leaves the old log or the new one, never an empty one.
    fn compact(&self) -> std::io::Result<()> {
        let tmp = self.path.with_extension("tmp");
        let mut body = String::new();
        for id in &self.order {
            body.push_str(id);
            if let Some(Some(digest)) = self.ids.get(id) {
                body.push(' ');
                body.push_str(digest);
            }
            body.push('\n');
        }
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(body.as_bytes())?;
        f.sync_all()?;
        std::fs::rename(&tmp, &self.path)?;
        let dir = match self.path.parent() {
            Some(d) if !d.as_os_str().is_empty() => d,
            _ => Path::new("."),
        };
        std::fs::File::open(dir)?.sync_all()
    }
}
