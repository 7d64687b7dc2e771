//! `[network]`: how the agent's own outbound connections leave the host. With `proxy` set
//! (the system Tor's SOCKS port), every provider call, HIBP look-up and IMAP connection goes
//! through it, names resolved by the proxy, and nothing ever falls back to a direct
//! connection ([`crate::egress`]).

use serde::{Deserialize, Deserializer};
use std::net::SocketAddr;

/// `[network]`
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct NetworkConfig {
    /// The SOCKS5 proxy every outbound connection goes through, as
    /// `socks5h://ADDRESS:PORT`; none (the default, an empty string) means direct.
    #[serde(deserialize_with = "empty_is_none")]
    pub proxy: Option<ProxyUrl>,
}

/// A proxy the agent can use: SOCKS5 with the name resolved by the proxy (`socks5h`), at an
/// IP address and port (so reaching the proxy itself needs no name look-up either).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProxyUrl {
    /// Where the proxy listens.
    pub addr: SocketAddr,
}

impl std::fmt::Display for ProxyUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "socks5h://{}", self.addr)
    }
}

impl ProxyUrl {
    /// Parses `socks5h://ADDRESS:PORT`. `socks5://` is refused, not corrected: with it the
    /// agent would look every name up itself, in the clear, before asking the proxy. A user
    /// name or password is refused too: the agent sets its own, one per provider, for
    /// Tor's circuit isolation.
    pub fn parse(text: &str) -> Result<ProxyUrl, String> {
        let text = text.trim();
        let bad = |why: &str| format!("[network] proxy = {text:?}: {why}");
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
}

impl<'de> Deserialize<'de> for ProxyUrl {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<ProxyUrl, D::Error> {
        let text = String::deserialize(d)?;
        ProxyUrl::parse(&text).map_err(serde::de::Error::custom)
    }
}

/// `proxy = ""` is no proxy, as the template writes it.
fn empty_is_none<'de, D: Deserializer<'de>>(d: D) -> Result<Option<ProxyUrl>, D::Error> {
    let text = String::deserialize(d)?;
    if text.trim().is_empty() {
        return Ok(None);
    }
    ProxyUrl::parse(&text)
        .map(Some)
        .map_err(serde::de::Error::custom)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_socks5h_at_an_address() {
        let p = ProxyUrl::parse("socks5h://127.0.0.1:9050").unwrap();
        assert_eq!(p.addr, "127.0.0.1:9050".parse().unwrap());
        assert_eq!(p.to_string(), "socks5h://127.0.0.1:9050");
        assert!(ProxyUrl::parse("socks5h://[::1]:9050/").is_ok());
        for (bad, why) in [
            ("socks5://127.0.0.1:9050", "resolve names itself"),
            ("http://127.0.0.1:8118", "only socks5h"),
            ("socks5h://localhost:9050", "IP address"),
            ("socks5h://u:p@127.0.0.1:9050", "user name"),
            ("127.0.0.1:9050", "not a URL"),
            ("socks5h://127.0.0.1:0", "port 0"),
        ] {
            let err = ProxyUrl::parse(bad).unwrap_err();
            assert!(err.contains(why), "{bad}: {err}");
        }
    }
}
