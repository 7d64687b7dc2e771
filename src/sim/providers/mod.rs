//! Local mock servers for the providers' HTTP APIs (addy.io, SimpleLogin, Privacy.com, Lithic),
//! for tests that drive the real clients in-process or the real `pane-agent` binary as a
//! separate process.
//!
//! Each provider is one axum [`Router`] over its own typed state (its module: [`addy`],
//! [`simplelogin`], [`privacy`], [`lithic`]; the two card issuers share [`cards`]), with the
//! routes its documentation gives. Each module starts with where its shape comes from; what
//! the mock had to guess is marked UNCONFIRMED. Around every router, [`faults::apply`] keeps the
//! request log and the [`Fault`]s the tests inject. The HIBP mock ([`hibp`]) is served
//! the same way.
//!
//! Each mock runs on its own thread with its own tokio runtime, bound to 127.0.0.1:0, and is
//! controlled from synchronous test code through [`MockServer`]: seed data, read what the
//! provider now holds, read the request log, and queue [`Fault`]s that the next requests meet.
//!
//! `GET /__health` and `GET /__state` are control routes: never logged, never faulted.

use axum::body::{Body, Bytes};
use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{StatusCode, Uri};
use axum::response::Response;
use axum::{middleware, Router};
use serde_json::Value;
use std::future::IntoFuture;
use std::sync::Arc;
use std::time::Duration;

mod addy;
mod cards;
mod faults;
pub mod hibp;
mod ids;
mod lithic;
mod privacy;
mod simplelogin;
mod txns;

pub use addy::ADDY_DOMAINS;
pub use faults::Fault;
use faults::{Ctx, Harness};
pub use ids::luhn_valid;

/// One mock provider: its routes over its own state, and what the tests may do to that state.
/// What a provider does not hold answers empty (`aliases` of a card issuer) or panics (seeding
/// cards at an alias service).
pub(super) trait Provider: Send + Sync + 'static {
    /// Its name, key and where it lives.
    fn about(&self) -> &About;
    /// The provider's routes over its state.
    fn router(self: Arc<Self>) -> Router;
    /// What the provider holds, as `GET /__state` shows it (`{"aliases", "cards",
    /// "transactions"}` for the alias and card services).
    fn state(&self) -> Value;
    fn forge_next(&self, _field: &str, _value: Value) {
        not_here(self.about(), "forge_next")
    }
    fn aliases(&self) -> Vec<Value> {
        Vec::new()
    }
    fn cards(&self) -> Vec<Value> {
        Vec::new()
    }
    fn seed_aliases(&self, _n: usize) {
        not_here(self.about(), "seed_aliases")
    }
    fn add_activity(&self, _alias_email: &str, _action: &str, _from: &str) {
        not_here(self.about(), "add_activity")
    }
    fn add_email(&self, _alias_id: &str, _from: &str, _subject: &str) {
        not_here(self.about(), "add_email")
    }
    fn seed_cards(&self, _n: usize) {
        not_here(self.about(), "seed_cards")
    }
    fn add_transaction(&self, _card_token: &str, _amount: i64, _descriptor: &str) {
        not_here(self.about(), "add_transaction")
    }
    /// See [`MockServer::add_card_transaction`].
    fn add_card_transaction(&self, _charge: txns::Charge<'_>) -> String {
        not_here(self.about(), "add_card_transaction")
    }
    fn set_write_access(&self, _allowed: bool) {
        not_here(self.about(), "set_write_access")
    }

    /// What the provider says for `status` when a fault asks for it: `body` and
    /// `retry_after` as in [`Fault::Status`] (the caller adds the header).
    fn fault_reply(&self, status: u16, body: Value, _retry_after: Option<u64>) -> Response {
        match body {
            Value::Null => {
                let reason = StatusCode::from_u16(status)
                    .ok()
                    .and_then(|s| s.canonical_reason());
                let about = self.about();
                let own = about.fault_words.iter().find(|(s, _)| *s == status);
                let message = own.map(|(_, m)| *m).or(reason).unwrap_or("Error");
                (about.error)(status, message)
            }
            Value::String(s) => text_reply(status, &s),
            other => json_reply(status, other),
        }
    }
}

/// A test asked a provider for what it does not have (cards of an alias service).
fn not_here(about: &About, what: &str) -> ! {
    panic!("{what} on the {} mock, which has no such thing", about.name)
}

