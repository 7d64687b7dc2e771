//! Local mock servers for the providers' HTTP APIs (addy.io, SimpleLogin, Privacy.com, Lithic),
//! for tests that drive the real clients in-process or the real `pane-agent` binary as a
//! separate process.
//!
//! Each mock runs on its own thread with its own tokio runtime, bound to 127.0.0.1:0, and is
//! controlled from synchronous test code through [`MockServer`]: seed data, read what the
//! provider now holds, read the request log, and queue [`Fault`]s that the next requests meet.
//! The shapes follow the providers' documentation; each provider's section below starts with
//! where its shape comes from, and what the mock had to guess is marked UNCONFIRMED.
//!
//! `GET /__health` and `GET /__state` are control routes: never logged, never faulted.
#![allow(dead_code)]

use axum::body::{to_bytes, Body};
use axum::extract::{Request, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use axum::Router;
use serde_json::{json, Map, Value};
use std::collections::VecDeque;
use std::future::IntoFuture;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

mod txns;

// ---------------------------------------------------------------------------------------------
// The public interface
// ---------------------------------------------------------------------------------------------

/// What the next request meets instead of (or besides) the normal answer.
#[derive(Debug, Clone)]
pub enum Fault {
    /// Answer `status` at once, doing nothing. `body`: JSON as given; a JSON string is sent as
    /// plain text (addy.io's create 429 is plain text); `null` means the provider's own error
    /// body for that status. `retry_after` adds `Retry-After: N` (seconds).
    Status {
        status: u16,
        body: Value,
        retry_after: Option<u64>,
    },
    /// Do the request's work at once, but answer only after this long.
    Delay(Duration),
    /// Do the request's work (e.g. create the alias), then answer this status, with the
    /// provider's error body, instead of the real answer.
    ApplyThenStatus(u16),
    /// Close the connection without answering and without doing anything.
    Reset,
    /// Answer nothing, and carry the request out this long after it arrived, whether or not
    /// the client is still there: a request the provider processes after the client died.
    LandLater(Duration),
}

impl Fault {
    /// `status` with the provider's own error body.
    pub fn status(status: u16) -> Fault {
        Fault::Status {
            status,
            body: Value::Null,
            retry_after: None,
        }
    }

    /// 429 with the provider's own error body and `Retry-After: secs`.
    pub fn rate_limited(secs: u64) -> Fault {
        Fault::Status {
            status: 429,
            body: Value::Null,
            retry_after: Some(secs),
        }
    }
}

/// A running mock provider. Dropping it stops the server.
pub struct MockServer {
    /// The base URL to give the client (with the provider's path prefix, no trailing slash).
    pub base: String,
    origin: String,
    shared: Shared,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

/// addy.io: `base` = `http://127.0.0.1:PORT/api/v1`; `Authorization: Bearer KEY` and
/// `X-Requested-With: XMLHttpRequest`.
pub fn addy(key: &str) -> MockServer {
    MockServer::start(Kind::Addy, key)
}

/// SimpleLogin: `base` = `http://127.0.0.1:PORT`; `Authentication: KEY`.
pub fn simplelogin(key: &str) -> MockServer {
    MockServer::start(Kind::SimpleLogin, key)
}

/// Privacy.com: `base` = `http://127.0.0.1:PORT/v1`; `Authorization: api-key KEY`.
pub fn privacy(key: &str) -> MockServer {
    MockServer::start(Kind::Privacy, key)
}

/// Lithic: `base` = `http://127.0.0.1:PORT` (paths under `/v1`); `Authorization: KEY`.
pub fn lithic(key: &str) -> MockServer {
    MockServer::start(Kind::Lithic, key)
}

impl MockServer {
    fn start(kind: Kind, key: &str) -> MockServer {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("mock: bind 127.0.0.1:0");
        listener.set_nonblocking(true).expect("mock: nonblocking");
        let port = listener.local_addr().expect("mock: local addr").port();
        let origin = format!("http://127.0.0.1:{port}");
        let shared: Shared = Arc::new(Mutex::new(Inner::new(kind, key, &origin)));
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let state = shared.clone();
        let thread = std::thread::Builder::new()
            .name(format!("mock-{}", kind.name()))
            .spawn(move || {
                let rt = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .expect("mock: runtime");
                rt.block_on(async move {
                    let listener =
                        tokio::net::TcpListener::from_std(listener).expect("mock: listener");
                    let app = Router::new().fallback(handle).with_state(state);
                    tokio::select! {
                        r = axum::serve(listener, app).into_future() => {
                            if let Err(e) = r {
                                eprintln!("mock {}: server stopped: {e}", kind.name());
                            }
                        }
                        _ = rx => {}
                    }
                });
                // Connections still open (a Delay in progress, pooled keep-alives) are dropped.
                rt.shutdown_background();
            })
            .expect("mock: thread");
        MockServer {
            base: format!("{origin}{}", kind.prefix()),
            origin,
            shared,
            shutdown: Some(tx),
            thread: Some(thread),
        }
    }

    fn inner(&self) -> MutexGuard<'_, Inner> {
        lock(&self.shared)
    }

    /// `http://127.0.0.1:PORT`, without the provider's path prefix.
    pub fn origin(&self) -> &str {
        &self.origin
    }

    /// The key the mock accepts.
    pub fn key(&self) -> String {
        self.inner().key.clone()
    }

    /// The daemon's environment that points it here: the provider's key and base URL
    /// variables (`ADDY_API_KEY`, `ADDY_BASE_URL`, ...).
    pub fn env(&self) -> [(String, String); 2] {
        let var = match self.inner().kind {
            Kind::Addy => "ADDY",
            Kind::SimpleLogin => "SIMPLELOGIN",
            Kind::Privacy => "PRIVACY",
            Kind::Lithic => "LITHIC",
        };
        [
            (format!("{var}_API_KEY"), self.key()),
            (format!("{var}_BASE_URL"), self.base.clone()),
        ]
    }

    /// Queues a fault for the next request (any route but the `GET /__` control routes).
    pub fn push_fault(&self, f: Fault) {
        self.inner().faults.push_back(f);
    }

    /// Queues a fault for the next request whose method is `method` (`*` for any) and whose
    /// path starts with `path_prefix`, either the full path (`/api/v1/aliases`) or the path
    /// under the base URL (`/aliases`). These are met before the general queue.
    pub fn push_fault_for(&self, method: &str, path_prefix: &str, f: Fault) {
        self.inner().targeted.push(Targeted {
            method: method.to_ascii_uppercase(),
            prefix: path_prefix.to_string(),
            fault: f,
        });
    }

    /// Faults not yet met.
    pub fn pending_faults(&self) -> usize {
        let st = self.inner();
        st.faults.len() + st.targeted.len()
    }

    /// Drops every queued fault.
    pub fn clear_faults(&self) {
        let mut st = self.inner();
        st.faults.clear();
        st.targeted.clear();
    }

    /// `"METHOD /path?query"` of every request received, in order (the query decoded, as
    /// `page[size]=100`; control routes left out).
    pub fn requests(&self) -> Vec<String> {
        self.inner().requests.clone()
    }

    /// How many requests were received.
    pub fn request_count(&self) -> usize {
        self.inner().requests.len()
    }

    /// From now on every request waits, before the provider does anything, until
    /// [`MockServer::release`]: a provider that hangs.
    pub fn hold(&self) {
        self.inner().held = true;
    }

    /// Lets every held request go on, and new ones through.
    pub fn release(&self) {
        let mut st = self.inner();
        st.held = false;
        st.released.notify_waiters();
    }

    /// The most requests that were being handled at once since the last reset.
    pub fn max_in_flight(&self) -> usize {
        self.inner().max_in_flight
    }

    /// Starts counting [`MockServer::max_in_flight`] afresh.
    pub fn reset_max_in_flight(&self) {
        let mut st = self.inner();
        st.max_in_flight = st.in_flight;
    }

    /// Every answer from now on comes `d` after the work is done (None: at once).
    pub fn set_latency(&self, d: Option<Duration>) {
        self.inner().latency = d;
    }

    /// Forgets the request log.
    pub fn clear_requests(&self) {
        self.inner().requests.clear();
    }

    /// addy.io / SimpleLogin: adds `n` aliases with descriptions (notes) `seed-0`, `seed-1`, ...
    /// (numbering continues across calls).
    pub fn seed_aliases(&self, n: usize) {
        let mut st = self.inner();
        for _ in 0..n {
            let desc = format!("seed-{}", st.seeded_aliases);
            st.seeded_aliases += 1;
            match st.kind {
                Kind::Addy => {
                    let a = st.addy_alias("anonaddy.me", "random_characters", None, Some(&desc));
                    st.aliases.push(a);
                }
                Kind::SimpleLogin => {
                    let a = st.sl_alias(Some(&desc), "word");
                    st.aliases.push(a);
                }
                _ => panic!("seed_aliases on a card provider"),
            }
        }
    }

    /// SimpleLogin: records that `from` sent mail to the alias `alias_email` (action
    /// `forward`, or `block`), as the activity log and the alias's counters show it.
    pub fn add_activity(&self, alias_email: &str, action: &str, from: &str) {
        let mut st = self.inner();
        let Some(i) = st.aliases.iter().position(|a| a["email"] == alias_email) else {
            panic!("no alias {alias_email}");
        };
        let id = st.aliases[i]["id"].as_u64().unwrap_or_default();
        let counter = if action == "block" {
            "nb_block"
        } else {
            "nb_forward"
        };
        let n = st.aliases[i][counter].as_u64().unwrap_or(0) + 1;
        st.aliases[i][counter] = json!(n);
        let ts = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0);
        st.activities.entry(id).or_default().push(json!({
            "action": action, "from": from, "to": alias_email, "timestamp": ts,
            "reverse_alias": format!("\"{from}\" <reply+{n}@simplelogin.co>"),
            "reverse_alias_address": format!("reply+{n}@simplelogin.co"),
        }));
    }

    /// addy.io: records that `from` sent mail to the alias with id `alias_id`, as the
    /// prototype-only `GET /aliases/{id}/emails` lists it (`{"data": [{id, from, subject,
    /// created_at}]}`, oldest first); the alias's `emails_forwarded` and `last_forwarded` move.
    pub fn add_email(&self, alias_id: &str, from: &str, subject: &str) {
        let mut st = self.inner();
        let Some(i) = st.addy_find(alias_id, true) else {
            panic!("no alias {alias_id}");
        };
        let now = laravel_now();
        let n = st.aliases[i]["emails_forwarded"].as_u64().unwrap_or(0) + 1;
        st.aliases[i]["emails_forwarded"] = json!(n);
        st.aliases[i]["last_forwarded"] = json!(now);
        st.emails
            .entry(alias_id.to_string())
            .or_default()
            .push(json!({"id": uuid(), "from": from, "subject": subject, "created_at": now}));
    }

    /// Privacy.com / Lithic: adds `n` open merchant-locked cards with memos `seed-0`, ...
    pub fn seed_cards(&self, n: usize) {
        let mut st = self.inner();
        for _ in 0..n {
            let memo = format!("seed-{}", st.seeded_cards);
            st.seeded_cards += 1;
            let body = json!({"type": "MERCHANT_LOCKED", "memo": memo, "spend_limit": 0,
                              "spend_limit_duration": "FOREVER", "state": "OPEN"});
            let c = st.new_card(&body);
            st.cards.push(c);
        }
    }

    /// The alias objects the provider holds, oldest first (addy.io: not deleted).
    pub fn aliases(&self) -> Vec<Value> {
        let st = self.inner();
        st.aliases
            .iter()
            .filter(|a| st.kind != Kind::Addy || a["deleted_at"].is_null())
            .cloned()
            .collect()
    }

    /// The card objects the provider holds, oldest first, with `pan` and `cvv`.
    pub fn cards(&self) -> Vec<Value> {
        self.inner().cards.clone()
    }

    /// Records a settled, approved transaction of `amount` cents at `descriptor` on a card.
    pub fn add_transaction(&self, card_token: &str, amount: i64, descriptor: &str) {
        let mut st = self.inner();
        let value = st.new_transaction(card_token, amount, descriptor);
        st.transactions.push(Txn {
            card_token: card_token.to_string(),
            value,
        });
    }

    /// A compromised provider: the next alias or card it makes (and keeps, and lists) carries
    /// `value` as its `field` (`email`, `last_four`) instead of a well-formed one.
    pub fn forge_next(&self, field: &str, value: Value) {
        self.inner().forged.push((field.to_string(), value));
    }

    /// Privacy.com / Lithic: when false, creating or changing a card answers 401 "Insufficient
    /// Privileges. Issuing API key required" (a key without write access).
    pub fn set_write_access(&self, allowed: bool) {
        self.inner().write_access = allowed;
    }
}

