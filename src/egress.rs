//! The way out: every connection the agent opens to the outside world is made here, so that
//! with `[network] proxy` set (the system Tor's SOCKS port) none of them leaves directly.
//!
//! - **Through the proxy, names and all.** Provider clients get a reqwest client whose only
//!   proxy is ours (`socks5h`: the proxy resolves the name), built by [`HttpClients`]; the
//!   IMAP connection is a SOCKS5 tunnel from [`Egress::connect`] (hyper-util's SOCKS client,
//!   the one reqwest uses). The agent looks up no name and makes no direct connection.
//! - **Fail closed.** A connection the proxy cannot carry is an error, never a reason to try
//!   directly. When the proxy does not answer, the error says so ([`EgressError::ProxyDown`])
//!   and [`Egress::health`] turns [`Health::Down`] until a connection goes through again, so
//!   the owner is told once per outage (the session's watcher does that).
//! - **One circuit per provider.** Each connection carries SOCKS credentials naming its
//!   provider (`pane-agent:<provider>:<epoch>`) and a password drawn at start; Tor's
//!   `IsolateSOCKSAuth` (on by default) gives streams with different credentials different
//!   circuits, so two providers never see the same exit at the same time. The epoch, kept in
//!   the store, moves on when a context is expired ([`Egress::renew`]): what comes after does
//!   not share a circuit with what came before.

use crate::config::NetworkConfig;
use crate::store::records::{Key, Text};
use crate::store::{Store, StoreError};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::watch;

/// The isolation epoch: the number in every SOCKS user name, moved on by `expire`.
const EPOCH: Key<Text<u64>> = Key::new("network.isolation_epoch");

/// How long the proxy gets to answer a handshake or a probe.
const PROBE_TIMEOUT: Duration = Duration::from_secs(3);

/// Whether the proxy carried the last connection tried through it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Health {
    /// No connection tried yet (or no proxy).
    Unknown,
    /// The last connection went through.
    Up,
    /// The proxy did not answer: nothing goes out until it does.
    Down,
}

/// Why a connection was not made.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EgressError {
    /// The proxy does not answer: nothing was sent, and nothing went out directly.
    #[error("Tor is not reachable at {0} ([network] proxy): nothing was sent, and nothing goes out directly")]
    ProxyDown(SocketAddr),
    /// The destination could not be reached (through the proxy, when there is one: then
    /// the proxy answered but could not reach it, or refused it).
    #[error("cannot reach {target}: {why}")]
    Unreachable {
        /// `host:port`.
        target: String,
        /// What the proxy (or the connection) said.
        why: String,
    },
}

/// The SOCKS user name and password of one circuit.
#[derive(Clone, PartialEq, Eq)]
pub struct Credentials {
    /// `pane-agent:<circuit>:<epoch>`.
    pub username: String,
    /// Drawn once per process.
    pub password: String,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Credentials({})", self.username)
    }
}

/// The way out, shared (clones see the same epoch and health).
#[derive(Clone)]
pub struct Egress {
    inner: Arc<Inner>,
}

struct Inner {
    proxy: Option<SocketAddr>,
    password: String,
    epoch: AtomicU64,
    store: Option<Store>,
    health: watch::Sender<Health>,
}

impl std::fmt::Debug for Egress {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.inner.proxy {
            Some(p) => write!(f, "Egress(socks5h://{p})"),
            None => f.write_str("Egress(direct)"),
        }
    }
}

impl Egress {
    /// Direct connections (no `[network] proxy`): what in-process tests and tools use.
    pub fn direct() -> Egress {
        Egress::make(None, 0, None)
    }

    /// Through `config`'s proxy, if any, with the isolation epoch kept in `store`.
    pub fn open(config: &NetworkConfig, store: &Store) -> Result<Egress, StoreError> {
        let epoch = store.records().get_valid(&EPOCH)?.unwrap_or(0);
        Ok(Egress::make(
            config.proxy.map(|p| p.addr),
            epoch,
            Some(store.clone()),
        ))
    }

    /// Through `config`'s proxy, with an epoch of its own (not kept): for a client built
    /// without the daemon's store (a benchmark, a tool).
    pub fn unstored(config: &NetworkConfig) -> Egress {
        Egress::make(config.proxy.map(|p| p.addr), 0, None)
    }

    fn make(proxy: Option<SocketAddr>, epoch: u64, store: Option<Store>) -> Egress {
        let mut bytes = [0u8; 16];
        // Without randomness the password is only less unique; the user name still isolates.
        let _ = getrandom::fill(&mut bytes);
        Egress {
            inner: Arc::new(Inner {
                proxy,
                password: hex::encode(bytes),
                epoch: AtomicU64::new(epoch),
                store,
                health: watch::channel(Health::Unknown).0,
            }),
        }
    }

    /// The proxy's address, when connections go through one.
    pub fn proxy(&self) -> Option<SocketAddr> {
        self.inner.proxy
    }

    /// The isolation epoch now.
    pub fn epoch(&self) -> u64 {
        self.inner.epoch.load(Ordering::SeqCst)
    }

