//! addy.io (formerly AnonAddy), API v1.
//!
//! Shapes from the addy.io API reference (https://app.addy.io/docs/) and the Laravel
//! resources in github.com/anonaddy/anonaddy (app/Http/Resources/AliasResource.php,
//! app/Http/Controllers/Api/AliasController.php, ActiveAliasController.php):
//! `Authorization: Bearer KEY`, `X-Requested-With: XMLHttpRequest`, `Accept: application/json`;
//! `GET /aliases?page[number]&page[size]` (at most 100) with `filter[search]`,
//! `filter[active]`, answering `{data: [...], links: {...}, meta: {current_page, last_page,
//! per_page, total}}`; `POST /aliases {domain, description, format}` -> 201 `{data}`;
//! `GET /aliases/{id}` -> `{data}`; `POST /active-aliases {id}` -> `{data}`;
//! `DELETE /active-aliases/{id}` -> 204; `DELETE /aliases/{id}` -> 204; 429 when the per-user
//! rate limit (60/min by default) or the hourly alias-creation cap is hit.

use super::http::{Idempotency, ProviderClient, RetryPolicy};
use super::{checked_email, decode, fitting, AliasInfo, AliasProvider, NewAlias, ProviderError};
use reqwest::Method;
use serde::Deserialize;
use serde_json::{json, Value};

/// The real service.
pub const DEFAULT_BASE_URL: &str = "https://app.addy.io/api/v1";
/// The largest page the API serves.
pub const PAGE_SIZE: u32 = 100;
const NAME: &str = "addy.io";

/// An addy.io client.
#[derive(Debug, Clone)]
pub struct Addy {
    client: ProviderClient,
    domain: String,
    format: String,
}

#[derive(Deserialize)]
struct RawAlias {
    id: String,
    email: String,
    active: bool,
    description: Option<String>,
    #[serde(default)]
    emails_forwarded: u64,
    #[serde(default)]
    emails_blocked: u64,
}

impl RawAlias {
    /// The alias as the agent keeps it, its address checked ([`checked_email`]).
    fn into_info(self) -> Result<AliasInfo, ProviderError> {
        Ok(AliasInfo {
            id: self.id,
            email: checked_email(NAME, self.email)?,
            active: self.active,
            description: self.description,
            forwarded: self.emails_forwarded,
            blocked: self.emails_blocked,
        })
    }
}

#[derive(Deserialize)]
struct Page {
    data: Vec<RawAlias>,
    meta: Meta,
}

#[derive(Deserialize)]
struct Meta {
    current_page: u64,
    last_page: u64,
}

impl Addy {
    /// A client at `base` with `key`; new aliases use `domain` and `format`.
    pub fn new(
        base: &str,
        key: &str,
        domain: &str,
        format: &str,
        policy: RetryPolicy,
        egress: &crate::egress::Egress,
    ) -> Result<Addy, ProviderError> {
        let client = ProviderClient::new(
            NAME,
            base,
            ("authorization", format!("Bearer {key}")),
            &[("x-requested-with", "XMLHttpRequest")],
            policy,
            egress,
        )?;
        Ok(Addy {
            client,
            domain: domain.to_string(),
            format: format.to_string(),
        })
    }

    async fn page(&self, number: u64, search: Option<&str>) -> Result<Page, ProviderError> {
        let mut query = vec![
            ("page[number]", number.to_string()),
            ("page[size]", PAGE_SIZE.to_string()),
        ];
        if let Some(s) = search {
            query.push(("filter[search]", s.to_string()));
        }
        let r = self
            .client
            .request(
                Method::GET,
                "/aliases",
                &query,
                None,
                Idempotency::Idempotent,
            )
            .await?;
        decode(NAME, r.body)
    }

    fn data(body: Value) -> Result<AliasInfo, ProviderError> {
        let raw: RawAlias = decode(NAME, body.get("data").cloned().unwrap_or(Value::Null))?;
        raw.into_info()
    }
}

impl AliasProvider for Addy {
    fn name(&self) -> &'static str {
        NAME
    }

    async fn create(&self, new: &NewAlias) -> Result<AliasInfo, ProviderError> {
        let body =
            json!({"domain": self.domain, "description": new.description, "format": self.format});
        let r = self
            .client
            .request(
                Method::POST,
                "/aliases",
                &[],
                Some(&body),
                Idempotency::Create,
            )
            .await?;
        Addy::data(r.body)
    }

    async fn get(&self, id: &str) -> Result<AliasInfo, ProviderError> {
        let path = format!("/aliases/{}", path_segment(id)?);
        let r = self
            .client
            .request(Method::GET, &path, &[], None, Idempotency::Idempotent)
            .await?;
        Addy::data(r.body)
    }

    async fn set_active(&self, id: &str, active: bool) -> Result<(), ProviderError> {
        let id = path_segment(id)?;
        if active {
            let body = json!({"id": id});
            self.client
                .request(
                    Method::POST,
                    "/active-aliases",
                    &[],
                    Some(&body),
                    Idempotency::Idempotent,
                )
                .await?;
        } else {
            let path = format!("/active-aliases/{id}");
            self.client
                .request(Method::DELETE, &path, &[], None, Idempotency::Idempotent)
                .await?;
        }
        Ok(())
    }

    async fn delete(&self, id: &str) -> Result<(), ProviderError> {
        let path = format!("/aliases/{}", path_segment(id)?);
        match self
            .client
            .request(Method::DELETE, &path, &[], None, Idempotency::Idempotent)
            .await
        {
            // Already gone is what we wanted.
            Err(ProviderError::Rejected { status: 404, .. }) => Ok(()),
            other => other.map(|_| ()),
        }
    }

    async fn list(&self) -> Result<(Vec<AliasInfo>, u32), ProviderError> {
        let mut out = Vec::new();
        let mut requests = 0;
        let mut number = 1;
        loop {
            let page = self.page(number, None).await?;
            requests += 1;
            out.extend(fitting(
                NAME,
                page.data.into_iter().map(RawAlias::into_info),
            ));
            if page.meta.current_page >= page.meta.last_page {
                break;
            }
            number = page.meta.current_page + 1;
        }
        Ok((out, requests))
    }

    async fn find_by_marker(&self, marker: &str) -> Result<Option<AliasInfo>, ProviderError> {
        let page = self.page(1, Some(marker)).await?;
        page.data
            .into_iter()
            .find(|a| a.description.as_deref().is_some_and(|d| d.contains(marker)))
            .map(RawAlias::into_info)
            .transpose()
    }
}

/// Refuses ids that could change the request path.
pub fn path_segment(id: &str) -> Result<&str, ProviderError> {
    if !id.is_empty()
        && id.len() <= 128
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    {
        Ok(id)
    } else {
        Err(ProviderError::Decode {
            provider: "provider",
            message: "an id with characters a URL path cannot carry".into(),
        })
    }
}