impl Drop for MockServer {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// True when `digits` passes the Luhn check (card numbers the mocks issue do).
pub fn luhn_valid(digits: &str) -> bool {
    let d: Vec<u32> = digits.chars().filter_map(|c| c.to_digit(10)).collect();
    if d.len() != digits.len() || d.len() < 2 {
        return false;
    }
    let sum: u32 = d
        .iter()
        .rev()
        .enumerate()
        .map(|(i, &x)| {
            if i % 2 == 1 {
                if x * 2 > 9 {
                    x * 2 - 9
                } else {
                    x * 2
                }
            } else {
                x
            }
        })
        .sum();
    sum.is_multiple_of(10)
}

// ---------------------------------------------------------------------------------------------
// The server: one fallback handler, logging, faults, routing by provider
// ---------------------------------------------------------------------------------------------

type Shared = Arc<Mutex<Inner>>;

fn lock(s: &Shared) -> MutexGuard<'_, Inner> {
    s.lock().unwrap_or_else(|e| e.into_inner())
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Addy,
    SimpleLogin,
    Privacy,
    Lithic,
}

impl Kind {
    fn name(self) -> &'static str {
        match self {
            Kind::Addy => "addy",
            Kind::SimpleLogin => "simplelogin",
            Kind::Privacy => "privacy",
            Kind::Lithic => "lithic",
        }
    }

    /// The path prefix that is part of the base URL.
    fn prefix(self) -> &'static str {
        match self {
            Kind::Addy => "/api/v1",
            Kind::Privacy => "/v1",
            Kind::SimpleLogin | Kind::Lithic => "",
        }
    }
}

struct Targeted {
    method: String,
    prefix: String,
    fault: Fault,
}

struct Txn {
    card_token: String,
    value: Value,
}

struct Inner {
    kind: Kind,
    key: String,
    origin: String,
    requests: Vec<String>,
    faults: VecDeque<Fault>,
    targeted: Vec<Targeted>,
    /// Oldest first; addy.io keeps soft-deleted ones (deleted_at set).
    aliases: Vec<Value>,
    /// Oldest first, full objects (pan, cvv).
    cards: Vec<Value>,
    transactions: Vec<Txn>,
    write_access: bool,
    next_int_id: u64,
    seeded_aliases: usize,
    seeded_cards: usize,
    /// SimpleLogin: each alias id's activity log, oldest first.
    activities: std::collections::HashMap<u64, Vec<Value>>,
    /// addy.io: each alias id's mail for the prototype-only `/aliases/{id}/emails`.
    emails: std::collections::HashMap<String, Vec<Value>>,
    /// While true, every request waits (before doing anything) until `release`.
    held: bool,
    /// Rung by `release`.
    released: Arc<tokio::sync::Notify>,
    /// Every answer waits this long after the work is done (a slow provider).
    latency: Option<Duration>,
    /// Requests being handled now, and the most there were at once.
    in_flight: usize,
    max_in_flight: usize,
    /// Fields the next alias or card made carries instead of its own (`forge_next`).
    forged: Vec<(String, Value)>,
}

/// Counts a request as in flight for as long as it lives (also through a `Reset` unwind).
struct InFlight(Shared);

impl InFlight {
    fn enter(shared: &Shared) -> InFlight {
        let mut st = lock(shared);
        st.in_flight += 1;
        st.max_in_flight = st.max_in_flight.max(st.in_flight);
        InFlight(shared.clone())
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        lock(&self.0).in_flight -= 1;
    }
}

/// One request, as the routes see it.
struct Req<'a> {
    method: &'a str,
    path: &'a str,
    query: &'a [(String, String)],
    headers: &'a HeaderMap,
    body: &'a [u8],
}

impl Req<'_> {
    fn q(&self, key: &str) -> Option<&str> {
        self.query
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    fn has(&self, key: &str) -> bool {
        self.query.iter().any(|(k, _)| k == key)
    }

    fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// The body as JSON, if it is JSON.
    fn json(&self) -> Option<Value> {
        if self.body.is_empty() {
            None
        } else {
            serde_json::from_slice(self.body).ok()
        }
    }
}

enum Payload {
    Json(Value),
    Text(String),
    Empty,
}

struct Reply {
    status: u16,
    payload: Payload,
    headers: Vec<(&'static str, String)>,
}

impl Reply {
    fn json(status: u16, v: Value) -> Reply {
        Reply {
            status,
            payload: Payload::Json(v),
            headers: Vec::new(),
        }
    }

    fn text(status: u16, s: &str) -> Reply {
        Reply {
            status,
            payload: Payload::Text(s.to_string()),
            headers: Vec::new(),
        }
    }

    fn empty(status: u16) -> Reply {
        Reply {
            status,
            payload: Payload::Empty,
            headers: Vec::new(),
        }
    }

