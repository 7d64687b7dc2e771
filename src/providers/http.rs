//! The HTTP client every provider uses: timeouts, bounded retries with exponential backoff
//! and jitter ([`crate::retry`]) on 5xx, timeouts and resets, `Retry-After` on 429, and one
//! error type that turns 401/403 into "key rejected". API keys live only in the header value built here,
//! marked sensitive so that neither reqwest nor this module ever prints them.

use crate::egress::{Egress, HttpClients};
use crate::retry::Backoff;
use reqwest::header::{HeaderMap, HeaderName, HeaderValue, RETRY_AFTER};
use reqwest::{Method, StatusCode};
use serde_json::Value;
use std::time::Duration;

/// Why a provider call failed, in words fit for the owner.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ProviderError {
    /// The provider is not set up (no key, or not chosen in the config).
    #[error("{provider} is not configured: {hint}")]
    NotConfigured {
        /// The provider.
        provider: &'static str,
        /// What to set.
        hint: String,
    },
    /// 401 or 403: the key is wrong, revoked, or lacks a permission.
    #[error("{provider} rejected the API key ({status}): {message}")]
    KeyRejected {
        /// The provider.
        provider: &'static str,
        /// The HTTP status.
        status: u16,
        /// The provider's explanation.
        message: String,
    },
    /// 429 that did not clear within the retry budget.
    #[error("{provider} is rate limiting us; try again in {retry_after_secs} s")]
    RateLimited {
        /// The provider.
        provider: &'static str,
        /// What Retry-After said (or our estimate).
        retry_after_secs: u64,
    },
    /// 5xx, timeouts or resets that outlasted the retries.
    #[error("{provider} is unavailable: {message}")]
    Unavailable {
        /// The provider.
        provider: &'static str,
        /// The last failure.
        message: String,
    },
    /// A 4xx the provider explained (validation, not found).
    #[error("{provider} refused the request ({status}): {message}")]
    Rejected {
        /// The provider.
        provider: &'static str,
        /// The HTTP status.
        status: u16,
        /// The provider's explanation.
        message: String,
    },
    /// A lockdown came after the job was authorised: the call was not made.
    #[error("locked down: no call to {provider} was made after the lockdown")]
    LockedDown {
        /// The provider.
        provider: &'static str,
    },
    /// `[network] proxy` is set and does not answer: the call was not made, and was not
    /// made directly either.
    #[error("{message}")]
    ProxyDown {
        /// The provider.
        provider: &'static str,
        /// Which proxy, in the owner's words ("Tor is not reachable at ...").
        message: String,
    },
    /// The provider answered something that is not the documented shape.
    #[error("{provider} answered in an unexpected shape: {message}")]
    Decode {
        /// The provider.
        provider: &'static str,
        /// What was wrong.
        message: String,
    },
}

impl From<ProviderError> for crate::reply::CommandError {
    fn from(e: ProviderError) -> crate::reply::CommandError {
        use crate::reply::ErrorKind;
        use ProviderError as P;
        let kind = match &e {
            P::NotConfigured { .. } => ErrorKind::NotConfigured,
            P::KeyRejected { .. } => ErrorKind::KeyRejected,
            P::RateLimited { .. } => ErrorKind::RateLimited,
            P::Unavailable { .. } | P::Decode { .. } | P::ProxyDown { .. } => {
                ErrorKind::Unavailable
            }
            P::Rejected { .. } => ErrorKind::ProviderRejected,
            P::LockedDown { .. } => ErrorKind::LockedDown,
        };
        crate::reply::CommandError::new(kind, e.to_string())
    }
}

impl ProviderError {
    /// True when the request may have been carried out by the provider even though we got
    /// no answer (a timeout or a 500 after sending a create): the caller must reconcile.
    pub fn outcome_unknown(&self) -> bool {
        matches!(self, ProviderError::Unavailable { .. })
    }
}

/// Whether a call that changes something may still be made: a job's lockdown check, asked
/// before every attempt of a request, the first and each retry (a retry can come seconds after
/// a `lockdown`, after a 429's Retry-After).
pub type AttemptGuard = std::sync::Arc<dyn Fn() -> bool + Send + Sync>;

