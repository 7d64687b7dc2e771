//! The append-only, hash-chained audit log.
//!
//! Every entry carries the hash of the one before it, and the store keeps the newest hash
//! (the head), so `audit {verify: true}` detects an entry that was changed, removed, or cut
//! off the end. Pruning by age moves an anchor forward, so what is left still verifies.
//! Details are redacted before they are hashed and written.

use crate::auth::canonical::python_dumps;
use crate::redact::Redactor;
use crate::store::records::{Json, Key};
use crate::store::{decode, encode, Records, Store, StoreError, Table, TableId};
use chrono::{DateTime, SecondsFormat, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

/// The newest entry: written in the transaction that appends it.
const HEAD: Key<Json<ChainPoint>> = Key::new("audit.head");
/// Where the kept chain starts after a prune.
const ANCHOR: Key<Json<ChainPoint>> = Key::new("audit.anchor");
const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// One audit entry as stored and as shown by `audit`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AuditEntry {
    /// Position in the chain, from 1.
    pub seq: u64,
    /// When it was written (RFC 3339, UTC).
    pub at: String,
    /// What happened: `envelope.refused`, `policy.allow`, `approval.approved`, `action.ok`, ...
    pub event: String,
    /// The channel the command came in on, when there was one.
    pub channel: Option<String>,
    /// The redacted particulars.
    pub detail: Value,
    /// The previous entry's hash (hex).
    pub prev: String,
    /// This entry's hash (hex): SHA-256 of `prev`, a newline, and the canonical JSON of the
    /// other fields.
    pub hash: String,
}

impl AuditEntry {
    fn compute_hash(&self) -> String {
        let body = json!({
            "seq": self.seq,
            "at": self.at,
            "event": self.event,
            "channel": self.channel,
            "detail": self.detail,
        });
        let mut h = Sha256::new();
        h.update(self.prev.as_bytes());
        h.update(b"\n");
        h.update(python_dumps(&body).as_bytes());
        hex::encode(h.finalize())
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct ChainPoint {
    seq: u64,
    hash: String,
}

/// The outcome of a chain verification.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct VerifyReport {
    /// True when every entry and the head agree.
    pub ok: bool,
    /// Entries checked.
    pub checked: u64,
    /// The first sequence number where the chain breaks.
    pub first_bad_seq: Option<u64>,
    /// What is wrong there.
    pub problem: Option<String>,
}

/// Appends to, reads, verifies and prunes the audit log.
#[derive(Clone)]
pub struct AuditLog {
    entries: Table,
    meta: Records,
    redactor: Redactor,
}

impl AuditLog {
    /// Uses the store's `audit` tree and its head and anchor records; `redactor` cleans
    /// every detail.
    pub fn new(store: &Store, redactor: Redactor) -> AuditLog {
        AuditLog {
            entries: store.table(TableId::Audit),
            meta: store.records(),
            redactor,
        }
    }

    /// Replaces the redactor (after `secrets.reload` adds secrets to it).
    pub fn set_redactor(&mut self, redactor: Redactor) {
        self.redactor = redactor;
    }

    /// Appends an entry. The entry and the new head are written in one transaction.
    pub fn append(
        &self,
        event: &str,
        channel: Option<&str>,
        detail: Value,
    ) -> Result<AuditEntry, StoreError> {
        let detail = self.redactor.json(&detail);
        let at = Utc::now().to_rfc3339_opts(SecondsFormat::Millis, true);
        let entry = self.meta.transaction_with(&self.entries, |entries, meta| {
            let head = meta.get(&HEAD)?;
            let (seq, prev) = match head {
                Some(h) => (h.seq + 1, h.hash),
                None => (1, GENESIS.to_string()),
            };
            let mut entry = AuditEntry {
                seq,
                at: at.clone(),
                event: event.to_string(),
                channel: channel.map(str::to_string),
                detail: detail.clone(),
                prev,
                hash: String::new(),
            };
            entry.hash = entry.compute_hash();
            entries.insert(seq.to_be_bytes(), encode(&entry)?)?;
            let head = ChainPoint {
                seq,
                hash: entry.hash.clone(),
            };
            meta.set(&HEAD, &head)?;
            Ok(entry)
        })?;
        Ok(entry)
    }

