//! The persisted outbox: replies, approval prompts and alerts on their way to the owner.
//!
//! A message is written (and flushed) before anyone is told it exists, stays until a channel
//! acknowledges delivery, and is never handed out again after that, so an alert is neither
//! lost while the Signal gateway is down nor sent twice after a restart.
//!
//! Each message has two numbers. Its `seq` (from the store's id generator) is its key and
//! keeps the queue in order. The id the gateway knows it by ([`OutboxId`]) adds a random
//! 64-bit nonce chosen when it is queued: the gateway answers `sent` without sending for an
//! id in its sent log, and a store restored from an older copy hands out the same `seq`s
//! again, so an id made of the `seq` alone would have new messages taken for old ones and
//! silently dropped.

use crate::store::table::{Entry, Tx, TxError};
use crate::store::{decode, encode, Store, StoreError, Table, TableId};
use chrono::{SecondsFormat, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use std::sync::Arc;
use tokio::sync::Notify;

/// What kind of message it is, for the gateway's formatting and for the audit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MessageKind {
    /// An answer to a command.
    Reply,
    /// An approval request the owner must answer.
    Prompt,
    /// Something the owner should know (an approval expired, a lockdown, a breach).
    Alert,
}

/// The longest message the outbox queues, in bytes. Every message goes to a phone over
/// Signal, which shows longer text only as an attachment, and the relay protocol caps a line
/// at 128 KiB (a body's JSON escaping can make it several times longer on the line).
pub const MAX_MESSAGE_BYTES: usize = 8 * 1024;

/// Fits `body` into [`MAX_MESSAGE_BYTES`]. Short bodies are unchanged. A long `list` reply
/// keeps every context's name and state; anything else keeps its start and says how long it
/// was and where to read it whole.
pub fn fit(body: &str) -> String {
    if body.len() <= MAX_MESSAGE_BYTES {
        return body.to_string();
    }
    if let Ok(Value::Object(reply)) = serde_json::from_str::<Value>(body) {
        if let (Some(count), Some(contexts)) = (
            reply.get("count"),
            reply.get("contexts").and_then(Value::as_array),
        ) {
            let names: Vec<String> = contexts
                .iter()
                .map(|c| {
                    format!(
                        "{} ({})",
                        c.get("context").and_then(Value::as_str).unwrap_or("?"),
                        c.get("state").and_then(Value::as_str).unwrap_or("?")
                    )
                })
                .collect();
            let compact = json!({
                "count": count,
                "contexts": names,
                "note": "shortened for Signal: send status with context=NAME for one context",
            })
            .to_string();
            if compact.len() <= MAX_MESSAGE_BYTES {
                return compact;
            }
        }
    }
    let note = format!(
        "\n… shortened for Signal: {} bytes in all. Read the whole reply over the control socket or HTTP.",
        body.len()
    );
    let mut cut = MAX_MESSAGE_BYTES.saturating_sub(note.len());
    while !body.is_char_boundary(cut) {
        cut -= 1;
    }
    format!("{}{note}", &body[..cut])
}

/// The id a message is sent to the gateway with, and that its `sent` or `send_failed` names:
/// `<seq>.<nonce in 16 hex digits>`, or `<seq>` alone for a message queued before nonces
/// existed (so one in flight across the upgrade keeps its id). Never the same for two
/// messages, even after the store is restored from an older copy (the nonce is random).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct OutboxId {
    /// The message's place in the queue (its key).
    pub seq: u64,
    /// Random, chosen when the message was queued (or re-issued); 0 for an old message.
    pub nonce: u64,
}

impl std::fmt::Display for OutboxId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.nonce == 0 {
            write!(f, "{}", self.seq)
        } else {
            write!(f, "{}.{:016x}", self.seq, self.nonce)
        }
    }
}

impl std::str::FromStr for OutboxId {
    type Err = std::num::ParseIntError;

    /// Reads what [`OutboxId`]'s `Display` writes (the gateway echoes it).
    fn from_str(s: &str) -> Result<OutboxId, Self::Err> {
        match s.split_once('.') {
            Some((seq, nonce)) => Ok(OutboxId {
                seq: seq.parse()?,
                nonce: u64::from_str_radix(nonce, 16)?,
            }),
            None => Ok(OutboxId {
                seq: s.parse()?,
                nonce: 0,
            }),
        }
    }
}

