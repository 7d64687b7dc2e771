//! The sled database in the data dir, one tree per kind of record.
//!
//! One process owns it (sled locks it); the CLI talks to that process over the control
//! socket. Anything acknowledged to anyone is flushed to disk first ([`Store::flush`]).

use serde::de::DeserializeOwned;
use serde::Serialize;
use std::path::Path;

/// A storage failure.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// sled reported an error (I/O, corruption, or the store is in use by another process).
    #[error("store: {0}")]
    Sled(#[from] sled::Error),
    /// A record could not be encoded or decoded.
    #[error("store record: {0}")]
    Codec(#[from] serde_json::Error),
    /// A record is not what its tree holds.
    #[error("store record is corrupt: {0}")]
    Corrupt(String),
}

impl From<sled::transaction::TransactionError<StoreError>> for StoreError {
    fn from(e: sled::transaction::TransactionError<StoreError>) -> Self {
        match e {
            sled::transaction::TransactionError::Abort(e) => e,
            sled::transaction::TransactionError::Storage(e) => StoreError::Sled(e),
        }
    }
}

/// The open store and its trees.
#[derive(Clone)]
pub struct Store {
    db: sled::Db,
    /// Signatures accepted inside the window, for replay refusal across restarts.
    pub replay: sled::Tree,
    /// The hash-chained audit log, keyed by big-endian sequence number.
    pub audit: sled::Tree,
    /// Approvals, keyed by code.
    pub approvals: sled::Tree,
    /// Grant overrides, keyed by tool name.
    pub grants: sled::Tree,
    /// Contexts (alias + card + identity per site), keyed by name.
    pub contexts: sled::Tree,
    /// Creates in flight (see `context::Intent`), keyed by context and kind.
    pub intents: sled::Tree,
    /// Breach incidents, keyed by context and sender domain.
    pub incidents: sled::Tree,
    /// Fingerprints of messages already counted by the breach monitor.
    pub breach_seen: sled::Tree,
    /// Outgoing messages, keyed by big-endian sequence number.
    pub outbox: sled::Tree,
    /// The owner's Signal messages taken from the gateway and not answered yet, keyed by
    /// big-endian id: what a crash cut off is answered at the next start.
    pub signal_inbox: sled::Tree,
    /// Ids of the owner's Signal messages and reactions already recorded (acted on once),
    /// with when: a re-sent line is acknowledged again and not acted on.
    pub signal_seen: sled::Tree,
    /// The Signal timestamp of each approval prompt, with its code: a 👍 or 👎 on the prompt
    /// answers it.
    pub signal_prompts: sled::Tree,
    /// Small records: the audit head and anchor, counters.
    pub meta: sled::Tree,
}

impl Store {
    /// Opens (or creates) the store in `dir`.
    pub fn open(dir: &Path) -> Result<Store, StoreError> {
        let db = sled::Config::new().path(dir).open().map_err(|e| match e {
            sled::Error::Io(ref io) if io.kind() == std::io::ErrorKind::WouldBlock => {
                StoreError::Corrupt(format!(
                    "{} is locked: is another pane-agent running on this data dir?",
                    dir.display()
                ))
            }
            other => StoreError::Sled(other),
        })?;
        Ok(Store {
            replay: db.open_tree("replay")?,
            audit: db.open_tree("audit")?,
            approvals: db.open_tree("approvals")?,
            grants: db.open_tree("grants")?,
            contexts: db.open_tree("contexts")?,
            outbox: db.open_tree("outbox")?,
            signal_inbox: db.open_tree("signal_inbox")?,
            intents: db.open_tree("intents")?,
            incidents: db.open_tree("incidents")?,
            breach_seen: db.open_tree("breach_seen")?,
            meta: db.open_tree("meta")?,
            signal_seen: db.open_tree("signal_seen")?,
            signal_prompts: db.open_tree("signal_prompts")?,
            db,
        })
    }

    /// Writes everything to disk; called before any write is acknowledged.
    pub async fn flush(&self) -> Result<(), StoreError> {
        self.db.flush_async().await?;
        Ok(())
    }

    /// The same, for code that is not async (shutdown paths, tests).
    pub fn flush_blocking(&self) -> Result<(), StoreError> {
        self.db.flush()?;
        Ok(())
    }

    /// The store's size on disk in bytes.
    pub fn size_on_disk(&self) -> Result<u64, StoreError> {
        Ok(self.db.size_on_disk()?)
    }

    /// A new monotonic id, unique across restarts.
    pub fn next_id(&self) -> Result<u64, StoreError> {
        Ok(self.db.generate_id()?)
    }
}

/// Encodes a record as JSON for a tree.
pub fn encode<T: Serialize>(value: &T) -> Result<Vec<u8>, StoreError> {
    Ok(serde_json::to_vec(value)?)
}

/// Decodes a record read from a tree.
pub fn decode<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, StoreError> {
    Ok(serde_json::from_slice(bytes)?)
}
