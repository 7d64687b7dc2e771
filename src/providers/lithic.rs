//! Lithic.
//!
//! Shapes from the Lithic API reference (https://docs.lithic.com/reference, "Cards",
//! "Transactions", "Pagination") and github.com/lithic-com/lithic-python: header
//! `Authorization: KEY`; `POST /v1/cards`; `PATCH /v1/cards/{card_token}` (`state: OPEN |
//! PAUSED | CLOSED`, closing is final); `GET /v1/cards?page_size=&starting_after=` ->
//! `{data, has_more}` (cursor paging by token); `GET /v1/transactions?card_token=` and, for
//! the whole account, `?begin=&page_size=&starting_after=` (`types/transaction_list_params.py`:
//! `begin` RFC 3339, "Only entries created after the specified time", UTC; `result`
//! `APPROVED | DECLINED` and `status` filters; `types/transaction.py`: `card_token`, `created`,
//! `amount`, `merchant.descriptor`, `result` = `APPROVED` or the decline reason such as
//! `CARD_PAUSED`, `CARD_CLOSED`, `UNAUTHORIZED_MERCHANT`, `status`); errors
//! `{"debugging_request_id", "message"}`.

use super::addy::path_segment;
use super::card_activity::{reached, RawAccountTxn, TxnBatch, TxnCursor};
use super::http::{Idempotency, ProviderClient, RetryPolicy};
use super::privacy::{create_body, update_body, RawCard, RawTransaction};
use super::{
    decode, fitting, CardInfo, CardProvider, CardTransaction, CardUpdate, NewCard, ProviderError,
    Transaction,
};
use reqwest::Method;
use serde::Deserialize;

/// The real service.
pub const DEFAULT_BASE_URL: &str = "https://api.lithic.com";
/// The sandbox.
pub const SANDBOX_BASE_URL: &str = "https://sandbox.lithic.com";
const NAME: &str = "Lithic";
const PAGE_SIZE: u32 = 100;
const MAX_PAGES: u32 = 10_000;

/// A Lithic client.
#[derive(Debug, Clone)]
pub struct Lithic {
    client: ProviderClient,
}

#[derive(Deserialize)]
struct Page<T> {
    data: Vec<T>,
    #[serde(default)]
    has_more: bool,
}

impl Lithic {
    /// A client at `base` with `key`.
    pub fn new(
        base: &str,
        key: &str,
        policy: RetryPolicy,
        egress: &crate::egress::Egress,
    ) -> Result<Lithic, ProviderError> {
        let client = ProviderClient::new(
            NAME,
            base,
            ("authorization", key.to_string()),
            &[],
            policy,
            egress,
        )?;
        Ok(Lithic { client })
    }

    /// One page of a cursor-paged list.
    async fn page<T: serde::de::DeserializeOwned>(
        &self,
        path: &str,
        query: &[(&str, String)],
    ) -> Result<Page<T>, ProviderError> {
        let r = self
            .client
            .request(Method::GET, path, query, None, Idempotency::Idempotent)
            .await?;
        decode(NAME, r.body)
    }
}

/// At Lithic a spend limit of 0 means "no limit", so a "$0" card is made with a limit of
/// one cent instead (and paused, as every new card is).
fn lithic_safe(new: &NewCard) -> NewCard {
    NewCard {
        memo: new.memo.clone(),
        spend_limit_cents: new.spend_limit_cents.max(1),
    }
}

impl CardProvider for Lithic {
    fn name(&self) -> &'static str {
        NAME
    }

    async fn create(&self, new: &NewCard) -> Result<CardInfo, ProviderError> {
        let r = self
            .client
            .request(
                Method::POST,
                "/v1/cards",
                &[],
                Some(&create_body(&lithic_safe(new))),
                Idempotency::Create,
            )
            .await?;
        let raw: RawCard = decode(NAME, r.body)?;
        raw.into_info(NAME)
    }

    async fn update(&self, token: &str, update: &CardUpdate) -> Result<CardInfo, ProviderError> {
        let path = format!("/v1/cards/{}", path_segment(token)?);
        let r = self
            .client
            .request(
                Method::PATCH,
                &path,
                &[],
                Some(&update_body(update)),
                Idempotency::Idempotent,
            )
            .await?;
        let raw: RawCard = decode(NAME, r.body)?;
        raw.into_info(NAME)
    }

    /// `GET /v1/cards/{card_token}`.
    async fn get(&self, token: &str) -> Result<CardInfo, ProviderError> {
        let path = format!("/v1/cards/{}", path_segment(token)?);
        let r = self
            .client
            .request(Method::GET, &path, &[], None, Idempotency::Idempotent)
            .await?;
        let raw: RawCard = decode(NAME, r.body)?;
        raw.into_info(NAME)
    }

    async fn list(&self) -> Result<(Vec<CardInfo>, u32), ProviderError> {
        let mut out: Vec<CardInfo> = Vec::new();
        let mut requests = 0;
        let mut after: Option<String> = None;
        for _ in 0..MAX_PAGES {
            let mut query = vec![("page_size", PAGE_SIZE.to_string())];
            if let Some(a) = &after {
                query.push(("starting_after", a.clone()));
            }
            let page: Page<RawCard> = self.page("/v1/cards", &query).await?;
            requests += 1;
            let more = page.has_more && !page.data.is_empty();
            // The cursor is the page's last card, whether or not it fitted.
            let last = page.data.last().map(|c| c.token.clone());
            out.extend(fitting(
                NAME,
                page.data.into_iter().map(|r| r.into_info(NAME)),
            ));
            if !more {
                break;
            }
            after = last;
        }
        Ok((out, requests))
    }

    async fn find_by_marker(&self, marker: &str) -> Result<Option<CardInfo>, ProviderError> {
        Ok(self
            .list()
            .await?
            .0
            .into_iter()
            .find(|c| c.memo.contains(marker)))
    }

    async fn transactions(&self, token: &str) -> Result<Vec<Transaction>, ProviderError> {
        let r = self
            .client
            .request(
                Method::GET,
                "/v1/transactions",
                &[("card_token", path_segment(token)?.to_string())],
                None,
                Idempotency::Idempotent,
            )
            .await?;
        let page: Page<RawTransaction> = decode(NAME, r.body)?;
        Ok(page.data.into_iter().map(Transaction::from).collect())
    }

    async fn account_transactions(
        &self,
        cursor: Option<&TxnCursor>,
    ) -> Result<TxnBatch, ProviderError> {
        let mut batch = TxnBatch::default();
        let begin = cursor.and_then(TxnCursor::instant);
        let mut after: Option<String> = None;
        for _ in 0..MAX_PAGES {
            let mut query = vec![("page_size", PAGE_SIZE.to_string())];
            if let Some(b) = &begin {
                query.push(("begin", b.clone()));
            }
            if let Some(a) = &after {
                query.push(("starting_after", a.clone()));
            }
            let page: Page<RawAccountTxn> = self.page("/v1/transactions", &query).await?;
            batch.requests += 1;
            let items: Vec<CardTransaction> = page.data.into_iter().map(Into::into).collect();
            let done = !page.has_more || items.is_empty() || reached(&items, cursor);
            after = items.last().map(|t| t.token.clone());
            batch.items.extend(items);
            if done {
                break;
            }
        }
        Ok(batch)
    }
}
