//! Privacy.com, API v1.
//!
//! Shapes from the Privacy.com developer docs (https://privacy-com.readme.io/docs, "Cards",
//! "Transactions", "Errors"): header `Authorization: api-key KEY`; `POST /cards {type, memo,
//! spend_limit, spend_limit_duration, state}`; `PATCH /cards/{card_token}`;
//! `GET /cards?page=&page_size=` -> `{data, page, total_entries, total_pages}`;
//! `GET /transactions?card_token=&result=&begin=&end=&page=&page_size=` (same paging; without
//! `card_token` every card of the account; `begin`/`end` are `YYYY-MM-DD` days, "only entries
//! created after the specified date", UTC; `result` is `APPROVED` or the decline reason,
//! e.g. `CARD_PAUSED`, `CARD_CLOSED`, `UNAUTHORIZED_MERCHANT`, `USER_TRANSACTION_LIMIT`, per
//! the "Transactions" page and the Privacy-era `transaction.py` of lithic-python;
//! `merchant.descriptor`; the card embedded as `card`); errors `{"message": "..."}`. A key that
//! cannot issue cards is refused with "Issuing API key required". Card objects carry `pan`
//! and `cvv`: the types here never read them.

use super::addy::path_segment;
use super::card_activity::{reached, RawAccountTxn, TxnBatch, TxnCursor};
use super::http::{Idempotency, ProviderClient, RetryPolicy};
use super::{
    checked_last_four, decode, fitting, CardInfo, CardProvider, CardState, CardTransaction,
    CardUpdate, NewCard, ProviderError, Transaction,
};
use reqwest::Method;
use serde::Deserialize;
use serde_json::{json, Map, Value};

/// The real service.
pub const DEFAULT_BASE_URL: &str = "https://api.privacy.com/v1";
/// The sandbox.
pub const SANDBOX_BASE_URL: &str = "https://sandbox.privacy.com/v1";
const NAME: &str = "Privacy.com";
const PAGE_SIZE: u32 = 50;
const MAX_PAGES: u32 = 10_000;

/// A Privacy.com client.
#[derive(Debug, Clone)]
pub struct Privacy {
    client: ProviderClient,
}

/// The card fields the agent reads; everything else (pan, cvv, exp_*) is ignored unread.
#[derive(Deserialize)]
pub(crate) struct RawCard {
    pub token: String,
    #[serde(default)]
    pub last_four: String,
    #[serde(default)]
    pub memo: String,
    #[serde(default)]
    pub spend_limit: u64,
    #[serde(default)]
    pub spend_limit_duration: String,
    pub state: CardState,
}

impl RawCard {
    /// The card as the agent keeps it, its last four checked ([`checked_last_four`]);
    /// `provider` names Privacy.com or Lithic, which share this shape.
    pub(crate) fn into_info(self, provider: &'static str) -> Result<CardInfo, ProviderError> {
        Ok(CardInfo {
            token: self.token,
            last_four: checked_last_four(provider, self.last_four)?,
            memo: self.memo,
            spend_limit: self.spend_limit,
            spend_limit_duration: self.spend_limit_duration,
            state: self.state,
        })
    }
}

#[derive(Deserialize)]
struct Page<T> {
    data: Vec<T>,
    #[serde(default)]
    page: u32,
    #[serde(default)]
    total_pages: u32,
}

#[derive(Deserialize)]
pub(crate) struct RawTransaction {
    pub token: String,
    #[serde(default)]
    pub amount: i64,
    #[serde(default)]
    pub merchant: Value,
    #[serde(default)]
    pub status: String,
    #[serde(default)]
    pub created: String,
}

impl From<RawTransaction> for Transaction {
    fn from(t: RawTransaction) -> Transaction {
        let merchant = t
            .merchant
            .get("descriptor")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string();
        Transaction {
            token: t.token,
            amount: t.amount,
            merchant: crate::redact::truncate(
                &crate::text::escape(&merchant, crate::text::Lines::Single),
                60,
            ),
            status: t.status,
            created: t.created,
        }
    }
}

/// The JSON body for a card update, shared with Lithic (same field names).
pub(crate) fn update_body(update: &CardUpdate) -> Value {
    let mut body = Map::new();
    if let Some(state) = update.state {
        body.insert(
            "state".into(),
            serde_json::to_value(state).unwrap_or(Value::Null),
        );
    }
    if let Some(limit) = update.spend_limit_cents {
        body.insert("spend_limit".into(), json!(limit));
        body.insert("spend_limit_duration".into(), json!("FOREVER"));
    }
    Value::Object(body)
}

/// The JSON body for a new card, shared with Lithic: merchant-locked, paused, one limit.
pub(crate) fn create_body(new: &NewCard) -> Value {
    json!({
        "type": "MERCHANT_LOCKED",
        "memo": new.memo,
        "spend_limit": new.spend_limit_cents,
        "spend_limit_duration": "FOREVER",
        "state": "PAUSED",
    })
}

impl Privacy {
    /// A client at `base` with `key`.
    pub fn new(
        base: &str,
        key: &str,
        policy: RetryPolicy,
        egress: &crate::egress::Egress,
    ) -> Result<Privacy, ProviderError> {
        let client = ProviderClient::new(
            NAME,
            base,
            ("authorization", format!("api-key {key}")),
            &[],
            policy,
            egress,
        )?;
        Ok(Privacy { client })
    }