tokio::task_local! {
    static ATTEMPT_GUARD: AttemptGuard;
}

/// Runs `call` with `guard` asked before every HTTP attempt it makes: once it says no, the next
/// attempt is not sent and the call ends as [`ProviderError::LockedDown`]. The managers wrap
/// every provider call made for a job in it, so no retry loop can outlive a lockdown.
pub async fn guarded<F: std::future::Future>(guard: AttemptGuard, call: F) -> F::Output {
    ATTEMPT_GUARD.scope(guard, call).await
}

/// False when the guard in force (if any) forbids another attempt: asked before every request
/// a provider sends (the memory providers ask it too, as their one attempt per call).
pub(crate) fn attempt_allowed() -> bool {
    ATTEMPT_GUARD.try_with(|g| g()).unwrap_or(true)
}

/// Retry and timeout settings.
#[derive(Debug, Clone, Copy)]
pub struct RetryPolicy {
    /// Attempts in all, the first included.
    pub attempts: u32,
    /// The first backoff; doubled each time, with jitter (see [`crate::retry`]).
    pub base_delay: Duration,
    /// No single wait is longer.
    pub max_delay: Duration,
    /// A Retry-After longer than this is reported instead of waited for.
    pub max_retry_after: Duration,
    /// Per-request timeout.
    pub timeout: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            attempts: 4,
            base_delay: Duration::from_millis(250),
            max_delay: Duration::from_secs(5),
            max_retry_after: Duration::from_secs(30),
            timeout: Duration::from_secs(20),
        }
    }
}

/// Whether a request may be sent again after a failure whose outcome is unknown.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Idempotency {
    /// Reads, deletes, state changes to a fixed value: safe to repeat.
    Idempotent,
    /// Creates: repeated only when the provider certainly did not act (connect failure,
    /// 429, 502/503/504); otherwise the caller reconciles.
    Create,
}

/// One provider's client: base URL, auth headers, retries, and the way out
/// ([`crate::egress`]: through `[network] proxy` on a circuit of the provider's own).
#[derive(Clone)]
pub struct ProviderClient {
    provider: &'static str,
    base: String,
    headers: HeaderMap,
    http: std::sync::Arc<HttpClients>,
    policy: RetryPolicy,
}

impl std::fmt::Debug for ProviderClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "ProviderClient({} at {})", self.provider, self.base)
    }
}

/// A provider's answer: status and JSON body (Null when empty).
#[derive(Debug, Clone)]
pub struct Response {
    /// The HTTP status.
    pub status: u16,
    /// The body as JSON.
    pub body: Value,
}

impl ProviderClient {
    /// A client for `provider` at `base` (no trailing slash needed), connecting through
    /// `egress`. `auth` is the header that carries the key; `extra` are other fixed headers.
    pub fn new(
        provider: &'static str,
        base: &str,
        auth: (&'static str, String),
        extra: &[(&'static str, &'static str)],
        policy: RetryPolicy,
        egress: &Egress,
    ) -> Result<ProviderClient, ProviderError> {
        let not_configured = |hint: String| ProviderError::NotConfigured { provider, hint };
        check_base_url(base, egress.proxy().is_some()).map_err(not_configured)?;
        let mut headers = HeaderMap::new();
        let mut value = HeaderValue::from_str(&auth.1).map_err(|_| {
            not_configured("the API key has characters a header cannot carry".into())
        })?;
        value.set_sensitive(true);
        headers.insert(HeaderName::from_static(auth.0), value);
        for (k, v) in extra {
            headers.insert(HeaderName::from_static(k), HeaderValue::from_static(v));
        }
        // No redirects: these APIs do not send them, reqwest strips only the standard auth
        // headers on a cross-host redirect (SimpleLogin's `Authentication` would follow it), and
        // a redirect could lead to plain http that `check_base_url` refuses.
        let timeout = policy.timeout;
        let http = HttpClients::new(egress, provider, move || {
            reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .timeout(timeout)
                .connect_timeout(Duration::from_secs(5))
                .user_agent("pane-agent")
        })
        .map_err(not_configured)?;
        Ok(ProviderClient {
            provider,
            base: base.trim_end_matches('/').to_string(),
            headers,
            http: std::sync::Arc::new(http),
            policy,
        })
    }

    /// The provider's name.
    pub fn provider(&self) -> &'static str {
        self.provider
    }

