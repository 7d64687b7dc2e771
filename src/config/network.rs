//! `[network]`: how the agent's own outbound connections leave the host. With `proxy` set
//! (the system Tor's SOCKS port), every provider call, HIBP look-up and IMAP connection goes
//! through it, names resolved by the proxy, and nothing ever falls back to a direct
//! connection ([`crate::egress`]).

use serde::{Deserialize, Deserializer};

/// The proxy's address, parsed by the rule the gateway shares (`pane_protocol::network`).
pub use pane_protocol::network::ProxyUrl;

/// `[network]`
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct NetworkConfig {
    /// The SOCKS5 proxy every outbound connection goes through, as
    /// `socks5h://ADDRESS:PORT`; none (the default, an empty string) means direct.
    #[serde(deserialize_with = "empty_is_none")]
    pub proxy: Option<ProxyUrl>,
}

/// `proxy = ""` is no proxy, as the template writes it.
fn empty_is_none<'de, D: Deserializer<'de>>(d: D) -> Result<Option<ProxyUrl>, D::Error> {
    let text = String::deserialize(d)?;
    ProxyUrl::parse_setting(&text).map_err(serde::de::Error::custom)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_setting_is_read_by_the_shared_rule() {
        let parse = |t: &str| toml::from_str::<NetworkConfig>(t).map(|c| c.proxy);
        assert_eq!(parse("proxy = \"\"").unwrap(), None);
        assert_eq!(
            parse("proxy = \"socks5h://127.0.0.1:9050\"").unwrap(),
            Some(ProxyUrl::parse("socks5h://127.0.0.1:9050").unwrap())
        );
        let err = parse("proxy = \"socks5://127.0.0.1:9050\"")
            .unwrap_err()
            .to_string();
        assert!(err.contains("resolve names itself"), "{err}");
    }
}
