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
//! The mock runs on its own thread with its own tokio runtime, bound to 127.0.0.1:0, and is
//! driven from synchronous test code through [`HibpMock`]. Faults are the shared
//! [`Fault`](super::providers::Fault)s of the other provider mocks.
#![allow(dead_code)]

use super::providers::Fault;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::Router;
use serde_json::{json, Value};
use std::collections::VecDeque;
use std::future::IntoFuture;
use std::sync::{Arc, Mutex, MutexGuard};

mod domain;

/// The path prefix that is part of the base URL.
pub const PREFIX: &str = "/api/v3";

/// A running HIBP mock. Dropping it stops the server.
pub struct HibpMock {
    /// `http://127.0.0.1:PORT/api/v3`, the base URL to give the client.
    pub base: String,
    origin: String,
    shared: Shared,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

/// Starts a mock that accepts `key` in `hibp-api-key`.
pub fn hibp(key: &str) -> HibpMock {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("mock: bind 127.0.0.1:0");
    listener.set_nonblocking(true).expect("mock: nonblocking");
    let port = listener.local_addr().expect("mock: local addr").port();
    let origin = format!("http://127.0.0.1:{port}");
    let shared: Shared = Arc::new(Mutex::new(Inner {
        key: key.to_string(),
        requests: Vec::new(),
        user_agents: Vec::new(),
        faults: VecDeque::new(),
        accounts: Vec::new(),
        domains: Vec::new(),
        verified: Vec::new(),
    }));
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let state = shared.clone();
    let thread = std::thread::Builder::new()
        .name("mock-hibp".into())
        .spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("mock: runtime");
            rt.block_on(async move {
                let listener = tokio::net::TcpListener::from_std(listener).expect("mock: listener");
                let app = Router::new().fallback(handle).with_state(state);
                tokio::select! {
                    r = axum::serve(listener, app).into_future() => {
                        if let Err(e) = r {
                            eprintln!("mock hibp: server stopped: {e}");
                        }
                    }
                    _ = rx => {}
                }
            });
            rt.shutdown_background();
        })
        .expect("mock: thread");
    HibpMock {
        base: format!("{origin}{PREFIX}"),
        origin,
        shared,
        shutdown: Some(tx),
        thread: Some(thread),
    }
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
    fn inner(&self) -> MutexGuard<'_, Inner> {
        lock(&self.shared)
    }

    /// `http://127.0.0.1:PORT`, without `/api/v3`.
    pub fn origin(&self) -> &str {
        &self.origin
    }

    /// Records that `account` (matched case-insensitively) appears in `breach`, a Breach
    /// object (see [`breach`]).
    pub fn add_breach(&self, account: &str, breach: Value) {
        self.inner().accounts.push((account.to_string(), breach));
    }

    /// Records `breach` as a breach of the site at `domain` (`/breaches?domain=`); its
    /// `Domain` field is set to `domain` when absent.
    pub fn add_domain_breach(&self, domain: &str, mut breach: Value) {
        if let Some(o) = breach.as_object_mut() {
            o.entry("Domain").or_insert_with(|| json!(domain));
        }
        self.inner().domains.push((domain.to_string(), breach));
    }

    /// Queues a fault for the next request. `Fault::Status` with a `null` body answers HIBP's
    /// own `{"statusCode", "message"}` body; `ApplyThenStatus` answers the status (reads have
    /// nothing to apply).
    pub fn push_fault(&self, f: Fault) {
        self.inner().faults.push_back(f);
    }

    /// Faults not yet met.
    pub fn pending_faults(&self) -> usize {
        self.inner().faults.len()
    }

    /// `"METHOD /path?query"` of every request, in order: the path as sent (still
    /// percent-encoded, e.g. `/api/v3/breachedaccount/a%2Bb%40example.com`), the query decoded.
    pub fn requests(&self) -> Vec<String> {
        self.inner().requests.clone()
    }

    /// How many requests were received.
    pub fn request_count(&self) -> usize {
        self.inner().requests.len()
    }

    /// The `user-agent` of every request, in order (`None` when absent).
    pub fn user_agents(&self) -> Vec<Option<String>> {
        self.inner().user_agents.clone()
    }
}

impl Drop for HibpMock {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

type Shared = Arc<Mutex<Inner>>;

fn lock(s: &Shared) -> MutexGuard<'_, Inner> {
    s.lock().unwrap_or_else(|e| e.into_inner())
}

