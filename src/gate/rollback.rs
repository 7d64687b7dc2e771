//! Rollback detection: the high-water mark that shows a store restored from an older copy.
//!
//! The high-water mark lives outside the store, in `<data-dir>/high-water`, synced after every
//! accepted envelope: the newest accepted envelope's time and the audit chain's head. At start
//! the store's own copy is compared with it; a store behind the file was rolled back (a backup
//! restored, a copy swapped in), so its replay cache and approvals may have forgotten what was
//! used. Then every envelope signed before the mark and every approval opened before it is
//! refused, loudly: the owner is alerted and it is in the audit log.

use super::Gate;
use crate::origin::{Channel, Invocation};
use crate::outbox::MessageKind;
use crate::reply::{CommandError, ErrorKind};
use crate::store::records::{Json, Key};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::json;
use std::io::Write;
use std::path::Path;

/// The store's copy of the mark.
const STORE_MARK: Key<Json<HighWater>> = Key::new("store.high_water");

/// The mark: the newest accepted envelope's time and the audit head then.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub(super) struct HighWater {
    /// Milliseconds since the epoch.
    ts_ms: i64,
    /// The audit head's sequence number.
    audit_seq: u64,
}

fn mark_path(data_dir: &Path) -> std::path::PathBuf {
    data_dir.join("high-water")
}

/// The mark, its writer, and the rollback floor once one is found.
pub(super) struct Rollback {
    high_water: HighWater,
    /// The mark moved since the file was last handed it.
    dirty: bool,
    mark_writer: std::sync::mpsc::Sender<Vec<u8>>,
    mark_thread: Option<std::thread::JoinHandle<()>>,
    rollback_floor: Option<DateTime<Utc>>,
    mark_file: std::path::PathBuf,
}

impl Rollback {
    /// The mark of the store in `data_dir`, its writer started.
    pub(super) fn new(data_dir: &Path) -> Rollback {
        let (mark_writer, mark_thread) = mark_writer(data_dir);
        Rollback {
            high_water: HighWater::default(),
            dirty: false,
            mark_writer,
            mark_thread: Some(mark_thread),
            rollback_floor: None,
            mark_file: mark_path(data_dir),
        }
    }

    /// Ends the mark's writer once it has written the last mark.
    pub(super) async fn stop(&mut self) {
        let (closed, _) = std::sync::mpsc::channel();
        drop(std::mem::replace(&mut self.mark_writer, closed));
        if let Some(thread) = self.mark_thread.take() {
            let _ = tokio::task::spawn_blocking(move || thread.join()).await;
        }
    }
}

impl Gate {
    /// At start: compares the store with the mark outside it.
    pub(super) fn check_high_water(&mut self) {
        let file: Option<HighWater> = std::fs::read(&self.rollback.mark_file)
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok());
        let stored: HighWater = self
            .store
            .records()
            .get_valid(&STORE_MARK)
            .ok()
            .flatten()
            .unwrap_or_default();
        let head_seq = self.audit.head().ok().flatten().map_or(0, |h| h.0);
        let Some(file) = file else {
            self.rollback.high_water = stored;
            return;
        };
        if file.ts_ms > stored.ts_ms || file.audit_seq > head_seq {
            let floor = DateTime::<Utc>::from_timestamp_millis(file.ts_ms).unwrap_or_default();
            tracing::error!(
                file_seq = file.audit_seq,
                store_seq = head_seq,
                "THE STORE IS OLDER THAN ITS HIGH-WATER MARK: it was rolled back or restored from an older copy. Envelopes signed and approvals opened before {floor} are refused."
            );
            let inv = Invocation::now(Channel::Internal);
            let _ = self.audit_event(
                "store.rolled_back",
                &inv,
                json!({"mark_seq": file.audit_seq, "store_seq": head_seq, "refused_before": floor.to_rfc3339()}),
            );
            let _ = self.notify(
                MessageKind::Alert,
                &format!("The agent's store is older than its high-water mark (audit seq {head_seq}, the mark says {}): it was rolled back or restored from an older copy. Envelopes signed and approvals opened before {} are refused. Compare the audit head with your copy.", file.audit_seq, floor.to_rfc3339()),
            );
            self.rollback.rollback_floor = Some(floor);
            self.admission.set_rollback_floor(floor);
            self.rollback.high_water = file;
        } else {
            self.rollback.high_water = stored;
        }
    }

    /// Refuses an approval opened before a detected rollback's mark.
    pub(super) fn check_approval_floor(&self, created: &str) -> Result<(), CommandError> {
        let created = DateTime::parse_from_rfc3339(created)
            .map(|t| t.with_timezone(&Utc))
            .ok();
        match (self.rollback.rollback_floor, created) {
            (Some(floor), Some(at)) if at <= floor => Err(CommandError::new(
                ErrorKind::ApprovalInvalid,
                "refused: the store was restored from an older copy and cannot prove this approval unused; ask again",
            )),
            (Some(_), None) => Err(CommandError::new(
                ErrorKind::ApprovalInvalid,
                "refused: the store was restored from an older copy",
            )),
            _ => Ok(()),
        }
    }

    /// After an accepted envelope: moves the mark in the store; the file outside it follows
    /// once the store is flushed ([`Gate::sync_high_water`]), so the file is never ahead of
    /// what the store holds on disk (a kill in between would look like a rollback).
    pub(super) fn note_high_water(&mut self, ts: DateTime<Utc>) {
        let head_seq = self.audit.head().ok().flatten().map_or(0, |h| h.0);
        let mark = HighWater {
            ts_ms: self.rollback.high_water.ts_ms.max(ts.timestamp_millis()),
            audit_seq: head_seq,
        };
        if let Err(e) = self.store.records().set(&STORE_MARK, &mark) {
            tracing::error!(error = %e, "cannot record the high-water mark in the store");
        }
        self.rollback.high_water = mark;
        self.rollback.dirty = true;
        self.budget.count_envelope();
        if self.budget.due() {
            self.check_store_budget();
        }
    }

    /// After a store flush: hands the mark, if it moved, to the writer that keeps the file
    /// outside the store (synced on its own thread, so no reply waits for it).
    pub(super) fn sync_high_water(&mut self) {
        if !self.rollback.dirty {
            return;
        }
        let Ok(bytes) = serde_json::to_vec(&self.rollback.high_water) else {
            return;
        };
        self.rollback.dirty = false;
        if self.rollback.mark_writer.send(bytes.clone()).is_err() {
            write_mark(&self.rollback.mark_file, &bytes);
        }
    }
}

/// Writes `bytes` as the mark file and syncs it.
fn write_mark(path: &Path, bytes: &[u8]) {
    let written = std::fs::OpenOptions::new()
        .create(true)
        .write(true)
        .truncate(true)
        .open(path)
        .and_then(|mut f| {
            f.write_all(bytes)?;
            f.sync_data()
        });
    if let Err(e) = written {
        tracing::error!(error = %e, "cannot write the high-water mark");
    }
}

/// The thread that writes the mark file: the newest mark wins, each written and synced in
/// order. Ends (having written everything sent) when the sender is dropped.
fn mark_writer(
    data_dir: &Path,
) -> (
    std::sync::mpsc::Sender<Vec<u8>>,
    std::thread::JoinHandle<()>,
) {
    let (tx, rx) = std::sync::mpsc::channel::<Vec<u8>>();
    let path = mark_path(data_dir);
    let handle = std::thread::spawn(move || {
        while let Ok(mut bytes) = rx.recv() {
            while let Ok(newer) = rx.try_recv() {
                bytes = newer;
            }
            write_mark(&path, &bytes);
        }
    });
    (tx, handle)
}
