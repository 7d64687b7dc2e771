//! A handle on one tree of the store, for the one module that owns the records in it.
//!
//! Every byte that goes to disk or comes back passes through [`Table`] (and [`Tx`] inside a
//! transaction), so what the store does to records at rest (sealing them, a later change)
//! is made here once, for every repository. Nothing outside the store layer names a sled
//! type: `tests/layers.rs` fails when something does.

use super::sealer::Sealer;
use super::StoreError;
use sled::transaction::{
    ConflictableTransactionError, TransactionalTree, UnabortableTransactionError,
};
use sled::Transactional;
use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

/// A value read from a table. It derefs to `[u8]`.
pub type Bytes = sled::IVec;

/// Each record's key and value, in key order.
pub type Records<'a> = Box<dyn DoubleEndedIterator<Item = Result<(Bytes, Bytes), StoreError>> + 'a>;

/// How a table's keys are stored on a sealed store.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Keys {
    /// As they are: sequence numbers and timestamps, which say nothing of the owner's and
    /// whose order the table's readers walk (the audit log's tail, the outbox in order).
    Ordered,
    /// As a keyed hash: the names of the owner's things (a context is named after a site).
    /// The real key travels inside the sealed value; iterating such a table opens every
    /// record (or takes it from [`Opened`] when its sealed bytes did not change) and sorts
    /// them by their real keys, so its readers see what they saw before.
    Hashed,
}

/// What a table does to its records on a sealed store.
#[derive(Clone)]
pub(super) struct TableSeal {
    pub(super) sealer: Arc<Sealer>,
    pub(super) name: &'static str,
    pub(super) keys: Keys,
    /// Walks keep what they opened ([`super::TableId::keeps_opened`]).
    pub(super) keeps_opened: bool,
}

impl TableSeal {
    fn disk_key(&self, key: &[u8]) -> Vec<u8> {
        match self.keys {
            Keys::Ordered => key.to_vec(),
            Keys::Hashed => self.sealer.hash_key(self.name, key).to_vec(),
        }
    }

    fn seal(&self, disk_key: &[u8], key: &[u8], value: &[u8]) -> Result<Vec<u8>, StoreError> {
        self.sealer.seal(self.name, disk_key, key, value)
    }

    /// The value of the record stored at `disk_key`, checked to be the one of `key`.
    fn open_at(&self, disk_key: &[u8], key: &[u8], raw: &[u8]) -> Result<Bytes, StoreError> {
        let (real, value) = self.sealer.open(self.name, disk_key, raw)?;
        if real != key {
            return Err(StoreError::Corrupt(format!(
                "a sealed record of {} is under another key",
                self.name
            )));
        }
        Ok(Bytes::from(value))
    }

    fn open_pair(&self, disk_key: &[u8], raw: &[u8]) -> Result<(Bytes, Bytes), StoreError> {
        let (key, value) = self.sealer.open(self.name, disk_key, raw)?;
        if self.keys == Keys::Ordered && key != disk_key {
            return Err(StoreError::Corrupt(format!(
                "a sealed record of {} is under another key",
                self.name
            )));
        }
        Ok((Bytes::from(key), Bytes::from(value)))
    }
}

/// The records of a [`Keys::Hashed`] table as its walks last opened them, by key on disk,
/// each with the sealed bytes it was opened from. A walk of the table ([`Table::iter`],
/// [`Table::scan_prefix`]) opens only the records whose sealed bytes are not the ones kept
/// here; for the others it compares the whole sealed value (which costs a fraction of
/// opening it) and takes the key and value kept. Every write seals with a fresh nonce, so a
/// record written since never matches, and the same sealed bytes always open to the same
/// record: what a walk gives is exactly what opening every record would give. Records gone
/// from the tree are dropped at the end of each complete walk. Shared by the clones of the
/// table and dropped with the store when the agent seals; the vault's records (the
/// credentials) are never kept.
#[derive(Default)]
struct Opened {
    records: HashMap<Vec<u8>, OpenedRecord>,
    /// The number of the walk in progress or last made.
    walk: u64,
}

