//! `[network] proxy` as both processes read it: the core for its own calls, the gateway
//! (`pane-signal`) for its connections to Signal. One rule, so the two cannot disagree on
//! what a usable proxy is.

use serde::{Deserialize, Deserializer};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

/// The core's configuration file in the data dir.
pub const CONFIG_FILE: &str = "pane.toml";

/// The file the core's settings come from, found the same way by the core and the gateway:
/// `explicit` (`--config`) when given, else `<data_dir>/pane.toml` when it exists, else none
/// (the built-in defaults: among them, no proxy).
pub fn config_path(data_dir: &Path, explicit: Option<&Path>) -> Option<PathBuf> {
    match explicit {
        Some(path) => Some(path.to_path_buf()),
        None => Some(data_dir.join(CONFIG_FILE)).filter(|p| p.exists()),
    }
}

/// A proxy pane-agent can use: SOCKS5 with the name resolved by the proxy (`socks5h`), at an
/// IP address and port (so reaching the proxy itself needs no name look-up either).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProxyUrl {
    /// Where the proxy listens.
    pub addr: SocketAddr,
}

/// A `[network] proxy` value that cannot be used, and why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("[network] proxy = {text:?}: {why}")]
pub struct ProxyUrlError {
    /// The value as written.
    pub text: String,
    /// What is wrong with it.
    pub why: &'static str,
}

impl std::fmt::Display for ProxyUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "socks5h://{}", self.addr)
    }
}

impl ProxyUrl {
    /// Parses `socks5h://ADDRESS:PORT`. `socks5://` is refused, not corrected: with it the
    /// agent would look every name up itself, in the clear, before asking the proxy. A user
    /// name or password is refused too: each process sets its own, one per circuit, for
    /// Tor's circuit isolation.
    pub fn parse(text: &str) -> Result<ProxyUrl, ProxyUrlError> {
        let text = text.trim();
        let bad = |why: &'static str| ProxyUrlError {
            text: text.to_string(),
            why,
        };
        let Some((scheme, rest)) = text.split_once("://") else {
            return Err(bad("not a URL like \"socks5h://127.0.0.1:9050\""));
        };
        match scheme.to_ascii_lowercase().as_str() {
            "socks5h" => {}
            "socks5" => {
                return Err(bad(
                    "socks5:// would make the agent resolve names itself, in the clear; use socks5h:// so the proxy resolves them",
                ))
            }
            _ => return Err(bad("only socks5h:// proxies are supported (Tor's SocksPort)")),
        }
        let rest = rest.strip_suffix('/').unwrap_or(rest);
        if rest.contains('@') {
            return Err(bad(
                "leave out the user name and password: the agent sets its own per provider, for circuit isolation",
            ));
        }
        let addr: SocketAddr = rest.parse().map_err(|_| {
            bad("the proxy must be an IP address and port, like 127.0.0.1:9050 (a name would need a look-up of its own)")
        })?;
        if addr.port() == 0 {
            return Err(bad("port 0 is not a port"));
        }
        Ok(ProxyUrl { addr })
    }

    /// The proxy as a URL with SOCKS credentials: Tor (`IsolateSOCKSAuth`, its default)
    /// gives each distinct user name and password a circuit of its own. Neither may hold
    /// `@`, `:` or `/` (they are the caller's own names and random hex, never the owner's).
    pub fn with_credentials(&self, user: &str, password: &str) -> String {
        format!("socks5h://{user}:{password}@{}", self.addr)
    }

    /// `proxy = ""` (as the template writes it) is no proxy; anything else must parse.
    pub fn parse_setting(text: &str) -> Result<Option<ProxyUrl>, ProxyUrlError> {
        if text.trim().is_empty() {
            return Ok(None);
        }
        ProxyUrl::parse(text).map(Some)
    }
}

impl<'de> Deserialize<'de> for ProxyUrl {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<ProxyUrl, D::Error> {
        let text = String::deserialize(d)?;
        ProxyUrl::parse(&text).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_socks5h_at_an_address() {
        let p = ProxyUrl::parse("socks5h://127.0.0.1:9050").unwrap();
        assert_eq!(p.addr, "127.0.0.1:9050".parse().unwrap());
        assert_eq!(p.to_string(), "socks5h://127.0.0.1:9050");
        assert_eq!(
            p.with_credentials("pane-signal", "ab12"),
            "socks5h://pane-signal:ab12@127.0.0.1:9050"
        );
        assert!(ProxyUrl::parse("socks5h://[::1]:9050/").is_ok());
        assert_eq!(ProxyUrl::parse_setting(" "), Ok(None));
        assert_eq!(
            ProxyUrl::parse_setting("socks5h://127.0.0.1:9050"),
            Ok(Some(p))
        );
        for (bad, why) in [
            ("socks5://127.0.0.1:9050", "resolve names itself"),
            ("http://127.0.0.1:8118", "only socks5h"),
            ("socks5h://localhost:9050", "IP address"),
            ("socks5h://u:p@127.0.0.1:9050", "user name"),
            ("127.0.0.1:9050", "not a URL"),
            ("socks5h://127.0.0.1:0", "port 0"),
        ] {
            let err = ProxyUrl::parse(bad).unwrap_err().to_string();
            assert!(err.contains(why), "{bad}: {err}");
            assert!(err.starts_with("[network] proxy = "), "{err}");
        }
    }
}
