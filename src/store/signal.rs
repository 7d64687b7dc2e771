//! The Signal channel's state in the store: the owner's messages taken in and not answered
//! yet, the ids already acted on, the approval prompts a reaction can answer, whether the
//! owner's safety number is blocked, and their disappearing-message timer.
//!
//! One repository for all of it, so the gate (which acts on the owner's messages), the
//! gateway channel (which must not send to a blocked identity) and `trust` (which lifts the
//! block) ask the same owner and never open a tree.

use super::records::{Flag, Key, Records, Text};
use super::table::{Bytes, Entry, Table};
use super::{Store, StoreError, TableId};

/// Set while the owner's safety number changed and the operator has not run `trust`.
const IDENTITY_BLOCKED: Key<Flag> = Key::new("signal.identity_blocked");
/// The owner's latest disappearing-message timer, in seconds.
const EXPIRE_TIMER: Key<Text<u32>> = Key::new("signal.expire_timer");

/// The Signal channel's records. Clones share them.
#[derive(Clone)]
pub struct SignalState {
    inbox: Table,
    seen: Table,
    prompts: Table,
    records: Records,
}

impl SignalState {
    /// Uses the store's `signal_inbox`, `signal_seen` and `signal_prompts` trees and its two
    /// Signal records.
    pub fn new(store: &Store) -> SignalState {
        SignalState {
            inbox: store.table(TableId::SignalInbox),
            seen: store.table(TableId::SignalSeen),
            prompts: store.table(TableId::SignalPrompts),
            records: store.records(),
        }
    }

    /// Records the id of an owner's message or reaction as acted on, with when (`now_ms`);
    /// false when it was recorded before (a line sent again after a reconnect).
    pub fn first_time(&self, id: &str, now_ms: i64) -> Result<bool, StoreError> {
        let now = now_ms.to_string();
        self.seen
            .compare_and_swap(id.as_bytes(), None, Some(now.as_bytes()))
    }

    /// Remembers which approval (by its code's store key) the prompt sent with Signal
    /// timestamp `sent_as` asks about: a 👍 or 👎 on it answers it.
    pub fn remember_prompt(&self, sent_as: u64, code_key: &[u8]) -> Result<(), StoreError> {
        self.prompts.insert(sent_as.to_be_bytes(), code_key)?;
        Ok(())
    }

    /// The code the prompt sent as `target` asks about, if it was one.
    pub fn prompt(&self, target: u64) -> Result<Option<String>, StoreError> {
        Ok(self
            .prompts
            .get(target.to_be_bytes())?
            .map(|c| String::from_utf8_lossy(&c).into_owned()))
    }

    /// Records an owner message under `key` before it is acted on (the caller flushes).
    pub fn take_in(&self, key: [u8; 8], body: &[u8]) -> Result<(), StoreError> {
        self.inbox.insert(key, body)?;
        Ok(())
    }

    /// Records an owner message (or reaction) under `key` before it is acted on, and its
    /// Signal id `id` as seen, in one transaction (the caller flushes): false, and nothing
    /// written, when the id was seen before (a line sent again after a reconnect). Both or
    /// neither: an id marked seen without its message would be acknowledged when it comes
    /// again and never acted on.
    pub fn take_in_once(
        &self,
        key: [u8; 8],
        body: &[u8],
        id: &str,
        now_ms: i64,
    ) -> Result<bool, StoreError> {
        let now = now_ms.to_string();
        self.inbox.transaction(&self.seen, |inbox, seen| {
            if seen.get(id)?.is_some() {
                return Ok(false);
            }
            seen.insert(id, now.as_bytes())?;
            inbox.insert(key, body)?;
            Ok(true)
        })
    }

    /// The owner messages taken in and never answered (a crash cut them off), oldest first.
    /// Records the store cannot read are left out.
    pub fn cut_off(&self) -> Vec<(Bytes, Bytes)> {
        self.inbox.iter().filter_map(Result::ok).collect()
    }

    /// Forgets a taken-in message without answering it.
    pub fn forget(&self, key: &[u8]) -> Result<(), StoreError> {
        self.inbox.remove(key)?;
        Ok(())
    }

