//! Have I Been Pwned, API v3 (<https://haveibeenpwned.com/API/v3>): which breaches an account
//! (an email address or username) appears in, and which breaches hit a domain.
//!
//! Shapes, from the API v3 page and the `wKovacs64/hibp` client (`src/breached-account.ts`,
//! `src/breaches.ts`, `src/api/haveibeenpwned/*.ts`), as summarised in docs/providers.md §5:
//! - base `https://haveibeenpwned.com/api/v3`; the version is only selectable in the URL;
//! - header `hibp-api-key: KEY` for searches by account; a `user-agent` naming the app on every
//!   request ("A missing user agent will result in an HTTP 403 response");
//! - `GET /breachedaccount/{account}?truncateResponse=false` -> 200 with an array of Breach
//!   objects, or **404 when the account is in no breach** (a clean result, not an error);
//!   `truncateResponse` defaults to true, which sends only `[{"Name": ...}]`;
//! - `GET /breaches?domain=D` -> 200 with an array of full Breach objects, `[]` when none;
//! - `GET /breacheddomain/{domain}` ("Domain Search", Core and Pro subscriptions, the domain
//!   verified in the domain search dashboard) -> 200 with `{"alias1": ["Adobe"], "alias2":
//!   ["Adobe", "Gawker"]}`: every breached alias (the part before `@`) on the domain and the
//!   names of its breaches, in one request; 404 when no alias is breached (read as none);
//! - `GET /breach/{name}` -> 200 with one full Breach object ("Getting a single breached
//!   site"), 404 for an unknown name;
//! - Breach fields are PascalCase: `Name`, `Title`, `Domain` (may be ""), `BreachDate`
//!   (`YYYY-MM-DD`), `AddedDate` (ISO 8601), `DataClasses`, and more this client ignores;
//! - errors: 401 `{"statusCode": 401, "message": "Access denied due to invalid hibp-api-key."}`,
//!   429 with `retry-after` (seconds) and `{"statusCode": 429, "message": "Rate limit is
//!   exceeded. Try again in N seconds."}`; a 403 may be a Cloudflare HTML page.
//!
//! Retries, `retry-after` and the 401/403 -> [`ProviderError::KeyRejected`] mapping are
//! [`ProviderClient`]'s.

use super::http::{Idempotency, ProviderClient, RetryPolicy};
use super::{api_key, base_url, decode, ProviderError};
use reqwest::Method;
use serde::{Deserialize, Deserializer, Serialize};

/// The real service's API base.
pub const DEFAULT_BASE_URL: &str = "https://haveibeenpwned.com/api/v3";
/// The environment variable that overrides the base URL (a loopback test server, say).
pub const BASE_URL_ENV: &str = "HIBP_BASE_URL";
/// The environment variable that holds the API key.
pub const API_KEY_ENV: &str = "HIBP_API_KEY";
/// The user agent HIBP requires on every request.
pub const USER_AGENT: &str = "pane-agent";
const NAME: &str = "HIBP";

/// A Have I Been Pwned client.
#[derive(Debug, Clone)]
pub struct Hibp {
    client: ProviderClient,
}

/// One breach, as HIBP describes it (only the fields the agent keeps). Serialised with HIBP's
/// own PascalCase names; fields HIBP leaves out or sends as `null` become empty.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Breach {
    /// HIBP's stable identifier for the breach (`Adobe`).
    pub name: String,
    /// The breach's display title.
    #[serde(default, deserialize_with = "null_as_default")]
    pub title: String,
    /// The breached site's domain; empty when the breach has none (a spam list, say).
    #[serde(default, deserialize_with = "null_as_default")]
    pub domain: String,
    /// When the breach happened, `YYYY-MM-DD` (often approximate).
    #[serde(default, deserialize_with = "null_as_default")]
    pub breach_date: String,
    /// When HIBP loaded it, ISO 8601 (`2013-12-04T00:00:00Z`).
    #[serde(default, deserialize_with = "null_as_default")]
    pub added_date: String,
    /// What was exposed (`Email addresses`, `Passwords`, ...).
    #[serde(default, deserialize_with = "null_as_default")]
    pub data_classes: Vec<String>,
}

/// `null` (or a missing field, with `#[serde(default)]`) as the type's default.
fn null_as_default<'de, D, T>(d: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: Default + Deserialize<'de>,
{
    Ok(Option::<T>::deserialize(d)?.unwrap_or_default())
}

impl Hibp {
    /// A client at `base` (e.g. [`DEFAULT_BASE_URL`]) with `key`, sent as `hibp-api-key`, and
    /// `user-agent: pane-agent`. The base must be https (plain http only to loopback).
    pub fn new(
        base: &str,
        key: &str,
        policy: RetryPolicy,
        egress: &crate::egress::Egress,
    ) -> Result<Hibp, ProviderError> {
        if key.trim().is_empty() {
            return Err(ProviderError::NotConfigured {
                provider: NAME,
                hint: format!("set {API_KEY_ENV} in the agent's environment"),
            });
        }
        let client = ProviderClient::new(
            NAME,
            base,
            ("hibp-api-key", key.trim().to_string()),
            &[("user-agent", USER_AGENT)],
            policy,
            egress,
        )?;
        Ok(Hibp { client })
    }