/// A random nonce for a message id, never 0 (0 marks an old message). Without randomness
/// (which Linux does not run out of) the clock's nanoseconds and a counter stand in: still
/// never the same after a restore, since the clock has moved on.
fn fresh_nonce() -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let nonce = getrandom::u64().unwrap_or_else(|e| {
        tracing::error!(error = %e, "no randomness for an outbox id; using the clock");
        let nanos = Utc::now().timestamp_nanos_opt().unwrap_or_default() as u64;
        nanos ^ COUNTER.fetch_add(1, Ordering::Relaxed).rotate_left(48)
    });
    nonce.max(1)
}

/// One outgoing message.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OutboxMessage {
    /// Its place in the queue, from the store's id generator: the key, so messages go out
    /// in the order they were queued. (Stored as `id`, its name before nonces.)
    #[serde(rename = "id")]
    pub seq: u64,
    /// The random part of its [`OutboxId`]; 0 for a message queued before it existed.
    #[serde(default)]
    pub nonce: u64,
    /// How many times it was given a new nonce because the gateway refused its id as one it
    /// had sent with other content (`id_conflict`).
    #[serde(default)]
    pub reissued: u32,
    /// When it was queued.
    pub created: String,
    /// Its kind.
    pub kind: MessageKind,
    /// The text to send (already redacted by whoever queued it).
    pub body: String,
    /// Delivery attempts so far.
    pub attempts: u32,
    /// The Signal timestamp it is sent with (ms), chosen when it was queued, unique and the
    /// same on every retry. 0 for a message queued before this field existed.
    #[serde(default)]
    pub timestamp: u64,
    /// For an approval prompt, the code's store key: the Signal channel records the prompt's
    /// timestamp with it as it goes out, so a 👍 or 👎 on the prompt answers it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub approval: Option<String>,
}

/// A Signal timestamp for a message queued now: the clock in ms, but always after the last
/// one, so no two messages share one (clients treat equal timestamps as one message).
fn next_timestamp() -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static LAST: AtomicU64 = AtomicU64::new(0);
    let now = Utc::now().timestamp_millis().max(0) as u64;
    let mut prev = LAST.load(Ordering::SeqCst);
    loop {
        let next = now.max(prev + 1);
        match LAST.compare_exchange(prev, next, Ordering::SeqCst, Ordering::SeqCst) {
            Ok(_) => return next,
            Err(actual) => prev = actual,
        }
    }
}

impl OutboxMessage {
    /// A new message, queued now, its body fitted into [`MAX_MESSAGE_BYTES`].
    fn new(seq: u64, kind: MessageKind, body: &str) -> OutboxMessage {
        OutboxMessage {
            seq,
            nonce: fresh_nonce(),
            reissued: 0,
            created: Utc::now().to_rfc3339_opts(SecondsFormat::Secs, true),
            kind,
            body: fit(body),
            attempts: 0,
            timestamp: next_timestamp(),
            approval: None,
        }
    }

    /// The id the gateway knows it by.
    pub fn id(&self) -> OutboxId {
        OutboxId {
            seq: self.seq,
            nonce: self.nonce,
        }
    }
}

/// The outbox tree, and the bell that rings when a message is queued. Clones share both:
/// make one per store and hand out clones, so the Signal channel hears every push at once
/// instead of polling.
#[derive(Clone)]
pub struct Outbox {
    tree: Table,
    queued: Arc<Notify>,
}

impl Outbox {
    /// Uses the store's `outbox` tree; `seq` values come from the store's id generator.
    pub fn new(store: &Store) -> Outbox {
        Outbox {
            tree: store.table(TableId::Outbox),
            queued: Arc::new(Notify::new()),
        }
    }

    /// Returns once a message was queued since the last call returned (at once when one
    /// was queued meanwhile). One listener: the connected gateway.
    pub async fn queued(&self) {
        self.queued.notified().await
    }

    /// Queues a message at `seq` (from the store's id generator), fitted into
    /// [`MAX_MESSAGE_BYTES`], with a fresh random id. The caller flushes before acknowledging.
    pub fn push(
        &self,
        seq: u64,
        kind: MessageKind,
        body: &str,
    ) -> Result<OutboxMessage, StoreError> {
        let msg = OutboxMessage::new(seq, kind, body);
        self.tree.insert(seq.to_be_bytes(), encode(&msg)?)?;
        self.queued.notify_one();
        Ok(msg)
    }

