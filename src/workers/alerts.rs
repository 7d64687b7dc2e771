//! The fallback: the second way to warn the owner when Signal is unusable, since a dead link
//! cannot carry its own alarm. An actor that POSTs each message, as its body, to the
//! ntfy-compatible `[alerts] fallback_url` (ntfy's publish API: the text as the body, with
//! `Title`, `Priority` and `Tags` headers; `Authorization: Bearer` with the
//! `PANE_ALERTS_TOKEN` key when set, for a protected topic), retried with the one backoff
//! on a network failure, a 429 or a 5xx, through `[network] proxy` when it is set (a Tor
//! circuit of its own). The gate hands it a message and goes on: it never
//! waits for the network. What it sends names nothing of the owner's (no context, alias or
//! number): the words come from [`crate::health::judge`].

use crate::egress::{Egress, HttpClients};
use crate::retry::Backoff;
use reqwest::header::{HeaderMap, HeaderName, HeaderValue, AUTHORIZATION};
use std::time::Duration;
use tokio::sync::mpsc;

/// The environment variable (or `provider-keys` line) with an ntfy access token.
pub const TOKEN_VAR: &str = "PANE_ALERTS_TOKEN";

/// The circuit its connections are isolated on (`[network] proxy`).
const CIRCUIT: &str = "alerts";

/// How long one POST may take.
const TIMEOUT: Duration = Duration::from_secs(15);
/// Retries of one message after its first attempt.
const RETRIES: usize = 6;

/// One message for the fallback.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fallback {
    /// `Title`.
    pub title: &'static str,
    /// `Priority` (ntfy: 1-5).
    pub priority: u8,
    /// `Tags` (ntfy shows them as emoji).
    pub tags: &'static str,
    /// The message.
    pub body: String,
}

/// The handle: clones share the sender.
#[derive(Clone, Debug)]
pub struct FallbackHandle {
    sender: mpsc::UnboundedSender<Fallback>,
}

impl FallbackHandle {
    /// Starts the sender for `url`, connecting through `egress` (`[network] proxy`, on a
    /// circuit of its own); None when no URL is configured or the client cannot be built
    /// (logged; `run` checks the URL against the proxy before it starts: [`check_url`]).
    pub fn start(url: Option<&str>, egress: &Egress) -> Option<FallbackHandle> {
        let url = reqwest::Url::parse(url?).ok()?;
        let http = match HttpClients::new(egress, CIRCUIT, builder) {
            Ok(c) => c,
            Err(e) => {
                tracing::error!(error = %e, "the fallback's HTTP client cannot be built; [alerts] fallback_url is off");
                return None;
            }
        };
        let token = crate::systemd::env_or_credential(TOKEN_VAR);
        let (sender, receiver) = mpsc::unbounded_channel();
        tokio::spawn(run(url, http, token, receiver));
        Some(FallbackHandle { sender })
    }

    /// Hands `message` over; false when the sender has stopped.
    pub fn send(&self, message: Fallback) -> bool {
        self.sender.send(message).is_ok()
    }
}

/// Whether `url` can be reached the way the agent goes out: https, or plain http only to
/// loopback (no proxy) or an onion service (through the proxy); with a proxy, never a local
/// address, which it cannot reach and nothing goes around it. The providers' own rule.
pub fn check_url(url: &str, egress: &Egress) -> Result<(), String> {
    crate::providers::http::check_base_url(url, egress.proxy().is_some())
        .map_err(|e| e.replace("base URL", "[alerts] fallback_url"))
}

/// The client the fallback's POSTs go through, before the proxy is set on it: no
/// redirects (the URL is the whole destination), bounded in time.
fn builder() -> reqwest::ClientBuilder {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(TIMEOUT)
        .connect_timeout(Duration::from_secs(5))
        .user_agent("pane-agent")
}

async fn run(
    url: reqwest::Url,
    http: HttpClients,
    token: Option<String>,
    mut receiver: mpsc::UnboundedReceiver<Fallback>,
) {
    while let Some(message) = receiver.recv().await {
        let mut delays = Backoff::bounded(Duration::from_secs(2), Duration::from_secs(60), RETRIES);
        loop {
            let sent = match http.get() {
                Ok(client) => post(&client, &url, token.as_deref(), &message).await,
                Err(why) => Err(Failure { why, retry: false }),
            };
            match sent {
                Ok(()) => {
                    tracing::info!(title = message.title, "fallback alert sent");
                    break;
                }
                Err(Failure { why, retry }) => match delays.next_delay().filter(|_| retry) {
                    Some(wait) => {
                        tracing::warn!(%why, ?wait, "fallback alert failed; trying again");
                        tokio::time::sleep(wait).await;
                    }
                    None => {
                        tracing::error!(%why, title = message.title, "fallback alert not sent; giving up");
                        break;
                    }
                },
            }
        }
    }
}

/// Why a POST failed, and whether another attempt may work.
struct Failure {
    why: String,
    retry: bool,
}

async fn post(
    http: &reqwest::Client,
    url: &reqwest::Url,
    token: Option<&str>,
    message: &Fallback,
) -> Result<(), Failure> {
    let mut headers = HeaderMap::new();
    headers.insert(
        HeaderName::from_static("title"),
        HeaderValue::from_static(message.title),
    );
    headers.insert(
        HeaderName::from_static("priority"),
        HeaderValue::from(u16::from(message.priority)),
    );
    headers.insert(
        HeaderName::from_static("tags"),
        HeaderValue::from_static(message.tags),
    );
    if let Some(token) = token {
        if let Ok(mut v) = HeaderValue::from_str(&format!("Bearer {token}")) {
            v.set_sensitive(true);
            headers.insert(AUTHORIZATION, v);
        }
    }
    let sent = http
        .post(url.clone())
        .headers(headers)
        .body(message.body.clone())
        .send()
        .await;
    match sent {
        Ok(r) if r.status().is_success() => Ok(()),
        Ok(r) => {
            let status = r.status();
            Err(Failure {
                why: format!("HTTP {status}"),
                retry: status.as_u16() == 429 || status.is_server_error(),
            })
        }
        // reqwest's error names the URL, which holds the topic: left out.
        Err(e) => Err(Failure {
            why: if e.is_timeout() {
                "timed out".into()
            } else if e.is_connect() {
                "cannot connect".into()
            } else {
                "request failed".into()
            },
            retry: true,
        }),
    }
}
