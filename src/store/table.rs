//! A handle on one tree of the store, for the one module that owns the records in it.
//!
//! Every byte that goes to disk or comes back passes through [`Table`] (and [`Tx`] inside a
//! transaction), so what the store does to records at rest (sealing them, a later change)
//! is made here once, for every repository. Nothing outside the store layer names a sled
//! type: `tests/layers.rs` fails when something does.

use super::StoreError;
use sled::transaction::{
    ConflictableTransactionError, TransactionalTree, UnabortableTransactionError,
};
use sled::Transactional;

/// A value read from a table. It derefs to `[u8]`.
pub type Bytes = sled::IVec;

/// One tree's records, reached only by the repository that owns them (see
/// [`super::TableId`] for who that is).
#[derive(Clone)]
pub struct Table {
    tree: sled::Tree,
}

impl Table {
    pub(super) fn new(tree: sled::Tree) -> Table {
        Table { tree }
    }

    /// The value at `key`.
    pub fn get(&self, key: impl AsRef<[u8]>) -> Result<Option<Bytes>, StoreError> {
        Ok(self.tree.get(key)?)
    }

    /// Writes `value` at `key`; the value it replaced.
    pub fn insert(
        &self,
        key: impl AsRef<[u8]>,
        value: impl AsRef<[u8]>,
    ) -> Result<Option<Bytes>, StoreError> {
        Ok(self.tree.insert(key.as_ref(), value.as_ref())?)
    }

    /// Removes `key`; the value it held.
    pub fn remove(&self, key: impl AsRef<[u8]>) -> Result<Option<Bytes>, StoreError> {
        Ok(self.tree.remove(key)?)
    }

    /// True when `key` holds a value.
    pub fn contains_key(&self, key: impl AsRef<[u8]>) -> Result<bool, StoreError> {
        Ok(self.tree.contains_key(key)?)
    }

    /// Writes `new` at `key` (None removes it) only if it holds `old` (None: nothing). True
    /// when it did: a writer that read the record before another changed it loses.
    pub fn compare_and_swap(
        &self,
        key: impl AsRef<[u8]>,
        old: Option<&[u8]>,
        new: Option<&[u8]>,
    ) -> Result<bool, StoreError> {
        Ok(self.tree.compare_and_swap(key, old, new)?.is_ok())
    }

    /// Every record, in key order (reversible).
    pub fn iter(&self) -> impl DoubleEndedIterator<Item = Result<(Bytes, Bytes), StoreError>> {
        self.tree.iter().map(|r| r.map_err(StoreError::from))
    }

    /// The records whose keys start with `prefix`, in key order.
    pub fn scan_prefix(
        &self,
        prefix: &[u8],
    ) -> impl DoubleEndedIterator<Item = Result<(Bytes, Bytes), StoreError>> {
        self.tree
            .scan_prefix(prefix)
            .map(|r| r.map_err(StoreError::from))
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
                change(&Tx { tree: mine }, &Tx { tree: theirs }).map_err(|e| e.0)
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
}

impl Tx<'_> {
    /// The value at `key`, as the transaction sees it.
    pub fn get(&self, key: impl AsRef<[u8]>) -> Result<Option<Bytes>, TxError> {
        Ok(self.tree.get(key)?)
    }

    /// Writes `value` at `key`.
    pub fn insert(&self, key: impl AsRef<[u8]>, value: impl AsRef<[u8]>) -> Result<(), TxError> {
        self.tree.insert(key.as_ref(), value.as_ref())?;
        Ok(())
    }

    /// Removes `key`.
    pub fn remove(&self, key: impl AsRef<[u8]>) -> Result<(), TxError> {
        self.tree.remove(key.as_ref())?;
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
