//! The doctor's checks of how the agent's traffic leaves the host: the outbound proxy
//! (`[network] proxy`, the system Tor's SOCKS port) and the Signal gateway, which does not
//! use it (docs/signal-gateway.md, "Through Tor").

use super::{check, Check, Status};
use crate::config::Config;

/// Whether `[network] proxy` is set, and answers the SOCKS5 handshake.
pub fn proxy_check(config: &Config) -> Check {
    let name = "outbound proxy";
    let Some(proxy) = config.network.proxy else {
        return check(
            name,
            Status::Warn,
            "none: the providers, HIBP and the IMAP server see this server's address",
            "run Tor and set [network] proxy = \"socks5h://127.0.0.1:9050\" (docs/operations.md, \"Tor\")",
        );
    };
    // The checks run inside the CLI's runtime, which cannot block on a future: the
    // handshake gets a thread and a runtime of its own.
    let answered = std::thread::spawn(move || {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| e.to_string())
            .and_then(|rt| rt.block_on(crate::egress::handshake(proxy.addr)))
    })
    .join()
    .unwrap_or_else(|_| Err("the check panicked".to_string()));
    match answered {
        Ok(()) => check(
            name,
            Status::Pass,
            format!("{proxy} answers the SOCKS5 handshake; one circuit per provider"),
            "",
        ),
        Err(why) => check(
            name,
            Status::Fail,
            format!("{proxy} does not answer: {why}"),
            "start Tor (systemctl start tor) or correct [network] proxy: until it answers, every provider call fails (nothing goes out directly)",
        ),
    }
}

/// The gateway's traffic to Signal leaves directly, proxy or not.
pub fn signal_egress_check() -> Check {
    check(
        "signal traffic",
        Status::Warn,
        "pane-signal reaches Signal directly, not through [network] proxy: Signal sees this server's address (not what it carries)",
        "see docs/signal-gateway.md, \"Through Tor\"",
    )
}
