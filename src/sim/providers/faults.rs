//! What a test does to a mock provider's traffic, whichever provider it is: the request log,
//! the [`Fault`]s the next requests meet, a provider that hangs (`hold`), a slow one
//! (`latency`), and how many requests it handles at once.
//!
//! [`apply`] is the middleware around every mock's router. It reads the body, logs the
//! request, takes its fault, waits while held, and only then lets the provider's routes see
//! it (or not, or later). `GET /__health` and `GET /__state` are answered here: never logged,
//! never faulted.

use super::{json_reply, Provider, Seen};
use axum::body::{to_bytes, Body};
use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use serde_json::{json, Value};
use std::collections::VecDeque;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

/// What the next request meets instead of (or besides) the normal answer.
#[derive(Debug, Clone)]
pub enum Fault {
    /// Answer `status` at once, doing nothing. `body`: JSON as given; a JSON string is sent as
    /// plain text (addy.io's create 429 is plain text); `null` means the provider's own error
    /// body for that status. `retry_after` adds `Retry-After: N` (seconds).
    Status {
        /// The HTTP status.
        status: u16,
        /// The body (see above).
        body: Value,
        /// `Retry-After`, in seconds.
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

/// A fault kept for the next request with this method and path prefix.
struct Targeted {
    method: String,
    prefix: String,
    fault: Fault,
}

/// The traffic side of one mock: shared by the test thread and the server's middleware.
#[derive(Default)]
pub(super) struct Harness {
    log: Mutex<Log>,
    /// Rung by `release`.
    released: tokio::sync::Notify,
}

#[derive(Default)]
pub(super) struct Log {
    /// `"METHOD /path?query"`, in order (control routes left out).
    pub requests: Vec<String>,
    /// The `user-agent` of each of those requests.
    pub user_agents: Vec<Option<String>>,
    faults: VecDeque<Fault>,
    targeted: Vec<Targeted>,
    /// While true, every request waits (before doing anything) until `release`.
    held: bool,
    /// Every answer waits this long after the work is done (a slow provider).
    pub latency: Option<Duration>,
    /// Requests being handled now, and the most there were at once.
    in_flight: usize,
    pub max_in_flight: usize,
}

impl Harness {
    pub fn lock(&self) -> MutexGuard<'_, Log> {
        self.log.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn push(&self, f: Fault) {
        self.lock().faults.push_back(f);
    }

    pub fn push_for(&self, method: &str, path_prefix: &str, f: Fault) {
        self.lock().targeted.push(Targeted {
            method: method.to_ascii_uppercase(),
            prefix: path_prefix.to_string(),
            fault: f,
        });
    }

    pub fn pending(&self) -> usize {
        let log = self.lock();
        log.faults.len() + log.targeted.len()
    }

    pub fn clear(&self) {
        let mut log = self.lock();
        log.faults.clear();
        log.targeted.clear();
    }

    pub fn hold(&self) {
        self.lock().held = true;
    }

    pub fn release(&self) {
        self.lock().held = false;
        self.released.notify_waiters();
    }

    pub fn reset_max_in_flight(&self) {
        let mut log = self.lock();
        log.max_in_flight = log.in_flight;
    }

    /// Waits while the mock is held.
    async fn wait_released(&self) {
        loop {
            let wake = self.released.notified();
            if !self.lock().held {
                return;
            }
            wake.await;
        }
    }
}

impl Log {
    /// The targeted fault this request meets, else the next general one. `prefix` is the
    /// provider's base-URL path prefix: a target may be given with or without it.
    fn take(&mut self, method: &str, path: &str, prefix: &str) -> Option<Fault> {
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
}

/// Counts a request as in flight for as long as it lives (also through a `Reset` unwind).
struct InFlight(Arc<Harness>);

impl InFlight {
    fn enter(h: &Arc<Harness>) -> InFlight {
        let mut log = h.lock();
        log.in_flight += 1;
        log.max_in_flight = log.max_in_flight.max(log.in_flight);
        InFlight(h.clone())
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.lock().in_flight -= 1;
    }
}

/// The middleware's state: the traffic and the provider (for its error bodies and prefix).
#[derive(Clone)]
pub(super) struct Ctx {
    pub harness: Arc<Harness>,
    pub provider: Arc<dyn Provider>,
}

fn request_line(method: &str, seen: &Seen) -> String {
    if seen.query.is_empty() {
        format!("{method} {}", seen.path)
    } else {
        let q: Vec<String> = seen.query.iter().map(|(k, v)| format!("{k}={v}")).collect();
        format!("{method} {}?{}", seen.path, q.join("&"))
    }
}

/// The middleware around every mock: see the module's notes.
pub(super) async fn apply(State(ctx): State<Ctx>, req: Request, next: Next) -> Response {
    let (mut parts, body) = req.into_parts();
    // Read now: a request that lands later must not depend on the client still being there.
    let bytes = to_bytes(body, 4 << 20).await.unwrap_or_default();
    let method = parts.method.as_str().to_ascii_uppercase();
    let seen = Seen::of(&parts.uri);
    if method == "GET" && seen.path.starts_with("/__") {
        return control(&ctx, &seen.path);
    }
    let _in_flight = InFlight::enter(&ctx.harness);
    let fault = {
        let mut log = ctx.harness.lock();
        log.requests.push(request_line(&method, &seen));
        let user_agent = parts
            .headers
            .get("user-agent")
            .and_then(|v| v.to_str().ok());
        log.user_agents.push(user_agent.map(str::to_string));
        log.take(&method, &seen.path, ctx.provider.about().prefix)
    };
    ctx.harness.wait_released().await;
    parts.extensions.insert(seen);
    let req = Request::from_parts(parts, Body::from(bytes));
    let mut delay = None;
    let response = match fault {
        Some(Fault::Status {
            status,
            body,
            retry_after,
        }) => {
            let mut r = ctx.provider.fault_reply(status, body, retry_after);
            if let Some(secs) = retry_after {
                if let Ok(v) = secs.to_string().parse() {
                    r.headers_mut().insert("retry-after", v);
                }
            }
            return r;
        }
        // Unwinding out of the connection's task drops the socket with no answer; tokio catches
        // the unwind, and resume_unwind skips the panic hook, so nothing is printed.
        Some(Fault::Reset) => std::panic::resume_unwind(Box::new("mock: Fault::Reset")),
        Some(Fault::LandLater(d)) => {
            tokio::spawn(async move {
                tokio::time::sleep(d).await;
                next.run(req).await
            });
            return std::future::pending().await;
        }
        Some(Fault::ApplyThenStatus(s)) => {
            let _done = next.run(req).await;
            ctx.provider.fault_reply(s, Value::Null, None)
        }
        Some(Fault::Delay(d)) => {
            delay = Some(d);
            next.run(req).await
        }
        None => next.run(req).await,
    };
    let latency = ctx.harness.lock().latency;
    if let Some(d) = delay.or(latency) {
        tokio::time::sleep(d).await;
    }
    response
}

/// The control routes.
fn control(ctx: &Ctx, path: &str) -> Response {
    match path {
        "/__health" => json_reply(200, json!({"ok": true})),
        "/__state" => {
            let mut state = ctx.provider.state();
            let log = ctx.harness.lock();
            state["provider"] = json!(ctx.provider.about().name);
            state["requests"] = json!(log.requests);
            state["pending_faults"] = json!(log.faults.len() + log.targeted.len());
            json_reply(200, state)
        }
        _ => json_reply(404, json!({"message": "unknown control route"})),
    }
    .into_response()
}

/// Fields the next alias or card made carries instead of its own (`forge_next`): a
/// compromised provider.
#[derive(Default)]
pub(super) struct Forged(Vec<(String, Value)>);

impl Forged {
    pub fn push(&mut self, field: &str, value: Value) {
        self.0.push((field.to_string(), value));
    }

    /// `object` with the queued fields it has, which are used up.
    pub fn apply(&mut self, mut object: Value) -> Value {
        for (field, value) in std::mem::take(&mut self.0) {
            match object.get_mut(&field) {
                Some(slot) => *slot = value,
                None => self.0.push((field, value)),
            }
        }
        object
    }
}
