//! systemd integration without a library: readiness and watchdog notifications over
//! `$NOTIFY_SOCKET` (sd_notify's datagram protocol), and credentials from
//! `$CREDENTIALS_DIRECTORY` (`LoadCredential=`).

use std::collections::BTreeMap;
use std::os::unix::net::UnixDatagram;
use std::path::PathBuf;
use std::time::Duration;
use zeroize::Zeroizing;

/// Sends one sd_notify state line (`READY=1`, `WATCHDOG=1`, `STOPPING=1`); does nothing
/// when not started by systemd.
pub fn notify(state: &str) {
    let Some(path) = std::env::var_os("NOTIFY_SOCKET") else {
        return;
    };
    let Ok(socket) = UnixDatagram::unbound() else {
        return;
    };
    let bytes = path.as_encoded_bytes();
    let sent = if let Some(abstract_name) = bytes.strip_prefix(b"@") {
        use std::os::linux::net::SocketAddrExt;
        std::os::unix::net::SocketAddr::from_abstract_name(abstract_name)
            .and_then(|addr| socket.send_to_addr(state.as_bytes(), &addr))
    } else {
        socket.send_to(state.as_bytes(), PathBuf::from(path))
    };
    if let Err(e) = sent {
        tracing::warn!(error = %e, "sd_notify failed");
    }
}

/// Half the watchdog interval systemd asked for (`WatchdogSec=`), if it asked.
pub fn watchdog_interval() -> Option<Duration> {
    let usec: u64 = std::env::var("WATCHDOG_USEC").ok()?.parse().ok()?;
    Some(Duration::from_micros(usec / 2)).filter(|d| !d.is_zero())
}

/// The credentials of a sealed installation while it is unsealed, by name (see
/// `seal::vault`): looked at before `$CREDENTIALS_DIRECTORY`, emptied when the agent seals.
static UNSEALED: std::sync::RwLock<Option<BTreeMap<String, Zeroizing<String>>>> =
    std::sync::RwLock::new(None);

/// Hands the process the credentials of its unsealed vault (None when it seals: they are
/// dropped, and zeroed).
pub fn set_unsealed_credentials(credentials: Option<BTreeMap<String, Zeroizing<String>>>) {
    let mut guard = UNSEALED.write().unwrap_or_else(|p| p.into_inner());
    *guard = credentials;
}

/// A credential by name: from the unsealed vault, else passed with `LoadCredential=NAME:...`,
/// trimmed; None when neither has it.
pub fn credential(name: &str) -> Option<String> {
    if let Some(held) = UNSEALED.read().unwrap_or_else(|p| p.into_inner()).as_ref() {
        if let Some(v) = held.get(name) {
            return Some(v.trim().to_string()).filter(|t| !t.is_empty());
        }
    }
    let dir = std::env::var_os("CREDENTIALS_DIRECTORY")?;
    let text = std::fs::read_to_string(PathBuf::from(dir).join(name)).ok()?;
    Some(text.trim().to_string()).filter(|t| !t.is_empty())
}

/// A key from the environment, else from the `provider-keys` credential (lines of
/// `NAME=value`, as an environment file).
pub fn env_or_credential(var: &str) -> Option<String> {
    if let Ok(v) = std::env::var(var) {
        if !v.trim().is_empty() {
            return Some(v.trim().to_string());
        }
    }
    let keys = credential("provider-keys")?;
    keys.lines()
        .filter_map(|l| l.split_once('='))
        .find(|(k, _)| k.trim() == var)
        .map(|(_, v)| v.trim().trim_matches('"').to_string())
        .filter(|v| !v.is_empty())
}

/// Every value the variables `vars` hold, in the environment and in the `provider-keys`
/// credential (both, when both are set), for the redactor: a key read by
/// [`env_or_credential`] must be known to it wherever it came from. `AGENT_SECRET_PREVIOUS`
/// (a comma-separated list) also gives each of its secrets; other values are kept whole, a
/// comma being part of a password.
pub fn secret_values(vars: &[&str]) -> Vec<String> {
    let keys = credential("provider-keys").unwrap_or_default();
    let mut out = Vec::new();
    for var in vars {
        let from_env = std::env::var(var).ok().map(|v| v.trim().to_string());
        let from_file = keys
            .lines()
            .filter_map(|l| l.split_once('='))
            .filter(|(k, _)| k.trim() == *var)
            .map(|(_, v)| v.trim().trim_matches('"').to_string());
        for value in from_env.into_iter().chain(from_file) {
            if value.is_empty() {
                continue;
            }
            if *var == "AGENT_SECRET_PREVIOUS" {
                out.extend(
                    value
                        .split(',')
                        .map(str::trim)
                        .filter(|p| !p.is_empty())
                        .map(str::to_string),
                );
            }
            out.push(value);
        }
    }
    out
}