/// Who a mock provider is.
pub(super) struct About {
    /// `addy`, `simplelogin`, `privacy`, `lithic`, `hibp`: thread names and `/__state`.
    pub name: &'static str,
    /// The daemon's variables' stem: `ADDY` for `ADDY_API_KEY` and `ADDY_BASE_URL`.
    pub env_stem: &'static str,
    /// The path prefix that is part of the base URL (`/api/v1`, or empty).
    pub prefix: &'static str,
    /// The key the provider accepts.
    pub key: String,
    /// The provider's error body.
    pub error: fn(u16, &str) -> Response,
    /// The provider's own words for a status a fault asks for (else the status's reason).
    pub fault_words: &'static [(u16, &'static str)],
}

/// A running mock provider. Dropping it stops the server.
pub struct MockServer {
    /// The base URL to give the client (with the provider's path prefix, no trailing slash).
    pub base: String,
    origin: String,
    provider: Arc<dyn Provider>,
    harness: Arc<Harness>,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
    peers: Arc<Peers>,
}

/// Who connected to a mock, and who may: with [`MockServer::only_from`] set, a connection
/// from any other address is closed at once, before a byte is read (counted as refused).
#[derive(Default)]
pub(super) struct Peers {
    only: std::sync::Mutex<Option<std::net::IpAddr>>,
    admitted: std::sync::Mutex<Vec<std::net::IpAddr>>,
    refused: std::sync::Mutex<Vec<std::net::IpAddr>>,
}

/// The mock's listener, behind its [`Peers`] rule.
struct Guarded {
    inner: tokio::net::TcpListener,
    peers: Arc<Peers>,
}

impl axum::serve::Listener for Guarded {
    type Io = tokio::net::TcpStream;
    type Addr = std::net::SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        loop {
            let (io, addr) = axum::serve::Listener::accept(&mut self.inner).await;
            let only = *self
                .peers
                .only
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            if only.is_none_or(|ip| ip == addr.ip()) {
                self.peers
                    .admitted
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner)
                    .push(addr.ip());
                return (io, addr);
            }
            self.peers
                .refused
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .push(addr.ip());
            drop(io);
        }
    }

    fn local_addr(&self) -> std::io::Result<Self::Addr> {
        self.inner.local_addr()
    }
}

/// addy.io: `base` = `http://127.0.0.1:PORT/api/v1`; `Authorization: Bearer KEY` and
/// `X-Requested-With: XMLHttpRequest`.
pub fn addy(key: &str) -> std::io::Result<MockServer> {
    Ok(MockServer::start(|origin| addy::Addy::new(key, origin))?.0)
}

/// SimpleLogin: `base` = `http://127.0.0.1:PORT`; `Authentication: KEY`.
pub fn simplelogin(key: &str) -> std::io::Result<MockServer> {
    Ok(MockServer::start(|_| simplelogin::SimpleLogin::new(key))?.0)
}

/// Privacy.com: `base` = `http://127.0.0.1:PORT/v1`; `Authorization: api-key KEY`.
pub fn privacy(key: &str) -> std::io::Result<MockServer> {
    Ok(MockServer::start(|_| cards::Issuing::<privacy::Privacy>::new(key))?.0)
}

/// Lithic: `base` = `http://127.0.0.1:PORT` (paths under `/v1`); `Authorization: KEY`.
pub fn lithic(key: &str) -> std::io::Result<MockServer> {
    Ok(MockServer::start(|_| cards::Issuing::<lithic::Lithic>::new(key))?.0)
}

/// Serves `app` on `listener` on a thread of its own, with a runtime of its own (so a mock
/// serves whatever runtime, if any, its caller is on), until `stop` fires.
fn serve(
    name: &str,
    listener: std::net::TcpListener,
    peers: Arc<Peers>,
    app: Router,
    stop: tokio::sync::oneshot::Receiver<()>,
) -> std::io::Result<std::thread::JoinHandle<()>> {
    let name = name.to_string();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let listener = {
        let _in_runtime = rt.enter();
        tokio::net::TcpListener::from_std(listener)?
    };
    std::thread::Builder::new()
        .name(format!("mock-{name}"))
        .spawn(move || {
            rt.block_on(async move {
                let listener = Guarded {
                    inner: listener,
                    peers,
                };
                tokio::select! {
                    r = axum::serve(listener, app).into_future() => {
                        if let Err(e) = r {
                            eprintln!("mock {name}: server stopped: {e}");
                        }
                    }
                    _ = stop => {}
                }
            });
            // Connections still open (a Delay in progress, pooled keep-alives) are dropped.
            rt.shutdown_background();
        })
}

