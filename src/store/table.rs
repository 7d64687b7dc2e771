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
use std::sync::Arc;

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
    /// record and sorts them by their real keys, so its readers see what they saw before.
    Hashed,
}

/// What a table does to its records on a sealed store.
#[derive(Clone)]
pub(super) struct TableSeal {
    pub(super) sealer: Arc<Sealer>,
    pub(super) name: &'static str,
    pub(super) keys: Keys,
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

/// One tree's records, reached only by the repository that owns them (see
/// [`super::TableId`] for who that is). On a sealed store every value is sealed and, in a
/// [`Keys::Hashed`] table, every key hashed, here and nowhere else.
#[derive(Clone)]
pub struct Table {
    tree: sled::Tree,
    seal: Option<TableSeal>,
}

impl Table {
    pub(super) fn new(tree: sled::Tree, seal: Option<TableSeal>) -> Table {
        Table { tree, seal }
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
    fn all_sorted(&self, keep: impl Fn(&[u8]) -> bool) -> Vec<Result<(Bytes, Bytes), StoreError>> {
        let Some(s) = &self.seal else {
            return Vec::new();
        };
        let mut found = Vec::new();
        let mut errors = Vec::new();
        for item in self.tree.iter() {
            match item
                .map_err(StoreError::from)
                .and_then(|(dk, raw)| s.open_pair(&dk, &raw))
            {
                Ok((k, v)) if keep(&k) => found.push((k, v)),
                Ok(_) => {}
                Err(e) => errors.push(Err(e)),
            }
        }
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