    async fn call(
        &self,
        method: Method,
        path: &str,
        query: &[(&str, String)],
        body: Option<&Value>,
        idem: Idempotency,
    ) -> Result<Value, ProviderError> {
        match self.client.request(method, path, query, body, idem).await {
            Ok(r) => Ok(r.body),
            Err(ProviderError::KeyRejected { status, message, .. } | ProviderError::Rejected { status, message, .. })
                if message.to_ascii_lowercase().contains("issuing") =>
            {
                Err(ProviderError::KeyRejected {
                    provider: NAME,
                    status,
                    message: format!(
                        "this API key has no write access to cards (Privacy.com says: {message}); ask Privacy.com for an Issuing API key"
                    ),
                })
            }
            Err(e) => Err(e),
        }
    }

    async fn all_cards(&self) -> Result<(Vec<CardInfo>, u32), ProviderError> {
        let mut out = Vec::new();
        let mut requests = 0;
        for page in 1..=MAX_PAGES {
            let body = self
                .call(
                    Method::GET,
                    "/cards",
                    &[
                        ("page", page.to_string()),
                        ("page_size", PAGE_SIZE.to_string()),
                    ],
                    None,
                    Idempotency::Idempotent,
                )
                .await?;
            requests += 1;
            let p: Page<RawCard> = decode(NAME, body)?;
            out.extend(fitting(NAME, p.data.into_iter().map(|r| r.into_info(NAME))));
            if p.page >= p.total_pages {
                break;
            }
        }
        Ok((out, requests))
    }
}

impl CardProvider for Privacy {
    fn name(&self) -> &'static str {
        NAME
    }

    async fn create(&self, new: &NewCard) -> Result<CardInfo, ProviderError> {
        let body = self
            .call(
                Method::POST,
                "/cards",
                &[],
                Some(&create_body(new)),
                Idempotency::Create,
            )
            .await?;
        let raw: RawCard = decode(NAME, body)?;
        raw.into_info(NAME)
    }

    async fn update(&self, token: &str, update: &CardUpdate) -> Result<CardInfo, ProviderError> {
        let path = format!("/cards/{}", path_segment(token)?);
        let body = self
            .call(
                Method::PATCH,
                &path,
                &[],
                Some(&update_body(update)),
                Idempotency::Idempotent,
            )
            .await?;
        let raw: RawCard = decode(NAME, body)?;
        raw.into_info(NAME)
    }

    /// `GET /cards?card_token=` (the list filtered to one card, as the docs give it).
    async fn get(&self, token: &str) -> Result<CardInfo, ProviderError> {
        let body = self
            .call(
                Method::GET,
                "/cards",
                &[("card_token", token.to_string())],
                None,
                Idempotency::Idempotent,
            )
            .await?;
        let p: Page<RawCard> = decode(NAME, body)?;
        match p.data.into_iter().find(|c| c.token == token) {
            Some(raw) => raw.into_info(NAME),
            None => Err(ProviderError::Rejected {
                provider: NAME,
                status: 404,
                message: "card not found".into(),
            }),
        }
    }

    async fn list(&self) -> Result<(Vec<CardInfo>, u32), ProviderError> {
        self.all_cards().await
    }

    async fn find_by_marker(&self, marker: &str) -> Result<Option<CardInfo>, ProviderError> {
        Ok(self
            .all_cards()
            .await?
            .0
            .into_iter()
            .find(|c| c.memo.contains(marker)))
    }

    async fn transactions(&self, token: &str) -> Result<Vec<Transaction>, ProviderError> {
        let body = self
            .call(
                Method::GET,
                "/transactions",
                &[
                    ("card_token", path_segment(token)?.to_string()),
                    ("page", "1".into()),
                ],
                None,
                Idempotency::Idempotent,
            )
            .await?;
        let p: Page<RawTransaction> = decode(NAME, body)?;
        Ok(p.data.into_iter().map(Transaction::from).collect())
    }

    async fn account_transactions(
        &self,
        cursor: Option<&TxnCursor>,
    ) -> Result<TxnBatch, ProviderError> {
        let mut batch = TxnBatch::default();
        let begin = cursor.and_then(TxnCursor::day);
        for page in 1..=MAX_PAGES {
            let mut query = vec![
                ("page", page.to_string()),
                ("page_size", PAGE_SIZE.to_string()),
            ];
            if let Some(day) = &begin {
                query.push(("begin", day.clone()));
            }
            let body = self
                .call(
                    Method::GET,
                    "/transactions",
                    &query,
                    None,
                    Idempotency::Idempotent,
                )
                .await?;
            batch.requests += 1;
            let p: Page<RawAccountTxn> = decode(NAME, body)?;
            let items: Vec<CardTransaction> = p.data.into_iter().map(Into::into).collect();
            let done = p.page >= p.total_pages || items.is_empty() || reached(&items, cursor);
            batch.items.extend(items);
            if done {
                break;
            }
        }
        Ok(batch)
    }
}
