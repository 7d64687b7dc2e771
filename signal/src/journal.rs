//! The journal of received messages the core has not acknowledged yet.
//!
//! libsignal-service acknowledges each envelope to Signal's server as soon as it is read, so
//! from then on the gateway alone holds the message. Each `received` and `reaction` line is
//! therefore written here (one file per message in `<data-dir>/signal/inbox/`, synced, and
//! the directory synced) before it is relayed, and removed only when the core answers
//! `ack` with its id. After a reconnect or a restart every entry is relayed again, in the
//! order the messages arrived.
//!
//! The files hold the line as relayed (the body in clear, in the gateway's 0700 directory,
//! as the core's own store holds it until it has answered); nothing stays once acknowledged.

use pane_protocol::messages::{decode_line, encode_line, GatewayEvent};
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

/// One unacknowledged message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// Arrival order.
    pub seq: u64,
    /// The line's id.
    pub id: String,
    /// The line.
    pub event: GatewayEvent,
}

/// The unacknowledged messages, on disk.
pub struct Journal {
    dir: PathBuf,
    entries: Vec<Entry>,
    next: u64,
}

/// The id of a journaled line (`received` and `reaction` have one; the gateway always gives
/// a `received` its id, optional only for the core's reading of older gateways' lines).
pub fn event_id(event: &GatewayEvent) -> Option<&str> {
    match event {
        GatewayEvent::Received { id: Some(id), .. } | GatewayEvent::Reaction { id, .. } => Some(id),
        _ => None,
    }
}

