//! The journal of received messages the core has not acknowledged yet.
//!
//! libsignal-service acknowledges each envelope to Signal's server as soon as it is read, so
//! from then on the gateway alone holds the message. Each `received` and `reaction` line is
//! therefore written here (one file per message in `<data-dir>/signal/inbox/`, synced, and
//! the directory synced) before it is relayed, and removed only when the core answers
//! `ack` with its id. After a reconnect or a restart every entry is relayed again, in the
//! order the messages arrived.
//!
//! Each file is sealed (`NNNN.sealed`, see [`crate::sealing`]) with the journal's key, derived
//! from the store passphrase, and names its sequence number in its additional data: the
//! owner's messages are never on disk in clear, and an entry cannot be passed off as another
//! (reordered or repeated). An entry written in clear by an earlier version (`NNNN.json`) is
//! read once and written again sealed, then removed. What is in memory is wiped when the
//! journal is dropped (the gateway seals).

use crate::sealing::SealKey;
use pane_protocol::messages::{decode_line, encode_line, GatewayEvent};
use std::collections::BTreeMap;
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use zeroize::{Zeroize, Zeroizing};

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
    key: SealKey,
    entries: Vec<Entry>,
    next: u64,
}

impl Drop for Journal {
    fn drop(&mut self) {
        for entry in &mut self.entries {
            wipe(&mut entry.event);
        }
    }
}

/// Wipes the owner's words (and who sent them) from an event in memory.
fn wipe(event: &mut GatewayEvent) {
    match event {
        GatewayEvent::Received { body, sender, .. } => {
            body.zeroize();
            sender.zeroize();
        }
        GatewayEvent::Reaction { emoji, sender, .. } => {
            emoji.zeroize();
            sender.zeroize();
        }
        _ => {}
    }
}

fn invalid(path: &Path, why: impl std::fmt::Display) -> std::io::Error {
    std::io::Error::new(
        std::io::ErrorKind::InvalidData,
        format!("{}: {why}", path.display()),
    )
}

