//! SimpleLogin.
//!
//! Shapes from SimpleLogin's API reference, docs/api.md in github.com/simple-login/app:
//! header `Authentication: KEY`; `POST /api/alias/random/new?hostname=` `{note}` -> 201 alias;
//! `GET /api/v2/aliases?page_id=N` -> `{aliases: [...]}`, 20 a page, an empty page at the end;
//! `GET /api/aliases/{id}` -> alias; `POST /api/aliases/{id}/toggle` -> `{enabled}`;
//! `DELETE /api/aliases/{id}` -> `{deleted: true}`; errors are `{"error": "..."}`. Alias
//! fields used: `id` (integer), `email`, `enabled`, `note`, `nb_forward`, `nb_block`.
//! A missing alias is 400 `{"error": "Unknown error"}` on GET and 403 `{"error": "Forbidden"}`
//! on toggle and DELETE (app/api/views/alias.py), not 404.

use super::addy::path_segment;
use super::http::{Idempotency, ProviderClient, RetryPolicy};

use super::{
    checked_email, decode, fitting, Activity, AliasInfo, AliasProvider, NewAlias, ProviderError,
};
use reqwest::Method;
use serde::Deserialize;
use serde_json::json;

/// The real service.
pub const DEFAULT_BASE_URL: &str = "https://app.simplelogin.io";
/// Aliases per page of `GET /api/v2/aliases`.
pub const PAGE_SIZE: usize = 20;
const NAME: &str = "SimpleLogin";
/// A bound on paging, so a misbehaving server cannot keep the agent listing forever.
const MAX_PAGES: u64 = 10_000;

/// A SimpleLogin client.
#[derive(Debug, Clone)]
pub struct SimpleLogin {
    client: ProviderClient,
}

#[derive(Deserialize)]
struct RawAlias {
    id: u64,
    email: String,
    enabled: bool,
    note: Option<String>,
    #[serde(default)]
    nb_forward: u64,
    #[serde(default)]
    nb_block: u64,
}

impl RawAlias {
    /// The alias as the agent keeps it, its address checked ([`checked_email`]).
    fn into_info(self) -> Result<AliasInfo, ProviderError> {
        Ok(AliasInfo {
            id: self.id.to_string(),
            email: checked_email(NAME, self.email)?,
            active: self.enabled,
            description: self.note,
            forwarded: self.nb_forward,
            blocked: self.nb_block,
        })
    }
}

#[derive(Deserialize)]
struct Page {
    aliases: Vec<RawAlias>,
}

#[derive(Deserialize)]
struct Toggled {
    enabled: bool,
}

#[derive(Deserialize)]
struct ActivityPage {
    activities: Vec<Activity>,
}

impl SimpleLogin {
    /// The newest `want` entries of an alias's activity log (fewer if the log is shorter),
    /// newest first, reading pages of 20 only as far as needed.
    async fn activity_log(&self, id: &str, want: usize) -> Result<Vec<Activity>, ProviderError> {
        let path = format!("/api/aliases/{}/activities", path_segment(id)?);
        let mut out = Vec::new();
        let mut page_id = 0u64;
        while out.len() < want && page_id < MAX_PAGES {
            let r = self
                .client
                .request(
                    Method::GET,
                    &path,
                    &[("page_id", page_id.to_string())],
                    None,
                    Idempotency::Idempotent,
                )
                .await?;
            let page: ActivityPage = decode(NAME, r.body)?;
            let n = page.activities.len();
            out.extend(page.activities);
            if n < PAGE_SIZE {
                break;
            }
            page_id += 1;
        }
        out.truncate(want);
        Ok(out)
    }

    /// A client at `base` with `key`.
    pub fn new(
        base: &str,
        key: &str,
        policy: RetryPolicy,
        egress: &crate::egress::Egress,
    ) -> Result<SimpleLogin, ProviderError> {
        let client = ProviderClient::new(
            NAME,
            base,
            ("authentication", key.to_string()),
            &[],
            policy,
            egress,
        )?;
        Ok(SimpleLogin { client })
    }