    fn into_response(self) -> Response {
        let status = StatusCode::from_u16(self.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let mut b = Response::builder().status(status);
        for (k, v) in &self.headers {
            b = b.header(*k, v.as_str());
        }
        let r = match self.payload {
            Payload::Json(v) => b
                .header("content-type", "application/json")
                .body(Body::from(v.to_string())),
            Payload::Text(s) => b
                .header("content-type", "text/plain; charset=UTF-8")
                .body(Body::from(s)),
            Payload::Empty => b.body(Body::empty()),
        };
        r.unwrap_or_else(|_| Response::new(Body::empty()))
    }
}

fn request_line(method: &str, path: &str, query: &[(String, String)]) -> String {
    if query.is_empty() {
        format!("{method} {path}")
    } else {
        let q: Vec<String> = query.iter().map(|(k, v)| format!("{k}={v}")).collect();
        format!("{method} {path}?{}", q.join("&"))
    }
}

async fn handle(State(shared): State<Shared>, req: Request) -> Response {
    let (parts, body) = req.into_parts();
    let bytes = to_bytes(body, 4 << 20).await.unwrap_or_default();
    let method = parts.method.as_str().to_ascii_uppercase();
    let path = parts.uri.path().to_string();
    let query: Vec<(String, String)> =
        url::form_urlencoded::parse(parts.uri.query().unwrap_or("").as_bytes())
            .into_owned()
            .collect();
    if method == "GET" && path.starts_with("/__") {
        return lock(&shared).control(&path).into_response();
    }
    let _in_flight = InFlight::enter(&shared);
    let fault = {
        let mut st = lock(&shared);
        st.requests.push(request_line(&method, &path, &query));
        st.take_fault(&method, &path)
    };
    loop {
        let released = lock(&shared).released.clone();
        let wake = released.notified();
        let held = lock(&shared).held;
        if !held {
            break;
        }
        wake.await;
    }
    let mut delay = None;
    let mut replace = None;
    match fault {
        Some(Fault::Status {
            status,
            body,
            retry_after,
        }) => {
            let mut reply = lock(&shared).fault_reply(status, body);
            if let Some(secs) = retry_after {
                reply.headers.push(("retry-after", secs.to_string()));
            }
            return reply.into_response();
        }
        // Unwinding out of the connection's task drops the socket with no answer; tokio catches
        // the unwind, and resume_unwind skips the panic hook, so nothing is printed.
        Some(Fault::Reset) => std::panic::resume_unwind(Box::new("mock: Fault::Reset")),
        Some(Fault::Delay(d)) => delay = Some(d),
        Some(Fault::ApplyThenStatus(s)) => replace = Some(s),
        Some(Fault::LandLater(d)) => {
            let shared = shared.clone();
            let headers = parts.headers.clone();
            tokio::spawn(async move {
                tokio::time::sleep(d).await;
                let r = Req {
                    method: &method,
                    path: &path,
                    query: &query,
                    headers: &headers,
                    body: &bytes,
                };
                lock(&shared).route(&r);
            });
            return std::future::pending().await;
        }
        None => {}
    }
    let reply = {
        let r = Req {
            method: &method,
            path: &path,
            query: &query,
            headers: &parts.headers,
            body: &bytes,
        };
        let mut st = lock(&shared);
        let reply = st.route(&r);
        match replace {
            Some(s) => st.fault_reply(s, Value::Null),
            None => reply,
        }
    };
    let latency = lock(&shared).latency;
    if let Some(d) = delay.or(latency) {
        tokio::time::sleep(d).await;
    }
    reply.into_response()
}

impl Inner {
    fn new(kind: Kind, key: &str, origin: &str) -> Inner {
        Inner {
            kind,
            key: key.to_string(),
            origin: origin.to_string(),
            requests: Vec::new(),
            faults: VecDeque::new(),
            targeted: Vec::new(),
            aliases: Vec::new(),
            cards: Vec::new(),
            transactions: Vec::new(),
            write_access: true,
            next_int_id: 100,
            seeded_aliases: 0,
            seeded_cards: 0,
            activities: std::collections::HashMap::new(),
            emails: std::collections::HashMap::new(),
            held: false,
            released: Arc::new(tokio::sync::Notify::new()),
            latency: None,
            in_flight: 0,
            max_in_flight: 0,
            forged: Vec::new(),
        }
    }

    /// `object` with the fields `forge_next` queued (those it has), which are used up.
    fn forge(&mut self, mut object: Value) -> Value {
        let forged = std::mem::take(&mut self.forged);
        for (field, value) in forged {
            match object.get_mut(&field) {
                Some(slot) => *slot = value,
                None => self.forged.push((field, value)),
            }
        }
        object
    }

    fn take_fault(&mut self, method: &str, path: &str) -> Option<Fault> {
        let prefix = self.kind.prefix();
        let rel = if prefix.is_empty() {
            None
        } else {
            path.strip_prefix(prefix)
        };
        let hit = self.targeted.iter().position(|t| {
            (t.method == "*" || t.method == method)
                && (path.starts_with(&t.prefix) || rel.is_some_and(|r| r.starts_with(&t.prefix)))
        });
        match hit {
            Some(i) => Some(self.targeted.remove(i).fault),
            None => self.faults.pop_front(),
        }
    }

    fn control(&self, path: &str) -> Reply {
        match path {
            "/__health" => Reply::json(200, json!({"ok": true})),
            "/__state" => {
                let txns: Vec<Value> = self.transactions.iter().map(|t| t.value.clone()).collect();
                Reply::json(
                    200,
                    json!({"provider": self.kind.name(), "requests": self.requests, "aliases": self.aliases,
                           "cards": self.cards, "transactions": txns,
                           "pending_faults": self.faults.len() + self.targeted.len()}),
                )
            }
            _ => Reply::json(404, json!({"message": "unknown control route"})),
        }
    }

    /// The provider's error body.
    fn error(&self, status: u16, message: &str) -> Reply {
        let body = match self.kind {
            Kind::Addy | Kind::Privacy => json!({"message": message}),
            Kind::SimpleLogin => json!({"error": message}),
            Kind::Lithic => json!({"debugging_request_id": uuid(), "message": message}),
        };
        Reply::json(status, body)
    }

    /// What the provider says for `status` when a fault asks for it.
    fn fault_reply(&self, status: u16, body: Value) -> Reply {
        match body {
            Value::Null => {
                let message = match (self.kind, status) {
                    (Kind::Addy, 429) => "Too Many Attempts.".to_string(),
                    (Kind::Addy, 500) => "Server Error".to_string(),
                    (Kind::SimpleLogin, 429) => "Rate limit exceeded".to_string(),
                    (Kind::SimpleLogin, 500) => "Internal error".to_string(),
                    (Kind::Privacy | Kind::Lithic, 429) => {
                        "Rate limited, too many requests per second".to_string()
                    }
                    _ => StatusCode::from_u16(status)
                        .ok()
                        .and_then(|s| s.canonical_reason())
                        .unwrap_or("Error")
                        .to_string(),
                };
                self.error(status, &message)
            }
            Value::String(s) => Reply::text(status, &s),
            other => Reply::json(status, other),
        }
    }

    fn no_route(&self, r: &Req) -> Reply {
        match self.kind {
            Kind::Addy => self.error(
                404,
                &format!(
                    "The route {} could not be found.",
                    r.path.trim_start_matches('/')
                ),
            ),
            Kind::SimpleLogin => self.error(404, "No such endpoint"),
            // UNCONFIRMED: the body of an unknown route at Privacy.com and Lithic.
            Kind::Privacy | Kind::Lithic => self.error(404, "Not Found"),
        }
    }

    /// None when the request carries the key the provider wants.
    fn authenticate(&self, r: &Req) -> Option<Reply> {
        let auth = r.header("authorization");
        match self.kind {
            Kind::Addy => {
                let token = auth.and_then(|v| {
                    v.get(..7)
                        .filter(|p| p.eq_ignore_ascii_case("bearer "))
                        .map(|_| v[7..].trim())
                });
                if token != Some(self.key.as_str()) {
                    return Some(self.error(401, "Unauthenticated."));
                }
                if r.header("x-requested-with") != Some("XMLHttpRequest") {
                    // The real service answers JSON (and 401 rather than a redirect to /login)
                    // only to requests that expect JSON; the mock insists on the header the
                    // docs send on every request.
                    return Some(self.error(
                        400,
                        "mock addy.io: send X-Requested-With: XMLHttpRequest, as every request in the docs does",
                    ));
                }
                None
            }
            Kind::SimpleLogin => {
                if r.header("authentication") != Some(self.key.as_str()) {
                    return Some(self.error(401, "Wrong api key"));
                }
                None
            }
            Kind::Privacy => match auth {
                None => Some(self.error(401, "Please provide API key in Authorization header")),
                Some(v) => match v.strip_prefix("api-key ") {
                    None => Some(self.error(
                        401,
                        "Please provide API key in the form Authorization: api-key [api-key]",
                    )),
                    Some(k) if k.trim() == self.key => None,
                    Some(_) => Some(self.error(401, "Could not find API key")),
                },
            },
            Kind::Lithic => match auth {
                None => Some(self.error(401, "Please provide API key in Authorization header")),
                Some(v) if v.trim() == self.key => None,
                Some(v) if v.starts_with("api-key ") => Some(self.error(
                    401,
                    "Please provide API key in the form Authorization: [api-key]",
                )),
                Some(_) => Some(self.error(401, "Could not find API key")),
            },
        }
    }