    /// Sends `method path` with optional query and JSON body, retrying as the policy and
    /// `idempotency` allow. Any 2xx is returned; errors are classified.
    pub async fn request(
        &self,
        method: Method,
        path: &str,
        query: &[(&str, String)],
        body: Option<&Value>,
        idempotency: Idempotency,
    ) -> Result<Response, ProviderError> {
        let url = format!("{}{}", self.base, path);
        let mut delays = Backoff::bounded(
            self.policy.base_delay,
            self.policy.max_delay,
            self.policy.attempts.saturating_sub(1) as usize,
        );
        let mut attempt = 0;
        loop {
            attempt += 1;
            if !attempt_allowed() {
                tracing::info!(
                    provider = self.provider,
                    attempt,
                    "not sent: a lockdown came after the job was authorised"
                );
                return Err(ProviderError::LockedDown {
                    provider: self.provider,
                });
            }
            let http = self
                .http
                .get()
                .map_err(|message| ProviderError::Unavailable {
                    provider: self.provider,
                    message,
                })?;
            let mut req = http
                .request(method.clone(), &url)
                .headers(self.headers.clone())
                .header("accept", "application/json");
            if !query.is_empty() {
                req = req.query(query);
            }
            if let Some(b) = body {
                req = req.json(b);
            }
            let sent = req.send().await;
            let wait = match sent {
                Err(e) => {
                    // The proxy down: nothing was sent, nothing may go directly, and waiting
                    // out the retries would only delay the owner's clear answer.
                    if e.is_connect() {
                        if let Some(down) = self.http.egress().diagnose().await {
                            return Err(ProviderError::ProxyDown {
                                provider: self.provider,
                                message: down.to_string(),
                            });
                        }
                    }
                    // A connect failure certainly did not reach the provider.
                    let safe = e.is_connect() || idempotency == Idempotency::Idempotent;
                    let err = self.unavailable(&e);
                    match delays.next_delay() {
                        Some(wait) if safe => wait,
                        _ => return Err(err),
                    }
                }
                Ok(resp) => {
                    self.http.egress().reached();
                    let status = resp.status();
                    let retry_after = parse_retry_after(resp.headers());
                    let text = resp.text().await.unwrap_or_default();
                    let body: Value = if text.trim().is_empty() {
                        Value::Null
                    } else {
                        serde_json::from_str(&text).unwrap_or(Value::String(
                            crate::redact::truncate(
                                &crate::text::escape(&text, crate::text::Lines::Single),
                                200,
                            ),
                        ))
                    };
                    if status.is_success() {
                        return Ok(Response {
                            status: status.as_u16(),
                            body,
                        });
                    }
                    match self.classify(status, &body, retry_after) {
                        Retry::No(e) => return Err(e),
                        Retry::After(e, wait) => {
                            let create_safe = matches!(status.as_u16(), 429 | 502 | 503 | 504);
                            if idempotency == Idempotency::Create && !create_safe {
                                return Err(e);
                            }
                            if let ProviderError::RateLimited {
                                retry_after_secs, ..
                            } = e
                            {
                                if Duration::from_secs(retry_after_secs)
                                    > self.policy.max_retry_after
                                {
                                    return Err(e);
                                }
                            }
                            match delays.next_delay() {
                                Some(backoff) => wait.unwrap_or(backoff),
                                None => return Err(e),
                            }
                        }
                    }
                }
            };
            tracing::debug!(
                provider = self.provider,
                attempt,
                wait_ms = wait.as_millis() as u64,
                "retrying"
            );
            tokio::time::sleep(wait).await;
        }
    }

    fn unavailable(&self, e: &reqwest::Error) -> ProviderError {
        let what = if e.is_timeout() {
            "timed out"
        } else if e.is_connect() {
            "cannot connect"
        } else {
            "connection failed"
        };
        ProviderError::Unavailable {
            provider: self.provider,
            message: what.to_string(),
        }
    }