    /// The credentials of `circuit` (a provider's name) now; None without a proxy.
    pub fn credentials(&self, circuit: &str) -> Option<Credentials> {
        self.inner.proxy?;
        Some(Credentials {
            username: format!("pane-agent:{circuit}:{}", self.epoch()),
            password: self.inner.password.clone(),
        })
    }

    /// Moves the isolation epoch on (a context was expired): every provider's next
    /// connection is on a new circuit. Kept in the store when there is one.
    pub fn renew(&self) -> Result<u64, StoreError> {
        let next = self.inner.epoch.fetch_add(1, Ordering::SeqCst) + 1;
        if let Some(store) = &self.inner.store {
            store.records().set(&EPOCH, &next)?;
        }
        Ok(next)
    }

    /// Follows the proxy's health: the session tells the owner when it goes down, once,
    /// and when it is back.
    pub fn health(&self) -> watch::Receiver<Health> {
        self.inner.health.subscribe()
    }

    /// A connection went through the proxy.
    pub fn reached(&self) {
        if self.inner.proxy.is_some() {
            self.inner.health.send_if_modified(|h| {
                let changed = *h != Health::Up;
                *h = Health::Up;
                changed
            });
        }
    }

    fn down(&self) {
        self.inner.health.send_if_modified(|h| {
            let changed = *h != Health::Down;
            *h = Health::Down;
            changed
        });
    }

    /// After a connection failed: [`EgressError::ProxyDown`] when the proxy does not answer
    /// a SOCKS handshake (and the health turns down), else None (the proxy is there; the
    /// destination is what failed). Always None without a proxy.
    pub async fn diagnose(&self) -> Option<EgressError> {
        let proxy = self.inner.proxy?;
        match handshake(proxy).await {
            Ok(()) => None,
            Err(_) => {
                self.down();
                Some(EgressError::ProxyDown(proxy))
            }
        }
    }

    /// A TCP stream to `host:port` for `circuit`: through the proxy (which resolves `host`)
    /// when there is one, else directly. Never both.
    pub async fn connect(
        &self,
        circuit: &str,
        host: &str,
        port: u16,
        timeout: Duration,
    ) -> Result<TcpStream, EgressError> {
        let target = format!("{host}:{port}");
        let Some(proxy) = self.inner.proxy else {
            return match tokio::time::timeout(timeout, TcpStream::connect((host, port))).await {
                Ok(Ok(s)) => Ok(s),
                Ok(Err(e)) => Err(EgressError::Unreachable {
                    target,
                    why: e.to_string(),
                }),
                Err(_) => Err(EgressError::Unreachable {
                    target,
                    why: "timed out".into(),
                }),
            };
        };
        let creds = self.credentials(circuit);
        let tunnel = async {
            use hyper_util::client::legacy::connect::proxy::SocksV5;
            use hyper_util::client::legacy::connect::HttpConnector;
            use tower_service::Service;
            let mut http = HttpConnector::new();
            http.enforce_http(false);
            let proxy_uri: http::Uri = format!("socks5h://{proxy}")
                .parse()
                .map_err(|e: http::uri::InvalidUri| e.to_string())?;
            let mut socks = SocksV5::new(proxy_uri, http).local_dns(false);
            if let Some(c) = creds {
                socks = socks.with_auth(c.username, c.password);
            }
            let dst: http::Uri = format!("tcp://{}", authority(host, port))
                .parse()
                .map_err(|e: http::uri::InvalidUri| e.to_string())?;
            socks
                .call(dst)
                .await
                .map(|io| io.into_inner())
                .map_err(|e| e.to_string())
        };
        let failed = match tokio::time::timeout(timeout, tunnel).await {
            Ok(Ok(stream)) => {
                self.reached();
                return Ok(stream);
            }
            Ok(Err(why)) => format!("through the proxy: {why}"),
            Err(_) => "through the proxy: timed out".to_string(),
        };
        Err(self.diagnose().await.unwrap_or(EgressError::Unreachable {
            target,
            why: failed,
        }))
    }
}

/// True when `host` (a name, or an address with or without brackets) is this host or its
/// network: loopback, private, link-local or unspecified addresses, and `localhost`. Tor does
/// not reach these, and reaching them any other way would go around the proxy, so with a
/// proxy they are refused at start.
pub fn is_local(host: &str) -> bool {
    let host = host.trim().trim_start_matches('[').trim_end_matches(']');
    match host.parse::<std::net::IpAddr>() {
        Ok(std::net::IpAddr::V4(ip)) => {
            ip.is_loopback() || ip.is_private() || ip.is_link_local() || ip.is_unspecified()
        }
        Ok(std::net::IpAddr::V6(ip)) => {
            ip.is_loopback()
                || ip.is_unspecified()
                || (ip.segments()[0] & 0xfe00) == 0xfc00
                || (ip.segments()[0] & 0xffc0) == 0xfe80
        }
        Err(_) => host.trim_end_matches('.').eq_ignore_ascii_case("localhost"),
    }
}

