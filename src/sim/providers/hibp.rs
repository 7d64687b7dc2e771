//! A local mock of Have I Been Pwned's API v3, for tests that drive the real client
//! (`pane_agent::providers::hibp`) in-process or the real binary as a separate process.
//!
//! Shapes (see docs/providers.md §5 for the full notes):
//! - https://haveibeenpwned.com/API/v3: base `/api/v3`; `hibp-api-key` required for searches by
//!   account (401 otherwise, with "Access denied due to missing / invalid hibp-api-key.");
//!   "A missing user agent will result in an HTTP 403 response"; `retry-after` on 429.
//! - github.com/wKovacs64/hibp: `src/breached-account.ts` (the account is `encodeURIComponent`ed;
//!   `truncateResponse` and `includeUnverified` default to true; `domain` filters),
//!   `src/breaches.ts` (`/breaches?domain=` answers `[]` when nothing matches),
//!   `src/api/haveibeenpwned/fetch-from-api.ts` (404 = not pwned, read as null),
//!   `src/api/haveibeenpwned/responses.ts` (401/429 JSON bodies `{"statusCode", "message"}`).
//!
//! UNCONFIRMED (guessed): the 404 for an unknown account has an empty body; the body of the 403
//! for a missing user agent (the mock sends the `{"statusCode", "message"}` form; the real one
//! may be an HTML page); the body of an unknown route (the mock: 404 with a JSON message, so
//! it cannot pass for "not pwned"); account matching is case-insensitive.
//!
//! Like the other provider mocks (`super`), it is one axum router over its own
//! state, served on its own thread behind the shared request log and
//! [`Fault`](super::Fault)s, and driven from synchronous test code through
//! [`HibpMock`]. HIBP is read only: `ApplyThenStatus` answers the status, and a `LandLater`
//! request is never answered (what lands changes nothing).

use super::{About, Fault, MockServer, Provider, Seen};
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, StatusCode};
use axum::middleware::{self, Next};
use axum::response::Response;
use axum::routing::get;
use axum::Router;
use serde_json::{json, Value};
use std::sync::{Arc, Mutex, MutexGuard};

mod domain;

/// The path prefix that is part of the base URL.
pub const PREFIX: &str = "/api/v3";

/// A running HIBP mock. Dropping it stops the server.
pub struct HibpMock {
    /// `http://127.0.0.1:PORT/api/v3`, the base URL to give the client.
    pub base: String,
    server: MockServer,
    hibp: Arc<Hibp>,
}

/// Starts a mock that accepts `key` in `hibp-api-key`.
pub fn hibp(key: &str) -> std::io::Result<HibpMock> {
    let (server, hibp) = MockServer::start(|_| Hibp {
        about: About {
            name: "hibp",
            env_stem: "HIBP",
            prefix: PREFIX,
            key: key.to_string(),
            error,
            fault_words: &[],
        },
        book: Mutex::default(),
    })?;
    Ok(HibpMock {
        base: server.base.clone(),
        server,
        hibp,
    })
}

/// A full Breach object in HIBP's documented shape (values illustrative).
pub fn breach(name: &str, domain: &str, data_classes: &[&str]) -> Value {
    json!({
        "Name": name,
        "Title": name,
        "Domain": domain,
        "BreachDate": "2013-10-04",
        "AddedDate": "2013-12-04T00:00:00Z",
        "ModifiedDate": "2022-05-15T23:52:49Z",
        "PwnCount": 152445165,
        "Description": format!("In 2013, {name} was breached. <a href=\"https://example.invalid\">More</a>"),
        "LogoPath": format!("https://haveibeenpwned.com/Content/Images/PwnedLogos/{name}.png"),
        "DataClasses": data_classes,
        "IsVerified": true,
        "IsFabricated": false,
        "IsSensitive": false,
        "IsRetired": false,
        "IsSpamList": false,
        "IsMalware": false,
        "IsSubscriptionFree": false,
        "IsStealerLog": false
    })
}

impl HibpMock {
    /// The mock server itself (who connected, the peer rule).
    pub fn server(&self) -> &MockServer {
        &self.server
    }
    /// `http://127.0.0.1:PORT`, without `/api/v3`.
    pub fn origin(&self) -> &str {
        self.server.origin()
    }