/// One record as a walk opened it.
struct OpenedRecord {
    sealed: Box<[u8]>,
    key: Bytes,
    value: Bytes,
    /// The last walk that found it in the tree.
    walk: u64,
}

impl Opened {
    /// The record stored at `disk_key` as `raw`: kept, when `raw` is what it was opened
    /// from, else opened (and kept).
    fn open(
        &mut self,
        seal: &TableSeal,
        disk_key: &[u8],
        raw: &[u8],
        walk: u64,
    ) -> Result<(Bytes, Bytes), StoreError> {
        if let Some(r) = self.records.get_mut(disk_key) {
            if *r.sealed == *raw {
                r.walk = walk;
                return Ok((r.key.clone(), r.value.clone()));
            }
        }
        let (key, value) = seal.open_pair(disk_key, raw)?;
        self.records.insert(
            disk_key.to_vec(),
            OpenedRecord {
                sealed: raw.into(),
                key: key.clone(),
                value: value.clone(),
                walk,
            },
        );
        Ok((key, value))
    }
}

/// One tree's records, reached only by the repository that owns them (see
/// [`super::TableId`] for who that is). On a sealed store every value is sealed and, in a
/// [`Keys::Hashed`] table, every key hashed, here and nowhere else.
#[derive(Clone)]
pub struct Table {
    tree: sled::Tree,
    seal: Option<TableSeal>,
    /// For a sealed [`Keys::Hashed`] table other than the vault: what its walks opened.
    opened: Option<Arc<Mutex<Opened>>>,
}

impl Table {
    pub(super) fn new(tree: sled::Tree, seal: Option<TableSeal>) -> Table {
        let opened = seal
            .as_ref()
            .filter(|s| s.keeps_opened)
            .map(|_| Arc::new(Mutex::new(Opened::default())));
        Table { tree, seal, opened }
    }

    fn disk_key(&self, key: &[u8]) -> Vec<u8> {
        match &self.seal {
            Some(s) => s.disk_key(key),
            None => key.to_vec(),
        }
    }

    fn open_at(
        &self,
        disk_key: &[u8],
        key: &[u8],
        raw: Option<Bytes>,
    ) -> Result<Option<Bytes>, StoreError> {
        match (&self.seal, raw) {
            (Some(s), Some(raw)) => Ok(Some(s.open_at(disk_key, key, &raw)?)),
            (_, raw) => Ok(raw),
        }
    }

    fn seal_value(&self, disk_key: &[u8], key: &[u8], value: &[u8]) -> Result<Vec<u8>, StoreError> {
        match &self.seal {
            Some(s) => s.seal(disk_key, key, value),
            None => Ok(value.to_vec()),
        }
    }

    /// The value at `key`.
    pub fn get(&self, key: impl AsRef<[u8]>) -> Result<Option<Bytes>, StoreError> {
        let key = key.as_ref();
        let dk = self.disk_key(key);
        let raw = self.tree.get(&dk)?;
        self.open_at(&dk, key, raw)
    }

    /// Writes `value` at `key`; the value it replaced.
    pub fn insert(
        &self,
        key: impl AsRef<[u8]>,
        value: impl AsRef<[u8]>,
    ) -> Result<Option<Bytes>, StoreError> {
        let key = key.as_ref();
        let dk = self.disk_key(key);
        let sealed = self.seal_value(&dk, key, value.as_ref())?;
        let old = self.tree.insert(dk.as_slice(), sealed)?;
        self.open_at(&dk, key, old)
    }

    /// Removes `key`; the value it held.
    pub fn remove(&self, key: impl AsRef<[u8]>) -> Result<Option<Bytes>, StoreError> {
        let key = key.as_ref();
        let dk = self.disk_key(key);
        let old = self.tree.remove(&dk)?;
        self.open_at(&dk, key, old)
    }

    /// True when `key` holds a value.
    pub fn contains_key(&self, key: impl AsRef<[u8]>) -> Result<bool, StoreError> {
        Ok(self.tree.contains_key(self.disk_key(key.as_ref()))?)
    }

