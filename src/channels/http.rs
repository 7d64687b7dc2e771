//! The loopback HTTP endpoint for a Tor onion service: `POST /command` (an envelope in, the
//! reply out, 64 KiB at most), `GET /healthz` (`ok`; `degraded`, with a 503, while Signal
//! is unusable; `sealed` until the owner unseals), `POST /unseal` (`{"passphrase": ...}`: the way to unseal from the phone after a reboot,
//! when Signal is sealed too), and the phone signer under `GET /signer/`
//! (the page, its manifest, icon and service worker, with a strict Content Security Policy).
//! Error replies carry a status code that matches their kind. A `/command` reply is JSON,
//! or, when the request's `Accept` prefers `text/plain`, the words the owner's phone gets on
//! Signal for the same reply, or both ([`REPLY_AND_WORDS`], which the signer page asks for:
//! the words, with the JSON behind a toggle). The connections' bounds
//! (cap, timeouts, shutdown deadline) are in [`http_conn`](super::http_conn).

use super::door::{sealed_reply, Door};
use crate::auth::MAX_ENVELOPE_BYTES;
use crate::config::HttpConfig;
use crate::health::LinkStatus;
use crate::origin::Channel;
use crate::reply::{CommandError, ErrorKind, Reply};
use crate::shutdown::Shutdown;
use axum::body::{to_bytes, Body};
use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use base64::Engine as _;
use serde_json::json;
use sha2::{Digest, Sha256};
use std::sync::LazyLock;
use std::time::Duration;
use tokio::net::TcpListener;

/// What the handlers share: the gate (through the door of the seal), and how long a request
/// body may take to arrive.
#[derive(Clone)]
struct Endpoint {
    door: Door,
    body_timeout: Duration,
}

/// The router, for the daemon and for tests: a `/command` body must arrive within
/// `body_timeout`.
pub fn router(door: Door, body_timeout: Duration) -> Router {
    Router::new()
        .route("/command", post(command))
        .route("/healthz", get(healthz))
        .route("/unseal", post(unseal))
        .route("/signer", get(signer_redirect))
        .route("/signer/", get(signer_page))
        .route("/signer/sw.js", get(signer_service_worker))
        .route("/signer/manifest.webmanifest", get(signer_manifest))
        .route("/signer/icon.svg", get(signer_icon))
        .fallback(not_found)
        .with_state(Endpoint { door, body_timeout })
}

/// Serves the router on `listener` within `config`'s bounds until shutdown.
pub async fn serve(
    listener: TcpListener,
    door: Door,
    config: &HttpConfig,
    shutdown: Shutdown,
) -> std::io::Result<()> {
    let app = router(door, config.body_timeout());
    super::http_conn::serve(listener, app, config, shutdown).await
}

pub use super::http_conn::check_descriptors;

async fn command(State(endpoint): State<Endpoint>, headers: HeaderMap, body: Body) -> Response {
    let wanted = Wanted::of(&headers);
    let Some(agent) = endpoint.door.gate() else {
        let sealed = sealed_reply();
        let message = sealed["error"].as_str().unwrap_or("sealed");
        let words = format!("✗ refused: {message}");
        return wanted.respond(503, sealed, || words);
    };
    let read = tokio::time::timeout(endpoint.body_timeout, to_bytes(body, MAX_ENVELOPE_BYTES));
    let Ok(read) = read.await else {
        // The body stopped short of its Content-Length: answer, and the unread rest makes
        // hyper close the connection. Not audited: it never became an envelope.
        return body_timed_out(endpoint.body_timeout);
    };
    let mut named = None;
    let reply = match read {
        Ok(bytes) => {
            named = command_named(&bytes);
            agent.submit(bytes.to_vec(), Channel::Http).await
        }
        Err(_) => {
            let error = CommandError::new(
                ErrorKind::TooLarge,
                format!("too large: an envelope is at most {MAX_ENVELOPE_BYTES} bytes"),
            );
            agent.refused(error, Channel::Http).await
        }
    };
    let json = reply.to_json();
    let status = reply.http_status(&json);
    wanted.respond(status, json, || {
        // A refusal before the command was read is worded as Signal words it: `✗ refused`.
        let cmd = match &reply {
            Reply::Err(e) if refused_before_the_command(e.kind) => None,
            _ => named,
        };
        crate::words::reply(cmd, &reply)
    })
}