impl MockServer {
    /// Serves the provider `make` builds for the origin it is given; returns the server and
    /// the provider's own state.
    pub(super) fn start<P: Provider>(
        make: impl FnOnce(&str) -> P,
    ) -> std::io::Result<(MockServer, Arc<P>)> {
        let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
        listener.set_nonblocking(true)?;
        let port = listener.local_addr()?.port();
        let origin = format!("http://127.0.0.1:{port}");
        let provider = Arc::new(make(&origin));
        let harness = Arc::new(Harness::default());
        let ctx = Ctx {
            harness: harness.clone(),
            provider: provider.clone(),
        };
        let app = provider
            .clone()
            .router()
            .layer(middleware::from_fn_with_state(ctx, faults::apply));
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let peers = Arc::new(Peers::default());
        let thread = serve(provider.about().name, listener, peers.clone(), app, rx)?;
        let server = MockServer {
            base: format!("{origin}{}", provider.about().prefix),
            origin,
            provider: provider.clone(),
            harness,
            shutdown: Some(tx),
            thread: Some(thread),
            peers,
        };
        Ok((server, provider))
    }

    /// From now on, connections from any address but `ip` are closed unanswered.
    pub fn only_from(&self, ip: std::net::IpAddr) {
        *self
            .peers
            .only
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = Some(ip);
    }

