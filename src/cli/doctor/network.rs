//! The doctor's checks of how the agent's traffic leaves the host: the outbound proxy
//! (`[network] proxy`, the system Tor's SOCKS port), and whether the Signal gateway, which
//! reads the same setting when it starts, reports going through it (docs/signal-gateway.md,
//! "Through Tor").

use super::{check, Check, Status};
use crate::config::Config;
use std::path::Path;

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

/// `signal traffic`: how pane-signal reaches Signal. It reads `[network] proxy` when it
/// starts and says in each health line what it goes through; the agent keeps the latest in
/// `<data-dir>/link.state`. A gateway started before the proxy was set (or one too old to
/// use it) reports leaving directly: that is a failure, since the operator asked for Tor.
pub fn signal_egress_check(config: &Config, data_dir: &Path) -> Check {
    let name = "signal traffic";
    let Some(proxy) = config.network.proxy else {
        return check(
            name,
            Status::Warn,
            "pane-signal reaches Signal directly (no [network] proxy): Signal sees this server's address (not what it carries)",
            "set [network] proxy and restart pane-signal (docs/signal-gateway.md, \"Through Tor\")",
        );
    };
    let want = proxy.to_string();
    let reported = super::link::last_state(data_dir)
        .and_then(|state| state.get("signal").filter(|s| s.is_object()).cloned());
    let Some(signal) = reported else {
        return check(
            name,
            Status::Warn,
            format!("pane-signal reads [network] proxy when it starts and then reaches Signal through {want}; no running gateway has reported it yet"),
            "start pane-signal (and the agent), then run doctor again",
        );
    };
    match signal.get("proxy").and_then(|p| p.as_str()) {
        Some(p) if p == want => check(
            name,
            Status::Pass,
            format!("pane-signal reaches Signal through {want}, on a circuit of its own (as it last reported)"),
            "",
        ),
        other => check(
            name,
            Status::Fail,
            format!(
                "[network] proxy is {want}, but the running pane-signal reported {}",
                match other {
                    Some(p) => format!("going through {}", crate::text::escape(p, crate::text::Lines::Single)),
                    None => "reaching Signal directly".to_string(),
                }
            ),
            "restart pane-signal (it reads [network] proxy when it starts): systemctl restart pane-signal",
        ),
    }
}
