//! The link's health as the gateway sees it, reported to the core (`health` lines), so that a
//! link that died is known at once and never silent: connected or not and since when, the
//! last message from Signal's server, the last send it accepted, and the registration as
//! Signal's answers show it (credentials refused, a challenge to solve, a client too old).
//!
//! The gateway never relinks or wipes anything by itself: a refused registration is reported
//! and retried slowly (a transient refusal heals itself); only the operator relinks.
//!
//! A line is written when the core connects and whenever the state changes; the times of
//! the last message and the last send ride along, and on their own at most once a minute.

use pane_protocol::messages::{Challenge, GatewayBuild, LinkHealth, Registration};
use std::time::{SystemTime, UNIX_EPOCH};

/// How stale the reported last-message and last-send times may get before a line is
/// written for them alone.
const ACTIVITY_EVERY_MS: u64 = 60_000;

/// The capabilities this build announces to Signal: presage links with libsignal-service's
/// defaults ([`DeviceCapabilities::default`]), whichever are on.
///
/// [`DeviceCapabilities::default`]: presage::libsignal_service::websocket::account::DeviceCapabilities
pub fn capabilities() -> Vec<String> {
    let caps = presage::libsignal_service::websocket::account::DeviceCapabilities::default();
    match serde_json::to_value(caps) {
        Ok(serde_json::Value::Object(map)) => map
            .into_iter()
            .filter(|(_, on)| on.as_bool() == Some(true))
            .map(|(name, _)| name)
            .collect(),
        _ => Vec::new(),
    }
}

/// This build: its version, the presage and libsignal-service revisions pinned in
/// `signal/Cargo.lock` (read by `build.rs`), and what it announces.
pub fn build() -> GatewayBuild {
    GatewayBuild {
        version: env!("CARGO_PKG_VERSION").into(),
        presage: short_rev(env!("PANE_PRESAGE_REV")),
        libsignal_service: short_rev(env!("PANE_LIBSIGNAL_SERVICE_REV")),
        capabilities: capabilities(),
    }
}

/// A revision as git abbreviates it (12 hex digits): enough to name it, and short enough that
/// no redaction takes it for a key (the full ones are in the gateway's log at start).
fn short_rev(rev: &str) -> String {
    rev.chars().take(12).collect()
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// The health, and what of it the core has been told.
#[derive(Debug, Clone)]
pub struct Health {
    state: LinkHealth,
    /// The state last written to the core (None: nothing written on this connection).
    told: Option<LinkHealth>,
}

impl Health {
    /// Not connected, nothing known yet, as of now; `proxy` is how the connections leave.
    pub fn new(build: GatewayBuild, proxy: Option<String>) -> Health {
        Health {
            state: LinkHealth {
                connected: false,
                since: now_ms(),
                last_received: None,
                last_sent: None,
                registration: Registration::Ok,
                detail: None,
                challenge: None,
                build,
                proxy,
            },
            told: None,
        }
    }

    /// The state now.
    pub fn state(&self) -> &LinkHealth {
        &self.state
    }

    /// The websocket to Signal is open: the registration works.
    pub fn connected(&mut self) {
        if !self.state.connected {
            self.state.connected = true;
            self.state.since = now_ms();
        }
        if matches!(
            self.state.registration,
            Registration::Unlinked | Registration::Unregistered | Registration::Outdated
        ) {
            self.state.registration = Registration::Ok;
            self.state.detail = None;
        }
    }

    /// The websocket is down (`why`, for the core's log and the owner).
    pub fn disconnected(&mut self, why: &str) {
        if self.state.connected {
            self.state.connected = false;
            self.state.since = now_ms();
        }
        if self.state.registration == Registration::Ok {
            self.state.detail = Some(why.to_string());
        }
    }

    /// Signal's server sent something.
    pub fn received(&mut self) {
        self.state.last_received = Some(now_ms());
    }

    /// Signal accepted a send: whatever challenge there was is answered.
    pub fn sent(&mut self) {
        self.state.last_sent = Some(now_ms());
        if self.state.registration == Registration::ProofRequired {
            self.state.registration = Registration::Ok;
            self.state.challenge = None;
            self.state.detail = None;
        }
    }

    /// Signal refused the registration (or the client, or wants proof), saying `detail`.
    pub fn refused(
        &mut self,
        registration: Registration,
        detail: String,
        challenge: Option<Challenge>,
    ) {
        if registration != Registration::ProofRequired {
            self.disconnected(&detail);
        }
        self.state.registration = registration;
        self.state.detail = Some(detail);
        self.state.challenge = challenge;
    }

    /// A challenge's answer was accepted.
    pub fn challenge_answered(&mut self) {
        if self.state.registration == Registration::ProofRequired {
            self.state.registration = Registration::Ok;
            self.state.detail = None;
        }
        self.state.challenge = None;
    }

    /// A new connection to the core: it is told everything again.
    pub fn new_connection(&mut self) {
        self.told = None;
    }

    /// The line to write now, if any: when nothing was told on this connection, when the
    /// state changed, or when the activity times moved on by a minute.
    pub fn news(&mut self) -> Option<LinkHealth> {
        let due = match &self.told {
            None => true,
            Some(told) => {
                let stale = |now: Option<u64>, then: Option<u64>| match (now, then) {
                    (Some(n), Some(t)) => n >= t + ACTIVITY_EVERY_MS,
                    (Some(_), None) => true,
                    _ => false,
                };
                told.connected != self.state.connected
                    || told.registration != self.state.registration
                    || told.challenge != self.state.challenge
                    || told.detail != self.state.detail
                    || stale(self.state.last_received, told.last_received)
                    || stale(self.state.last_sent, told.last_sent)
            }
        };
        if !due {
            return None;
        }
        self.told = Some(self.state.clone());
        Some(self.state.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn told_once_per_change_and_activity_at_most_a_minute_apart() {
        let mut h = Health::new(build(), None);
        let first = h.news().unwrap();
        assert!(!first.connected);
        assert!(
            first.build.capabilities.contains(&"spqr".to_string()),
            "{first:?}"
        );
        assert_eq!(first.build.presage.len(), 12, "{first:?}");
        assert_eq!(first.build.libsignal_service.len(), 12, "{first:?}");
        assert_eq!(h.news(), None);
        h.connected();
        assert!(h.news().unwrap().connected);
        h.received();
        assert!(h.news().is_some(), "the first message is news");
        h.received();
        assert_eq!(h.news(), None, "a message a moment later is not");
        h.refused(
            Registration::ProofRequired,
            "HTTP 428".into(),
            Some(Challenge {
                token: "t".into(),
                options: vec!["captcha".into()],
            }),
        );
        let told = h.news().unwrap();
        assert_eq!(told.registration, Registration::ProofRequired);
        assert!(told.connected, "a challenge does not close the websocket");
        h.sent();
        assert_eq!(h.news().unwrap().registration, Registration::Ok);
        h.refused(Registration::Unlinked, "HTTP 401".into(), None);
        let told = h.news().unwrap();
        assert!(!told.connected);
        assert_eq!(told.registration, Registration::Unlinked);
        h.connected();
        assert_eq!(h.news().unwrap().registration, Registration::Ok);
        h.new_connection();
        assert!(h.news().is_some(), "a new connection hears it all again");
    }
}