    fn route(&mut self, r: &Req) -> Reply {
        let prefix = self.kind.prefix();
        let rel = match r.path.strip_prefix(prefix) {
            Some(rest) if rest.is_empty() || rest.starts_with('/') => rest,
            _ => return self.no_route(r),
        };
        let segs: Vec<&str> = rel.split('/').filter(|s| !s.is_empty()).collect();
        if let Some(denied) = self.authenticate(r) {
            return denied;
        }
        match self.kind {
            Kind::Addy => self.addy_route(r, &segs),
            Kind::SimpleLogin => self.sl_route(r, &segs),
            Kind::Privacy => self.privacy_route(r, &segs),
            Kind::Lithic => self.lithic_route(r, &segs),
        }
    }
}

// ---------------------------------------------------------------------------------------------
// addy.io, API v1.
// Shape from the addy.io API docs (https://app.addy.io/docs/) and the server source,
// github.com/anonaddy/anonaddy: routes/api.php; app/Http/Controllers/Api/AliasController.php
// (index: newest first, filter[search] on email or description, filter[active],
// filter[deleted]; show withTrashed; store -> 201; destroy without trashed -> 204; forget);
// ActiveAliasController.php (POST {id} -> 200 {data}, 422 plain text for a deleted alias;
// DELETE -> 204); app/Http/Requests/IndexAliasRequest.php (page[size] 1..100, default 100;
// filter[search] 3..50 chars) and StoreAliasRequest.php; app/Http/Resources/AliasResource.php
// (fields); app/Models/Alias.php (deleting deactivates); the jsonPaginate macro in
// app/Providers/AppServiceProvider.php (Laravel LengthAwarePaginator: data, links, meta).
// Errors are Laravel's: 401 {"message": "Unauthenticated."}, 404 {"message": "No query
// results for model [App\\Models\\Alias] ID"}, 422 {"message", "errors": {field: [...]}}.
// `GET /aliases/{id}/emails` is NOT part of the real API (a prototype route some benchmarks use).
// ---------------------------------------------------------------------------------------------

/// The domains the mock account may make aliases on (`GET /domain-options`).
pub const ADDY_DOMAINS: &[&str] = &[
    "johndoe.anonaddy.com",
    "johndoe.anonaddy.me",
    "addymail.com",
    "addy.io",
    "anonaddy.com",
    "anonaddy.me",
];
const ADDY_SHARED_DOMAINS: &[&str] = &["addymail.com", "addy.io", "anonaddy.com", "anonaddy.me"];
const ADDY_USER_ID: &str = "ca0a4e09-c266-4f6f-845c-958db5090f09";
const ADDY_FORMATS: &[&str] = &[
    "random_characters",
    "uuid",
    "random_words",
    "random_male_name",
    "random_female_name",
    "random_noun",
    "custom",
];

fn laravel_now() -> String {
    chrono::Utc::now().format("%Y-%m-%d %H:%M:%S").to_string()
}

/// A Laravel 422: `{"message": first (and N more errors), "errors": {field: [messages]}}`.
fn validation(errors: Vec<(&str, String)>) -> Reply {
    let first = errors.first().map(|e| e.1.clone()).unwrap_or_default();
    let more = errors.len().saturating_sub(1);
    let message = match more {
        0 => first,
        1 => format!("{first} (and 1 more error)"),
        n => format!("{first} (and {n} more errors)"),
    };
    let mut map = Map::new();
    for (field, m) in errors {
        if let Some(list) = map
            .entry(field.to_string())
            .or_insert_with(|| json!([]))
            .as_array_mut()
        {
            list.push(json!(m));
        }
    }
    Reply::json(422, json!({"message": message, "errors": map}))
}

impl Inner {
    fn addy_route(&mut self, r: &Req, segs: &[&str]) -> Reply {
        match (r.method, segs) {
            ("GET", ["aliases"]) => self.addy_index(r),
            ("POST", ["aliases"]) => self.addy_store(r),
            ("GET", ["aliases", id]) => match self.addy_find(id, true) {
                Some(i) => Reply::json(200, json!({"data": self.aliases[i]})),
                None => self.addy_missing(id),
            },
            ("PATCH", ["aliases", id]) => match self.addy_find(id, true) {
                Some(i) => {
                    let body = r.json().unwrap_or_else(|| json!({}));
                    let a = &mut self.aliases[i];
                    for field in ["description", "from_name"] {
                        if let Some(v) = body.get(field) {
                            a[field] = v.clone();
                        }
                    }
                    a["updated_at"] = json!(laravel_now());
                    Reply::json(200, json!({"data": a}))
                }
                None => self.addy_missing(id),
            },
            ("DELETE", ["aliases", id]) => match self.addy_find(id, false) {
                Some(i) => {
                    let now = laravel_now();
                    let a = &mut self.aliases[i];
                    a["active"] = json!(false);
                    a["deleted_at"] = json!(now);
                    a["updated_at"] = json!(now);
                    Reply::empty(204)
                }
                None => self.addy_missing(id),
            },
            ("PATCH", ["aliases", id, "restore"]) => match self.addy_find(id, true) {
                Some(i) => {
                    let a = &mut self.aliases[i];
                    a["active"] = json!(true);
                    a["deleted_at"] = Value::Null;
                    a["updated_at"] = json!(laravel_now());
                    Reply::json(200, json!({"data": a}))
                }
                None => self.addy_missing(id),
            },
            ("DELETE", ["aliases", id, "forget"]) => match self.addy_find(id, true) {
                // Shared-domain aliases are anonymised and moved to a nil user, others are
                // force-deleted: either way the account no longer has it.
                Some(i) => {
                    self.aliases.remove(i);
                    Reply::empty(204)
                }
                None => self.addy_missing(id),
            },
            ("GET", ["aliases", id, "emails"]) => match self.addy_find(id, true) {
                Some(_) => Reply::json(
                    200,
                    json!({"data": self.emails.get(*id).cloned().unwrap_or_default()}),
                ),
                None => self.addy_missing(id),
            },
            ("POST", ["active-aliases"]) => {
                let id = r
                    .json()
                    .and_then(|b| b.get("id").and_then(Value::as_str).map(str::to_string));
                let Some(id) = id else {
                    return validation(vec![("id", "The id field is required.".into())]);
                };
                match self.addy_find(&id, true) {
                    Some(i) if !self.aliases[i]["deleted_at"].is_null() => Reply::text(
                        422,
                        "You need to restore this alias before you can activate it",
                    ),
                    Some(i) => {
                        let a = &mut self.aliases[i];
                        a["active"] = json!(true);
                        a["updated_at"] = json!(laravel_now());
                        Reply::json(200, json!({"data": a}))
                    }
                    None => self.addy_missing(&id),
                }
            }
            ("DELETE", ["active-aliases", id]) => match self.addy_find(id, true) {
                Some(i) => {
                    let a = &mut self.aliases[i];
                    a["active"] = json!(false);
                    a["updated_at"] = json!(laravel_now());
                    Reply::empty(204)
                }
                None => self.addy_missing(id),
            },
            ("GET", ["domain-options"]) => Reply::json(
                200,
                json!({"data": ADDY_DOMAINS, "sharedDomains": ADDY_SHARED_DOMAINS,
                       "defaultAliasDomain": "anonaddy.me", "defaultAliasFormat": "random_characters"}),
            ),
            ("GET", ["account-details"]) => {
                let active = self
                    .aliases
                    .iter()
                    .filter(|a| a["deleted_at"].is_null() && a["active"] == true)
                    .count();
                let deleted = self
                    .aliases
                    .iter()
                    .filter(|a| !a["deleted_at"].is_null())
                    .count();
                Reply::json(
                    200,
                    json!({"data": {"id": ADDY_USER_ID, "username": "johndoe", "default_alias_domain": "anonaddy.me",
                        "default_alias_format": "random_characters", "subscription": "pro",
                        "total_aliases": self.aliases.len(), "total_active_aliases": active,
                        "total_inactive_aliases": self.aliases.len() - active - deleted,
                        "total_deleted_aliases": deleted,
                        "created_at": "2023-01-01 00:00:00", "updated_at": "2023-01-01 00:00:00"}}),
                )
            }
            _ => self.no_route(r),
        }
    }

    fn addy_find(&self, id: &str, with_trashed: bool) -> Option<usize> {
        self.aliases
            .iter()
            .position(|a| a["id"] == id && (with_trashed || a["deleted_at"].is_null()))
    }

    fn addy_missing(&self, id: &str) -> Reply {
        self.error(
            404,
            &format!("No query results for model [App\\Models\\Alias] {id}"),
        )
    }

    /// A new alias object (AliasResource).
    fn addy_alias(
        &mut self,
        domain: &str,
        format: &str,
        local_part: Option<&str>,
        description: Option<&str>,
    ) -> Value {
        let mut id = uuid();
        let (local, extension) = match (format, local_part) {
            ("custom", Some(lp)) => match lp.split_once('+') {
                Some((l, e)) => (l.to_lowercase(), Value::from(e)),
                None => (lp.to_lowercase(), Value::Null),
            },
            ("uuid", _) => (id.clone(), Value::Null),
            ("random_words" | "random_male_name" | "random_female_name" | "random_noun", _) => (
                format!("{}.{}{}", word(), word(), rand_below(100)),
                Value::Null,
            ),
            _ => (random_chars(8), Value::Null),
        };
        if format == "uuid" {
            id = local.clone();
        }
        let domain = domain.to_lowercase();
        let now = laravel_now();
        let alias = json!({
            "id": id, "user_id": ADDY_USER_ID, "aliasable_id": null, "aliasable_type": null,
            "local_part": local, "extension": extension, "domain": domain,
            "email": format!("{local}@{domain}"), "active": true, "pinned": false,
            "description": description, "from_name": null, "attached_recipients_only": false,
            "emails_forwarded": 0, "emails_blocked": 0, "emails_replied": 0, "emails_sent": 0,
            "recipients": [], "last_forwarded": null, "last_blocked": null, "last_replied": null,
            "last_sent": null, "created_at": now, "updated_at": now, "deleted_at": null,
        });
        self.forge(alias)
    }

