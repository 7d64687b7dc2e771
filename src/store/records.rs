//! Typed records: the small things the agent keeps one of (the audit head, the lockdown flag,
//! a source's cursor, when a schedule last ran), each under a fixed key in the `meta` tree.
//!
//! A record is declared once, as a [`Key`] (or a [`Family`] of keys) with the codec of its
//! value, in the module that owns it, and read and written only through [`Records`]. The
//! keys and encodings are the ones the store has always used, so a store written by an older
//! version reads the same. `tests/layers.rs` checks that no key is declared twice.

use super::table::{Bytes, Table, Tx, TxError};
use super::StoreError;
use chrono::{DateTime, Utc};
use serde::de::DeserializeOwned;
use serde::Serialize;
use std::borrow::Cow;
use std::fmt::Display;
use std::marker::PhantomData;
use std::str::FromStr;

/// How a record's value is written.
pub trait Codec {
    /// The value's type.
    type Value;
    /// The value as stored.
    fn encode(value: &Self::Value) -> Result<Vec<u8>, StoreError>;
    /// The stored bytes as a value.
    fn decode(bytes: &[u8]) -> Result<Self::Value, StoreError>;
}

/// JSON, for structured records (the audit head, cursors).
pub struct Json<T>(PhantomData<T>);

impl<T: Serialize + DeserializeOwned> Codec for Json<T> {
    type Value = T;
    fn encode(value: &T) -> Result<Vec<u8>, StoreError> {
        super::encode(value)
    }
    fn decode(bytes: &[u8]) -> Result<T, StoreError> {
        super::decode(bytes)
    }
}

/// Plain text through `Display` and `FromStr` (counters, timers, fingerprints).
pub struct Text<T>(PhantomData<T>);

impl<T: Display + FromStr> Codec for Text<T> {
    type Value = T;
    fn encode(value: &T) -> Result<Vec<u8>, StoreError> {
        Ok(value.to_string().into_bytes())
    }
    fn decode(bytes: &[u8]) -> Result<T, StoreError> {
        std::str::from_utf8(bytes)
            .ok()
            .and_then(|t| t.parse().ok())
            .ok_or_else(|| StoreError::Corrupt("a text record does not parse".into()))
    }
}

/// A time as RFC 3339 text.
pub struct Time;

impl Codec for Time {
    type Value = DateTime<Utc>;
    fn encode(value: &DateTime<Utc>) -> Result<Vec<u8>, StoreError> {
        Ok(value.to_rfc3339().into_bytes())
    }
    fn decode(bytes: &[u8]) -> Result<DateTime<Utc>, StoreError> {
        std::str::from_utf8(bytes)
            .ok()
            .and_then(|t| DateTime::parse_from_rfc3339(t).ok())
            .map(|t| t.with_timezone(&Utc))
            .ok_or_else(|| StoreError::Corrupt("a time record does not parse".into()))
    }
}

/// A flag: set (stored as `1`) or absent. Any stored value counts as set.
pub struct Flag;

impl Codec for Flag {
    type Value = ();
    fn encode(_: &()) -> Result<Vec<u8>, StoreError> {
        Ok(b"1".to_vec())
    }
    fn decode(_: &[u8]) -> Result<(), StoreError> {
        Ok(())
    }
}

/// Bytes as they are (ids and codes kept in their store form).
pub struct Raw;

impl Codec for Raw {
    type Value = Vec<u8>;
    fn encode(value: &Vec<u8>) -> Result<Vec<u8>, StoreError> {
        Ok(value.clone())
    }
    fn decode(bytes: &[u8]) -> Result<Vec<u8>, StoreError> {
        Ok(bytes.to_vec())
    }
}

/// The key of one record, with the codec of its value.
pub struct Key<C> {
    name: Cow<'static, [u8]>,
    codec: PhantomData<C>,
}

impl<C> Key<C> {
    /// A fixed key, declared once by the record's owner.
    pub const fn new(name: &'static str) -> Key<C> {
        Key {
            name: Cow::Borrowed(name.as_bytes()),
            codec: PhantomData,
        }
    }

    /// The key as stored.
    pub fn name(&self) -> &[u8] {
        &self.name
    }
}

/// Records of one kind, one per name (`schedule.<job>.last_run`, a breach source's counter per
/// alias): a key prefix and the codec of every value under it.
pub struct Family<C> {
    prefix: &'static str,
    codec: PhantomData<C>,
}

impl<C> Family<C> {
    /// A family of records under `prefix`, declared once by its owner.
    pub const fn new(prefix: &'static str) -> Family<C> {
        Family {
            prefix,
            codec: PhantomData,
        }
    }

    /// The record named `name` (with `suffix` after it, for keys like
    /// `schedule.<job>.last_run`).
    pub fn key_with(&self, name: impl AsRef<[u8]>, suffix: &str) -> Key<C> {
        let name = [self.prefix.as_bytes(), name.as_ref(), suffix.as_bytes()].concat();
        Key {
            name: Cow::Owned(name),
            codec: PhantomData,
        }
    }

    /// The record named `name`.
    pub fn key(&self, name: impl AsRef<[u8]>) -> Key<C> {
        self.key_with(name, "")
    }
}