/// `host:port`, an IPv6 address in brackets.
fn authority(host: &str, port: u16) -> String {
    if host.contains(':') && !host.starts_with('[') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    }
}

/// The HTTP clients of one circuit: one reqwest client per isolation epoch, made when the
/// epoch moves on (a new client is a new connection pool, so no connection of the old
/// circuit is used again), with our proxy as its only one.
pub struct HttpClients {
    egress: Egress,
    circuit: &'static str,
    build: Box<dyn Fn() -> reqwest::ClientBuilder + Send + Sync>,
    current: Mutex<Option<(u64, reqwest::Client)>>,
}

impl HttpClients {
    /// The clients of `circuit`, each from `build` with the proxy set on it. Builds the
    /// first one at once, so a setting reqwest refuses is reported at start.
    pub fn new(
        egress: &Egress,
        circuit: &'static str,
        build: impl Fn() -> reqwest::ClientBuilder + Send + Sync + 'static,
    ) -> Result<HttpClients, String> {
        let clients = HttpClients {
            egress: egress.clone(),
            circuit,
            build: Box::new(build),
            current: Mutex::new(None),
        };
        clients.get()?;
        Ok(clients)
    }

    /// The way out these clients use.
    pub fn egress(&self) -> &Egress {
        &self.egress
    }

    /// The client for the epoch now.
    pub fn get(&self) -> Result<reqwest::Client, String> {
        let epoch = self.egress.epoch();
        let mut current = self.current.lock().unwrap_or_else(|p| p.into_inner());
        if let Some((e, client)) = current.as_ref() {
            if *e == epoch {
                return Ok(client.clone());
            }
        }
        let mut builder = (self.build)();
        if let (Some(proxy), Some(c)) = (self.egress.proxy(), self.egress.credentials(self.circuit))
        {
            let proxy = reqwest::Proxy::all(format!("socks5h://{proxy}"))
                .map_err(|e| format!("proxy: {e}"))?
                .basic_auth(&c.username, &c.password);
            // `proxy` replaces every proxy from the environment, so ours is the only way out;
            // and no name is looked up here, whatever path a request would take.
            builder = builder.no_proxy().proxy(proxy).dns_resolver(NoLookups);
        }
        let client = builder.build().map_err(|e| format!("HTTP client: {e}"))?;
        *current = Some((epoch, client.clone()));
        Ok(client)
    }
}

/// The resolver of a proxied client: it refuses every look-up. With `socks5h` the proxy
/// resolves the names, so this is never asked; were it asked (a change to how the client is
/// built), the request fails instead of telling the local resolver where the agent goes.
struct NoLookups;

impl reqwest::dns::Resolve for NoLookups {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        tracing::error!(
            name = name.as_str(),
            "name look-up refused: with [network] proxy set, the proxy resolves every name"
        );
        Box::pin(std::future::ready(Err(
            "name look-up refused: with [network] proxy set, the proxy resolves every name".into(),
        )))
    }
}

/// The SOCKS5 handshake's first exchange with the proxy at `addr` (RFC 1928: it offers
/// user name/password authentication and must choose it): what `doctor` checks, and how a
/// failed connection tells a proxy that is down from a destination that is.
pub async fn handshake(addr: SocketAddr) -> Result<(), String> {
    let exchange = async {
        let mut s = TcpStream::connect(addr)
            .await
            .map_err(|e| format!("cannot connect: {e}"))?;
        // Version 5, one method: 0x02 (user name and password, RFC 1929).
        s.write_all(&[5, 1, 2])
            .await
            .map_err(|e| format!("cannot write: {e}"))?;
        let mut answer = [0u8; 2];
        s.read_exact(&mut answer)
            .await
            .map_err(|e| format!("no SOCKS answer: {e}"))?;
        match answer {
            [5, 2] => Ok(()),
            [5, 0xff] => Err(
                "the proxy refuses user name authentication (Tor's SocksPort accepts it)"
                    .to_string(),
            ),
            other => Err(format!("not a SOCKS5 answer: {other:02x?}")),
        }
    };
    tokio::time::timeout(PROBE_TIMEOUT, exchange)
        .await
        .map_err(|_| "no answer within 3 s".to_string())?
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn circuits_differ_by_provider_and_epoch() {
        let config = NetworkConfig {
            proxy: Some(crate::config::ProxyUrl::parse("socks5h://127.0.0.1:9050").unwrap()),
        };
        let e = Egress::unstored(&config);
        let a = e.credentials("addy.io").unwrap();
        let p = e.credentials("Privacy.com").unwrap();
        assert_ne!(a, p);
        assert_eq!(a.password, p.password);
        assert_eq!(a.username, "pane-agent:addy.io:0");
        e.renew().unwrap();
        assert_eq!(
            e.credentials("addy.io").unwrap().username,
            "pane-agent:addy.io:1"
        );
        assert!(Egress::direct().credentials("addy.io").is_none());
        assert_eq!(authority("::1", 993), "[::1]:993");
    }
}
