//! The `health` line: what the gateway knows of its link to Signal (connected or not and
//! since when, the last message from the server, the last send accepted, the registration as
//! the server's answers show it, a challenge to solve) and of itself (the pinned revisions
//! and the capabilities it announces). The core keeps the latest and serves it (`health`,
//! `/healthz`, the systemd status line, `doctor`), so a link that died is never silent.

use serde::{Deserialize, Serialize};

/// The link's health: the `health` line's fields.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LinkHealth {
    /// Connected to Signal's message websocket now.
    pub connected: bool,
    /// Since when it has been connected, or not (ms since the epoch).
    pub since: u64,
    /// When Signal's server last sent the gateway anything: a message, a receipt, the end
    /// of its queue (ms). None before the first.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_received: Option<u64>,
    /// When Signal last accepted a send (ms). None before the first.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_sent: Option<u64>,
    /// What the server's answers say of the registration.
    pub registration: Registration,
    /// What the server said, in words (its status code and reason; never a secret).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
    /// For [`Registration::ProofRequired`]: the challenge to solve.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub challenge: Option<Challenge>,
    /// The pinned revisions the gateway was built from and the capabilities it announces.
    pub build: GatewayBuild,
    /// The proxy the gateway's connections to Signal go through (`socks5h://127.0.0.1:9050`,
    /// from `[network] proxy`; never its credentials); none: they leave directly.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub proxy: Option<String>,
}

/// What Signal's answers say of the gateway's registration.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Registration {
    /// Nothing wrong is known.
    Ok,
    /// The primary device unlinked this one (401/403 for the device's credentials).
    Unlinked,
    /// The account itself is no longer registered (its number was unregistered).
    Unregistered,
    /// Linking was refused with 409: the server requires a capability this build lacks.
    CapabilityMissing,
    /// 428: Signal wants a challenge solved (a captcha) before it takes more sends.
    ProofRequired,
    /// 499: Signal refuses this client as too old; the gateway must be updated.
    Outdated,
}

/// A challenge Signal set (HTTP 428, "proof required").
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Challenge {
    /// The challenge's token, which the answer quotes.
    pub token: String,
    /// What Signal accepts as proof (`captcha`, `pushChallenge`).
    pub options: Vec<String>,
}

/// The gateway's build: which presage and libsignal-service it runs and what it announces.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GatewayBuild {
    /// pane-signal's version.
    pub version: String,
    /// The presage git revision pinned in `signal/Cargo.lock`.
    pub presage: String,
    /// The libsignal-service-rs git revision pinned in `signal/Cargo.lock`.
    pub libsignal_service: String,
    /// The device capabilities it announces to Signal (`spqr`, ...).
    pub capabilities: Vec<String>,
}

impl Registration {
    /// Its name on the wire.
    pub fn as_str(self) -> &'static str {
        match self {
            Registration::Ok => "ok",
            Registration::Unlinked => "unlinked",
            Registration::Unregistered => "unregistered",
            Registration::CapabilityMissing => "capability_missing",
            Registration::ProofRequired => "proof_required",
            Registration::Outdated => "outdated",
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::messages::{decode_line, encode_line, CoreCommand, GatewayEvent};

    #[test]
    fn the_health_line_reads_as_it_is_written() {
        let line = r#"{"type":"health","connected":false,"since":1765116000000,"last_received":1765115990000,"registration":"proof_required","detail":"HTTP 428","challenge":{"token":"t0k","options":["captcha"]},"build":{"version":"0.1.0","presage":"9420827","libsignal_service":"bd585ac","capabilities":["spqr"]}}"#;
        let event: GatewayEvent = decode_line(line).unwrap();
        let GatewayEvent::Health(h) = &event else {
            panic!("{event:?}");
        };
        assert_eq!(h.registration.as_str(), "proof_required");
        assert_eq!(h.challenge.as_ref().unwrap().token, "t0k");
        assert_eq!(h.last_sent, None);
        assert_eq!(h.proxy, None);
        assert_eq!(encode_line(&event).unwrap().trim_end(), line);
        // Through a proxy: said after the build, and read back.
        let proxied = line.replace(
            r#"["spqr"]}}"#,
            r#"["spqr"]},"proxy":"socks5h://127.0.0.1:9050"}"#,
        );
        let event: GatewayEvent = decode_line(&proxied).unwrap();
        let GatewayEvent::Health(h) = &event else {
            panic!("{event:?}");
        };
        assert_eq!(h.proxy.as_deref(), Some("socks5h://127.0.0.1:9050"));
        assert_eq!(encode_line(&event).unwrap().trim_end(), proxied);
        // Unknown fields and states are refused, as everywhere in the protocol.
        for bad in [
            line.replace("\"since\"", "\"sincee\""),
            line.replace("proof_required", "happy"),
            line.replace("\"capabilities\"", "\"caps\""),
        ] {
            assert!(decode_line::<GatewayEvent>(&bad).is_err(), "{bad}");
        }
        let answer = r#"{"type":"submit_challenge","token":"t0k","captcha":"signal-hcaptcha.x.y"}"#;
        let cmd: CoreCommand = decode_line(answer).unwrap();
        assert_eq!(encode_line(&cmd).unwrap().trim_end(), answer);
    }
}
