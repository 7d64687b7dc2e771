//! How the gateway's connections to Signal leave the host: through `[network] proxy` from the
//! core's `<data-dir>/pane.toml` (the system Tor's SOCKS port) when it is set, the same
//! setting the core's own calls go through.
//!
//! Every connection pane-signal makes to Signal (REST and websocket, linking included) is made
//! by libsignal-service-rs's one kind of HTTP client (`PushService::new`, reqwest 0.12), which
//! has no proxy setting of its own but follows the proxy variables of the process's
//! environment. So, before any thread or client exists, the gateway sets `ALL_PROXY`,
//! `HTTPS_PROXY` and `HTTP_PROXY` to the proxy with SOCKS credentials of its own (user
//! `pane-signal`, a password drawn at each start: Tor's `IsolateSOCKSAuth` gives it a circuit
//! apart from every provider's) and removes `NO_PROXY` and the lower-case variants, so no
//! host is exempt and none can take precedence. reqwest's `socks` feature, turned on in this
//! crate's manifest, makes that client speak SOCKS5 and send the name to the proxy
//! (`socks5h`): the gateway looks no name up itself. When the proxy does not answer, the
//! connection fails and the link is reported down; reqwest never falls back to a direct
//! connection.
//!
//! The setting is read only here, from the file the core reads (`--config FILE`, else
//! `<data-dir>/pane.toml` when it exists, else the built-in defaults: no proxy), with the rule
//! the core uses (`pane_protocol::network`): a value the core would refuse stops the gateway
//! too, and a file that exists but cannot be read or parsed stops it rather than letting it
//! guess that no proxy was wanted.

use pane_protocol::network::{config_path, ProxyUrl, ProxyUrlError};
use std::path::{Path, PathBuf};

/// The SOCKS user name of the gateway's circuit.
pub const SOCKS_USER: &str = "pane-signal";

/// The variables the gateway sets to the proxy: reqwest reads `HTTPS_PROXY` for `https://`
/// and `wss://` (sent as `https://`), `HTTP_PROXY` for `http://`, `ALL_PROXY` for either.
const SET: [&str; 3] = ["ALL_PROXY", "HTTPS_PROXY", "HTTP_PROXY"];

/// The variables the gateway removes: exemptions, and the lower-case spellings that could
/// otherwise name another proxy.
const REMOVE: [&str; 5] = [
    "NO_PROXY",
    "no_proxy",
    "all_proxy",
    "https_proxy",
    "http_proxy",
];

