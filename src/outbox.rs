//! The persisted outbox: replies, approval prompts and alerts on their way to the owner.
//!
//! A message is written (and flushed) before anyone is told it exists, stays until a channel
//! acknowledges delivery, and is never handed out again after that, so an alert is neither
//! lost while the Signal gateway is down nor sent twice after a restart.

use crate::store::{decode, encode, StoreError};
use chrono::{SecondsFormat, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use sled::transaction::{ConflictableTransactionError, TransactionalTree};
use sled::Transactional;
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

/// One outgoing message.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OutboxMessage {
    /// Unique, monotonic id; the delivery acknowledgement names it.
    pub id: u64,
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
    fn new(id: u64, kind: MessageKind, body: &str) -> OutboxMessage {
        OutboxMessage {
            id,
            created: Utc::now().to_rfc3339_opts(SecondsFormat::Secs, true),
            kind,
            body: fit(body),
            attempts: 0,
            timestamp: next_timestamp(),
        }
    }
}

/// The outbox tree, and the bell that rings when a message is queued. Clones share both:
/// make one per store and hand out clones, so the Signal channel hears every push at once
/// instead of polling.
#[derive(Clone)]
pub struct Outbox {
    tree: sled::Tree,
    queued: Arc<Notify>,
}

impl Outbox {
    /// Uses the store's `outbox` tree; `id` values come from the store's id generator.
    pub fn new(tree: sled::Tree) -> Outbox {
        Outbox {
            tree,
            queued: Arc::new(Notify::new()),
        }
    }

    /// Returns once a message was queued since the last call returned (at once when one
    /// was queued meanwhile). One listener: the connected gateway.
    pub async fn queued(&self) {
        self.queued.notified().await
    }

    /// Queues a message with the given id, fitted into [`MAX_MESSAGE_BYTES`]. The caller
    /// flushes before acknowledging.
    pub fn push(
        &self,
        id: u64,
        kind: MessageKind,
        body: &str,
    ) -> Result<OutboxMessage, StoreError> {
        let msg = OutboxMessage::new(id, kind, body);
        self.tree.insert(id.to_be_bytes(), encode(&msg)?)?;
        self.queued.notify_one();
        Ok(msg)
    }

    /// Queues a message and writes `value` at `key` in `other` in one transaction, so that a
    /// crash leaves both or neither: sled also writes to disk in the background between
    /// flushes, so two separate inserts could be cut apart by a kill.
    pub fn push_with(
        &self,
        id: u64,
        kind: MessageKind,
        body: &str,
        other: (&sled::Tree, &[u8], &[u8]),
    ) -> Result<OutboxMessage, StoreError> {
        let (tree, key, value) = other;
        self.push_and(id, kind, body, tree, &|t: &TransactionalTree| {
            t.insert(key, value).map(|_| ())
        })
    }

    /// Queues a message and removes `key` from `other` in one transaction (a reply and the
    /// record of the message it answers: both or neither survive a crash).
    pub fn push_removing(
        &self,
        id: u64,
        kind: MessageKind,
        body: &str,
        other: (&sled::Tree, &[u8]),
    ) -> Result<OutboxMessage, StoreError> {
        let (tree, key) = other;
        self.push_and(id, kind, body, tree, &|t: &TransactionalTree| {
            t.remove(key).map(|_| ())
        })
    }

    fn push_and(
        &self,
        id: u64,
        kind: MessageKind,
        body: &str,
        tree: &sled::Tree,
        change: &dyn Fn(
            &TransactionalTree,
        ) -> Result<(), sled::transaction::UnabortableTransactionError>,
    ) -> Result<OutboxMessage, StoreError> {
        let msg = OutboxMessage::new(id, kind, body);
        let bytes = encode(&msg)?;
        (&self.tree, tree).transaction(
            |(outbox, other): &(TransactionalTree, TransactionalTree)| {
                outbox.insert(&id.to_be_bytes(), bytes.as_slice())?;
                change(other)?;
                Ok::<(), ConflictableTransactionError<StoreError>>(())
            },
        )?;
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

    /// Counts a delivery attempt that was not acknowledged.
    pub fn record_attempt(&self, id: u64) -> Result<(), StoreError> {
        if let Some(bytes) = self.tree.get(id.to_be_bytes())? {
            let mut msg: OutboxMessage = decode(&bytes)?;
            msg.attempts = msg.attempts.saturating_add(1);
            self.tree.insert(id.to_be_bytes(), encode(&msg)?)?;
        }
        Ok(())
    }

    /// Removes a delivered message. Returns false when it was not queued (already delivered).
    pub fn delivered(&self, id: u64) -> Result<bool, StoreError> {
        Ok(self.tree.remove(id.to_be_bytes())?.is_some())
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
