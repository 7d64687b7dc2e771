//! The sled database in the data dir, one tree per kind of record, and the repository layer
//! over it: the trees are private, each reached through [`Table`] by the one module that owns
//! it, and the small records through typed keys ([`records`]).
//!
//! One process owns it (sled locks it); the CLI talks to that process over the control
//! socket. Anything acknowledged to anyone is flushed to disk first ([`Store::flush`]).
//!
//! Every flush goes through one flusher thread (`flusher.rs`): sled 0.34's `flush_async`
//! deadlocks when several run at once (spacejam/sled#1308, #1241: its IO threads all block in
//! `iobuf::make_stable_inner`), which froze the whole agent under a burst of concurrent jobs.
//! The flusher is a group commit: each writer queues a request and waits; the thread takes
//! every request pending, makes one blocking `Db::flush` for all of them, and answers them
//! all. One flush is in progress at a time, whatever the number of writers.

mod flusher;
pub mod records;
pub mod sealer;
pub mod signal;
pub mod table;

use flusher::{Flusher, Waiter};
pub use records::Records;
pub use sealer::{DataKey, Sealer};
use serde::de::DeserializeOwned;
use serde::Serialize;
use std::path::Path;
use std::sync::{mpsc, Arc};
use table::TableSeal;
pub use table::{Keys, Table};

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

/// The trees of the store, by the name they have on disk. Each is owned by one module, the
/// only one that asks for it ([`Store::table`]); `tests/layers.rs` checks that.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TableId {
    /// Signatures accepted inside the window, for replay refusal across restarts
    /// (`auth::replay`).
    Replay,
    /// The hash-chained audit log, keyed by big-endian sequence number (`audit`).
    Audit,
    /// Approvals, keyed by code (`policy::approvals`).
    Approvals,
    /// Grant overrides, keyed by tool name (`policy::grants`).
    Grants,
    /// Contexts (alias + card + identity per site), keyed by name (`context`).
    Contexts,
    /// Creates in flight (see `context::Intent`), keyed by context and kind (`context`).
    Intents,
    /// Breach incidents, keyed by context and sender domain (`breach::incidents`).
    Incidents,
    /// Fingerprints of messages already counted by the breach monitor
    /// (`breach::incidents`).
    BreachSeen,
    /// Outgoing messages, keyed by big-endian sequence number (`outbox`).
    Outbox,
    /// The owner's Signal messages taken from the gateway and not answered yet, keyed by
    /// big-endian id: what a crash cut off is answered at the next start (`store::signal`).
    SignalInbox,
    /// Ids of the owner's Signal messages and reactions already recorded (acted on once),
    /// with when (`store::signal`).
    SignalSeen,
    /// The Signal timestamp of each approval prompt, with its code (`store::signal`).
    SignalPrompts,
    /// The typed records ([`Records`], `store::records`): the audit head and anchor,
    /// cursors, marks, flags.
    Meta,
    /// The credentials of a sealed installation (command secret, MCP key, provider keys,
    /// IMAP password, the Signal store's passphrase), keyed by name (`seal::vault`).
    Vault,
    /// The headers of the mail each context's alias received, newest first, one record per
    /// context (`inbox::index`).
    MailIndex,
}

impl TableId {
    /// Every tree.
    pub const ALL: [TableId; 15] = [
        TableId::Replay,
        TableId::Audit,
        TableId::Approvals,
        TableId::Grants,
        TableId::Contexts,
        TableId::Intents,
        TableId::Incidents,
        TableId::BreachSeen,
        TableId::Outbox,
        TableId::SignalInbox,
        TableId::SignalSeen,
        TableId::SignalPrompts,
        TableId::Meta,
        TableId::Vault,
        TableId::MailIndex,
    ];

    /// The tree's name on disk (unchanged since the first version: older stores open as
    /// they are).
    pub fn name(self) -> &'static str {
        match self {
            TableId::Replay => "replay",
            TableId::Audit => "audit",
            TableId::Approvals => "approvals",
            TableId::Grants => "grants",
            TableId::Contexts => "contexts",
            TableId::Intents => "intents",
            TableId::Incidents => "incidents",
            TableId::BreachSeen => "breach_seen",
            TableId::Outbox => "outbox",
            TableId::SignalInbox => "signal_inbox",
            TableId::SignalSeen => "signal_seen",
            TableId::SignalPrompts => "signal_prompts",
            TableId::Meta => "meta",
            TableId::Vault => "vault",
            TableId::MailIndex => "mail_index",
        }
    }

    /// How its keys are stored on a sealed store: as they are where they are sequence
    /// numbers or timestamps read in order, hashed where they name the owner's things.
    pub fn keys(self) -> Keys {
        match self {
            TableId::Replay
            | TableId::Audit
            | TableId::Outbox
            | TableId::SignalInbox
            | TableId::SignalPrompts => Keys::Ordered,
            // A Signal message's id starts with its sender's ACI: the owner's account.
            TableId::SignalSeen
            | TableId::Approvals
            | TableId::Grants
            | TableId::Contexts
            | TableId::Intents
            | TableId::Incidents
            | TableId::BreachSeen
            | TableId::Meta
            | TableId::Vault
            | TableId::MailIndex => Keys::Hashed,
        }
    }

    /// True when its walks may keep what they opened in memory (`table.rs`'s `Opened`):
    /// every hashed tree but the vault, whose credentials are never kept, and the mail
    /// index, which is read a record at a time and never walked.
    pub fn keeps_opened(self) -> bool {
        self.keys() == Keys::Hashed && !matches!(self, TableId::Vault | TableId::MailIndex)
    }
}