    /// The newest `limit` entries written at or after `since`, oldest first.
    pub fn recent(
        &self,
        since: Option<DateTime<Utc>>,
        limit: usize,
    ) -> Result<Vec<AuditEntry>, StoreError> {
        let mut out = Vec::new();
        for item in self.entries.iter().rev() {
            let (_, bytes) = item?;
            let entry: AuditEntry = decode(&bytes)?;
            if let Some(since) = since {
                let at = DateTime::parse_from_rfc3339(&entry.at)
                    .map(|t| t.with_timezone(&Utc))
                    .map_err(|_| {
                        StoreError::Corrupt(format!("audit entry {} has a bad time", entry.seq))
                    })?;
                if at < since {
                    break;
                }
            }
            out.push(entry);
            if out.len() >= limit {
                break;
            }
        }
        out.reverse();
        Ok(out)
    }

    /// Walks the whole chain from the anchor to the head.
    pub fn verify(&self) -> Result<VerifyReport, StoreError> {
        let anchor = self.meta.get(&ANCHOR)?;
        let head = self.meta.get(&HEAD)?;
        let (mut expect_seq, mut expect_prev) = match anchor {
            Some(a) => (a.seq, a.hash),
            None => (1, GENESIS.to_string()),
        };
        let mut checked = 0;
        let bad = |seq: u64, checked: u64, problem: String| VerifyReport {
            ok: false,
            checked,
            first_bad_seq: Some(seq),
            problem: Some(problem),
        };
        for item in self.entries.iter() {
            let (key, bytes) = item?;
            let key_seq = key.as_ref().try_into().map(u64::from_be_bytes).unwrap_or(0);
            if key_seq < expect_seq && checked == 0 {
                // Below the anchor: left over from a prune interrupted before its removals.
                continue;
            }
            let entry: AuditEntry = match decode(&bytes) {
                Ok(e) => e,
                Err(_) => return Ok(bad(key_seq, checked, "entry is not readable".into())),
            };
            if entry.seq != expect_seq || key_seq != expect_seq {
                return Ok(bad(
                    expect_seq,
                    checked,
                    format!("entry {expect_seq} is missing"),
                ));
            }
            if entry.prev != expect_prev {
                return Ok(bad(
                    entry.seq,
                    checked,
                    "previous-hash link does not match".into(),
                ));
            }
            if entry.compute_hash() != entry.hash {
                return Ok(bad(
                    entry.seq,
                    checked,
                    "entry was changed after it was written".into(),
                ));
            }
            checked += 1;
            expect_seq += 1;
            expect_prev = entry.hash;
        }
        if let Some(head) = head {
            if head.seq + 1 != expect_seq || head.hash != expect_prev {
                return Ok(bad(
                    expect_seq,
                    checked,
                    format!("entries after {} are missing", expect_seq - 1),
                ));
            }
        } else if checked > 0 {
            return Ok(bad(1, checked, "the chain head is missing".into()));
        }
        Ok(VerifyReport {
            ok: true,
            checked,
            first_bad_seq: None,
            problem: None,
        })
    }

    /// Removes entries written before `cutoff`, keeping the rest verifiable. Returns how
    /// many were removed.
    pub fn prune_before(&self, cutoff: DateTime<Utc>, at_most: usize) -> Result<usize, StoreError> {
        let cutoff = cutoff.to_rfc3339_opts(SecondsFormat::Millis, true);
        let mut old = Vec::new();
        let mut new_anchor = None;
        for item in self.entries.iter() {
            let (key, bytes) = item?;
            let entry: AuditEntry = decode(&bytes)?;
            // RFC 3339 UTC strings of one format compare in time order; never more than
            // `at_most` at once (a clock that jumped ahead must not cut the log).
            if entry.at < cutoff && old.len() < at_most {
                old.push(key);
            } else {
                new_anchor = Some(ChainPoint {
                    seq: entry.seq,
                    hash: entry.prev,
                });
                break;
            }
        }
        if old.is_empty() {
            return Ok(0);
        }
        let anchor = match new_anchor {
            Some(a) => a,
            None => {
                let Some(head) = self.meta.get(&HEAD)? else {
                    return Ok(0);
                };
                ChainPoint {
                    seq: head.seq + 1,
                    hash: head.hash,
                }
            }
        };
        // The anchor goes first: a crash before the removals leaves entries below it, which
        // verification skips.
        self.meta.set(&ANCHOR, &anchor)?;
        for key in &old {
            self.entries.remove(key)?;
        }
        Ok(old.len())
    }

    /// The chain's head: the newest entry's sequence number and hash, which the owner keeps
    /// to detect a store rolled back to an older copy. None before the first entry.
    pub fn head(&self) -> Result<Option<(u64, String)>, StoreError> {
        Ok(self.meta.get(&HEAD)?.map(|head| (head.seq, head.hash)))
    }