    /// Records that `account` (matched case-insensitively) appears in `breach`, a Breach
    /// object (see [`breach`]).
    pub fn add_breach(&self, account: &str, breach: Value) {
        self.hibp
            .book()
            .accounts
            .push((account.to_string(), breach));
    }

    /// Records `breach` as a breach of the site at `domain` (`/breaches?domain=`); its
    /// `Domain` field is set to `domain` when absent.
    pub fn add_domain_breach(&self, domain: &str, mut breach: Value) {
        if let Some(o) = breach.as_object_mut() {
            o.entry("Domain").or_insert_with(|| json!(domain));
        }
        self.hibp.book().domains.push((domain.to_string(), breach));
    }

    /// Queues a fault for the next request. `Fault::Status` with a `null` body answers HIBP's
    /// own `{"statusCode", "message"}` body; `ApplyThenStatus` answers the status (reads have
    /// nothing to apply).
    pub fn push_fault(&self, f: Fault) {
        self.server.push_fault(f);
    }

    /// Faults not yet met.
    pub fn pending_faults(&self) -> usize {
        self.server.pending_faults()
    }

    /// `"METHOD /path?query"` of every request, in order: the path as sent (still
    /// percent-encoded, e.g. `/api/v3/breachedaccount/a%2Bb%40example.com`), the query decoded.
    pub fn requests(&self) -> Vec<String> {
        self.server.requests()
    }

    /// How many requests were received.
    pub fn request_count(&self) -> usize {
        self.server.request_count()
    }

    /// The `user-agent` of every request, in order (`None` when absent).
    pub fn user_agents(&self) -> Vec<Option<String>> {
        self.server.user_agents()
    }
}

/// The mock HIBP service: the key it accepts and what it knows.
struct Hibp {
    about: About,
    book: Mutex<Book>,
}

#[derive(Default)]
struct Book {
    /// (account, breach), in the order added.
    accounts: Vec<(String, Value)>,
    /// (domain, breach), in the order added.
    domains: Vec<(String, Value)>,
    /// Domains verified for the domain search (lowercase).
    verified: Vec<String>,
}

type St = State<Arc<Hibp>>;

impl Hibp {
    fn book(&self) -> MutexGuard<'_, Book> {
        self.book.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// HIBP's error body.
fn error(status: u16, message: &str) -> Response {
    reply(
        status,
        Some(json!({"statusCode": status, "message": message})),
        None,
    )
}

fn reply(status: u16, body: Option<Value>, retry_after: Option<u64>) -> Response {
    let mut b = Response::builder().status(StatusCode::from_u16(status).unwrap_or(StatusCode::OK));
    if let Some(secs) = retry_after {
        b = b.header("retry-after", secs.to_string());
    }
    let r = match body {
        Some(Value::String(s)) => b
            .header("content-type", "text/plain; charset=utf-8")
            .body(Body::from(s)),
        Some(v) => b
            .header("content-type", "application/json; charset=utf-8")
            .body(Body::from(v.to_string())),
        None => b.body(Body::empty()),
    };
    r.unwrap_or_else(|_| Response::new(Body::empty()))
}

/// Decodes `%XX` escapes (and leaves `+` alone: this is a path, not a form).
fn percent_decode(s: &str) -> Option<String> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' {
            let hex = std::str::from_utf8(b.get(i + 1..i + 3)?).ok()?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

/// The last segment of the path as sent (still percent-encoded): the route's parameter.
fn raw_param(seen: &Seen) -> &str {
    seen.path.rsplit('/').next().unwrap_or("")
}

/// Query parameter `k`, its name matched case-insensitively.
fn q<'a>(seen: &'a Seen, k: &str) -> Option<&'a str> {
    seen.query
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case(k))
        .map(|(_, v)| v.as_str())
}

/// "A missing user agent will result in an HTTP 403 response", whatever the path.
async fn require_user_agent(headers: HeaderMap, req: Request, next: Next) -> Response {
    let ua = headers.get("user-agent").and_then(|v| v.to_str().ok());
    if ua.is_none_or(|ua| ua.trim().is_empty()) {
        return error(403, "Forbidden: a user agent is required.");
    }
    next.run(req).await
}

async fn not_found() -> Response {
    error(404, "Not found")
}