/// The media type of a reply in both forms, for the signer page: `{"words": "...", "reply":
/// {...}}` (one envelope is answered once, so the page cannot ask twice).
pub const REPLY_AND_WORDS: &str = "application/vnd.pane-agent.reply+json";

/// What a `/command` caller asked for in its `Accept`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Wanted {
    /// The reply's JSON: the default (no `Accept`, `*/*`, JSON preferred or tied).
    Json,
    /// The phone's words: `text/plain` preferred over `application/json`.
    Words,
    /// Both, as [`REPLY_AND_WORDS`], when that type is asked for at all.
    Both,
}

impl Wanted {
    fn of(headers: &HeaderMap) -> Wanted {
        let (mut text, mut json, mut both) = (None::<f32>, None::<f32>, None::<f32>);
        for value in headers.get_all(header::ACCEPT) {
            let Ok(value) = value.to_str() else { continue };
            for range in value.split(',') {
                let mut parts = range.split(';');
                let media = parts.next().unwrap_or("").trim().to_ascii_lowercase();
                let q = parts
                    .filter_map(|p| p.trim().strip_prefix("q="))
                    .find_map(|q| q.trim().parse::<f32>().ok())
                    .unwrap_or(1.0);
                let slot = match media.as_str() {
                    "text/plain" => &mut text,
                    "application/json" => &mut json,
                    REPLY_AND_WORDS => &mut both,
                    _ => continue,
                };
                *slot = Some(slot.map_or(q, |had| had.max(q)));
            }
        }
        match (both, text) {
            (Some(b), _) if b > 0.0 => Wanted::Both,
            (_, Some(t)) if t > 0.0 && t > json.unwrap_or(0.0) => Wanted::Words,
            _ => Wanted::Json,
        }
    }

    /// The response: `json`, or the words `words` makes (only made when asked for).
    fn respond(
        self,
        status: u16,
        json: serde_json::Value,
        words: impl FnOnce() -> String,
    ) -> Response {
        match self {
            Wanted::Json => json_response(status, json.to_string()),
            Wanted::Words => typed_response(status, "text/plain; charset=utf-8", words()),
            Wanted::Both => typed_response(
                status,
                REPLY_AND_WORDS,
                json!({"words": words(), "reply": json}).to_string(),
            ),
        }
    }
}

/// The command an envelope names, when it is one the agent knows (for an error's words).
fn command_named(body: &[u8]) -> Option<&'static str> {
    let envelope: serde_json::Value = serde_json::from_slice(body).ok()?;
    let name = envelope.get("cmd")?.as_str()?;
    crate::commands::find(name).map(|spec| spec.name())
}

/// Refusals that come before the gate reads which command it is (the envelope itself is
/// refused): on Signal they are `✗ refused: ...`, not `✗ status: ...`.
fn refused_before_the_command(kind: ErrorKind) -> bool {
    matches!(
        kind,
        ErrorKind::TooLarge
            | ErrorKind::Malformed
            | ErrorKind::BadSignature
            | ErrorKind::Expired
            | ErrorKind::Replayed
            | ErrorKind::UnknownCommand
    )
}

fn body_timed_out(limit: Duration) -> Response {
    let mut response = json_response(
        408,
        json!({
            "error": format!("timeout: the request body did not arrive within {} s", limit.as_secs()),
            "kind": "timeout",
        })
        .to_string(),
    );
    response
        .headers_mut()
        .insert(header::CONNECTION, HeaderValue::from_static("close"));
    response
}