/// The store's files, open and locked, with no key: what the daemon holds while sealed.
/// Each unsealing makes a [`Store`] over it with the data key; sealing drops that store
/// (and the key) and keeps this, so the next unseal does not reopen the files.
#[derive(Clone)]
pub struct Disk {
    db: sled::Db,
}

impl Disk {
    /// Opens (or creates) the store's files in `dir`.
    pub fn open(dir: &Path) -> Result<Disk, StoreError> {
        let db = sled::Config::new().path(dir).open().map_err(|e| match e {
            sled::Error::Io(ref io) if io.kind() == std::io::ErrorKind::WouldBlock => {
                StoreError::Corrupt(format!(
                    "{} is locked: is another pane-agent running on this data dir?",
                    dir.display()
                ))
            }
            other => StoreError::Sled(other),
        })?;
        Ok(Disk { db })
    }

    /// The store over these files: sealed with `sealer`, or in clear when None (an
    /// installation made with `--unsealed`).
    pub fn store(&self, sealer: Option<Arc<Sealer>>) -> Result<Store, StoreError> {
        Store::over(self.db.clone(), sealer)
    }

    /// True when the store holds no record at all (a new installation).
    pub fn is_empty(&self) -> Result<bool, StoreError> {
        for id in TableId::ALL {
            if !self.db.open_tree(id.name())?.is_empty() {
                return Ok(false);
            }
        }
        Ok(true)
    }

    /// Writes everything to disk.
    pub fn flush(&self) -> Result<(), StoreError> {
        self.db.flush()?;
        Ok(())
    }
}

/// The open store. Its trees are private: each is reached through the repository of the
/// module that owns it, built from [`Store::table`] (or, for the small records, from
/// [`Store::records`]).
#[derive(Clone)]
pub struct Store {
    db: sled::Db,
    flusher: Arc<Flusher>,
    tables: Arc<Vec<Table>>,
    sealed: bool,
}

impl Store {
    /// Opens (or creates) the store in `dir`, in clear (an unsealed installation, tests).
    pub fn open(dir: &Path) -> Result<Store, StoreError> {
        Disk::open(dir)?.store(None)
    }

    /// A store in memory, gone when dropped: for tests.
    pub fn temporary() -> Result<Store, StoreError> {
        Store::over(sled::Config::new().temporary(true).open()?, None)
    }

    /// A sealed store in memory, gone when dropped: for tests.
    pub fn temporary_sealed(key: &DataKey) -> Result<Store, StoreError> {
        Store::over(
            sled::Config::new().temporary(true).open()?,
            Some(Arc::new(Sealer::new(key)?)),
        )
    }

    fn over(db: sled::Db, sealer: Option<Arc<Sealer>>) -> Result<Store, StoreError> {
        let tables = TableId::ALL
            .iter()
            .map(|id| {
                let seal = sealer.as_ref().map(|s| TableSeal {
                    sealer: s.clone(),
                    name: id.name(),
                    keys: id.keys(),
                    keeps_opened: id.keeps_opened(),
                });
                Ok(Table::new(db.open_tree(id.name())?, seal))
            })
            .collect::<Result<Vec<_>, StoreError>>()?;
        Ok(Store {
            tables: Arc::new(tables),
            flusher: Arc::new(Flusher::start(db.clone())?),
            sealed: sealer.is_some(),
            db,
        })
    }

    /// Copies every record of every tree into `to` (`seal-init`: a store in clear into a new
    /// sealed one); how many records.
    pub fn copy_into(&self, to: &Store) -> Result<u64, StoreError> {
        let mut n = 0;
        for id in TableId::ALL {
            let (from, into) = (self.table(id), to.table(id));
            for item in from.iter() {
                let (k, v) = item?;
                into.insert(k, v)?;
                n += 1;
            }
        }
        Ok(n)
    }

    /// True when its records are sealed at rest.
    pub fn is_sealed(&self) -> bool {
        self.sealed
    }

