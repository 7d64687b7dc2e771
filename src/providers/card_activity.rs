//! Every card's new transactions in one account-wide read, for the breach monitor's card
//! canaries: one cursor for the whole account, never one per card, so a sweep over 1,000
//! cards with nothing new costs one request.
//!
//! Both providers list an account's transactions newest first with a `begin` filter on
//! `created` (Privacy.com `GET /v1/transactions?begin=YYYY-MM-DD&page=&page_size=`, Lithic
//! `GET /v1/transactions?begin=RFC3339&page_size=&starting_after=`; docs/providers.md §3-4).
//! The cursor is the newest `created` read and the tokens created at that instant. A read
//! starts at the cursor and stops after the page that reaches it (holds one of its tokens or
//! something older), so N new transactions cost about N / page size requests more. Newest
//! first is not confirmed in either provider's docs: a page that is not in that order is
//! never taken as the end, and every page is read instead. Transactions are fingerprinted by
//! token where they become incidents, so reading one twice counts nothing twice.
//!
//! The fields read are listed in docs/providers.md ("Card canaries"): `token`, `card_token`
//! (Lithic) or `card.token` (Privacy.com embeds the card, whose `pan` and `cvv` are never
//! read), `created`, `amount`, `result`, `status` and `merchant.descriptor`.

use super::CardTransaction;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// How far the account's transactions have been read.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TxnCursor {
    /// The newest `created` read (RFC 3339, as the provider wrote it).
    pub newest: String,
    /// The tokens of the transactions created at `newest`.
    pub tokens: Vec<String>,
}

/// What one read returned.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct TxnBatch {
    /// Every transaction read, newest first as the provider sent them.
    pub items: Vec<CardTransaction>,
    /// Requests made.
    pub requests: u32,
}

fn time(s: &str) -> Option<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(s)
        .ok()
        .map(|t| t.with_timezone(&Utc))
}

impl TxnCursor {
    /// The cursor after `items` were read (None when there is nothing to point at).
    pub fn after(old: Option<&TxnCursor>, items: &[CardTransaction]) -> Option<TxnCursor> {
        let mut best: Option<(DateTime<Utc>, TxnCursor)> =
            old.and_then(|c| Some((time(&c.newest)?, c.clone())));
        for t in items {
            let Some(at) = time(&t.created) else { continue };
            match &mut best {
                Some((b, c)) if at == *b => {
                    if !c.tokens.contains(&t.token) {
                        c.tokens.push(t.token.clone());
                    }
                }
                Some((b, _)) if at < *b => {}
                _ => {
                    best = Some((
                        at,
                        TxnCursor {
                            newest: t.created.clone(),
                            tokens: vec![t.token.clone()],
                        },
                    ))
                }
            }
        }
        best.map(|(_, c)| c)
    }

    /// `begin` for Privacy.com: the cursor's day (`YYYY-MM-DD`, whole days, inclusive).
    pub fn day(&self) -> Option<String> {
        time(&self.newest).map(|t| t.format("%Y-%m-%d").to_string())
    }

    /// `begin` for Lithic: a second before the cursor (RFC 3339, UTC), so that transactions
    /// created in the cursor's own second are read again rather than missed.
    pub fn instant(&self) -> Option<String> {
        time(&self.newest).map(|t| {
            (t - chrono::Duration::seconds(1))
                .format("%Y-%m-%dT%H:%M:%SZ")
                .to_string()
        })
    }
}

/// True when `page` (in the order the provider sent it) shows that everything after it has
/// been read before: it is newest first, and it holds one of the cursor's tokens or a
/// transaction older than the cursor.
pub fn reached(page: &[CardTransaction], cursor: Option<&TxnCursor>) -> bool {
    let Some(cursor) = cursor else {
        return false;
    };
    let Some(newest) = time(&cursor.newest) else {
        return false;
    };
    let times: Vec<Option<DateTime<Utc>>> = page.iter().map(|t| time(&t.created)).collect();
    let newest_first = times
        .windows(2)
        .all(|w| matches!((w[0], w[1]), (Some(a), Some(b)) if a >= b));
    newest_first
        && (page.iter().any(|t| cursor.tokens.contains(&t.token))
            || times.iter().any(|t| t.is_some_and(|t| t < newest)))
}

#[derive(Deserialize)]
struct CardRef {
    token: String,
}

/// The transaction fields the canaries read; everything else (the embedded card's `pan`,
/// `cvv`, ...) is left unread.
#[derive(Deserialize)]
pub(crate) struct RawAccountTxn {
    token: String,
    #[serde(default)]
    card_token: Option<String>,
    #[serde(default)]
    card: Option<CardRef>,
    #[serde(default)]
    created: String,
    #[serde(default)]
    amount: i64,
    #[serde(default)]
    result: String,
    #[serde(default)]
    status: String,
    #[serde(default)]
    merchant: Value,
}

impl From<RawAccountTxn> for CardTransaction {
    fn from(t: RawAccountTxn) -> CardTransaction {
        let descriptor = t
            .merchant
            .get("descriptor")
            .and_then(Value::as_str)
            .unwrap_or_default();
        CardTransaction {
            card_token: t.card_token.or(t.card.map(|c| c.token)).unwrap_or_default(),
            token: t.token,
            created: t.created,
            amount: t.amount,
            result: crate::text::escape_cut(&t.result, crate::text::Lines::Single, 40),
            status: crate::text::escape_cut(&t.status, crate::text::Lines::Single, 40),
            merchant: crate::text::escape_cut(descriptor, crate::text::Lines::Single, 60),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(token: &str, created: &str) -> CardTransaction {
        CardTransaction {
            token: token.into(),
            card_token: "c".into(),
            created: created.into(),
            amount: 0,
            result: "APPROVED".into(),
            status: "SETTLED".into(),
            merchant: "X".into(),
        }
    }

    #[test]
    fn the_cursor_keeps_the_newest_instant() {
        let items = [
            t("b", "2026-12-01T10:00:05Z"),
            t("c", "2026-12-01T10:00:05Z"),
            t("a", "2026-12-01T09:00:00Z"),
        ];
        let c = TxnCursor::after(None, &items).unwrap();
        assert_eq!(c.newest, "2026-12-01T10:00:05Z");
        assert_eq!(c.tokens, vec!["b", "c"]);
        assert_eq!(c.day().as_deref(), Some("2026-12-01"));
        assert_eq!(c.instant().as_deref(), Some("2026-12-01T10:00:04Z"));
        // Nothing newer: the cursor stays.
        assert_eq!(TxnCursor::after(Some(&c), &items[2..]), Some(c.clone()));
        assert_eq!(TxnCursor::after(None, &[]), None);
    }

    #[test]
    fn a_page_reaches_the_cursor_only_newest_first() {
        let c = TxnCursor {
            newest: "2026-12-01T10:00:00Z".into(),
            tokens: vec!["old".into()],
        };
        let new_only = [
            t("n2", "2026-12-01T11:00:01Z"),
            t("n1", "2026-12-01T11:00:00Z"),
        ];
        assert!(!reached(&new_only, Some(&c)));
        let with_old = [
            t("n1", "2026-12-01T11:00:00Z"),
            t("old", "2026-12-01T10:00:00Z"),
        ];
        assert!(reached(&with_old, Some(&c)));
        let oldest_first = [
            t("old", "2026-12-01T10:00:00Z"),
            t("n1", "2026-12-01T11:00:00Z"),
        ];
        assert!(!reached(&oldest_first, Some(&c)));
        assert!(!reached(&with_old, None));
    }
}