    /// Writes `new` at `key` (None removes it) only if it holds `old` (None: nothing). True
    /// when it did: a writer that read the record before another changed it loses.
    pub fn compare_and_swap(
        &self,
        key: impl AsRef<[u8]>,
        old: Option<&[u8]>,
        new: Option<&[u8]>,
    ) -> Result<bool, StoreError> {
        let key = key.as_ref();
        let dk = self.disk_key(key);
        if self.seal.is_none() {
            return Ok(self.tree.compare_and_swap(&dk, old, new)?.is_ok());
        }
        // A sealed value differs at every write (a fresh nonce): compare what the record
        // holds now, opened, and swap from exactly those bytes, so a write in between loses.
        let raw = self.tree.get(&dk)?;
        let current = self.open_at(&dk, key, raw.clone())?;
        if current.as_deref() != old {
            return Ok(false);
        }
        let sealed = new.map(|v| self.seal_value(&dk, key, v)).transpose()?;
        Ok(self
            .tree
            .compare_and_swap(&dk, raw.as_deref(), sealed.as_deref())?
            .is_ok())
    }

    /// Every record, in key order (reversible).
    pub fn iter(&self) -> Records<'_> {
        match &self.seal {
            None => Box::new(self.tree.iter().map(|r| r.map_err(StoreError::from))),
            Some(s) if s.keys == Keys::Ordered => Box::new(self.tree.iter().map(move |r| {
                r.map_err(StoreError::from)
                    .and_then(|(dk, raw)| s.open_pair(&dk, &raw))
            })),
            Some(_) => Box::new(self.all_sorted(|_| true).into_iter()),
        }
    }

    /// The records whose keys start with `prefix`, in key order.
    pub fn scan_prefix<'a>(&'a self, prefix: &'a [u8]) -> Records<'a> {
        match &self.seal {
            None => Box::new(
                self.tree
                    .scan_prefix(prefix)
                    .map(|r| r.map_err(StoreError::from)),
            ),
            Some(s) if s.keys == Keys::Ordered => {
                Box::new(self.tree.scan_prefix(prefix).map(move |r| {
                    r.map_err(StoreError::from)
                        .and_then(|(dk, raw)| s.open_pair(&dk, &raw))
                }))
            }
            Some(_) => Box::new(self.all_sorted(|k| k.starts_with(prefix)).into_iter()),
        }
    }

    /// Every record of a hashed table whose real key passes `keep`, opened, in key order.
    /// An error (a store error, or a record that does not open) is kept in the list, last.
    /// Records whose sealed bytes did not change since the last walk are not opened again
    /// ([`Opened`]).
    fn all_sorted(&self, keep: impl Fn(&[u8]) -> bool) -> Vec<Result<(Bytes, Bytes), StoreError>> {
        let Some(s) = &self.seal else {
            return Vec::new();
        };
        // Held for the walk: one walk at a time updates what is kept.
        let mut opened = self
            .opened
            .as_ref()
            .map(|o| o.lock().unwrap_or_else(PoisonError::into_inner));
        let walk = opened.as_deref_mut().map_or(0, |o| {
            o.walk += 1;
            o.walk
        });
        let mut complete = true;
        let mut found = Vec::new();
        let mut errors = Vec::new();
        for item in self.tree.iter() {
            let pair = match item {
                Ok((dk, raw)) => match opened.as_deref_mut() {
                    Some(o) => o.open(s, &dk, &raw, walk),
                    None => s.open_pair(&dk, &raw),
                },
                Err(e) => {
                    complete = false;
                    Err(StoreError::from(e))
                }
            };
            match pair {
                Ok((k, v)) if keep(&k) => found.push((k, v)),
                Ok(_) => {}
                Err(e) => errors.push(Err(e)),
            }
        }
        if let Some(o) = opened.as_deref_mut().filter(|_| complete) {
            o.records.retain(|_, r| r.walk == walk);
        }
        drop(opened);
        found.sort_by(|a, b| a.0.cmp(&b.0));
        found.into_iter().map(Ok).chain(errors).collect()
    }

    /// The tree as it is on disk, sealed bytes and all: for the store's own tests.
    #[cfg(test)]
    pub(super) fn tree_for_tests(&self) -> &sled::Tree {
        &self.tree
    }

    /// How many records it holds.
    pub fn len(&self) -> usize {
        self.tree.len()
    }

    /// True when it holds none.
    pub fn is_empty(&self) -> bool {
        self.tree.is_empty()
    }

    /// One record of this table, to be changed in another repository's transaction (a reply
    /// queued in the outbox and the record it answers, together).
    pub fn entry(&self, key: impl AsRef<[u8]>) -> Entry<'_> {
        Entry {
            table: self,
            key: key.as_ref().to_vec(),
        }
    }

    /// Runs `change` over this table and `other` in one transaction: a crash leaves all of
    /// its writes or none (sled also writes in the background between flushes, so two
    /// separate writes could be cut apart by a kill). `change` may run more than once.
    pub fn transaction<R>(
        &self,
        other: &Table,
        change: impl Fn(&Tx<'_>, &Tx<'_>) -> Result<R, TxError>,
    ) -> Result<R, StoreError> {
        let result = (&self.tree, &other.tree).transaction(
            |(mine, theirs): &(TransactionalTree, TransactionalTree)| {
                change(
                    &Tx {
                        tree: mine,
                        seal: self.seal.as_ref(),
                    },
                    &Tx {
                        tree: theirs,
                        seal: other.seal.as_ref(),
                    },
                )
                .map_err(|e| e.0)
            },
        )?;
        Ok(result)
    }
}