    /// The taken-in message `key`, for the outbox to forget in the transaction that queues
    /// its reply.
    pub fn taken(&self, key: &[u8; 8]) -> Entry<'_> {
        self.inbox.entry(key)
    }

    /// True while the owner's safety number changed and nobody confirmed it.
    pub fn identity_blocked(&self) -> Result<bool, StoreError> {
        self.records.contains(&IDENTITY_BLOCKED)
    }

    /// Blocks the owner's identity until `trust`.
    pub fn block_identity(&self) -> Result<(), StoreError> {
        self.records.set(&IDENTITY_BLOCKED, &())?;
        Ok(())
    }

    /// Lifts the block; true when there was one.
    pub fn trust(&self) -> Result<bool, StoreError> {
        self.records.remove(&IDENTITY_BLOCKED)
    }

    /// The owner's latest disappearing-message timer, when one was seen and reads.
    pub fn expire_timer(&self) -> Result<Option<u32>, StoreError> {
        self.records.get_valid(&EXPIRE_TIMER)
    }

    /// Records the owner's latest disappearing-message timer.
    pub fn set_expire_timer(&self, seconds: u32) -> Result<(), StoreError> {
        self.records.set(&EXPIRE_TIMER, &seconds)?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What older versions wrote reads the same, and what this one writes is what they
    /// wrote.
    #[test]
    fn the_signal_records_keep_their_keys_and_encodings() {
        let store = Store::temporary().unwrap();
        let meta = store.table(TableId::Meta);
        let signal = SignalState::new(&store);
        assert!(!signal.identity_blocked().unwrap());
        meta.insert("signal.identity_blocked", "1").unwrap();
        meta.insert("signal.expire_timer", "3600").unwrap();
        assert!(signal.identity_blocked().unwrap());
        assert_eq!(signal.expire_timer().unwrap(), Some(3600));
        assert!(signal.trust().unwrap());
        assert!(!signal.trust().unwrap());
        signal.block_identity().unwrap();
        signal.set_expire_timer(60).unwrap();
        assert_eq!(
            meta.get("signal.identity_blocked")
                .unwrap()
                .unwrap()
                .as_ref(),
            b"1"
        );
        assert_eq!(
            meta.get("signal.expire_timer").unwrap().unwrap().as_ref(),
            b"60"
        );

        assert!(signal.first_time("m1", 5).unwrap());
        assert!(!signal.first_time("m1", 6).unwrap());
        let seen = store.table(TableId::SignalSeen);
        assert_eq!(seen.get("m1").unwrap().unwrap().as_ref(), b"5");
        signal.remember_prompt(42, b"ABCDEFGHJK").unwrap();
        let prompts = store.table(TableId::SignalPrompts);
        assert_eq!(
            prompts.get(42u64.to_be_bytes()).unwrap().unwrap().as_ref(),
            b"ABCDEFGHJK"
        );
        assert_eq!(signal.prompt(42).unwrap().as_deref(), Some("ABCDEFGHJK"));
        signal.take_in(7u64.to_be_bytes(), b"list").unwrap();
        let inbox = store.table(TableId::SignalInbox);
        assert_eq!(
            inbox.get(7u64.to_be_bytes()).unwrap().unwrap().as_ref(),
            b"list"
        );
        assert_eq!(signal.cut_off().len(), 1);
        assert!(signal
            .take_in_once(8u64.to_be_bytes(), b"help", "m2", 7)
            .unwrap());
        assert!(!signal
            .take_in_once(9u64.to_be_bytes(), b"help", "m2", 8)
            .unwrap());
        assert!(!signal
            .take_in_once(9u64.to_be_bytes(), b"x", "m1", 8)
            .unwrap());
        assert_eq!(seen.get("m2").unwrap().unwrap().as_ref(), b"7");
        assert_eq!(signal.cut_off().len(), 2);
        signal.forget(&8u64.to_be_bytes()).unwrap();
        signal.forget(&7u64.to_be_bytes()).unwrap();
        assert!(signal.cut_off().is_empty());
    }
}