    /// Queues the prompt of the approval whose code's store key is `approval` (see
    /// [`OutboxMessage::approval`]).
    pub fn push_prompt(
        &self,
        seq: u64,
        body: &str,
        approval: &[u8],
    ) -> Result<OutboxMessage, StoreError> {
        let mut msg = OutboxMessage::new(seq, MessageKind::Prompt, body);
        msg.approval = Some(String::from_utf8_lossy(approval).into_owned());
        self.tree.insert(seq.to_be_bytes(), encode(&msg)?)?;
        self.queued.notify_one();
        Ok(msg)
    }

    /// Queues a message and writes `value` at `other` (a record of another repository,
    /// which hands it over) in one transaction, so that a crash leaves both or neither: sled
    /// also writes to disk in the background between flushes, so two separate inserts could
    /// be cut apart by a kill.
    pub fn push_with(
        &self,
        seq: u64,
        kind: MessageKind,
        body: &str,
        other: Entry<'_>,
        value: &[u8],
    ) -> Result<OutboxMessage, StoreError> {
        self.push_and(seq, kind, body, &other, &|t: &Tx<'_>| {
            t.insert(other.key(), value)
        })
    }

    /// Queues a message and removes `key` from `other` in one transaction (a reply and the
    /// record of the message it answers: both or neither survive a crash).
    pub fn push_removing(
        &self,
        seq: u64,
        kind: MessageKind,
        body: &str,
        other: Entry<'_>,
    ) -> Result<OutboxMessage, StoreError> {
        self.push_and(seq, kind, body, &other, &|t: &Tx<'_>| t.remove(other.key()))
    }

    fn push_and(
        &self,
        seq: u64,
        kind: MessageKind,
        body: &str,
        other: &Entry<'_>,
        change: &dyn Fn(&Tx<'_>) -> Result<(), TxError>,
    ) -> Result<OutboxMessage, StoreError> {
        let msg = OutboxMessage::new(seq, kind, body);
        let bytes = encode(&msg)?;
        self.tree.transaction(other.table(), |outbox, other| {
            outbox.insert(seq.to_be_bytes(), bytes.as_slice())?;
            change(other)
        })?;
        self.queued.notify_one();
        Ok(msg)
    }

    /// Up to `limit` undelivered messages, oldest first.
    pub fn pending(&self, limit: usize) -> Result<Vec<OutboxMessage>, StoreError> {
        self.tree
            .iter()
            .take(limit)
            .map(|item| {
                let (_, bytes) = item?;
                decode(&bytes)
            })
            .collect()
    }

    /// The queued message `id` names: None when none is queued at its `seq`, or the one
    /// there has another nonce (an answer about a message delivered or re-issued since).
    pub fn get(&self, id: &OutboxId) -> Result<Option<OutboxMessage>, StoreError> {
        let Some(bytes) = self.tree.get(id.seq.to_be_bytes())? else {
            return Ok(None);
        };
        let msg: OutboxMessage = decode(&bytes)?;
        Ok((msg.nonce == id.nonce).then_some(msg))
    }

    /// Counts a delivery attempt that was not acknowledged.
    pub fn record_attempt(&self, id: &OutboxId) -> Result<(), StoreError> {
        if let Some(mut msg) = self.get(id)? {
            msg.attempts = msg.attempts.saturating_add(1);
            self.tree.insert(id.seq.to_be_bytes(), encode(&msg)?)?;
        }
        Ok(())
    }

    /// Gives the queued message `id` names a new random id, keeping its place in the queue,
    /// its body and its Signal timestamp, and rings the bell so it goes again at once: the
    /// gateway refused `id` as one it sent with other content. None when no message is
    /// queued under `id`. The caller flushes before the new id is sent (the gate does, after
    /// every gateway event).
    pub fn reissue(&self, id: &OutboxId) -> Result<Option<OutboxMessage>, StoreError> {
        let Some(mut msg) = self.get(id)? else {
            return Ok(None);
        };
        msg.nonce = fresh_nonce();
        msg.reissued = msg.reissued.saturating_add(1);
        msg.attempts = msg.attempts.saturating_add(1);
        self.tree.insert(id.seq.to_be_bytes(), encode(&msg)?)?;
        self.queued.notify_one();
        Ok(Some(msg))
    }

    /// Removes a delivered message. Returns false when it was not queued (already delivered,
    /// or `id` names a message the queue no longer holds under that id).
    pub fn delivered(&self, id: &OutboxId) -> Result<bool, StoreError> {
        let Some(bytes) = self.tree.get(id.seq.to_be_bytes())? else {
            return Ok(false);
        };
        let msg: OutboxMessage = decode(&bytes)?;
        if msg.nonce != id.nonce {
            return Ok(false);
        }
        // Only that exact record: a message written at this key meanwhile stays.
        self.tree
            .compare_and_swap(id.seq.to_be_bytes(), Some(&bytes), None)
    }

    /// How many messages wait.
    pub fn len(&self) -> usize {
        self.tree.len()
    }

    /// True when none wait.
    pub fn is_empty(&self) -> bool {
        self.tree.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_read_back_and_old_ids_keep_their_shape() {
        let new = OutboxId {
            seq: 42,
            nonce: 0x00ab_cdef_0123_4567,
        };
        assert_eq!(new.to_string(), "42.00abcdef01234567");
        assert_eq!("42.00abcdef01234567".parse::<OutboxId>(), Ok(new));
        let old = OutboxId { seq: 42, nonce: 0 };
        assert_eq!(old.to_string(), "42");
        assert_eq!("42".parse::<OutboxId>(), Ok(old));
        assert!("42.zz".parse::<OutboxId>().is_err());
        assert!("x".parse::<OutboxId>().is_err());
    }

    #[test]
    fn the_same_seq_gets_a_new_id_every_time() {
        let tmp = tempfile::tempdir().unwrap();
        let store = Store::open(tmp.path()).unwrap();
        let outbox = Outbox::new(&store);
        let a = outbox.push(7, MessageKind::Reply, "one").unwrap();
        assert!(outbox.delivered(&a.id()).unwrap());
        // A restored store hands out seq 7 again: the id is not the same.
        let b = outbox.push(7, MessageKind::Reply, "two").unwrap();
        assert_ne!(a.id(), b.id());
        assert_ne!(b.nonce, 0);
        // An answer about the old message leaves the new one queued.
        assert!(!outbox.delivered(&a.id()).unwrap());
        assert_eq!(outbox.len(), 1);
        let c = outbox.reissue(&b.id()).unwrap().unwrap();
        assert_eq!((c.seq, c.timestamp, c.reissued), (7, b.timestamp, 1));
        assert_ne!(c.id(), b.id());
        assert!(outbox.reissue(&b.id()).unwrap().is_none());
        assert!(!outbox.delivered(&b.id()).unwrap());
        assert_eq!(outbox.pending(10).unwrap(), vec![c.clone()]);
        assert!(outbox.delivered(&c.id()).unwrap());
        assert!(outbox.is_empty());
    }

    #[test]
    fn a_message_stored_before_nonces_keeps_its_id() {
        let old = r#"{"id":5,"created":"2025-01-01T00:00:00Z","kind":"reply","body":"b","attempts":0,"timestamp":9}"#;
        let msg: OutboxMessage = serde_json::from_str(old).unwrap();
        assert_eq!((msg.seq, msg.nonce, msg.reissued), (5, 0, 0));
        assert_eq!(msg.id().to_string(), "5");
    }

    #[test]
    fn short_bodies_are_unchanged() {
        assert_eq!(fit("approve ABCDE-FGHJK"), "approve ABCDE-FGHJK");
        let exact = "x".repeat(MAX_MESSAGE_BYTES);
        assert_eq!(fit(&exact), exact);
    }

    #[test]
    fn a_long_list_keeps_every_name_and_state() {
        let contexts: Vec<Value> = (0..300)
            .map(|i| json!({"context": format!("site{i}"), "state": "active", "site": "https://www.example.com/", "alias": {"email": "x@anonaddy.me"}, "identity": {"name": "Morgan Powell"}}))
            .collect();
        let body = json!({"count": 300, "contexts": contexts}).to_string();
        assert!(body.len() > MAX_MESSAGE_BYTES);
        let out = fit(&body);
        assert!(out.len() <= MAX_MESSAGE_BYTES, "{}", out.len());
        let v: Value = serde_json::from_str(&out).unwrap();
        assert_eq!(v["count"], 300);
        assert_eq!(v["contexts"][299], "site299 (active)");
        assert!(v["note"].as_str().unwrap().contains("status"));
    }

    #[test]
    fn other_long_bodies_are_cut_on_a_char_boundary_with_a_note() {
        let body = "é".repeat(MAX_MESSAGE_BYTES);
        let out = fit(&body);
        assert!(out.len() <= MAX_MESSAGE_BYTES, "{}", out.len());
        assert!(out.starts_with("éé"));
        assert!(out.ends_with("over the control socket or HTTP."));
        assert!(out.contains(&format!("{} bytes in all", body.len())));
    }
}