/// One record of a table, handed by its owner to a transaction of another repository.
pub struct Entry<'a> {
    table: &'a Table,
    key: Vec<u8>,
}

impl Entry<'_> {
    /// The table the record is in.
    pub fn table(&self) -> &Table {
        self.table
    }

    /// Its key.
    pub fn key(&self) -> &[u8] {
        &self.key
    }
}

/// A table inside a transaction ([`Table::transaction`]).
pub struct Tx<'a> {
    tree: &'a TransactionalTree,
    seal: Option<&'a TableSeal>,
}

impl Tx<'_> {
    fn disk_key(&self, key: &[u8]) -> Vec<u8> {
        match self.seal {
            Some(s) => s.disk_key(key),
            None => key.to_vec(),
        }
    }

    /// The value at `key`, as the transaction sees it.
    pub fn get(&self, key: impl AsRef<[u8]>) -> Result<Option<Bytes>, TxError> {
        let key = key.as_ref();
        let dk = self.disk_key(key);
        let raw = self.tree.get(&dk)?;
        match (self.seal, raw) {
            (Some(s), Some(raw)) => Ok(Some(s.open_at(&dk, key, &raw)?)),
            (_, raw) => Ok(raw),
        }
    }

    /// Writes `value` at `key`.
    pub fn insert(&self, key: impl AsRef<[u8]>, value: impl AsRef<[u8]>) -> Result<(), TxError> {
        let key = key.as_ref();
        let dk = self.disk_key(key);
        let value = match self.seal {
            Some(s) => s.seal(&dk, key, value.as_ref())?,
            None => value.as_ref().to_vec(),
        };
        self.tree.insert(dk, value)?;
        Ok(())
    }

    /// Removes `key`.
    pub fn remove(&self, key: impl AsRef<[u8]>) -> Result<(), TxError> {
        self.tree.remove(self.disk_key(key.as_ref()))?;
        Ok(())
    }
}

/// Why a transaction's step failed: a conflict (sled retries the transaction) or a store
/// error that aborts it. `?` on a [`StoreError`] inside the transaction aborts it.
pub struct TxError(ConflictableTransactionError<StoreError>);

impl From<StoreError> for TxError {
    fn from(e: StoreError) -> Self {
        TxError(ConflictableTransactionError::Abort(e))
    }
}