    /// The client the environment asks for: the key from `HIBP_API_KEY`, the base from
    /// `HIBP_BASE_URL`, else `configured_base`, else [`DEFAULT_BASE_URL`]. `None` when no key
    /// is set, since HIBP is an optional source; `Some(Err)` when the settings are unusable
    /// (a plain-http base that is not loopback, say).
    pub fn from_env(
        configured_base: &str,
        policy: RetryPolicy,
        egress: &crate::egress::Egress,
    ) -> Option<Result<Hibp, ProviderError>> {
        let key = api_key(NAME, API_KEY_ENV).ok()?;
        let base = base_url(BASE_URL_ENV, configured_base, DEFAULT_BASE_URL);
        Some(Hibp::new(&base, &key, policy, egress))
    }

    /// The breaches `account` (an email address or username) appears in, with full details
    /// (`GET /breachedaccount/{account}?truncateResponse=false`). An account in no breach is
    /// `Ok` with an empty list (HIBP answers 404). The account is percent-encoded as one path
    /// segment, so `@`, `+` and `/` reach HIBP intact; an empty account, or one that is only
    /// dots, is refused here as HIBP refuses a malformed account (400).
    pub async fn breached_account(&self, account: &str) -> Result<Vec<Breach>, ProviderError> {
        let account = account.trim();
        if account.is_empty() || account.bytes().all(|b| b == b'.') {
            return Err(ProviderError::Rejected {
                provider: NAME,
                status: 400,
                message: "the account is not an email address or username".into(),
            });
        }
        let path = format!("/breachedaccount/{}", encode_segment(account));
        let query = [("truncateResponse", "false".to_string())];
        match self.get_found(&path, &query).await? {
            Some(body) => decode(NAME, body),
            None => Ok(Vec::new()),
        }
    }

    /// GET `path`; None when HIBP answers 404 (for these endpoints: nothing found).
    async fn get_found(
        &self,
        path: &str,
        query: &[(&str, String)],
    ) -> Result<Option<serde_json::Value>, ProviderError> {
        match self
            .client
            .request(Method::GET, path, query, None, Idempotency::Idempotent)
            .await
        {
            Ok(r) => Ok(Some(r.body)),
            Err(ProviderError::Rejected { status: 404, .. }) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// The breaches of the site at `domain` (`GET /breaches?domain=...`), empty when there are
    /// none. HIBP needs no key here; the client sends it anyway. An empty domain is refused
    /// here, since HIBP would answer it with every breach it knows.
    pub async fn breaches_for_domain(&self, domain: &str) -> Result<Vec<Breach>, ProviderError> {
        let domain = non_empty_domain(domain)?;
        let r = self
            .client
            .request(
                Method::GET,
                "/breaches",
                &[("domain", domain.to_string())],
                None,
                Idempotency::Idempotent,
            )
            .await?;
        decode(NAME, r.body)
    }
}

impl Hibp {
    /// Every breached alias on `domain`, a domain the owner verified with HIBP, and the names
    /// of its breaches (`GET /breacheddomain/{domain}`): one request for every alias on the
    /// domain. Keys are the part of the address before `@`, lowercase. No breached alias is
    /// an empty map (HIBP answers 404).
    pub async fn breached_domain(
        &self,
        domain: &str,
    ) -> Result<std::collections::BTreeMap<String, Vec<String>>, ProviderError> {
        let domain = non_empty_domain(domain)?;
        let path = format!("/breacheddomain/{}", encode_segment(domain));
        let Some(body) = self.get_found(&path, &[]).await? else {
            return Ok(Default::default());
        };
        let map: std::collections::BTreeMap<String, Vec<String>> = decode(NAME, body)?;
        Ok(map
            .into_iter()
            .map(|(alias, names)| (alias.to_ascii_lowercase(), names))
            .collect())
    }

    /// One breach by its name (`GET /breach/{name}`); None when HIBP knows no such breach.
    pub async fn breach(&self, name: &str) -> Result<Option<Breach>, ProviderError> {
        let path = format!("/breach/{}", encode_segment(name.trim()));
        match self.get_found(&path, &[]).await? {
            Some(body) => decode(NAME, body).map(Some),
            None => Ok(None),
        }
    }
}

/// `domain` trimmed; an empty one is refused here (HIBP would answer it with every breach it
/// knows, or not at all).
fn non_empty_domain(domain: &str) -> Result<&str, ProviderError> {
    let domain = domain.trim();
    if domain.is_empty() {
        return Err(ProviderError::Rejected {
            provider: NAME,
            status: 400,
            message: "the domain is empty".into(),
        });
    }
    Ok(domain)
}

/// Percent-encodes everything but RFC 3986 unreserved characters, as `encodeURIComponent`
/// does (and stricter): the result is one path segment whatever the input holds.
fn encode_segment(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encodes_one_segment() {
        assert_eq!(
            encode_segment("a.b+tag@example.com"),
            "a.b%2Btag%40example.com"
        );
        assert_eq!(encode_segment("x/../y?z#w"), "x%2F..%2Fy%3Fz%23w");
        assert_eq!(encode_segment("é"), "%C3%A9");
    }

    #[test]
    fn breach_tolerates_missing_and_null_fields() {
        let b: Breach =
            serde_json::from_str(r#"{"Name":"Adobe","Domain":null,"IsVerified":true}"#).unwrap();
        assert_eq!(b.name, "Adobe");
        assert_eq!(b.domain, "");
        assert!(b.data_classes.is_empty());
    }
}