    /// The tree `id`, for the repository that owns it (see [`TableId`]) and for tests that
    /// look at what is on disk. Nothing else in the agent asks for a tree.
    pub fn table(&self, id: TableId) -> Table {
        // `tables` holds one per `TableId::ALL`, in that order.
        self.tables[id as usize].clone()
    }

    /// The typed records (the `meta` tree), each read and written by the module that
    /// declares its key.
    pub fn records(&self) -> Records {
        Records::new(self.table(TableId::Meta))
    }

    /// Writes everything to disk; called before any write is acknowledged. Waits for the
    /// flusher's next round, which starts after this call: every write made before it is on
    /// disk when it returns.
    pub async fn flush(&self) -> Result<(), StoreError> {
        let (tx, rx) = tokio::sync::oneshot::channel();
        self.flusher.request(Waiter::Task(tx))?;
        rx.await.map_err(|_| Flusher::gone())?
    }

    /// The same, for code that is not async (shutdown paths, tests). Goes through the same
    /// flusher, so it never runs beside another flush either.
    pub fn flush_blocking(&self) -> Result<(), StoreError> {
        let (tx, rx) = mpsc::sync_channel(1);
        self.flusher.request(Waiter::Thread(tx))?;
        rx.recv().map_err(|_| Flusher::gone())?
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_table_is_where_its_id_says() {
        for (at, id) in TableId::ALL.iter().enumerate() {
            assert_eq!(*id as usize, at, "{id:?}");
        }
        let store = Store::temporary().unwrap();
        store.table(TableId::Grants).insert("x", "granted").unwrap();
        assert!(store.table(TableId::Replay).get("x").unwrap().is_none());
        assert!(store.table(TableId::Grants).get("x").unwrap().is_some());
    }

    #[test]
    fn a_sealed_table_behaves_as_a_clear_one_and_shows_nothing() {
        let key = DataKey::generate().unwrap();
        for store in [
            Store::temporary().unwrap(),
            Store::temporary_sealed(&key).unwrap(),
        ] {
            for id in [TableId::Contexts, TableId::Audit] {
                let t = store.table(id);
                for name in ["notion", "b-site", "a-site", "notion.extra"] {
                    assert!(t
                        .insert(name, format!("value of {name}"))
                        .unwrap()
                        .is_none());
                }
                let old = t.insert("notion", "second").unwrap().unwrap();
                assert_eq!(old.as_ref(), b"value of notion");
                assert_eq!(t.get("notion").unwrap().unwrap().as_ref(), b"second");
                assert!(t.contains_key("a-site").unwrap());
                let keys: Vec<Vec<u8>> = t.iter().map(|r| r.unwrap().0.to_vec()).collect();
                assert_eq!(
                    keys,
                    vec![
                        b"a-site".to_vec(),
                        b"b-site".to_vec(),
                        b"notion".to_vec(),
                        b"notion.extra".to_vec()
                    ],
                    "{id:?}"
                );
                let last = t.iter().next_back().unwrap().unwrap().0;
                assert_eq!(last.as_ref(), b"notion.extra");
                let prefixed: Vec<Vec<u8>> = t
                    .scan_prefix(b"notion")
                    .map(|r| r.unwrap().0.to_vec())
                    .collect();
                assert_eq!(prefixed, vec![b"notion".to_vec(), b"notion.extra".to_vec()]);
                assert!(!t
                    .compare_and_swap("notion", Some(b"stale"), Some(b"x"))
                    .unwrap());
                assert!(t
                    .compare_and_swap("notion", Some(b"second"), Some(b"third"))
                    .unwrap());
                assert!(t.compare_and_swap("new", None, Some(b"1")).unwrap());
                assert!(!t.compare_and_swap("new", None, Some(b"2")).unwrap());
                let other = store.table(TableId::Meta);
                t.transaction(&other, |mine, theirs| {
                    let v = mine.get("notion")?.map(|v| v.to_vec()).unwrap_or_default();
                    theirs.insert("copied", v)?;
                    mine.remove("b-site")?;
                    Ok(())
                })
                .unwrap();
                assert_eq!(other.get("copied").unwrap().unwrap().as_ref(), b"third");
                assert!(t.get("b-site").unwrap().is_none());
                assert_eq!(
                    t.remove("a-site").unwrap().unwrap().as_ref(),
                    b"value of a-site"
                );
            }
            if store.is_sealed() {
                // On disk: no name and no value in clear, and contexts' keys are hashes.
                for id in [TableId::Contexts, TableId::Audit, TableId::Meta] {
                    for item in store.table(id).tree_for_tests().iter() {
                        let (k, v) = item.unwrap();
                        for needle in [&b"notion"[..], b"third", b"value of"] {
                            assert!(!v.windows(needle.len()).any(|w| w == needle), "{id:?}");
                            if id != TableId::Audit {
                                assert!(!k.windows(needle.len()).any(|w| w == needle), "{id:?}");
                            }
                        }
                    }
                }
            }
        }
    }
}