    /// Every alias by pages, stopping at a short page; calls `f` on each page.
    async fn each_page(
        &self,
        mut f: impl FnMut(Vec<AliasInfo>) -> bool,
    ) -> Result<u32, ProviderError> {
        let mut requests = 0;
        for page_id in 0..MAX_PAGES {
            let r = self
                .client
                .request(
                    Method::GET,
                    "/api/v2/aliases",
                    &[("page_id", page_id.to_string())],
                    None,
                    Idempotency::Idempotent,
                )
                .await?;
            requests += 1;
            let page: Page = decode(NAME, r.body)?;
            let n = page.aliases.len();
            let aliases = fitting(NAME, page.aliases.into_iter().map(RawAlias::into_info));
            let more = f(aliases);
            if !more || n < PAGE_SIZE {
                break;
            }
        }
        Ok(requests)
    }
}

impl AliasProvider for SimpleLogin {
    fn name(&self) -> &'static str {
        NAME
    }

    fn keeps_activity_log(&self) -> bool {
        true
    }

    async fn activities(
        &self,
        id: &str,
        want: usize,
    ) -> Result<Option<Vec<Activity>>, ProviderError> {
        self.activity_log(id, want).await.map(Some)
    }

    async fn create(&self, new: &NewAlias) -> Result<AliasInfo, ProviderError> {
        let body = json!({"note": new.description});
        let r = self
            .client
            .request(
                Method::POST,
                "/api/alias/random/new",
                &[("hostname", new.hostname.clone())],
                Some(&body),
                Idempotency::Create,
            )
            .await?;
        let raw: RawAlias = decode(NAME, r.body)?;
        raw.into_info()
    }

    async fn get(&self, id: &str) -> Result<AliasInfo, ProviderError> {
        let path = format!("/api/aliases/{}", path_segment(id)?);
        let r = self
            .client
            .request(Method::GET, &path, &[], None, Idempotency::Idempotent)
            .await?;
        let raw: RawAlias = decode(NAME, r.body)?;
        raw.into_info()
    }

    async fn set_active(&self, id: &str, active: bool) -> Result<(), ProviderError> {
        // The API only toggles, so read first: setting the current state changes nothing.
        if self.get(id).await?.active == active {
            return Ok(());
        }
        let path = format!("/api/aliases/{}/toggle", path_segment(id)?);
        // A toggle sent twice undoes itself, so it is not repeated after an answer that may
        // follow a change (a 500, a timeout); reading the alias again settles what happened.
        let r = match self
            .client
            .request(Method::POST, &path, &[], None, Idempotency::Create)
            .await
        {
            Ok(r) => r,
            Err(e) if e.outcome_unknown() => {
                return match self.get(id).await {
                    Ok(a) if a.active == active => Ok(()),
                    _ => Err(e),
                };
            }
            Err(e) => return Err(e),
        };
        let t: Toggled = decode(NAME, r.body)?;
        if t.enabled != active {
            return Err(ProviderError::Decode {
                provider: NAME,
                message: "the alias did not change state".into(),
            });
        }
        Ok(())
    }

    async fn delete(&self, id: &str) -> Result<(), ProviderError> {
        let path = format!("/api/aliases/{}", path_segment(id)?);
        match self
            .client
            .request(Method::DELETE, &path, &[], None, Idempotency::Idempotent)
            .await
        {
            Err(ProviderError::Rejected { status: 404, .. }) => Ok(()),
            // SimpleLogin answers a missing alias (one an earlier attempt already deleted, say)
            // with 403 {"error": "Forbidden"}, the same as another account's alias
            // (app/api/views/alias.py). GET tells them apart: a missing alias is 400 there.
            Err(ProviderError::KeyRejected {
                status: 403,
                message,
                ..
            }) if message == "Forbidden" => match self.get(id).await {
                Err(ProviderError::Rejected { status: 400, .. }) => Ok(()),
                _ => Err(ProviderError::KeyRejected {
                    provider: NAME,
                    status: 403,
                    message,
                }),
            },
            other => other.map(|_| ()),
        }
    }

    async fn list(&self) -> Result<(Vec<AliasInfo>, u32), ProviderError> {
        let mut out = Vec::new();
        let requests = self
            .each_page(|page| {
                out.extend(page);
                true
            })
            .await?;
        Ok((out, requests))
    }

    async fn find_by_marker(&self, marker: &str) -> Result<Option<AliasInfo>, ProviderError> {
        let mut found = None;
        self.each_page(|page| {
            found = page
                .into_iter()
                .find(|a| a.description.as_deref().is_some_and(|d| d.contains(marker)));
            found.is_none()
        })
        .await?;
        Ok(found)
    }
}