/// The additional data a journal entry is sealed with: its place in the journal.
fn context(seq: u64) -> Vec<u8> {
    format!("pane-signal journal {seq:020}").into_bytes()
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
    /// Opens the journal in `dir` (created 0700 if missing), loading what a previous run left,
    /// sealed with `key`.
    ///
    /// A file that does not open or parse is an error rather than skipped: it holds an
    /// owner's message, and the operator must see it (the error names the file). Entries in
    /// clear from an earlier version are sealed here, once.
    pub fn open(dir: &Path, key: SealKey) -> std::io::Result<Journal> {
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)?;
        let mut sealed = BTreeMap::new();
        let mut clear = BTreeMap::new();
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
            let seq_of = |suffix| {
                name.strip_suffix(suffix)
                    .and_then(|s| s.parse::<u64>().ok())
            };
            if let Some(seq) = seq_of(".sealed") {
                sealed.insert(seq, path);
            } else if let Some(seq) = seq_of(".json") {
                clear.insert(seq, path);
            }
        }
        let mut journal = Journal {
            dir: dir.to_path_buf(),
            key,
            entries: Vec::new(),
            next: 0,
        };
        let mut migrated = 0;
        for (seq, path) in clear {
            if let std::collections::btree_map::Entry::Vacant(slot) = sealed.entry(seq) {
                // Read in clear once, sealed, and only then removed: a crash in between
                // leaves both, and the sealed one is kept.
                let text = Zeroizing::new(std::fs::read_to_string(&path)?);
                let mut event: GatewayEvent = decode_line(&text).map_err(|e| invalid(&path, e))?;
                if event_id(&event).is_none() {
                    return Err(invalid(&path, "not a received message"));
                }
                journal.write(seq, &event)?;
                wipe(&mut event);
                slot.insert(journal.path(seq));
                migrated += 1;
            }
            std::fs::remove_file(&path)?;
            journal.sync_dir()?;
        }
        if migrated > 0 {
            tracing::info!(
                count = migrated,
                "sealed journal entries an earlier version had written in clear"
            );
        }
        for (seq, path) in sealed {
            let file = std::fs::read(&path)?;
            let text = journal
                .key
                .open(&context(seq), &file)
                .map_err(|e| invalid(&path, e))?;
            let text = std::str::from_utf8(&text).map_err(|e| invalid(&path, e))?;
            let event: GatewayEvent = decode_line(text).map_err(|e| invalid(&path, e))?;
            let Some(id) = event_id(&event).map(str::to_string) else {
                return Err(invalid(&path, "not a received message"));
            };
            journal.entries.push(Entry { seq, id, event });
        }
        journal.next = journal.entries.last().map_or(0, |e| e.seq + 1);
        Ok(journal)
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
        self.write(seq, &event)?;
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
        wipe(&mut self.entries.remove(i).event);
        Ok(true)
    }

    /// Every unacknowledged message, oldest first.
    pub fn pending(&self) -> &[Entry] {
        &self.entries
    }

    /// Writes entry `seq` sealed (a temporary file, synced, renamed, the directory synced).
    fn write(&self, seq: u64, event: &GatewayEvent) -> std::io::Result<()> {
        let line = Zeroizing::new(encode_line(event).map_err(std::io::Error::other)?);
        let sealed = self.key.seal(&context(seq), line.as_bytes())?;
        let path = self.path(seq);
        let tmp = path.with_extension("tmp");
        let mut f = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&tmp)?;
        f.write_all(&sealed)?;
        f.sync_all()?;
        std::fs::rename(&tmp, &path)?;
        self.sync_dir()
    }

    fn path(&self, seq: u64) -> PathBuf {
        self.dir.join(format!("{seq:020}.sealed"))
    }

    fn sync_dir(&self) -> std::io::Result<()> {
        File::open(&self.dir)?.sync_all()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sealing::StateKeys;
    use pane_protocol::messages::message_id;

    fn key() -> SealKey {
        StateKeys::derive("journal test passphrase").journal
    }

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
        let mut j = Journal::open(&dir, key()).unwrap();
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

        let mut j = Journal::open(&dir, key()).unwrap();
        let ids: Vec<_> = j.pending().iter().map(|e| e.id.clone()).collect();
        assert_eq!(ids, ["owner.1.10", "owner.1.20", "owner.1.30"]);
        assert_eq!(j.pending()[2].event, reaction);
        assert!(j.remove("owner.1.10").unwrap());
        assert!(
            !j.remove("owner.1.10").unwrap(),
            "a second ack changes nothing"
        );
        drop(j);

        let mut j = Journal::open(&dir, key()).unwrap();
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
        let mut j = Journal::open(&dir, key()).unwrap();
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
        let j = Journal::open(&dir, key()).unwrap();
        assert_eq!(j.pending().len(), 1);
        assert!(!dir.join("00000000000000000009.tmp").exists());
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_damaged_entry_is_reported_not_skipped() {
        let dir = tempdir("damaged");
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("00000000000000000003.json"), "not json").unwrap();
        let err = Journal::open(&dir, key()).err().unwrap();
        assert!(
            err.to_string().contains("00000000000000000003.json"),
            "{err}"
        );
        std::fs::remove_dir_all(&dir).unwrap();
        // Sealed with another key, or moved to another place in the journal: reported too.
        let mut j = Journal::open(&dir, key()).unwrap();
        j.append(received(1, "list")).unwrap().unwrap();
        drop(j);
        let other = StateKeys::derive("another passphrase").journal;
        let err = Journal::open(&dir, other).err().unwrap();
        assert!(
            err.to_string().contains("00000000000000000000.sealed"),
            "{err}"
        );
        std::fs::rename(
            dir.join("00000000000000000000.sealed"),
            dir.join("00000000000000000004.sealed"),
        )
        .unwrap();
        let err = Journal::open(&dir, key()).err().unwrap();
        assert!(
            err.to_string().contains("00000000000000000004.sealed"),
            "{err}"
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