    fn addy_store(&mut self, r: &Req) -> Reply {
        let body = r.json().unwrap_or_else(|| json!({}));
        let mut errors: Vec<(&str, String)> = Vec::new();
        let domain = body
            .get("domain")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_lowercase();
        if domain.is_empty() {
            errors.push(("domain", "The domain field is required.".into()));
        } else if !ADDY_DOMAINS.contains(&domain.as_str()) {
            errors.push(("domain", "The selected domain is invalid.".into()));
        }
        let description = match body.get("description") {
            None | Some(Value::Null) => None,
            Some(Value::String(s)) => {
                if s.chars().count() > 200 {
                    errors.push((
                        "description",
                        "The description field must not be greater than 200 characters.".into(),
                    ));
                }
                Some(s.clone())
            }
            Some(_) => {
                errors.push((
                    "description",
                    "The description field must be a string.".into(),
                ));
                None
            }
        };
        let format = match body.get("format") {
            None | Some(Value::Null) => "random_characters".to_string(),
            Some(v) => {
                let f = v.as_str().unwrap_or("").to_string();
                if !ADDY_FORMATS.contains(&f.as_str()) {
                    errors.push(("format", "The selected format is invalid.".into()));
                }
                f
            }
        };
        let local_part = body
            .get("local_part")
            .and_then(Value::as_str)
            .map(str::to_string);
        if format == "custom" {
            match &local_part {
                None => errors.push((
                    "local_part",
                    "The local part field is required when format is custom.".into(),
                )),
                Some(lp) => {
                    let bare = lp.split('+').next().unwrap_or("").to_lowercase();
                    if bare.is_empty() || bare.len() > 50 {
                        errors.push((
                            "local_part",
                            "The local part field format is invalid.".into(),
                        ));
                    } else if self
                        .aliases
                        .iter()
                        .any(|a| a["email"] == format!("{bare}@{domain}"))
                    {
                        errors.push((
                            "local_part_without_extension",
                            "That alias already exists.".into(),
                        ));
                    }
                }
            }
        }
        if !errors.is_empty() {
            return validation(errors);
        }
        let alias = self.addy_alias(
            &domain,
            &format,
            local_part.as_deref(),
            description.as_deref(),
        );
        self.aliases.push(alias.clone());
        Reply::json(201, json!({"data": alias}))
    }

    fn addy_index(&self, r: &Req) -> Reply {
        let mut errors: Vec<(&str, String)> = Vec::new();
        let number = match r.q("page[number]") {
            None | Some("") => 1,
            Some(s) => match s.parse::<i64>() {
                Ok(n) => n.max(1) as usize,
                Err(_) => {
                    errors.push((
                        "page.number",
                        "The page.number field must be an integer.".into(),
                    ));
                    1
                }
            },
        };
        let size = match r.q("page[size]") {
            None | Some("") => 100,
            Some(s) => match s.parse::<i64>() {
                Ok(n) if n < 1 => {
                    errors.push((
                        "page.size",
                        "The page.size field must be at least 1.".into(),
                    ));
                    1
                }
                Ok(n) if n > 100 => {
                    errors.push((
                        "page.size",
                        "The page.size field must not be greater than 100.".into(),
                    ));
                    100
                }
                Ok(n) => n as usize,
                Err(_) => {
                    errors.push((
                        "page.size",
                        "The page.size field must be an integer.".into(),
                    ));
                    100
                }
            },
        };
        let search = r
            .q("filter[search]")
            .filter(|s| !s.is_empty())
            .map(str::to_lowercase);
        if let Some(s) = &search {
            let n = s.chars().count();
            if n < 3 {
                errors.push((
                    "filter.search",
                    "The filter.search field must be at least 3 characters.".into(),
                ));
            } else if n > 50 {
                errors.push((
                    "filter.search",
                    "The filter.search field must not be greater than 50 characters.".into(),
                ));
            }
        }
        let active = r.q("filter[active]").filter(|s| !s.is_empty());
        if active.is_some_and(|a| a != "true" && a != "false") {
            errors.push((
                "filter.active",
                "The selected filter.active is invalid.".into(),
            ));
        }
        let deleted = r
            .q("filter[deleted]")
            .or_else(|| r.q("deleted"))
            .unwrap_or("without");
        if !matches!(deleted, "with" | "without" | "only") {
            errors.push((
                "filter.deleted",
                "The selected filter.deleted is invalid.".into(),
            ));
        }
        if !errors.is_empty() {
            return validation(errors);
        }
        let list: Vec<&Value> = self
            .aliases
            .iter()
            .rev()
            .filter(|a| match deleted {
                "with" => true,
                "only" => !a["deleted_at"].is_null(),
                _ => a["deleted_at"].is_null(),
            })
            .filter(|a| active.is_none_or(|want| a["active"] == (want == "true")))
            .filter(|a| {
                search.as_deref().is_none_or(|s| {
                    a["email"].as_str().unwrap_or("").to_lowercase().contains(s)
                        || a["description"]
                            .as_str()
                            .unwrap_or("")
                            .to_lowercase()
                            .contains(s)
                })
            })
            .collect();
        let total = list.len();
        let last_page = total.div_ceil(size).max(1);
        let start = (number - 1).saturating_mul(size);
        let data: Vec<Value> = list
            .iter()
            .skip(start)
            .take(size)
            .map(|v| (*v).clone())
            .collect();
        let (from, to) = if data.is_empty() {
            (Value::Null, Value::Null)
        } else {
            (json!(start + 1), json!(start + data.len()))
        };
        let path = format!("{}{}", self.origin, r.path);
        let url = |n: usize| -> String {
            let mut s = url::form_urlencoded::Serializer::new(String::new());
            for (k, v) in r.query.iter().filter(|(k, _)| k != "page[number]") {
                s.append_pair(k, v);
            }
            s.append_pair("page[number]", &n.to_string());
            format!("{path}?{}", s.finish())
        };
        let prev = if number > 1 {
            json!(url(number - 1))
        } else {
            Value::Null
        };
        let next = if number < last_page {
            json!(url(number + 1))
        } else {
            Value::Null
        };
        let mut meta_links =
            vec![json!({"url": prev, "label": "&laquo; Previous", "active": false})];
        for p in 1..=last_page {
            meta_links.push(json!({"url": url(p), "label": p.to_string(), "active": p == number}));
        }
        meta_links.push(json!({"url": next, "label": "Next &raquo;", "active": false}));
        Reply::json(
            200,
            json!({
                "data": data,
                "links": {"first": url(1), "last": url(last_page), "prev": prev, "next": next},
                "meta": {"current_page": number, "from": from, "last_page": last_page, "links": meta_links,
                         "path": path, "per_page": size, "to": to, "total": total},
            }),
        )
    }
}

// ---------------------------------------------------------------------------------------------
// SimpleLogin.
// Shape from github.com/simple-login/app: docs/api.md; app/api/base.py (`Authentication: KEY`,
// 401 {"error": "Wrong api key"}); app/api/views/new_random_alias.py (POST
// /api/alias/random/new?hostname=&mode=word|uuid {note} -> 201, the alias object plus an
// "alias" key with the address); app/api/views/alias.py (GET|POST /api/v2/aliases?page_id=N,
// page_id required -> 400 "page_id must be provided in request query", 20 a page (PAGE_LIMIT,
// app/config.py), pinned first then newest; GET /api/aliases/{id} -> the bare object, a missing
// alias 400 "Unknown error"; DELETE -> {"deleted": true}; POST .../toggle -> {"enabled"};
// GET .../activities?page_id=N -> {"activities"}; toggle, delete and activities on a missing
// alias answer 403 "Forbidden"); app/api/serializer.py (serialize_alias_info_v2); error
// handlers in simplelogin_app.py: every error is {"error": "..."}, 404 "No such endpoint".
// ---------------------------------------------------------------------------------------------

const SL_PAGE: usize = 20;
const SL_MAILBOX: &str = "owner@example.com";

impl Inner {
    fn sl_alias(&mut self, note: Option<&str>, mode: &str) -> Value {
        let id = self.next_int_id;
        self.next_int_id += 1;
        let local = if mode == "uuid" {
            uuid()
        } else {
            format!("{}_{}{}", word(), word(), rand_below(1000))
        };
        let now = chrono::Utc::now();
        let alias = json!({
            "id": id, "email": format!("{local}@simplelogin.com"),
            "creation_date": now.format("%Y-%m-%d %H:%M:%S+00:00").to_string(),
            "creation_timestamp": now.timestamp(), "enabled": true, "note": note, "name": null,
            "nb_forward": 0, "nb_block": 0, "nb_reply": 0,
            "mailbox": {"id": 1, "email": SL_MAILBOX}, "mailboxes": [{"id": 1, "email": SL_MAILBOX}],
            "support_pgp": false, "disable_pgp": false, "pinned": false, "latest_activity": null,
        });
        self.forge(alias)
    }

    fn sl_find(&self, id: u64) -> Option<usize> {
        self.aliases.iter().position(|a| a["id"] == id)
    }

    fn sl_page_id(r: &Req) -> Option<i64> {
        r.q("page_id").and_then(|s| s.trim().parse::<i64>().ok())
    }

