//! The headers of the mail each context's alias received, as the breach monitor read them:
//! one record per context, newest first, at most [`KEEP`] messages. `inbox` pages through it
//! without touching the mailbox for headers; `mail {id}` finds a message's context here, so
//! only mail delivered to one of the owner's aliases can ever be opened through the agent.
//!
//! Nothing of a body is ever stored: a body is fetched when asked and dropped.

use crate::store::{decode, encode, Store, StoreError, Table, TableId};
use serde::{Deserialize, Serialize};

/// The most messages kept per context: the newest.
pub const KEEP: usize = 200;

/// One message delivered to a context's alias.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MailEntry {
    /// What the owner is shown of it.
    #[serde(flatten)]
    pub header: MailHeader,
    /// The mailbox's UIDVALIDITY when it was read: an id means nothing under another.
    pub uid_validity: u32,
}

/// What the owner is shown of a message, at the head of `inbox`'s lines and of `mail`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MailHeader {
    /// Its IMAP UID: the id the owner names it by.
    pub id: u32,
    /// When the server received it (RFC 3339), else its `Date:`.
    pub at: String,
    /// The original sender's address (escaped).
    pub from: String,
    /// The sender's registrable domain.
    pub sender_domain: String,
    /// The subject (escaped, cut).
    pub subject: String,
    /// The incident it counts toward, when its sender does not belong to the site.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub incident: Option<String>,
}

/// The index. Clones share it.
#[derive(Clone)]
pub struct MailIndex {
    table: Table,
}

impl MailIndex {
    /// Uses the store's `mail_index` tree.
    pub fn new(store: &Store) -> MailIndex {
        MailIndex {
            table: store.table(TableId::MailIndex),
        }
    }

    /// Every message of `context` known, newest first.
    pub fn all(&self, context: &str) -> Result<Vec<MailEntry>, StoreError> {
        match self.table.get(context.as_bytes())? {
            Some(bytes) => decode(&bytes),
            None => Ok(Vec::new()),
        }
    }

    /// Adds what a sweep read for `context`. Messages read under another UIDVALIDITY are
    /// dropped (their ids mean nothing any more), a message already known is kept once,
    /// and only the newest [`KEEP`] stay.
    pub fn add(&self, context: &str, new: Vec<MailEntry>) -> Result<(), StoreError> {
        let Some(validity) = new.first().map(|e| e.uid_validity) else {
            return Ok(());
        };
        let mut all: Vec<MailEntry> = self
            .all(context)?
            .into_iter()
            .filter(|e| e.uid_validity == validity)
            .collect();
        // UIDs grow in the order mail arrives: newest first is highest first. (A `Date:`
        // is the sender's to write, so it orders nothing.) A first sweep of a large mailbox
        // brings thousands at once: only the newest KEEP of them can stay.
        let mut new = new;
        new.sort_by_key(|e| std::cmp::Reverse(e.header.id));
        new.dedup_by_key(|e| e.header.id);
        new.truncate(KEEP);
        let known: std::collections::HashSet<u32> = all.iter().map(|e| e.header.id).collect();
        all.extend(new.into_iter().filter(|e| !known.contains(&e.header.id)));
        all.sort_by_key(|e| std::cmp::Reverse(e.header.id));
        all.truncate(KEEP);
        self.table.insert(context.as_bytes(), encode(&all)?)?;
        Ok(())
    }

    /// The page of `context`'s messages older than `after` (all when None), newest first,
    /// at most `limit`, and how many older ones are left after it.
    pub fn page(
        &self,
        context: &str,
        after: Option<u32>,
        limit: usize,
    ) -> Result<(Vec<MailEntry>, usize), StoreError> {
        let older: Vec<MailEntry> = self
            .all(context)?
            .into_iter()
            .filter(|e| after.is_none_or(|a| e.header.id < a))
            .collect();
        let left = older.len().saturating_sub(limit);
        Ok((older.into_iter().take(limit).collect(), left))
    }

    /// The message `id` among `contexts`' mail, with the context it was delivered to.
    pub fn find<'a>(
        &self,
        contexts: impl IntoIterator<Item = &'a str>,
        id: u32,
    ) -> Result<Option<(String, MailEntry)>, StoreError> {
        for context in contexts {
            if let Some(e) = self.all(context)?.into_iter().find(|e| e.header.id == id) {
                return Ok(Some((context.to_string(), e)));
            }
        }
        Ok(None)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(id: u32, validity: u32) -> MailEntry {
        MailEntry {
            header: MailHeader {
                id,
                at: "2026-12-07T14:02:00Z".into(),
                from: "team@notion.so".into(),
                sender_domain: "notion.so".into(),
                subject: format!("m{id}"),
                incident: None,
            },
            uid_validity: validity,
        }
    }

    #[test]
    fn a_record_is_one_flat_object_as_stored_before_the_header_was_its_own_type() {
        let stored = r#"{"id":7,"uid_validity":3,"at":"2026-12-07T14:02:00Z","from":"team@notion.so","sender_domain":"notion.so","subject":"m7"}"#;
        let e: MailEntry = decode(stored.as_bytes()).unwrap();
        assert_eq!(e, entry(7, 3));
        let back: serde_json::Value = serde_json::from_slice(&encode(&e).unwrap()).unwrap();
        assert_eq!(
            back,
            serde_json::from_str::<serde_json::Value>(stored).unwrap()
        );
    }

    #[test]
    fn newest_first_capped_paged_and_renumbered() {
        let store = Store::temporary().unwrap();
        let index = MailIndex::new(&store);
        index
            .add("notion", (1..=150).map(|i| entry(i, 7)).collect())
            .unwrap();
        index
            .add("notion", (100..=260).map(|i| entry(i, 7)).collect())
            .unwrap();
        let all = index.all("notion").unwrap();
        assert_eq!(all.len(), KEEP);
        assert_eq!((all[0].header.id, all[KEEP - 1].header.id), (260, 61));
        let (page, left) = index.page("notion", Some(100), 10).unwrap();
        assert_eq!(
            page.iter().map(|e| e.header.id).collect::<Vec<_>>(),
            (90..=99).rev().collect::<Vec<_>>()
        );
        assert_eq!(left, 29);
        assert!(index.find(["other", "notion"], 75).unwrap().is_some());
        assert!(index.find(["notion"], 5).unwrap().is_none());
        // A new UIDVALIDITY: the old ids are gone.
        index.add("notion", vec![entry(1, 8)]).unwrap();
        assert_eq!(index.all("notion").unwrap(), vec![entry(1, 8)]);
        assert!(index.page("nobody", None, 5).unwrap().0.is_empty());
    }
}
