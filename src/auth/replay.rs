//! The replay cache: every signature accepted inside the window, persisted so that a restart
//! does not reopen the window for an envelope that was already carried out.

use crate::store::{Store, StoreError, Table, TableId};
use chrono::{DateTime, Utc};

/// The persisted set of accepted signatures and when each may be forgotten.
#[derive(Clone)]
pub struct ReplayCache {
    tree: Table,
}

impl ReplayCache {
    /// Uses the store's `replay` tree.
    pub fn new(store: &Store) -> ReplayCache {
        ReplayCache {
            tree: store.table(TableId::Replay),
        }
    }

    /// Records `sig` as accepted until `forget_after`. Returns false, and records nothing,
    /// when it was already accepted: the envelope is a replay.
    pub fn insert_new(
        &self,
        sig: &[u8; 32],
        forget_after: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        let value = forget_after.timestamp().to_be_bytes();
        self.tree.compare_and_swap(sig, None, Some(&value[..]))
    }

    /// True when `sig` was accepted (and is not forgotten yet).
    pub fn contains(&self, sig: &[u8; 32]) -> Result<bool, StoreError> {
        self.tree.contains_key(sig)
    }

    /// Drops signatures whose envelopes can no longer pass the time window anyway.
    pub fn prune(&self, now: DateTime<Utc>) -> Result<usize, StoreError> {
        let mut removed = 0;
        for item in self.tree.iter() {
            let (key, value) = item?;
            let forget_after = value
                .as_ref()
                .try_into()
                .map(i64::from_be_bytes)
                .unwrap_or(i64::MIN);
            if forget_after < now.timestamp() {
                self.tree.remove(key)?;
                removed += 1;
            }
        }
        Ok(removed)
    }

    /// How many signatures are remembered.
    pub fn len(&self) -> usize {
        self.tree.len()
    }

    /// True when none are.
    pub fn is_empty(&self) -> bool {
        self.tree.is_empty()
    }
}