    fn classify(&self, status: StatusCode, body: &Value, retry_after: Option<Duration>) -> Retry {
        let provider = self.provider;
        let message = error_message(body)
            .unwrap_or_else(|| status.canonical_reason().unwrap_or("error").to_string());
        let code = status.as_u16();
        match code {
            401 | 403 => Retry::No(ProviderError::KeyRejected {
                provider,
                status: code,
                message,
            }),
            429 => {
                let wait = retry_after.unwrap_or(Duration::from_secs(60));
                Retry::After(
                    ProviderError::RateLimited {
                        provider,
                        retry_after_secs: wait.as_secs().max(1),
                    },
                    Some(wait),
                )
            }
            500..=599 => Retry::After(
                ProviderError::Unavailable {
                    provider,
                    message: format!("{code}: {message}"),
                },
                None,
            ),
            _ => Retry::No(ProviderError::Rejected {
                provider,
                status: code,
                message,
            }),
        }
    }
}

enum Retry {
    No(ProviderError),
    After(ProviderError, Option<Duration>),
}

/// Pulls a human message out of the error bodies providers use: `{"error": "..."}`
/// (SimpleLogin), `{"message": "..."}` (addy.io, Privacy.com, Lithic), `{"errors": {...}}`
/// (Laravel validation).
fn error_message(body: &Value) -> Option<String> {
    let text = body
        .get("error")
        .or_else(|| body.get("message"))
        .and_then(Value::as_str)
        .map(str::to_string)
        .or_else(|| body.as_str().map(str::to_string))?;
    // The provider's words reach replies and alerts: no line breaks or direction marks of
    // theirs may forge the layout.
    let text = crate::text::escape(&text, crate::text::Lines::Single);
    Some(crate::redact::truncate(&text, 200))
}

/// `Retry-After` as delta-seconds (the form these providers send) or an HTTP date.
fn parse_retry_after(headers: &HeaderMap) -> Option<Duration> {
    let v = headers.get(RETRY_AFTER)?.to_str().ok()?.trim();
    if let Ok(secs) = v.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    let when = chrono::DateTime::parse_from_rfc2822(v).ok()?;
    let secs = (when.timestamp() - chrono::Utc::now().timestamp()).max(0) as u64;
    Some(Duration::from_secs(secs))
}

/// A base URL must be https, except plain http to a loopback address (local test servers),
/// or, through a proxy (`proxied`), to an onion service (Tor carries it end to end
/// encrypted). Through a proxy, a local address (loopback, private, link-local, `localhost`)
/// is refused: Tor does not reach it, and it could only be reached around the proxy.
pub fn check_base_url(base: &str, proxied: bool) -> Result<(), String> {
    let url = reqwest::Url::parse(base).map_err(|_| format!("base URL {base:?} is not a URL"))?;
    let local = url.host_str().is_some_and(crate::egress::is_local);
    let onion = matches!(url.host(), Some(url::Host::Domain(d)) if is_onion(d));
    if proxied && local {
        return Err(format!(
            "base URL {base:?} is a local address: with [network] proxy set every call goes through the proxy, which cannot reach it (nothing goes around it); use the service's public name or onion address"
        ));
    }
    match url.scheme() {
        "https" => Ok(()),
        "http" if proxied && onion => Ok(()),
        "http" if !proxied && local && loopback(&url) => Ok(()),
        "http" if onion => Err(format!(
            "base URL {base:?} is an onion service: it needs [network] proxy (Tor)"
        )),
        "http" => Err(format!(
            "base URL {base:?} is plain http: only https is allowed (http only for loopback, or an onion service through [network] proxy)"
        )),
        other => Err(format!("base URL scheme {other:?} is not allowed")),
    }
}

fn loopback(url: &reqwest::Url) -> bool {
    match url.host() {
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        Some(url::Host::Domain(d)) => d == "localhost",
        None => false,
    }
}

/// A v3 onion service's name (56 base32 characters, then `.onion`), with any subdomain.
pub fn is_onion(host: &str) -> bool {
    let host = host.trim_end_matches('.').to_ascii_lowercase();
    let Some(rest) = host.strip_suffix(".onion") else {
        return false;
    };
    let label = rest.rsplit('.').next().unwrap_or(rest);
    label.len() == 56
        && label
            .bytes()
            .all(|b| b.is_ascii_lowercase() || (b'2'..=b'7').contains(&b))
}