/// Why the gateway cannot tell how its traffic should leave: it does not start.
#[derive(Debug, thiserror::Error)]
pub enum EgressError {
    /// `pane.toml` cannot be read.
    #[error("cannot read {path} (the gateway takes [network] proxy from the core's configuration): {source}", path = .path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// `pane.toml` is not TOML.
    #[error("{path} is not valid TOML: {message}", path = .path.display())]
    Parse {
        /// The file.
        path: PathBuf,
        /// The parser's words.
        message: String,
    },
    /// `[network] proxy` is not a string.
    #[error("{path}: [network] proxy must be a string like \"socks5h://127.0.0.1:9050\"", path = .path.display())]
    NotAString {
        /// The file.
        path: PathBuf,
    },
    /// `[network] proxy` is not a usable proxy.
    #[error(transparent)]
    Proxy(#[from] ProxyUrlError),
    /// No randomness for the circuit's password.
    #[error("cannot draw the SOCKS password: {0}")]
    Random(String),
}

/// `[network] proxy` from the core's configuration: `explicit` (`--config`) when given, else
/// `<data_dir>/pane.toml` when it exists (as the core finds it); none when the setting is
/// absent or empty, or when there is no file (the core then runs on its defaults: direct).
pub fn proxy_setting(
    data_dir: &Path,
    explicit: Option<&Path>,
) -> Result<Option<ProxyUrl>, EgressError> {
    let Some(path) = config_path(data_dir, explicit) else {
        return Ok(None);
    };
    let text = std::fs::read_to_string(&path).map_err(|source| EgressError::Read {
        path: path.clone(),
        source,
    })?;
    proxy_in(&text, &path)
}

/// `[network] proxy` in a `pane.toml`'s text.
fn proxy_in(text: &str, path: &Path) -> Result<Option<ProxyUrl>, EgressError> {
    let doc: toml_edit::DocumentMut =
        text.parse()
            .map_err(|e: toml_edit::TomlError| EgressError::Parse {
                path: path.to_path_buf(),
                message: e.message().to_string(),
            })?;
    let Some(item) = doc.get("network").and_then(|n| n.get("proxy")) else {
        return Ok(None);
    };
    let Some(value) = item.as_str() else {
        return Err(EgressError::NotAString {
            path: path.to_path_buf(),
        });
    };
    Ok(ProxyUrl::parse_setting(value)?)
}

/// What to set and what to remove in the environment for `proxy` with `password`.
fn environment(
    proxy: &ProxyUrl,
    password: &str,
) -> (Vec<(&'static str, String)>, [&'static str; 5]) {
    let url = proxy.with_credentials(SOCKS_USER, password);
    (SET.iter().map(|k| (*k, url.clone())).collect(), REMOVE)
}

/// Reads `[network] proxy` and, when it is set, routes this process's connections to Signal
/// through it (see the module's words). Returns the proxy, for the log and the health line.
///
/// Must be called before any thread is started: it changes the process's environment.
pub fn route(data_dir: &Path, explicit: Option<&Path>) -> Result<Option<ProxyUrl>, EgressError> {
    let Some(proxy) = proxy_setting(data_dir, explicit)? else {
        return Ok(None);
    };
    let mut secret = [0u8; 16];
    getrandom::fill(&mut secret).map_err(|e| EgressError::Random(e.to_string()))?;
    let (set, remove) = environment(&proxy, &hex::encode(secret));
    for key in remove {
        std::env::remove_var(key);
    }
    for (key, value) in set {
        std::env::set_var(key, value);
    }
    Ok(Some(proxy))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(text: &str) -> Result<Option<ProxyUrl>, EgressError> {
        proxy_in(text, Path::new("/d/pane.toml"))
    }

    #[test]
    fn the_core_setting_is_read_by_the_core_rule() {
        assert_eq!(read("[signal]\nowner = \"x\"\n").unwrap(), None);
        assert_eq!(read("[network]\nproxy = \"\"\n").unwrap(), None);
        let p = read("# c\n[network]\nproxy = \"socks5h://127.0.0.1:9050\" # Tor\n")
            .unwrap()
            .unwrap();
        assert_eq!(p.to_string(), "socks5h://127.0.0.1:9050");
        for (text, why) in [
            (
                "[network]\nproxy = \"socks5://127.0.0.1:9050\"",
                "resolve names itself",
            ),
            (
                "[network]\nproxy = \"socks5h://localhost:9050\"",
                "IP address",
            ),
            ("[network]\nproxy = 9050", "must be a string"),
            ("[network\nproxy = 1", "not valid TOML"),
        ] {
            let err = read(text).unwrap_err().to_string();
            assert!(err.contains(why), "{text}: {err}");
        }
    }

    #[test]
    fn the_file_is_found_as_the_core_finds_it() {
        let dir = std::env::temp_dir().join(format!("pane-egress-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        // No pane.toml: the core runs on its defaults, direct; so does the gateway.
        assert_eq!(proxy_setting(&dir, None).unwrap(), None);
        // A --config that cannot be read stops it.
        let named = dir.join("elsewhere.toml");
        let err = proxy_setting(&dir, Some(&named)).unwrap_err().to_string();
        assert!(
            err.contains("elsewhere.toml") && err.contains("cannot read"),
            "{err}"
        );
        std::fs::write(&named, "[network]\nproxy = \"socks5h://127.0.0.1:9050\"\n").unwrap();
        assert!(proxy_setting(&dir, Some(&named)).unwrap().is_some());
        assert_eq!(proxy_setting(&dir, None).unwrap(), None);
        std::fs::write(
            dir.join(pane_protocol::network::CONFIG_FILE),
            "[network]\nproxy = \"socks5h://127.0.0.1:9\"\n",
        )
        .unwrap();
        let p = proxy_setting(&dir, None).unwrap().unwrap();
        assert_eq!(p.to_string(), "socks5h://127.0.0.1:9");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn every_proxy_variable_names_the_proxy_with_the_gateway_circuit() {
        let p = ProxyUrl::parse("socks5h://127.0.0.1:9050").unwrap();
        let (set, remove) = environment(&p, "00ff");
        assert_eq!(
            set.iter().map(|(k, _)| *k).collect::<Vec<_>>(),
            ["ALL_PROXY", "HTTPS_PROXY", "HTTP_PROXY"]
        );
        for (_, v) in &set {
            assert_eq!(v, "socks5h://pane-signal:00ff@127.0.0.1:9050");
        }
        assert!(remove.contains(&"NO_PROXY") && remove.contains(&"https_proxy"));
    }
}