struct Inner {
    key: String,
    requests: Vec<String>,
    user_agents: Vec<Option<String>>,
    faults: VecDeque<Fault>,
    /// (account, breach), in the order added.
    accounts: Vec<(String, Value)>,
    /// (domain, breach), in the order added.
    domains: Vec<(String, Value)>,
    /// Domains verified for the domain search (lowercase).
    verified: Vec<String>,
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

/// What HIBP says for `status` when a fault asks for it with a `null` body.
fn fault_reply(status: u16, body: Value, retry_after: Option<u64>) -> Response {
    match body {
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
            reply(
                status,
                Some(json!({"statusCode": status, "message": message})),
                retry_after,
            )
        }
        other => reply(status, Some(other), retry_after),
    }
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

async fn handle(State(shared): State<Shared>, req: Request) -> Response {
    let (parts, _body) = req.into_parts();
    let method = parts.method.as_str().to_ascii_uppercase();
    let path = parts.uri.path().to_string();
    let query: Vec<(String, String)> =
        url::form_urlencoded::parse(parts.uri.query().unwrap_or("").as_bytes())
            .into_owned()
            .collect();
    let user_agent = parts
        .headers
        .get("user-agent")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let key = parts
        .headers
        .get("hibp-api-key")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let fault = {
        let mut st = lock(&shared);
        let line = if query.is_empty() {
            format!("{method} {path}")
        } else {
            let q: Vec<String> = query.iter().map(|(k, v)| format!("{k}={v}")).collect();
            format!("{method} {path}?{}", q.join("&"))
        };
        st.requests.push(line);
        st.user_agents.push(user_agent.clone());
        st.faults.pop_front()
    };
    let mut delay = None;
    match fault {
        Some(Fault::Status {
            status,
            body,
            retry_after,
        }) => return fault_reply(status, body, retry_after),
        Some(Fault::ApplyThenStatus(s)) => return fault_reply(s, Value::Null, None),
        // Unwinding out of the connection's task drops the socket with no answer (as in
        // common::providers).
        Some(Fault::Reset) => std::panic::resume_unwind(Box::new("mock: Fault::Reset")),
        Some(Fault::Delay(d)) => delay = Some(d),
        // HIBP is read only: nothing lands later; the request is never answered.
        Some(Fault::LandLater(_)) => return std::future::pending().await,
        None => {}
    }
    let answer = {
        let st = lock(&shared);
        route(
            &st,
            &method,
            &path,
            &query,
            user_agent.as_deref(),
            key.as_deref(),
        )
    };
    if let Some(d) = delay {
        // A slow answer the test asked for (`Fault::Delay`): the scenario.
        tokio::time::sleep(d).await;
    }
    answer
}

fn route(
    st: &Inner,
    method: &str,
    path: &str,
    query: &[(String, String)],
    user_agent: Option<&str>,
    key: Option<&str>,
) -> Response {
    let q = |k: &str| {
        query
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(k))
            .map(|(_, v)| v.as_str())
    };
    if user_agent.is_none_or(|ua| ua.trim().is_empty()) {
        return error(403, "Forbidden: a user agent is required.");
    }
    let Some(rel) = path.strip_prefix(PREFIX) else {
        return error(404, "Not found");
    };
    let segs: Vec<&str> = rel.split('/').filter(|s| !s.is_empty()).collect();
    match (method, segs.as_slice()) {
        ("GET", ["breachedaccount", account]) => {
            match key {
                None => return error(401, "Access denied due to missing hibp-api-key."),
                Some(k) if k.trim().is_empty() || k.chars().any(char::is_whitespace) => {
                    return error(401, "Access denied due to improperly formed hibp-api-key.")
                }
                Some(k) if k != st.key => {
                    return error(401, "Access denied due to invalid hibp-api-key.")
                }
                Some(_) => {}
            }
            let Some(account) = percent_decode(account) else {
                return error(400, "Bad request");
            };
            let truncate = !q("truncateResponse").is_some_and(|v| v.eq_ignore_ascii_case("false"));
            let unverified =
                !q("includeUnverified").is_some_and(|v| v.eq_ignore_ascii_case("false"));
            let domain = q("domain");
            let found: Vec<Value> = st
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
        ("GET", ["breaches"]) => {
            // No key needed (a wrong one is not checked either).
            let domain = q("domain");
            let mut seen: Vec<String> = Vec::new();
            let mut out = Vec::new();
            let all = st
                .domains
                .iter()
                .map(|(d, b)| (Some(d.as_str()), b))
                .chain(st.accounts.iter().map(|(_, b)| (None, b)));
            for (d, b) in all {
                let bd = d.or_else(|| b["Domain"].as_str()).unwrap_or("");
                if domain.is_some_and(|want| !bd.eq_ignore_ascii_case(want)) {
                    continue;
                }
                let name = b["Name"].as_str().unwrap_or("").to_string();
                if seen.contains(&name) {
                    continue;
                }
                seen.push(name);
                out.push(b.clone());
            }
            reply(200, Some(Value::Array(out)), None)
        }
        _ => domain::route(st, method, &segs, key).unwrap_or_else(|| error(404, "Not found")),
    }
}