/// `200 {"status": "ok", "signal": ...}` while the agent works and Signal is not known to be
/// unusable; `503 {"status": "degraded", "signal": "unusable", "problem": ..., "since": ...,
/// "reason": ...}` while it is (a monitor that only reads the status code sees it too);
/// `503 {"status": "sealed"}` until the owner unseals.
async fn healthz(State(endpoint): State<Endpoint>) -> Response {
    let Some(gate) = endpoint.door.gate() else {
        return json_response(503, json!({"status": "sealed"}).to_string());
    };
    let Some(report) = gate.link_report().await else {
        return json_response(503, json!({"status": "unavailable"}).to_string());
    };
    match (report.status, report.problem) {
        (LinkStatus::Unusable, Some(problem)) => json_response(
            503,
            json!({
                "status": "degraded",
                "signal": report.status,
                "problem": problem,
                "since": report.since,
                "reason": format!("Signal unusable: {}", problem.what()),
            })
            .to_string(),
        ),
        _ => json_response(
            200,
            json!({"status": "ok", "signal": report.status}).to_string(),
        ),
    }
}

/// The most a passphrase body may be.
const MAX_UNSEAL_BYTES: usize = 4096;

/// `POST /unseal` with `{"passphrase": "..."}`: the keeper's answer. The passphrase is never
/// logged, and the body's buffer is zeroed once read.
async fn unseal(State(endpoint): State<Endpoint>, body: Body) -> Response {
    let read = tokio::time::timeout(endpoint.body_timeout, to_bytes(body, MAX_UNSEAL_BYTES));
    let Ok(read) = read.await else {
        return body_timed_out(endpoint.body_timeout);
    };
    let Ok(bytes) = read else {
        return json_response(
            413,
            json!({"error": format!("too large: an unseal request is at most {MAX_UNSEAL_BYTES} bytes"), "kind": "too_large"}).to_string(),
        );
    };
    #[derive(serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Body {
        passphrase: String,
    }
    let mut raw = bytes.to_vec();
    let parsed: Result<Body, _> = serde_json::from_slice(&raw);
    zeroize::Zeroize::zeroize(&mut raw);
    let Ok(Body { passphrase }) = parsed else {
        return json_response(
            400,
            json!({"error": "malformed: send {\"passphrase\": \"...\"}", "kind": "malformed"})
                .to_string(),
        );
    };
    match endpoint
        .door
        .unseal(zeroize::Zeroizing::new(passphrase))
        .await
    {
        Ok(done) => json_response(200, serde_json::to_string(&done).unwrap_or_default()),
        Err(e) => {
            let status = match &e {
                super::door::UnsealRefused::WrongPassphrase { .. } => 403,
                super::door::UnsealRefused::TooSoon { .. } => 429,
                super::door::UnsealRefused::NotSealed => 409,
                super::door::UnsealRefused::Failed(_) => 500,
                super::door::UnsealRefused::Gone => 503,
            };
            json_response(status, e.to_json().to_string())
        }
    }
}

async fn not_found() -> Response {
    json_response(
        404,
        json!({"error": "not found: use POST /command", "kind": "not_found"}).to_string(),
    )
}

fn json_response(status: u16, body: String) -> Response {
    typed_response(status, "application/json", body)
}

fn typed_response(status: u16, content_type: &'static str, body: String) -> Response {
    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    (status, [(header::CONTENT_TYPE, content_type)], body).into_response()
}

// The signer, embedded: the binary serves the very page (and service worker) it was built
// with, so what the owner's phone runs is what the tests in tests/signer.rs checked.
const SIGNER_PAGE: &str = include_str!("../../docs/signer.html");
const SIGNER_SERVICE_WORKER: &str = include_str!("../../docs/signer/sw.js");
const SIGNER_MANIFEST: &str = include_str!("../../docs/signer/manifest.webmanifest");
const SIGNER_ICON: &str = include_str!("../../docs/signer/icon.svg");