    /// The hash of entry `seq`, if it is still kept.
    pub fn hash_of(&self, seq: u64) -> Result<Option<String>, StoreError> {
        for item in self.entries.iter() {
            let (_, bytes) = item?;
            let entry: AuditEntry = decode(&bytes)?;
            if entry.seq == seq {
                return Ok(Some(entry.hash));
            }
            if entry.seq > seq {
                break;
            }
        }
        Ok(None)
    }

    /// How many entries are kept.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// True when none are.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn log() -> AuditLog {
        let store = Store::temporary().unwrap();
        AuditLog::new(&store, Redactor::new(["topsecretvalue".to_string()]))
    }

    /// The head and the entries are where older versions kept them, in the same form: a
    /// store they wrote goes on verifying.
    #[test]
    fn the_head_and_entries_keep_their_keys_and_encoding() {
        let store = Store::temporary().unwrap();
        let log = AuditLog::new(&store, Redactor::new(Vec::<String>::new()));
        let e = log.append("x", Some("socket"), json!({"a": 1})).unwrap();
        let meta = store.table(TableId::Meta);
        let head: Value = decode(&meta.get("audit.head").unwrap().unwrap()).unwrap();
        assert_eq!(head, json!({"seq": 1, "hash": e.hash}));
        let entries = store.table(TableId::Audit);
        let stored: AuditEntry =
            decode(&entries.get(1u64.to_be_bytes()).unwrap().unwrap()).unwrap();
        assert_eq!(stored, e);
        // An anchor written as older versions wrote it is where verification starts.
        meta.insert("audit.anchor", br#"{"seq":2,"hash":"ab"}"#)
            .unwrap();
        entries.remove(1u64.to_be_bytes()).unwrap();
        let report = log.verify().unwrap();
        assert!(!report.ok, "{report:?}");
        assert_eq!(
            report.problem.as_deref(),
            Some("entries after 1 are missing")
        );
    }

    #[test]
    fn pruning_keeps_the_rest_verifiable() {
        let log = log();
        for i in 0..5 {
            log.append("test", None, json!({"i": i})).unwrap();
            // Entries carry millisecond times; keep them apart so the cutoff falls between.
            std::thread::sleep(std::time::Duration::from_millis(3));
        }
        let entries = log.recent(None, 10).unwrap();
        let cutoff = DateTime::parse_from_rfc3339(&entries[3].at)
            .unwrap()
            .with_timezone(&Utc);
        let removed = log.prune_before(cutoff, usize::MAX).unwrap();
        assert_eq!(removed, 3);
        assert!(log.verify().unwrap().ok);
        log.append("after", None, json!({})).unwrap();
        assert!(log.verify().unwrap().ok);
        // Everything pruned: still verifiable, and the chain goes on.
        let removed = log
            .prune_before(Utc::now() + chrono::Duration::seconds(1), usize::MAX)
            .unwrap();
        assert!(removed >= 3);
        assert!(log.is_empty());
        assert!(log.verify().unwrap().ok);
        let e = log.append("later", None, json!({})).unwrap();
        assert_eq!(e.seq, 7);
        assert!(log.verify().unwrap().ok);
    }

    #[test]
    fn details_are_redacted_before_hashing() {
        let log = log();
        let e = log
            .append("x", None, json!({"note": "topsecretvalue", "cvv": "123"}))
            .unwrap();
        let text = e.detail.to_string();
        assert!(
            !text.contains("topsecretvalue") && !text.contains("123"),
            "{text}"
        );
        assert!(log.verify().unwrap().ok);
    }

    #[test]
    fn a_prune_removes_at_most_its_share_and_the_head_stays() {
        let tmp = tempfile::tempdir().unwrap();
        let store = Store::open(tmp.path()).unwrap();
        let log = AuditLog::new(&store, Redactor::new(Vec::<String>::new()));
        for i in 0..10 {
            log.append("e", None, json!({"i": i})).unwrap();
        }
        let head = log.head().unwrap().unwrap();
        let removed = log
            .prune_before(Utc::now() + chrono::Duration::days(1), 3)
            .unwrap();
        assert_eq!(removed, 3);
        assert_eq!(log.len(), 7);
        assert!(log.verify().unwrap().ok);
        assert_eq!(log.head().unwrap().unwrap(), head);
        assert_eq!(log.hash_of(head.0).unwrap(), Some(head.1));
    }
}