    fn sl_route(&mut self, r: &Req, segs: &[&str]) -> Reply {
        let Some(rest) = segs.strip_prefix(&["api"]) else {
            return self.no_route(r);
        };
        // Routes are <int:alias_id>: anything else is no route at all.
        let id_of = |s: &str| s.parse::<u64>().ok();
        match (r.method, rest) {
            ("POST", ["alias", "random", "new"]) => {
                let mode = r.q("mode").unwrap_or("word");
                if mode != "word" && mode != "uuid" {
                    return self.error(400, &format!("{mode} must be either word or uuid"));
                }
                let note = r
                    .json()
                    .and_then(|b| b.get("note").and_then(Value::as_str).map(str::to_string));
                let alias = self.sl_alias(note.as_deref(), mode);
                self.aliases.push(alias.clone());
                let mut out = alias.clone();
                out["alias"] = alias["email"].clone();
                Reply::json(201, out)
            }
            ("GET" | "POST", ["v2", "aliases"]) => {
                let Some(page_id) = Self::sl_page_id(r) else {
                    return self.error(400, "page_id must be provided in request query");
                };
                let query = r.json().and_then(|b| {
                    b.get("query")
                        .and_then(Value::as_str)
                        .map(str::to_lowercase)
                });
                let list: Vec<Value> = self
                    .aliases
                    .iter()
                    .rev()
                    .filter(|a| !r.has("pinned") || a["pinned"] == true)
                    .filter(|a| !r.has("disabled") || a["enabled"] == false)
                    .filter(|a| !r.has("enabled") || a["enabled"] == true)
                    .filter(|a| {
                        query.as_deref().is_none_or(|q| {
                            ["email", "note", "name"]
                                .iter()
                                .any(|f| a[*f].as_str().unwrap_or("").to_lowercase().contains(q))
                        })
                    })
                    .cloned()
                    .collect();
                let page: Vec<Value> = if page_id < 0 {
                    Vec::new()
                } else {
                    list.into_iter()
                        .skip(page_id as usize * SL_PAGE)
                        .take(SL_PAGE)
                        .collect()
                };
                Reply::json(200, json!({"aliases": page}))
            }
            ("GET", ["aliases", id]) => match id_of(id) {
                None => self.no_route(r),
                Some(id) => match self.sl_find(id) {
                    Some(i) => Reply::json(200, self.aliases[i].clone()),
                    None => self.error(400, "Unknown error"),
                },
            },
            ("DELETE", ["aliases", id]) => match id_of(id) {
                None => self.no_route(r),
                Some(id) => match self.sl_find(id) {
                    Some(i) => {
                        self.aliases.remove(i);
                        Reply::json(200, json!({"deleted": true}))
                    }
                    None => self.error(403, "Forbidden"),
                },
            },
            ("PUT" | "PATCH", ["aliases", id]) => match id_of(id) {
                None => self.no_route(r),
                Some(id) => {
                    let Some(body) = r
                        .json()
                        .filter(|b| b.as_object().is_some_and(|o| !o.is_empty()))
                    else {
                        return self.error(400, "request body cannot be empty");
                    };
                    match self.sl_find(id) {
                        Some(i) => {
                            for field in ["note", "name", "pinned", "disable_pgp"] {
                                if let Some(v) = body.get(field) {
                                    self.aliases[i][field] = v.clone();
                                }
                            }
                            Reply::json(200, json!({"ok": true}))
                        }
                        None => self.error(403, "Forbidden"),
                    }
                }
            },
            ("POST", ["aliases", id, "toggle"]) => match id_of(id) {
                None => self.no_route(r),
                Some(id) => match self.sl_find(id) {
                    Some(i) => {
                        let enabled = self.aliases[i]["enabled"] != true;
                        self.aliases[i]["enabled"] = json!(enabled);
                        Reply::json(200, json!({"enabled": enabled}))
                    }
                    None => self.error(403, "Forbidden"),
                },
            },
            ("GET", ["aliases", id, "activities"]) => match id_of(id) {
                None => self.no_route(r),
                Some(id) => {
                    if Self::sl_page_id(r).is_none() {
                        return self.error(400, "page_id must be provided in request query");
                    }
                    match self.sl_find(id) {
                        // Newest first, 20 a page (app/api/views/alias.py get_alias_activities).
                        Some(_) => {
                            let page = Self::sl_page_id(r).unwrap_or(0).max(0) as usize;
                            let log = self.activities.get(&id).cloned().unwrap_or_default();
                            let items: Vec<Value> =
                                log.into_iter().rev().skip(page * 20).take(20).collect();
                            Reply::json(200, json!({"activities": items}))
                        }
                        None => self.error(403, "Forbidden"),
                    }
                }
            },
            ("GET", ["user_info"]) => Reply::json(
                200,
                json!({"name": "John Wick", "is_premium": true, "email": SL_MAILBOX, "in_trial": false,
                       "trial_end_timestamp": null, "max_alias_free_plan": 10,
                       "connected_proton_address": null, "can_create_reverse_alias": true,
                       "profile_picture_url": null}),
            ),
            _ => self.no_route(r),
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Cards: shared by Privacy.com and Lithic (Lithic grew out of Privacy.com's API).
// ---------------------------------------------------------------------------------------------

const STATES_NEW: &[&str] = &["OPEN", "PAUSED"];
const STATES_UPDATE: &[&str] = &["OPEN", "PAUSED", "CLOSED"];
const DURATIONS: &[&str] = &["ANNUALLY", "FOREVER", "MONTHLY", "TRANSACTION"];
const PRIVACY_TYPES: &[&str] = &[
    "MERCHANT_LOCKED",
    "PHYSICAL",
    "SINGLE_USE",
    "UNLOCKED",
    "DIGITAL_WALLET",
];
const LITHIC_TYPES: &[&str] = &[
    "MERCHANT_LOCKED",
    "PHYSICAL",
    "SINGLE_USE",
    "VIRTUAL",
    "UNLOCKED",
    "DIGITAL_WALLET",
];
const FUNDING_TOKEN: &str = "b0f0d91a-3697-46d8-85f3-20f0a585cbea";
const ACCOUNT_TOKEN: &str = "f3f4918c-8d3a-4b1e-9c2a-6f0b1d2e3c4a";
const CARD_PROGRAM_TOKEN: &str = "5e9483eb-8103-4e16-9794-2106111b2eca";
const ISSUING_REQUIRED: &str = "Insufficient Privileges. Issuing API key required";

fn rfc3339_now() -> String {
    chrono::Utc::now().format("%Y-%m-%dT%H:%M:%SZ").to_string()
}

impl Inner {
    /// Checks a create body; the message is the 400's.
    fn check_new_card(&self, body: &Value) -> Result<(), String> {
        let types = if self.kind == Kind::Lithic {
            LITHIC_TYPES
        } else {
            PRIVACY_TYPES
        };
        // UNCONFIRMED: the wording of these 400s (the statuses are the documented ones).
        match body.get("type").and_then(Value::as_str) {
            None => return Err("type is required".into()),
            Some(t) if !types.contains(&t) => {
                return Err(format!("type must be one of {}", types.join(", ")))
            }
            _ => {}
        }
        if let Some(s) = body.get("state") {
            if !s.as_str().is_some_and(|s| STATES_NEW.contains(&s)) {
                return Err("state must be OPEN or PAUSED".into());
            }
        }
        self.check_limits(body)
    }

    fn check_limits(&self, body: &Value) -> Result<(), String> {
        if let Some(d) = body.get("spend_limit_duration") {
            if !d.as_str().is_some_and(|d| DURATIONS.contains(&d)) {
                return Err(format!(
                    "spend_limit_duration must be one of {}",
                    DURATIONS.join(", ")
                ));
            }
        }
        if let Some(l) = body.get("spend_limit") {
            let Some(cents) = l.as_u64() else {
                return Err("spend_limit must be a non-negative integer (cents)".into());
            };
            // Privacy.com docs: "has to be a whole dollars (in cents)".
            if self.kind == Kind::Privacy && cents % 100 != 0 {
                return Err("spend_limit has to be whole dollars (in cents)".into());
            }
        }
        if let Some(m) = body.get("memo") {
            if !m.is_string() {
                return Err("memo must be a string".into());
            }
        }
        Ok(())
    }

    /// A new card object, with pan and cvv.
    fn new_card(&mut self, body: &Value) -> Value {
        let pan = pan();
        let now = chrono::Utc::now();
        let exp_year =
            (now.format("%Y").to_string().parse::<i32>().unwrap_or(2030) + 4).to_string();
        let str_field = |k: &str, default: &str| {
            body.get(k)
                .and_then(Value::as_str)
                .unwrap_or(default)
                .to_string()
        };
        let mut card = json!({
            "created": rfc3339_now(),
            "token": uuid(),
            "last_four": &pan[pan.len() - 4..],
            "hostname": "",
            "memo": str_field("memo", ""),
            "type": str_field("type", "MERCHANT_LOCKED"),
            "spend_limit": body.get("spend_limit").and_then(Value::as_u64).unwrap_or(0),
            "spend_limit_duration": str_field("spend_limit_duration", "TRANSACTION"),
            "state": str_field("state", "OPEN"),
            "pan": pan,
            "cvv": format!("{:03}", rand_below(1000)),
            "exp_month": format!("{:02}", 1 + rand_below(12)),
            "exp_year": exp_year,
            "auth_rule_tokens": [],
        });
        let funding = json!({"account_name": "Checking", "created": "2020-07-08T17:57:36Z", "last_four": "5263",
                             "nickname": "", "state": "ENABLED", "token": FUNDING_TOKEN,
                             "type": "DEPOSITORY_CHECKING"});
        card["funding"] = funding;
        if self.kind == Kind::Lithic {
            card["account_token"] = json!(ACCOUNT_TOKEN);
            card["card_program_token"] = json!(CARD_PROGRAM_TOKEN);
            card["pin_status"] = json!("NOT_SET");
        }
        self.forge(card)
    }

    fn card_index(&self, token: &str) -> Option<usize> {
        self.cards.iter().position(|c| c["token"] == token)
    }

    /// Applies a PATCH body to a card; a closed card can only be "closed" again.
    fn update_card(&mut self, i: usize, body: &Value) -> Result<(), String> {
        if let Some(s) = body.get("state") {
            if !s.as_str().is_some_and(|s| STATES_UPDATE.contains(&s)) {
                return Err("state must be OPEN, PAUSED or CLOSED".into());
            }
        }
        self.check_limits(body)?;
        let card = &mut self.cards[i];
        if card["state"] == "CLOSED" {
            let only_close = body
                .as_object()
                .is_some_and(|o| o.iter().all(|(k, v)| k == "state" && v == "CLOSED"));
            if only_close {
                return Ok(());
            }
            // UNCONFIRMED: the wording; closing "cannot be undone" is documented by both.
            return Err("Card is closed and cannot be modified".into());
        }
        for field in ["state", "memo", "spend_limit", "spend_limit_duration"] {
            if let Some(v) = body.get(field) {
                card[field] = v.clone();
            }
        }
        Ok(())
    }

    fn new_transaction(&self, card_token: &str, amount: i64, descriptor: &str) -> Value {
        let now = rfc3339_now();
        let merchant = json!({"acceptor_id": "174030075991", "acquiring_institution_id": "191231",
                              "city": "LOS GATOS", "country": "USA", "descriptor": descriptor,
                              "mcc": "5999", "state": "CA"});
        match self.kind {
            Kind::Lithic => {
                let amt = |a: i64| json!({"amount": a, "currency": "USD"});
                json!({
                    "token": uuid(), "account_token": ACCOUNT_TOKEN, "card_token": card_token,
                    "amount": amount,
                    "amounts": {"cardholder": {"amount": amount, "conversion_rate": "1.000000", "currency": "USD"},
                                "hold": amt(0), "merchant": amt(amount), "settlement": amt(amount)},
                    "authorization_amount": amount, "authorization_code": "123456", "created": now,
                    "updated": now, "merchant": merchant, "merchant_amount": amount,
                    "merchant_authorization_amount": amount, "merchant_currency": "USD", "network": "VISA",
                    "result": "APPROVED", "settled_amount": amount, "status": "SETTLED", "tags": {},
                    "pos": {"entry_mode": {"card": "NOT_PRESENT", "cardholder": "NOT_PRESENT",
                                           "pan": "ECOMMERCE", "pin_entered": false}},
                    "events": [],
                })
            }
            _ => json!({
                "token": uuid(), "created": now, "amount": amount, "authorization_amount": amount,
                "settled_amount": amount, "merchant_amount": amount, "merchant_authorization_amount": amount,
                "merchant_currency": "USD", "acquirer_fee": 0, "status": "SETTLED", "result": "APPROVED",
                "authorization_code": "123456", "merchant": merchant,
                "funding": [{"amount": amount, "token": FUNDING_TOKEN, "type": "DEPOSITORY_CHECKING"}],
                "events": [],
            }),
        }
    }

    /// 400 for a query parameter the endpoint does not take.
    fn check_params(&self, r: &Req, allowed: &[&str]) -> Option<Reply> {
        r.query
            .iter()
            .find(|(k, _)| !allowed.contains(&k.as_str()))
            .map(|(k, _)| self.error(400, &format!("[{k}] is not a valid parameter")))
    }

    /// Items whose `created` date (YYYY-MM-DD) is within begin..=end.
    /// `begin`/`end` as days (`YYYY-MM-DD`, Privacy.com, inclusive) or instants (RFC 3339,
    /// Lithic: "only entries created after" / "before" the time).
    fn in_range(r: &Req, created: &Value) -> bool {
        let created = created.as_str().unwrap_or("");
        let day = created.get(..10).unwrap_or("");
        let after = |b: &str| if b.len() > 10 { created > b } else { day >= b };
        let before = |e: &str| if e.len() > 10 { created < e } else { day <= e };
        r.q("begin").is_none_or(after) && r.q("end").is_none_or(before)
    }
}

// ---------------------------------------------------------------------------------------------
// Privacy.com, API v1.
// Shape from the Privacy.com developer docs: https://privacy-com.readme.io/docs/api-basics
// (`Authorization: api-key KEY`; errors {"message"} and their table: 401 "Please provide API
// key in Authorization header", "... in the form Authorization: api-key [api-key]", "Could not
// find API key", "Insufficient Privileges. Issuing API key required"; 400 "[query] is not a
// valid parameter"; 429 "Rate limited, too many requests per second"), /docs/cards (the card
// object with pan, cvv, exp_month, exp_year; POST /v1/cards {type, memo, spend_limit,
// spend_limit_duration, state}; PATCH /v1/cards/{card_token}; CLOSED cannot be undone;
// spend_limit in whole dollars), /docs/transactions (the transaction object, card embedded).
// The page wrapper {data, page, total_entries, total_pages} with page (1-based) and page_size
// (1..1000, default 50) is from github.com/FasterSpeeding/Privacy.py util/pagination.py and the
// older shared Privacy/Lithic docs (UNCONFIRMED for the current /v1/cards). Newest first:
// UNCONFIRMED.
// ---------------------------------------------------------------------------------------------

impl Inner {
    fn privacy_route(&mut self, r: &Req, segs: &[&str]) -> Reply {
        let writes = matches!(
            (r.method, segs),
            ("POST", ["cards"]) | ("PATCH", ["cards", _])
        );
        if writes && !self.write_access {
            return self.error(401, ISSUING_REQUIRED);
        }
        match (r.method, segs) {
            ("GET", ["cards"]) => {
                if let Some(bad) =
                    self.check_params(r, &["page", "page_size", "begin", "end", "card_token"])
                {
                    return bad;
                }
                let list: Vec<Value> = self
                    .cards
                    .iter()
                    .rev()
                    .filter(|c| r.q("card_token").is_none_or(|t| c["token"] == t))
                    .filter(|c| Self::in_range(r, &c["created"]))
                    .cloned()
                    .collect();
                self.privacy_page(r, list)
            }
            ("GET", ["cards", token]) => match self.card_index(token) {
                Some(i) => Reply::json(200, self.cards[i].clone()),
                None => self.error(404, "Card not found"),
            },
            ("POST", ["cards"]) => {
                let Some(body) = r.json().filter(Value::is_object) else {
                    return self.error(400, "Request body must be a JSON object");
                };
                if let Err(m) = self.check_new_card(&body) {
                    return self.error(400, &m);
                }
                let card = self.new_card(&body);
                self.cards.push(card.clone());
                Reply::json(200, card)
            }
            ("PATCH", ["cards", token]) => {
                let Some(i) = self.card_index(token) else {
                    return self.error(404, "Card not found");
                };
                let Some(body) = r.json().filter(Value::is_object) else {
                    return self.error(400, "Request body must be a JSON object");
                };
                match self.update_card(i, &body) {
                    Ok(()) => Reply::json(200, self.cards[i].clone()),
                    Err(m) => self.error(400, &m),
                }
            }
            ("GET", ["transactions"]) => {
                if let Some(bad) = self.check_params(
                    r,
                    &["card_token", "result", "begin", "end", "page", "page_size"],
                ) {
                    return bad;
                }
                // Paged first, then each transaction of the page gets its card: the mock's
                // own cost stays out of the benchmarks.
                let list: Vec<&Txn> = self
                    .transactions
                    .iter()
                    .rev()
                    .filter(|t| r.q("card_token").is_none_or(|c| t.card_token == c))
                    .filter(|t| r.q("result").is_none_or(|res| t.value["result"] == res))
                    .filter(|t| Self::in_range(r, &t.value["created"]))
                    .collect();
                self.privacy_page_with(r, list, |t| self.privacy_txn(t))
            }
            ("GET", ["transactions", token]) => match self
                .transactions
                .iter()
                .find(|t| t.value["token"] == *token)
            {
                Some(t) => Reply::json(200, self.privacy_txn(t)),
                None => self.error(404, "Transaction not found"),
            },
            _ => self.no_route(r),
        }
    }

    /// A transaction with its card embedded, as Privacy.com sends it.
    fn privacy_txn(&self, t: &Txn) -> Value {
        let mut v = t.value.clone();
        v["card"] = self
            .card_index(&t.card_token)
            .map(|i| self.cards[i].clone())
            .unwrap_or(Value::Null);
        v
    }

    fn privacy_page(&self, r: &Req, list: Vec<Value>) -> Reply {
        self.privacy_page_with(r, list, |v| v)
    }

    /// The page wrapper over `list`, rendering only the items of the page asked for.
    fn privacy_page_with<T>(&self, r: &Req, list: Vec<T>, render: impl Fn(T) -> Value) -> Reply {
        let page = match r.q("page").map(str::parse::<usize>) {
            None => 1,
            Some(Ok(n)) if n >= 1 => n,
            _ => return self.error(400, "[page] is not a valid parameter"),
        };
        let size = match r.q("page_size").map(str::parse::<usize>) {
            None => 50,
            Some(Ok(n)) if (1..=1000).contains(&n) => n,
            _ => return self.error(400, "[page_size] is not a valid parameter"),
        };
        let total = list.len();
        let data: Vec<Value> = list
            .into_iter()
            .skip((page - 1) * size)
            .take(size)
            .map(render)
            .collect();
        Reply::json(
            200,
            json!({"data": data, "page": page, "total_entries": total, "total_pages": total.div_ceil(size)}),
        )
    }
}

// ---------------------------------------------------------------------------------------------
// Lithic.
// Shape from the Lithic API reference, https://docs.lithic.com/reference and
// https://docs.lithic.com/docs/api-basics (`Authorization: KEY`, the bare key; status codes; 400
// "[query] is not a valid parameter"; 401 "Insufficient Privileges. Issuing API key
// required"), and the Stainless-generated SDK github.com/lithic-com/lithic-python
// (src/lithic/_client.py auth_headers; types/card.py = non_pci_card.py + pan, cvv: list items
// are NonPCICard, without pan and cvv; card_create_params.py, card_update_params.py (CLOSED
// "cannot be undone"), card_list_params.py (page_size, starting_after, ending_before card
// tokens, begin, end, account_token, memo, state); types/transaction.py; pagination.py
// SyncCursorPage {data, has_more}). UNCONFIRMED: page_size range (1..100 here, default 50),
// "debugging_request_id" in error bodies, the create status (200 here), newest-first order.
// ---------------------------------------------------------------------------------------------

impl Inner {
    fn lithic_route(&mut self, r: &Req, segs: &[&str]) -> Reply {
        let writes = matches!(
            (r.method, segs),
            ("POST", ["v1", "cards"]) | ("PATCH", ["v1", "cards", _])
        );
        if writes && !self.write_access {
            return self.error(401, ISSUING_REQUIRED);
        }
        match (r.method, segs) {
            ("GET", ["v1", "cards"]) => {
                let allowed = [
                    "page_size",
                    "starting_after",
                    "ending_before",
                    "begin",
                    "end",
                    "account_token",
                    "memo",
                    "state",
                ];
                if let Some(bad) = self.check_params(r, &allowed) {
                    return bad;
                }
                let list: Vec<Value> = self
                    .cards
                    .iter()
                    .rev()
                    .filter(|c| r.q("account_token").is_none_or(|t| c["account_token"] == t))
                    .filter(|c| r.q("state").is_none_or(|s| c["state"] == s))
                    .filter(|c| {
                        r.q("memo")
                            .is_none_or(|m| c["memo"].as_str().unwrap_or("").contains(m))
                    })
                    .filter(|c| Self::in_range(r, &c["created"]))
                    .map(non_pci)
                    .collect();
                match self.cursor_page(r, &list) {
                    Ok((data, has_more)) => {
                        Reply::json(200, json!({"data": data, "has_more": has_more}))
                    }
                    Err(e) => e,
                }
            }
            ("GET", ["v1", "cards", token]) => match self.card_index(token) {
                Some(i) => Reply::json(200, self.cards[i].clone()),
                None => self.error(404, "Card not found"),
            },
            ("POST", ["v1", "cards"]) => {
                let Some(body) = r.json().filter(Value::is_object) else {
                    return self.error(400, "Request body must be a JSON object");
                };
                if let Err(m) = self.check_new_card(&body) {
                    return self.error(400, &m);
                }
                let card = self.new_card(&body);
                self.cards.push(card.clone());
                Reply::json(200, card)
            }
            ("PATCH", ["v1", "cards", token]) => {
                let Some(i) = self.card_index(token) else {
                    return self.error(404, "Card not found");
                };
                let Some(body) = r.json().filter(Value::is_object) else {
                    return self.error(400, "Request body must be a JSON object");
                };
                match self.update_card(i, &body) {
                    Ok(()) => Reply::json(200, self.cards[i].clone()),
                    Err(m) => self.error(400, &m),
                }
            }
            ("GET", ["v1", "transactions"]) => {
                let allowed = [
                    "card_token",
                    "account_token",
                    "begin",
                    "end",
                    "page_size",
                    "starting_after",
                    "ending_before",
                    "result",
                    "status",
                ];
                if let Some(bad) = self.check_params(r, &allowed) {
                    return bad;
                }
                let list: Vec<Value> = self
                    .transactions
                    .iter()
                    .rev()
                    .filter(|t| r.q("card_token").is_none_or(|c| t.card_token == c))
                    .filter(|t| r.q("result").is_none_or(|x| t.value["result"] == x))
                    .filter(|t| r.q("status").is_none_or(|x| t.value["status"] == x))
                    .filter(|t| Self::in_range(r, &t.value["created"]))
                    .map(|t| t.value.clone())
                    .collect();
                match self.cursor_page(r, &list) {
                    Ok((data, has_more)) => {
                        Reply::json(200, json!({"data": data, "has_more": has_more}))
                    }
                    Err(e) => e,
                }
            }
            ("GET", ["v1", "transactions", token]) => {
                match self
                    .transactions
                    .iter()
                    .find(|t| t.value["token"] == *token)
                {
                    Some(t) => Reply::json(200, t.value.clone()),
                    None => self.error(404, "Transaction not found"),
                }
            }
            _ => self.no_route(r),
        }
    }

    /// Cursor paging over `items` (newest first) by token.
    fn cursor_page(&self, r: &Req, items: &[Value]) -> Result<(Vec<Value>, bool), Reply> {
        let size = match r.q("page_size").map(str::parse::<usize>) {
            None => 50,
            Some(Ok(n)) if (1..=100).contains(&n) => n,
            _ => return Err(self.error(400, "[page_size] is not a valid parameter")),
        };
        let position = |t: &str| items.iter().position(|v| v["token"] == t);
        match (r.q("starting_after"), r.q("ending_before")) {
            (Some(_), Some(_)) => {
                Err(self.error(400, "starting_after and ending_before cannot both be set"))
            }
            (Some(t), None) => {
                let Some(i) = position(t) else {
                    return Err(self.error(400, "[starting_after] is not a valid parameter"));
                };
                let rest = &items[i + 1..];
                Ok((rest.iter().take(size).cloned().collect(), rest.len() > size))
            }
            (None, Some(t)) => {
                let Some(i) = position(t) else {
                    return Err(self.error(400, "[ending_before] is not a valid parameter"));
                };
                let start = i.saturating_sub(size);
                Ok((items[start..i].to_vec(), start > 0))
            }
            (None, None) => Ok((
                items.iter().take(size).cloned().collect(),
                items.len() > size,
            )),
        }
    }
}

/// A Lithic list item: the card without pan and cvv.
fn non_pci(c: &Value) -> Value {
    let mut c = c.clone();
    if let Some(o) = c.as_object_mut() {
        o.remove("pan");
        o.remove("cvv");
    }
    c
}

// ---------------------------------------------------------------------------------------------
// Ids and random values
// ---------------------------------------------------------------------------------------------

fn rand_u64() -> u64 {
    let mut b = [0u8; 8];
    if getrandom::fill(&mut b).is_err() {
        static FALLBACK: std::sync::atomic::AtomicU64 =
            std::sync::atomic::AtomicU64::new(0x9e37_79b9_7f4a_7c15);
        let n = FALLBACK.fetch_add(0x9e37_79b9_7f4a_7c15, std::sync::atomic::Ordering::Relaxed);
        return n ^ (n >> 31);
    }
    u64::from_le_bytes(b)
}

fn rand_below(n: u64) -> u64 {
    rand_u64() % n.max(1)
}

/// A random (version 4) UUID.
fn uuid() -> String {
    let mut b = [0u8; 16];
    b[..8].copy_from_slice(&rand_u64().to_le_bytes());
    b[8..].copy_from_slice(&rand_u64().to_le_bytes());
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let h = hex::encode(b);
    format!(
        "{}-{}-{}-{}-{}",
        &h[..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..]
    )
}

fn random_chars(n: usize) -> String {
    const ALPHABET: &[u8] = b"abcdefghijklmnopqrstuvwxyz0123456789";
    (0..n)
        .map(|_| ALPHABET[rand_below(ALPHABET.len() as u64) as usize] as char)
        .collect()
}

fn word() -> &'static str {
    const WORDS: &[&str] = &[
        "circle", "gravity", "orbit", "maple", "harbor", "velvet", "pebble", "lantern", "meadow",
        "copper", "willow", "ember", "quartz", "summit", "canyon", "falcon",
    ];
    WORDS[rand_below(WORDS.len() as u64) as usize]
}

/// A 16-digit, Luhn-valid, Visa-test-range card number: 4111 and 11 random digits and the check digit.
fn pan() -> String {
    let mut d: Vec<u32> = vec![4, 1, 1, 1];
    for _ in 0..11 {
        d.push(rand_below(10) as u32);
    }
    // The check digit: double every second digit from the right of the payload, rightmost first.
    let sum: u32 = d
        .iter()
        .rev()
        .enumerate()
        .map(|(i, &x)| {
            if i % 2 == 0 {
                if x * 2 > 9 {
                    x * 2 - 9
                } else {
                    x * 2
                }
            } else {
                x
            }
        })
        .sum();
    d.push((10 - sum % 10) % 10);
    d.iter()
        .map(|x| char::from_digit(*x, 10).unwrap_or('0'))
        .collect()
}