/// The page's policy: only its own inline script and style (by hash, so no injected inline
/// code runs), requests only to this origin (`POST /command`, the manifest, the service
/// worker), no forms, no framing.
static SIGNER_PAGE_CSP: LazyLock<String> = LazyLock::new(|| {
    format!(
        "default-src 'none'; script-src {}; style-src {}; connect-src 'self'; img-src 'self'; \
         manifest-src 'self'; worker-src 'self'; form-action 'none'; base-uri 'none'; \
         frame-ancestors 'none'",
        inline_hashes(SIGNER_PAGE, "script"),
        inline_hashes(SIGNER_PAGE, "style"),
    )
});

/// `'sha256-...'` for the text of every `<tag>` element without attributes in `page`, as a
/// CSP source list (`'none'` when there is none).
fn inline_hashes(page: &str, tag: &str) -> String {
    let (open, close) = (format!("<{tag}>"), format!("</{tag}>"));
    let mut sources = Vec::new();
    let mut rest = page;
    while let Some(start) = rest.find(&open) {
        let body = &rest[start + open.len()..];
        let Some(end) = body.find(&close) else { break };
        let digest = Sha256::digest(&body.as_bytes()[..end]);
        sources.push(format!(
            "'sha256-{}'",
            base64::engine::general_purpose::STANDARD.encode(digest)
        ));
        rest = &body[end + close.len()..];
    }
    if sources.is_empty() {
        "'none'".to_string()
    } else {
        sources.join(" ")
    }
}

/// `/signer` without the slash: the page's relative links need the directory form.
async fn signer_redirect() -> Response {
    (
        StatusCode::PERMANENT_REDIRECT,
        [(header::LOCATION, "/signer/")],
    )
        .into_response()
}

async fn signer_page() -> Response {
    signer_asset("text/html; charset=utf-8", &SIGNER_PAGE_CSP, SIGNER_PAGE)
}

async fn signer_service_worker() -> Response {
    signer_asset(
        "text/javascript; charset=utf-8",
        "default-src 'none'; connect-src 'self'",
        SIGNER_SERVICE_WORKER,
    )
}

async fn signer_manifest() -> Response {
    signer_asset(
        "application/manifest+json",
        "default-src 'none'",
        SIGNER_MANIFEST,
    )
}

async fn signer_icon() -> Response {
    signer_asset("image/svg+xml", "default-src 'none'", SIGNER_ICON)
}

/// One signer file with the headers every one of them carries. `no-cache`: the browser (and
/// the service worker, which goes to the network first) revalidates, so an upgraded agent's
/// page is picked up at the next visit.
fn signer_asset(content_type: &'static str, csp: &str, body: &'static str) -> Response {
    let csp = HeaderValue::from_str(csp)
        .unwrap_or_else(|_| HeaderValue::from_static("default-src 'none'"));
    (
        StatusCode::OK,
        [
            (header::CONTENT_TYPE, HeaderValue::from_static(content_type)),
            (header::CONTENT_SECURITY_POLICY, csp),
            (header::CACHE_CONTROL, HeaderValue::from_static("no-cache")),
            (
                header::X_CONTENT_TYPE_OPTIONS,
                HeaderValue::from_static("nosniff"),
            ),
            (
                header::REFERRER_POLICY,
                HeaderValue::from_static("no-referrer"),
            ),
            (header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY")),
            (
                header::HeaderName::from_static("cross-origin-opener-policy"),
                HeaderValue::from_static("same-origin"),
            ),
            (
                header::HeaderName::from_static("cross-origin-resource-policy"),
                HeaderValue::from_static("same-origin"),
            ),
            (
                header::HeaderName::from_static("permissions-policy"),
                HeaderValue::from_static(
                    "camera=(self), microphone=(), geolocation=(), payment=(), usb=()",
                ),
            ),
        ],
        body,
    )
        .into_response()
}