    /// The address of every connection served, in order.
    pub fn admitted_peers(&self) -> Vec<std::net::IpAddr> {
        self.peers
            .admitted
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    /// The address of every connection refused by [`MockServer::only_from`].
    pub fn refused_peers(&self) -> Vec<std::net::IpAddr> {
        self.peers
            .refused
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    /// The base URL with its host replaced by `host` (a name only a proxy resolves).
    pub fn base_at(&self, host: &str) -> String {
        self.base.replacen("127.0.0.1", host, 1)
    }

    /// `http://127.0.0.1:PORT`, without the provider's path prefix.
    pub fn origin(&self) -> &str {
        &self.origin
    }

    /// The key the mock accepts.
    pub fn key(&self) -> String {
        self.provider.about().key.clone()
    }

    /// The daemon's environment that points it here: the provider's key and base URL
    /// variables (`ADDY_API_KEY`, `ADDY_BASE_URL`, ...).
    pub fn env(&self) -> [(String, String); 2] {
        let var = self.provider.about().env_stem;
        [
            (format!("{var}_API_KEY"), self.key()),
            (format!("{var}_BASE_URL"), self.base.clone()),
        ]
    }

    /// Queues a fault for the next request (any route but the `GET /__` control routes).
    pub fn push_fault(&self, f: Fault) {
        self.harness.push(f);
    }

    /// Queues a fault for the next request whose method is `method` (`*` for any) and whose
    /// path starts with `path_prefix`, either the full path (`/api/v1/aliases`) or the path
    /// under the base URL (`/aliases`). These are met before the general queue.
    pub fn push_fault_for(&self, method: &str, path_prefix: &str, f: Fault) {
        self.harness.push_for(method, path_prefix, f);
    }

    /// Faults not yet met.
    pub fn pending_faults(&self) -> usize {
        self.harness.pending()
    }

    /// Drops every queued fault.
    pub fn clear_faults(&self) {
        self.harness.clear();
    }

    /// `"METHOD /path?query"` of every request received, in order (the query decoded, as
    /// `page[size]=100`; control routes left out).
    pub fn requests(&self) -> Vec<String> {
        self.harness.lock().requests.clone()
    }

    /// How many requests were received.
    pub fn request_count(&self) -> usize {
        self.harness.lock().requests.len()
    }

    /// The `user-agent` of every request, in order (`None` when absent).
    pub fn user_agents(&self) -> Vec<Option<String>> {
        self.harness.lock().user_agents.clone()
    }

    /// From now on every request waits, before the provider does anything, until
    /// [`MockServer::release`]: a provider that hangs.
    pub fn hold(&self) {
        self.harness.hold();
    }

    /// Lets every held request go on, and new ones through.
    pub fn release(&self) {
        self.harness.release();
    }

    /// The most requests that were being handled at once since the last reset.
    pub fn max_in_flight(&self) -> usize {
        self.harness.lock().max_in_flight
    }

    /// Starts counting [`MockServer::max_in_flight`] afresh.
    pub fn reset_max_in_flight(&self) {
        self.harness.reset_max_in_flight();
    }

    /// Every answer from now on comes `d` after the work is done (None: at once).
    pub fn set_latency(&self, d: Option<Duration>) {
        self.harness.lock().latency = d;
    }

    /// Forgets the request log.
    pub fn clear_requests(&self) {
        self.harness.lock().requests.clear();
    }

    /// addy.io / SimpleLogin: adds `n` aliases with descriptions (notes) `seed-0`, `seed-1`, ...
    /// (numbering continues across calls).
    pub fn seed_aliases(&self, n: usize) {
        self.provider.seed_aliases(n);
    }

    /// SimpleLogin: records that `from` sent mail to the alias `alias_email` (action
    /// `forward`, or `block`), as the activity log and the alias's counters show it.
    pub fn add_activity(&self, alias_email: &str, action: &str, from: &str) {
        self.provider.add_activity(alias_email, action, from);
    }

    /// addy.io: records that `from` sent mail to the alias with id `alias_id`, as the
    /// prototype-only `GET /aliases/{id}/emails` lists it (`{"data": [{id, from, subject,
    /// created_at}]}`, oldest first); the alias's `emails_forwarded` and `last_forwarded` move.
    pub fn add_email(&self, alias_id: &str, from: &str, subject: &str) {
        self.provider.add_email(alias_id, from, subject);
    }

    /// Privacy.com / Lithic: adds `n` open merchant-locked cards with memos `seed-0`, ...
    pub fn seed_cards(&self, n: usize) {
        self.provider.seed_cards(n);
    }

    /// The alias objects the provider holds, oldest first (addy.io: not deleted).
    pub fn aliases(&self) -> Vec<Value> {
        self.provider.aliases()
    }

    /// The card objects the provider holds, oldest first, with `pan` and `cvv`.
    pub fn cards(&self) -> Vec<Value> {
        self.provider.cards()
    }

    /// Records a settled, approved transaction of `amount` cents at `descriptor` on a card.
    pub fn add_transaction(&self, card_token: &str, amount: i64, descriptor: &str) {
        self.provider
            .add_transaction(card_token, amount, descriptor);
    }

    /// A compromised provider: the next alias or card it makes (and keeps, and lists) carries
    /// `value` as its `field` (`email`, `last_four`) instead of a well-formed one.
    pub fn forge_next(&self, field: &str, value: Value) {
        self.provider.forge_next(field, value);
    }

    /// Privacy.com / Lithic: when false, creating or changing a card answers 401 "Insufficient
    /// Privileges. Issuing API key required" (a key without write access).
    pub fn set_write_access(&self, allowed: bool) {
        self.provider.set_write_access(allowed);
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

/// The request as it reached the mock (before any router stripped a prefix): its path, and
/// its query decoded, in order. [`faults::apply`] puts it on every request the routes see.
#[derive(Debug, Clone)]
pub(super) struct Seen {
    pub path: String,
    pub query: Vec<(String, String)>,
}

impl Seen {
    fn of(uri: &Uri) -> Seen {
        Seen {
            path: uri.path().to_string(),
            query: url::form_urlencoded::parse(uri.query().unwrap_or("").as_bytes())
                .into_owned()
                .collect(),
        }
    }

    /// The first value of query parameter `key`.
    pub fn q(&self, key: &str) -> Option<&str> {
        self.query
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    /// True when the query names `key` (with any value).
    pub fn has(&self, key: &str) -> bool {
        self.query.iter().any(|(k, _)| k == key)
    }
}

impl<S: Send + Sync> FromRequestParts<S> for Seen {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Seen, Self::Rejection> {
        Ok(parts
            .extensions
            .get::<Seen>()
            .cloned()
            .unwrap_or_else(|| Seen::of(&parts.uri)))
    }
}

/// The body as JSON, if it is JSON.
pub(super) fn body_json(body: &Bytes) -> Option<Value> {
    if body.is_empty() {
        None
    } else {
        serde_json::from_slice(body).ok()
    }
}

fn reply(status: u16, content_type: Option<&str>, body: Body) -> Response {
    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let mut b = Response::builder().status(status);
    if let Some(t) = content_type {
        b = b.header("content-type", t);
    }
    b.body(body)
        .unwrap_or_else(|_| Response::new(Body::empty()))
}

/// `status` with `v` as JSON.
pub(super) fn json_reply(status: u16, v: Value) -> Response {
    reply(status, Some("application/json"), Body::from(v.to_string()))
}

/// `status` with `s` as plain text.
pub(super) fn text_reply(status: u16, s: &str) -> Response {
    reply(
        status,
        Some("text/plain; charset=UTF-8"),
        Body::from(s.to_string()),
    )
}

/// `status` with no body.
pub(super) fn empty_reply(status: u16) -> Response {
    reply(status, None, Body::empty())
}
