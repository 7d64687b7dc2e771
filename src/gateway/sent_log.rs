//! The gateway's log of the outbox ids it has sent (`<state-dir>/sent-ids`), so that a send
//! id already sent is answered `sent` without sending again: flushed before `sent` is
//! reported, so even a restart of either side never delivers a message twice. It lives in the
//! core crate, beside the protocol, because it needs nothing of presage and is tested here.

use std::collections::{HashSet, VecDeque};
use std::io::Write;
use std::path::{Path, PathBuf};

/// Sent ids remembered (older ones are forgotten when the log is compacted).
const KEEP_SENT: usize = 10_000;

/// The ids already sent, persisted one per line.
pub struct SentLog {
    path: PathBuf,
    ids: HashSet<String>,
    order: VecDeque<String>,
}

impl SentLog {
    /// Opens (or creates) the log at `path`.
    pub fn open(path: &Path) -> std::io::Result<SentLog> {
        let text = match std::fs::read_to_string(path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
            Err(e) => return Err(e),
        };
        let order: VecDeque<String> = text
            .lines()
            .filter(|l| !l.is_empty())
            .map(str::to_string)
            .collect();
        Ok(SentLog {
            path: path.to_path_buf(),
            ids: order.iter().cloned().collect(),
            order,
        })
    }

    /// True when `id` was sent.
    pub fn contains(&self, id: &str) -> bool {
        self.ids.contains(id)
    }

    /// Records `id` as sent, on disk before returning.
    pub fn record(&mut self, id: &str) -> std::io::Result<()> {
        if !self.ids.insert(id.to_string()) {
            return Ok(());
        }
        self.order.push_back(id.to_string());
        if self.order.len() > 2 * KEEP_SENT {
            while self.order.len() > KEEP_SENT {
                if let Some(old) = self.order.pop_front() {
                    self.ids.remove(&old);
                }
            }
            let tmp = self.path.with_extension("tmp");
            let mut body = String::new();
            for i in &self.order {
                body.push_str(i);
                body.push('\n');
            }
            std::fs::write(&tmp, body)?;
            std::fs::rename(&tmp, &self.path)?;
            return Ok(());
        }
        let mut f = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.path)?;
        writeln!(f, "{id}")?;
        f.sync_data()
    }
}