impl Journal {
    /// Opens the journal in `dir` (created 0700 if missing), loading what a previous run left.
    ///
    /// A file that does not parse is an error rather than skipped: it holds an owner's
    /// message, and the operator must see it (the error names the file).
    pub fn open(dir: &Path) -> std::io::Result<Journal> {
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)?;
        let mut entries = Vec::new();
        for item in std::fs::read_dir(dir)? {
            let path = item?.path();
            let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
            if name.ends_with(".tmp") {
                // A write cut off by a crash before its rename: never relayed, and not
                // complete. (libsignal-service had already acknowledged the envelope to
                // Signal, so that message is lost: the window is the write itself.)
                std::fs::remove_file(&path)?;
                continue;
            }
            let Some(seq) = name
                .strip_suffix(".json")
                .and_then(|s| s.parse::<u64>().ok())
            else {
                continue;
            };
            let text = std::fs::read_to_string(&path)?;
            let event: GatewayEvent = decode_line(&text).map_err(|e| {
                std::io::Error::new(
                    std::io::ErrorKind::InvalidData,
                    format!("{}: {e}", path.display()),
                )
            })?;
            let Some(id) = event_id(&event).map(str::to_string) else {
                return Err(std::io::Error::new(
                    std::io::ErrorKind::InvalidData,
                    format!("{}: not a received message", path.display()),
                ));
            };
            entries.push(Entry { seq, id, event });
        }
        entries.sort_by_key(|e| e.seq);
        let next = entries.last().map_or(0, |e| e.seq + 1);
        Ok(Journal {
            dir: dir.to_path_buf(),
            entries,
            next,
        })
    }

    /// Writes `event` to disk (synced) and returns its entry; `None` when a message with the
    /// same id is already waiting (Signal delivered it twice), so it is relayed once.
    pub fn append(&mut self, event: GatewayEvent) -> std::io::Result<Option<Entry>> {
        let Some(id) = event_id(&event).map(str::to_string) else {
            return Err(std::io::Error::new(
                std::io::ErrorKind::InvalidInput,
                "only received messages and reactions are journaled",
            ));
        };
        if self.entries.iter().any(|e| e.id == id) {
            return Ok(None);
        }
        let seq = self.next;
        let line = encode_line(&event).map_err(std::io::Error::other)?;
        let path = self.path(seq);
        let tmp = path.with_extension("tmp");
        let mut f = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&tmp)?;
        f.write_all(line.as_bytes())?;
        f.sync_all()?;
        std::fs::rename(&tmp, &path)?;
        self.sync_dir()?;
        self.next += 1;
        let entry = Entry { seq, id, event };
        self.entries.push(entry.clone());
        Ok(Some(entry))
    }

    /// Forgets the message `id` (the core has recorded it); false when it is not waiting.
    pub fn remove(&mut self, id: &str) -> std::io::Result<bool> {
        let Some(i) = self.entries.iter().position(|e| e.id == id) else {
            return Ok(false);
        };
        std::fs::remove_file(self.path(self.entries[i].seq))?;
        self.sync_dir()?;
        self.entries.remove(i);
        Ok(true)
    }

    /// Every unacknowledged message, oldest first.
    pub fn pending(&self) -> &[Entry] {
        &self.entries
    }

    fn path(&self, seq: u64) -> PathBuf {
        self.dir.join(format!("{seq:020}.json"))
    }

    fn sync_dir(&self) -> std::io::Result<()> {
        File::open(&self.dir)?.sync_all()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use pane_protocol::messages::message_id;

    fn received(ts: u64, body: &str) -> GatewayEvent {
        GatewayEvent::Received {
            id: Some(message_id("owner", 1, ts)),
            sender: "owner".into(),
            device: 1,
            timestamp: ts,
            body: body.into(),
            sealed: true,
            expire_timer: 0,
        }
    }

    fn tempdir(name: &str) -> PathBuf {
        let dir =
            std::env::temp_dir().join(format!("pane-signal-journal-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        dir
    }

    #[test]
    fn keeps_messages_until_acked_across_restarts_in_order() {
        let dir = tempdir("order");
        let mut j = Journal::open(&dir).unwrap();
        let a = j.append(received(10, "list")).unwrap().unwrap();
        let b = j.append(received(20, "status")).unwrap().unwrap();
        let reaction = GatewayEvent::Reaction {
            id: message_id("owner", 1, 30),
            sender: "owner".into(),
            emoji: "👍".into(),
            target_timestamp: 5,
            remove: false,
        };
        j.append(reaction.clone()).unwrap().unwrap();
        assert!(a.seq < b.seq);
        // Signal delivering the same message again: journaled once.
        assert!(j.append(received(10, "list")).unwrap().is_none());
        drop(j);

        let mut j = Journal::open(&dir).unwrap();
        let ids: Vec<_> = j.pending().iter().map(|e| e.id.clone()).collect();
        assert_eq!(ids, ["owner.1.10", "owner.1.20", "owner.1.30"]);
        assert_eq!(j.pending()[2].event, reaction);
        assert!(j.remove("owner.1.10").unwrap());
        assert!(
            !j.remove("owner.1.10").unwrap(),
            "a second ack changes nothing"
        );
        drop(j);

        let mut j = Journal::open(&dir).unwrap();
        assert_eq!(j.pending().len(), 2);
        // New entries go after what was left, never before it.
        let c = j
            .append(received(5, "older timestamp, later arrival"))
            .unwrap()
            .unwrap();
        assert!(c.seq > j.pending()[1].seq);
        j.remove("owner.1.20").unwrap();
        j.remove("owner.1.30").unwrap();
        j.remove(&c.id).unwrap();
        assert!(j.pending().is_empty());
        assert_eq!(
            std::fs::read_dir(&dir).unwrap().count(),
            0,
            "nothing stays on disk"
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn files_are_private_and_fragments_are_dropped() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempdir("private");
        let mut j = Journal::open(&dir).unwrap();
        let e = j
            .append(received(1, "approve ABCDE-FGHJK"))
            .unwrap()
            .unwrap();
        let mode = std::fs::metadata(j.path(e.seq))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
        assert_eq!(
            std::fs::metadata(&dir).unwrap().permissions().mode() & 0o777,
            0o700
        );
        std::fs::write(dir.join("00000000000000000009.tmp"), "{\"type\":").unwrap();
        drop(j);
        let j = Journal::open(&dir).unwrap();
        assert_eq!(j.pending().len(), 1);
        assert!(!dir.join("00000000000000000009.tmp").exists());
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_damaged_entry_is_reported_not_skipped() {
        let dir = tempdir("damaged");
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("00000000000000000003.json"), "not json").unwrap();
        let err = Journal::open(&dir).err().unwrap();
        assert!(
            err.to_string().contains("00000000000000000003.json"),
            "{err}"
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