/// One record of a family as [`Records::scan`] finds it: its name after the prefix, and its
/// value or why it does not read.
pub type Member<V> = (Vec<u8>, Result<V, StoreError>);

/// The typed records, over the `meta` tree. Clones share it.
#[derive(Clone)]
pub struct Records {
    table: Table,
}

impl Records {
    pub(super) fn new(table: Table) -> Records {
        Records { table }
    }

    /// The record's value; an error when it is there but unreadable.
    pub fn get<C: Codec>(&self, key: &Key<C>) -> Result<Option<C::Value>, StoreError> {
        self.table
            .get(key.name())?
            .map(|b| C::decode(&b))
            .transpose()
    }

    /// The record's value, None when it is absent or unreadable (for records whose reader
    /// starts over without them); errors only from the store itself.
    pub fn get_valid<C: Codec>(&self, key: &Key<C>) -> Result<Option<C::Value>, StoreError> {
        Ok(self.table.get(key.name())?.and_then(|b| C::decode(&b).ok()))
    }

    /// True when the record is there.
    pub fn contains<C: Codec>(&self, key: &Key<C>) -> Result<bool, StoreError> {
        self.table.contains_key(key.name())
    }

    /// Writes the record; the bytes it replaced, if any.
    pub fn set<C: Codec>(
        &self,
        key: &Key<C>,
        value: &C::Value,
    ) -> Result<Option<Bytes>, StoreError> {
        self.table.insert(key.name(), C::encode(value)?)
    }

    /// Writes the record unless it is there; true when it wrote it.
    pub fn set_if_absent<C: Codec>(
        &self,
        key: &Key<C>,
        value: &C::Value,
    ) -> Result<bool, StoreError> {
        let bytes = C::encode(value)?;
        self.table
            .compare_and_swap(key.name(), None, Some(bytes.as_slice()))
    }

    /// Removes the record; true when it was there.
    pub fn remove<C: Codec>(&self, key: &Key<C>) -> Result<bool, StoreError> {
        Ok(self.table.remove(key.name())?.is_some())
    }

    /// Every record of `family`: the name after the prefix and the stored bytes, decoded
    /// (an unreadable one as its error, so the caller can drop it).
    pub fn scan<C: Codec>(&self, family: &Family<C>) -> Result<Vec<Member<C::Value>>, StoreError> {
        let prefix = family.prefix.as_bytes();
        self.table
            .scan_prefix(prefix)
            .map(|item| {
                let (key, bytes) = item?;
                Ok((key[prefix.len()..].to_vec(), C::decode(&bytes)))
            })
            .collect()
    }

    /// Runs `change` over `table` and these records in one transaction (the audit log's
    /// entry and its head: both or neither).
    pub fn transaction_with<R>(
        &self,
        table: &Table,
        change: impl Fn(&Tx<'_>, &RecordsTx<'_>) -> Result<R, TxError>,
    ) -> Result<R, StoreError> {
        table.transaction(&self.table, |theirs, records| {
            change(theirs, &RecordsTx { tx: records })
        })
    }
}

/// The records inside a transaction ([`Records::transaction_with`]).
pub struct RecordsTx<'a> {
    tx: &'a Tx<'a>,
}

impl RecordsTx<'_> {
    /// The record's value, as the transaction sees it.
    pub fn get<C: Codec>(&self, key: &Key<C>) -> Result<Option<C::Value>, TxError> {
        match self.tx.get(key.name())? {
            Some(b) => Ok(Some(C::decode(&b)?)),
            None => Ok(None),
        }
    }

    /// Writes the record.
    pub fn set<C: Codec>(&self, key: &Key<C>, value: &C::Value) -> Result<(), TxError> {
        self.tx.insert(key.name(), C::encode(value)?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const FLAG: Key<Flag> = Key::new("test.flag");
    const COUNT: Family<Text<u64>> = Family::new("test.count.");

    #[test]
    fn records_keep_their_keys_and_encodings() {
        let store = crate::store::Store::temporary().unwrap();
        let records = store.records();
        assert!(!records.contains(&FLAG).unwrap());
        records.set(&FLAG, &()).unwrap();
        assert!(records.set_if_absent(&COUNT.key("a"), &3).unwrap());
        assert!(!records.set_if_absent(&COUNT.key("a"), &4).unwrap());
        records.set(&COUNT.key("b"), &7).unwrap();
        let meta = store.table(crate::store::TableId::Meta);
        assert_eq!(meta.get("test.flag").unwrap().unwrap().as_ref(), b"1");
        assert_eq!(meta.get("test.count.a").unwrap().unwrap().as_ref(), b"3");
        meta.insert("test.count.c", "not a number").unwrap();
        assert_eq!(records.get_valid(&COUNT.key("c")).unwrap(), None);
        assert!(records.get(&COUNT.key("c")).is_err());
        let all = records.scan(&COUNT).unwrap();
        let names: Vec<&[u8]> = all.iter().map(|(n, _)| n.as_slice()).collect();
        assert_eq!(names, vec![&b"a"[..], b"b", b"c"]);
        assert!(records.remove(&FLAG).unwrap());
        assert!(!records.remove(&FLAG).unwrap());
    }
}