impl From<UnabortableTransactionError> for TxError {
    fn from(e: UnabortableTransactionError) -> Self {
        TxError(e.into())
    }
}

#[cfg(test)]
mod tests {
    use super::super::{DataKey, Store, TableId};
    use super::*;

    /// A walk's records (key, value), or its errors in words.
    type Walk = Vec<Result<(Vec<u8>, Vec<u8>), String>>;

    fn walk(t: &Table) -> Walk {
        t.iter()
            .map(|r| {
                r.map(|(k, v)| (k.to_vec(), v.to_vec()))
                    .map_err(|e| e.to_string())
            })
            .collect()
    }

    fn kept(t: &Table) -> usize {
        t.opened
            .as_ref()
            .map_or(0, |o| o.lock().unwrap().records.len())
    }

    #[test]
    fn a_walk_opens_again_only_what_changed_and_gives_what_opening_everything_gives() {
        let store = Store::temporary_sealed(&DataKey::generate().unwrap()).unwrap();
        let t = store.table(TableId::Contexts);
        for (k, v) in [("b", "2"), ("a", "1"), ("c", "3")] {
            t.insert(k, v).unwrap();
        }
        let pairs = |list: &[(&str, &str)]| -> Walk {
            list.iter()
                .map(|(k, v)| Ok((k.as_bytes().to_vec(), v.as_bytes().to_vec())))
                .collect()
        };
        assert_eq!(walk(&t), pairs(&[("a", "1"), ("b", "2"), ("c", "3")]));
        assert_eq!(kept(&t), 3);
        // Kept records give the same; a clone of the table shares what is kept.
        let clone = store.table(TableId::Contexts);
        assert_eq!(walk(&clone), pairs(&[("a", "1"), ("b", "2"), ("c", "3")]));
        // A write, a removal and a new record are seen by the next walk, by either clone;
        // what is gone is no longer kept.
        t.insert("b", "two").unwrap();
        t.remove("c").unwrap();
        t.insert("d", "4").unwrap();
        assert_eq!(walk(&clone), pairs(&[("a", "1"), ("b", "two"), ("d", "4")]));
        assert_eq!(kept(&t), 3);
        let prefixed: Vec<Vec<u8>> = t.scan_prefix(b"b").map(|r| r.unwrap().1.to_vec()).collect();
        assert_eq!(prefixed, vec![b"two".to_vec()]);
        // Bytes on disk that are not the ones kept are opened, and fail as they should, even
        // when they differ from them in one bit.
        let dk = store
            .table(TableId::Contexts)
            .seal
            .as_ref()
            .unwrap()
            .disk_key(b"a");
        let mut raw = t.tree_for_tests().get(&dk).unwrap().unwrap().to_vec();
        let last = raw.len() - 1;
        raw[last] ^= 1;
        t.tree_for_tests().insert(&dk, raw).unwrap();
        let after = walk(&t);
        assert_eq!(after.len(), 3);
        assert_eq!(
            after[..2],
            pairs(&[("b", "two"), ("d", "4")])[..],
            "{after:?}"
        );
        assert!(after[2].is_err(), "{after:?}");
        assert_eq!(kept(&t), 2);
    }

    #[test]
    fn only_sealed_hashed_tables_other_than_the_vault_and_mail_keep_what_they_opened() {
        let sealed = Store::temporary_sealed(&DataKey::generate().unwrap()).unwrap();
        let clear = Store::temporary().unwrap();
        for id in TableId::ALL {
            let t = sealed.table(id);
            let expected =
                id.keys() == Keys::Hashed && !matches!(id, TableId::Vault | TableId::MailIndex);
            assert_eq!(t.opened.is_some(), expected, "{id:?}");
            assert!(clear.table(id).opened.is_none(), "{id:?}");
        }
        let vault = sealed.table(TableId::Vault);
        vault.insert("command_secret", "s3cret").unwrap();
        assert_eq!(walk(&vault).len(), 1);
        assert_eq!(kept(&vault), 0);
    }
}
