//! systemd readiness and watchdog notifications over `$NOTIFY_SOCKET` (sd_notify's datagram
//! protocol), without a library.
//!
//! A copy of the two functions the gateway needs from the core's `src/systemd.rs`: the
//! gateway does not depend on the core crate, and this is not part of what the two share.

use std::os::unix::net::UnixDatagram;
use std::path::PathBuf;
use std::time::Duration;

/// Sends one sd_notify state line (`READY=1`, `WATCHDOG=1`); does nothing when not started
/// by systemd.
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