async fn breached_account(State(h): St, headers: HeaderMap, seen: Seen) -> Response {
    let key = headers.get("hibp-api-key").and_then(|v| v.to_str().ok());
    match key {
        None => return error(401, "Access denied due to missing hibp-api-key."),
        Some(k) if k.trim().is_empty() || k.chars().any(char::is_whitespace) => {
            return error(401, "Access denied due to improperly formed hibp-api-key.")
        }
        Some(k) if k != h.about.key => {
            return error(401, "Access denied due to invalid hibp-api-key.")
        }
        Some(_) => {}
    }
    let Some(account) = percent_decode(raw_param(&seen)) else {
        return error(400, "Bad request");
    };
    let truncate = !q(&seen, "truncateResponse").is_some_and(|v| v.eq_ignore_ascii_case("false"));
    let unverified =
        !q(&seen, "includeUnverified").is_some_and(|v| v.eq_ignore_ascii_case("false"));
    let domain = q(&seen, "domain");
    let book = h.book();
    let found: Vec<Value> = book
        .accounts
        .iter()
        .filter(|(a, _)| a.eq_ignore_ascii_case(&account))
        .map(|(_, b)| b)
        .filter(|b| unverified || b["IsVerified"].as_bool() != Some(false))
        .filter(|b| {
            domain.is_none_or(|d| {
                b["Domain"]
                    .as_str()
                    .is_some_and(|bd| bd.eq_ignore_ascii_case(d))
            })
        })
        .map(|b| {
            if truncate {
                json!({"Name": b["Name"]})
            } else {
                b.clone()
            }
        })
        .collect();
    if found.is_empty() {
        // Not pwned.
        reply(404, None, None)
    } else {
        reply(200, Some(Value::Array(found)), None)
    }
}

/// No key needed (a wrong one is not checked either).
async fn breaches(State(h): St, seen: Seen) -> Response {
    let domain = q(&seen, "domain");
    let book = h.book();
    let mut seen_names: Vec<String> = Vec::new();
    let mut out = Vec::new();
    let all = book
        .domains
        .iter()
        .map(|(d, b)| (Some(d.as_str()), b))
        .chain(book.accounts.iter().map(|(_, b)| (None, b)));
    for (d, b) in all {
        let bd = d.or_else(|| b["Domain"].as_str()).unwrap_or("");
        if domain.is_some_and(|want| !bd.eq_ignore_ascii_case(want)) {
            continue;
        }
        let name = b["Name"].as_str().unwrap_or("").to_string();
        if seen_names.contains(&name) {
            continue;
        }
        seen_names.push(name);
        out.push(b.clone());
    }
    reply(200, Some(Value::Array(out)), None)
}

impl Provider for Hibp {
    fn about(&self) -> &About {
        &self.about
    }

    fn router(self: Arc<Self>) -> Router {
        let api = Router::new()
            .route("/breachedaccount/{account}", get(breached_account))
            .route("/breaches", get(breaches))
            .route("/breacheddomain/{domain}", get(domain::breached_domain))
            .route("/breach/{name}", get(domain::breach))
            .method_not_allowed_fallback(not_found)
            .fallback(not_found);
        Router::new()
            .nest(PREFIX, api)
            .fallback(not_found)
            .layer(middleware::from_fn(require_user_agent))
            .with_state(self)
    }

    /// HIBP's `{"statusCode", "message"}` for a `null` body; a 429 says how long to wait.
    fn fault_reply(&self, status: u16, body: Value, retry_after: Option<u64>) -> Response {
        let body = match body {
            Value::Null => {
                let message = match status {
                    429 => format!(
                        "Rate limit is exceeded. Try again in {} seconds.",
                        retry_after.unwrap_or(2)
                    ),
                    401 => "Access denied due to invalid hibp-api-key.".to_string(),
                    _ => StatusCode::from_u16(status)
                        .ok()
                        .and_then(|s| s.canonical_reason())
                        .unwrap_or("Error")
                        .to_string(),
                };
                json!({"statusCode": status, "message": message})
            }
            other => other,
        };
        reply(status, Some(body), retry_after)
    }

    fn state(&self) -> Value {
        let book = self.book();
        let pairs = |l: &[(String, Value)]| -> Vec<Value> {
            l.iter().map(|(k, b)| json!([k, b])).collect()
        };
        json!({"accounts": pairs(&book.accounts), "domains": pairs(&book.domains),
               "verified": book.verified})
    }
}
