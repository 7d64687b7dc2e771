//! The persisted outbox: replies, approval prompts and alerts on their way to the owner.
//!
//! A message is written (and flushed) before anyone is told it exists, stays until a channel
//! acknowledges delivery, and is never handed out again after that, so an alert is neither
//! lost while the Signal gateway is down nor sent twice after a restart.

use crate::store::{decode, encode, StoreError};
use chrono::{SecondsFormat, Utc};
use serde::{Deserialize, Serialize};

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
}

/// The outbox tree.
#[derive(Clone)]
pub struct Outbox {
    tree: sled::Tree,
}

impl Outbox {
    /// Uses the store's `outbox` tree; `id` values come from the store's id generator.
    pub fn new(tree: sled::Tree) -> Outbox {
        Outbox { tree }
    }

    /// Queues a message with the given id. The caller flushes before acknowledging.
    pub fn push(
        &self,
        id: u64,
        kind: MessageKind,
        body: &str,
    ) -> Result<OutboxMessage, StoreError> {
        let msg = OutboxMessage {
            id,
            created: Utc::now().to_rfc3339_opts(SecondsFormat::Secs, true),
            kind,
            body: body.to_string(),
            attempts: 0,
        };
        self.tree.insert(id.to_be_bytes(), encode(&msg)?)?;
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
