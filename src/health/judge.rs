//! Whether Signal is usable, judged from the link's records and `[alerts]`, and the report
//! every reader gets (`health`, `/healthz`, the systemd status line, `link.state` for
//! `doctor`), in JSON and in words.
//!
//! Signal is unusable when the registration is not ok (unlinked, unregistered, a capability
//! missing, a captcha to solve, an outdated gateway), when the gateway has been disconnected
//! from Signal for longer than `unusable_after_secs`, or when no gateway has been connected to
//! the agent for that long (the gateway process is dead). Nothing here names the owner, a
//! context or an alias: the same words go to the fallback URL.

use super::{LinkState, Outage};
use crate::config::AlertsConfig;
use crate::gateway::protocol::{GatewayBuild, Registration};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// The thresholds of `[alerts]`, in ms.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Thresholds {
    /// A disconnection (from Signal, or of the gateway from the agent) longer than this is
    /// an outage.
    pub unusable_after: u64,
    /// An outage this long calls the fallback.
    pub fallback_after: u64,
    /// No activity for this long warns the owner; None: never.
    pub inactive_warn: Option<u64>,
    /// False when no `[signal] owner` is set: Signal is not in use, nothing is judged.
    pub configured: bool,
}

impl Thresholds {
    /// From `[alerts]`; `configured` when `[signal] owner` is set.
    pub fn new(alerts: &AlertsConfig, configured: bool) -> Thresholds {
        Thresholds {
            unusable_after: alerts.unusable_after().as_millis() as u64,
            fallback_after: alerts.fallback_after().as_millis() as u64,
            inactive_warn: alerts.inactive_warn().map(|d| d.as_millis() as u64),
            configured,
        }
    }
}

/// The verdict.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum LinkStatus {
    /// Nothing wrong is known.
    Ok,
    /// Signal cannot carry messages (see [`Problem`]).
    Unusable,
    /// A gateway is (or was just) connected but never reported its health.
    Unknown,
    /// No `[signal] owner`: Signal is not in use.
    NotConfigured,
}

/// What makes Signal unusable.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Problem {
    /// The primary device unlinked the agent's.
    Unlinked,
    /// The account is no longer registered.
    Unregistered,
    /// Linking was refused: the gateway lacks a capability Signal requires.
    CapabilityMissing,
    /// Signal wants a captcha solved.
    ProofRequired,
    /// Signal refuses the gateway as too old.
    Outdated,
    /// The gateway has been disconnected from Signal for too long.
    SignalDisconnected,
    /// No gateway has been connected to the agent for too long.
    NoGateway,
}

impl Problem {
    fn of(registration: Registration) -> Option<Problem> {
        match registration {
            Registration::Ok => None,
            Registration::Unlinked => Some(Problem::Unlinked),
            Registration::Unregistered => Some(Problem::Unregistered),
            Registration::CapabilityMissing => Some(Problem::CapabilityMissing),
            Registration::ProofRequired => Some(Problem::ProofRequired),
            Registration::Outdated => Some(Problem::Outdated),
        }
    }

    /// What broke, in a few words.
    pub fn what(self) -> &'static str {
        match self {
            Problem::Unlinked => "unlinked",
            Problem::Unregistered => "unregistered",
            Problem::CapabilityMissing => "link refused (a capability missing)",
            Problem::ProofRequired => "captcha required",
            Problem::Outdated => "gateway outdated",
            Problem::SignalDisconnected => "disconnected from Signal",
            Problem::NoGateway => "no gateway connected",
        }
    }

    /// What to do about it.
    pub fn fix(self) -> &'static str {
        match self {
            Problem::Unlinked => "relink with `pane-signal link` on the server and scan its code with your phone (Settings › Linked devices)",
            Problem::Unregistered => "register the number again, then relink with `pane-signal link`",
            Problem::CapabilityMissing => "update pane-signal, then relink with `pane-signal link`",
            Problem::ProofRequired => "solve a captcha at https://signalcaptchas.org/challenge/generate and send `signal.challenge {captcha}` with the signalcaptcha:// link it gives (console, or the signer page)",
            Problem::Outdated => "update pane-signal and restart it",
            Problem::SignalDisconnected => "check the server's network and `journalctl -u pane-signal`",
            Problem::NoGateway => "start it: `systemctl restart pane-signal`; see `journalctl -u pane-signal`",
        }
    }
}

/// A verdict and when it could change by itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Judgement {
    /// The verdict.
    pub status: LinkStatus,
    /// What is wrong, when unusable.
    pub problem: Option<Problem>,
    /// Since when it has been wrong (ms).
    pub since: Option<u64>,
    /// When a threshold will be crossed if nothing else happens (ms).
    pub wake_at: Option<u64>,
    /// No activity for longer than `inactive_warn`.
    pub inactive: bool,
    /// Working: a gateway connected, connected to Signal, registration ok (or, from a
    /// gateway that reports no health, nothing known against it); or Signal not in use. Only
    /// this ends an outage: a link merely not yet judged unusable (a gateway that just went,
    /// a reconnect in progress) does not.
    pub healthy: bool,
}

impl LinkState {
    /// The verdict at `now` (ms).
    pub fn judge(&self, now: u64, t: &Thresholds) -> Judgement {
        let mut j = Judgement {
            status: LinkStatus::Ok,
            problem: None,
            since: None,
            wake_at: None,
            inactive: false,
            healthy: false,
        };
        if !t.configured {
            j.status = LinkStatus::NotConfigured;
            j.healthy = true;
            return j;
        }
        if let (Some(last), Some(after)) = (self.last_active, t.inactive_warn) {
            j.inactive = now >= last.saturating_add(after);
            if !j.inactive {
                j.wake_at = Some(last + after);
            }
        }
        let wake = |at: u64, j: &mut Judgement| {
            j.wake_at = Some(j.wake_at.map_or(at, |w| w.min(at)));
        };
        let unusable = |problem, since, j: &mut Judgement| {
            j.status = LinkStatus::Unusable;
            j.problem = Some(problem);
            j.since = Some(since);
        };
        if let Some(g) = self.gateway.filter(|g| !g.connected) {
            let at = g.since.saturating_add(t.unusable_after);
            if now >= at {
                unusable(Problem::NoGateway, g.since, &mut j);
                return j;
            }
            wake(at, &mut j);
        }
        let Some(latest) = &self.latest else {
            j.status = LinkStatus::Unknown;
            j.healthy = self.gateway_connected();
            return j;
        };
        if let Some(problem) = Problem::of(latest.health.registration) {
            unusable(problem, latest.registration_since, &mut j);
            return j;
        }
        if !latest.health.connected {
            // The gateway's clock: a `since` ahead of ours counts from when the line came.
            let since = latest.health.since.min(latest.at);
            let at = since.saturating_add(t.unusable_after);
            if now >= at {
                unusable(Problem::SignalDisconnected, since, &mut j);
                return j;
            }
            wake(at, &mut j);
        }
        j.healthy = self.gateway_connected() && latest.health.connected;
        j
    }

    /// The report every reader gets, at `now` (ms).
    pub fn report(&self, now: u64, t: &Thresholds) -> LinkReport {
        let j = self.judge(now, t);
        let health = self.latest.as_ref().map(|r| SignalView {
            connected: r.health.connected,
            since: time(r.health.since),
            last_received: r.health.last_received.map(time),
            last_sent: r.health.last_sent.map(time),
            registration: r.health.registration,
            detail: r.health.detail.as_deref().map(|d| {
                let d = crate::text::escape(d, crate::text::Lines::Single);
                crate::redact::truncate(&d, 200)
            }),
            challenge: r.health.challenge.as_ref().map(|c| c.options.clone()),
            proxy: r.health.proxy.as_deref().map(|p| {
                let p = crate::text::escape(p, crate::text::Lines::Single);
                crate::redact::truncate(&p, 80)
            }),
            reported: time(r.at),
        });
        LinkReport {
            status: j.status,
            problem: j.problem,
            since: j.since.map(time),
            fix: j.problem.map(Problem::fix),
            gateway: self.gateway.map(|g| GatewayView {
                connected: g.connected,
                since: time(g.since),
            }),
            signal: health,
            build: self.latest.as_ref().map(|r| r.health.build.clone()),
            last_active: self.last_active.map(time),
            inactive_days: self.last_active.map(|a| now.saturating_sub(a) / 86_400_000),
            inactive: j.inactive,
            outage: self.outage.as_ref().map(|o| OutageView {
                started: time(o.started),
                fallback_told: o.fallback_told,
            }),
            now: time(now),
        }
    }
}

/// A time in ms as a UTC time.
fn time(ms: u64) -> DateTime<Utc> {
    DateTime::from_timestamp_millis(ms.min(i64::MAX as u64) as i64).unwrap_or_default()
}

/// The link as `health` and `/healthz` show it. Nothing of the owner's is in it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LinkReport {
    /// The verdict.
    pub status: LinkStatus,
    /// What is wrong, when unusable.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub problem: Option<Problem>,
    /// Since when.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub since: Option<DateTime<Utc>>,
    /// What to do about it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fix: Option<&'static str>,
    /// The gateway's connection to the agent.
    pub gateway: Option<GatewayView>,
    /// The latest `health` line.
    pub signal: Option<SignalView>,
    /// The gateway's build, from its latest line.
    pub build: Option<GatewayBuild>,
    /// The latest activity on the link.
    pub last_active: Option<DateTime<Utc>>,
    /// Whole days since then.
    pub inactive_days: Option<u64>,
    /// True past `[alerts] inactive_warn_days`.
    pub inactive: bool,
    /// The outage in progress.
    pub outage: Option<OutageView>,
    /// When this was judged.
    #[serde(skip)]
    pub now: DateTime<Utc>,
}

/// The gateway's connection to the agent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct GatewayView {
    /// Connected now.
    pub connected: bool,
    /// Since when.
    pub since: DateTime<Utc>,
}

/// The latest `health` line, as shown.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SignalView {
    /// Connected to Signal.
    pub connected: bool,
    /// Since when (connected or not).
    pub since: DateTime<Utc>,
    /// Signal last sent the gateway anything.
    pub last_received: Option<DateTime<Utc>>,
    /// Signal last accepted a send.
    pub last_sent: Option<DateTime<Utc>>,
    /// The registration as Signal's answers show it.
    pub registration: Registration,
    /// What Signal said, escaped and cut to 200 characters.
    pub detail: Option<String>,
    /// A pending challenge's options (its token is the gateway's and `signal.challenge`'s).
    pub challenge: Option<Vec<String>>,
    /// The proxy the gateway reaches Signal through (`[network] proxy`); none: directly.
    pub proxy: Option<String>,
    /// When the core received the line.
    pub reported: DateTime<Utc>,
}

/// The outage in progress.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct OutageView {
    /// When it was judged unusable.
    pub started: DateTime<Utc>,
    /// Whether the fallback URL was called.
    pub fallback_told: bool,
}

/// `14:02 UTC` today, `2026-12-05 14:02 UTC` another day.
pub fn clock(t: DateTime<Utc>, now: DateTime<Utc>) -> String {
    if t.date_naive() == now.date_naive() {
        t.format("%H:%M UTC").to_string()
    } else {
        t.format("%Y-%m-%d %H:%M UTC").to_string()
    }
}

impl LinkReport {
    /// The words of `health`: one line, `✓ health: Signal link ok · ...` or `✗ Signal
    /// unusable: unlinked since 14:10 UTC — relink with ...`.
    pub fn words(&self) -> String {
        let at = |t: DateTime<Utc>| clock(t, self.now);
        let mut parts: Vec<String> = Vec::new();
        let head = match (self.status, self.problem) {
            (LinkStatus::Unusable, Some(p)) => {
                let since = self.since.map(|s| format!(" since {}", at(s)));
                format!(
                    "✗ Signal unusable: {}{} — {}",
                    p.what(),
                    since.unwrap_or_default(),
                    p.fix()
                )
            }
            (LinkStatus::NotConfigured, _) => {
                "✓ health: Signal not in use ([signal] owner is not set)".to_string()
            }
            (LinkStatus::Unknown, _) if self.gateway.is_some_and(|g| g.connected) => {
                "? health: the Signal gateway is connected but has not reported its health (a pane-signal older than this agent?)".to_string()
            }
            (LinkStatus::Unknown, _) => {
                "? health: no Signal gateway has connected yet".to_string()
            }
            _ => "✓ health: Signal link ok".to_string(),
        };
        parts.push(head);
        if let Some(g) = self.gateway.filter(|g| !g.connected) {
            parts.push(format!("no gateway since {}", at(g.since)));
        }
        if let Some(s) = &self.signal {
            if s.connected {
                parts.push(format!("connected since {}", at(s.since)));
            } else {
                parts.push(format!("disconnected from Signal since {}", at(s.since)));
            }
            if let Some(t) = s.last_received {
                parts.push(format!("last message {}", at(t)));
            }
            if let Some(t) = s.last_sent {
                parts.push(format!("last send {}", at(t)));
            }
            if let Some(d) = &s.detail {
                parts.push(format!("Signal said: {d}"));
            }
            match &s.proxy {
                Some(p) => parts.push(format!("through {p}")),
                None => parts.push("direct (no proxy)".into()),
            }
        }
        if self.inactive {
            parts.push(format!(
                "⚠ no activity for {} days: Signal unlinks a device after about 30",
                self.inactive_days.unwrap_or_default()
            ));
        }
        if let Some(o) = &self.outage {
            if o.fallback_told {
                parts.push("fallback alerted".into());
            }
        }
        if let Some(b) = &self.build {
            if !b.presage.is_empty() {
                parts.push(format!("presage {}", short(&b.presage)));
            }
            if !b.libsignal_service.is_empty() {
                parts.push(format!("libsignal-service {}", short(&b.libsignal_service)));
            }
        }
        parts.join(" · ")
    }

    /// The systemd status line (`STATUS=` without the prefix).
    pub fn status_line(&self) -> String {
        match (self.status, self.problem) {
            (LinkStatus::Unusable, Some(p)) => format!(
                "unsealed; Signal unusable: {}{}",
                p.what(),
                self.since
                    .map(|s| format!(" since {}", s.format("%Y-%m-%d %H:%M UTC")))
                    .unwrap_or_default()
            ),
            (LinkStatus::Ok, _) => "unsealed; Signal link ok".into(),
            (LinkStatus::Unknown, _) => "unsealed; Signal link unknown".into(),
            (LinkStatus::NotConfigured, _) => "unsealed; Signal not configured".into(),
            (LinkStatus::Unusable, None) => "unsealed; Signal unusable".into(),
        }
    }
}

/// A revision as short as git shows it.
fn short(rev: &str) -> String {
    let rev = crate::text::escape(rev, crate::text::Lines::Single);
    rev.chars().take(7).collect()
}

/// The fallback's message when an outage has lasted `fallback_after`.
pub fn fallback_down(outage: &Outage) -> String {
    let since = time(outage.started).format("%Y-%m-%d %H:%M UTC");
    format!(
        "pane-agent: Signal is unusable since {since}: {}. To fix: {}.",
        outage.problem.what(),
        outage.problem.fix()
    )
}

/// The fallback's message when the link works again.
pub fn fallback_recovered(outage: &Outage, now: u64) -> String {
    format!(
        "pane-agent: Signal works again (unusable from {} to {}: {}). What waited is being delivered.",
        time(outage.started).format("%Y-%m-%d %H:%M UTC"),
        time(now).format("%Y-%m-%d %H:%M UTC"),
        outage.problem.what()
    )
}

#[cfg(test)]
mod tests {
    use super::super::tests::line;
    use super::super::{GatewaySeen, Received};
    use super::*;

    const T: Thresholds = Thresholds {
        unusable_after: 300_000,
        fallback_after: 900_000,
        inactive_warn: Some(21 * 86_400_000),
        configured: true,
    };

    fn state(reg: Registration, connected: bool, since: u64, at: u64) -> LinkState {
        LinkState {
            latest: Some(Received {
                health: line(reg, connected, since),
                at,
                registration_since: at,
            }),
            gateway: Some(GatewaySeen {
                connected: true,
                since: 0,
            }),
            ..LinkState::default()
        }
    }

    #[test]
    fn each_way_of_breaking_is_judged_and_woken_for() {
        let now = 100 * 86_400_000;
        let ok = state(Registration::Ok, true, 1_000, 2_000);
        assert_eq!(ok.judge(now, &T).status, LinkStatus::Ok);
        for (reg, problem) in [
            (Registration::Unlinked, Problem::Unlinked),
            (Registration::Unregistered, Problem::Unregistered),
            (Registration::CapabilityMissing, Problem::CapabilityMissing),
            (Registration::ProofRequired, Problem::ProofRequired),
            (Registration::Outdated, Problem::Outdated),
        ] {
            let j = state(reg, true, 1_000, 2_000).judge(now, &T);
            assert_eq!(
                (j.status, j.problem, j.since),
                (LinkStatus::Unusable, Some(problem), Some(2_000))
            );
        }
        // Disconnected from Signal: an outage only past the threshold, woken for at it.
        let off = state(Registration::Ok, false, now - 1_000, now - 500);
        let j = off.judge(now, &T);
        assert_eq!(
            (j.status, j.wake_at),
            (LinkStatus::Ok, Some(now - 1_000 + 300_000))
        );
        let j = off.judge(now - 1_000 + 300_000, &T);
        assert_eq!(j.problem, Some(Problem::SignalDisconnected));
        // No gateway: the same, and it comes first.
        let mut gone = state(Registration::Unlinked, true, 1_000, 2_000);
        gone.gateway = Some(GatewaySeen {
            connected: false,
            since: now,
        });
        assert_eq!(gone.judge(now, &T).problem, Some(Problem::Unlinked));
        // A gateway gone for less than the threshold is not an outage yet, nor a recovery.
        let mut going = ok.clone();
        going.gateway = gone.gateway;
        let j = going.judge(now, &T);
        assert_eq!((j.status, j.healthy), (LinkStatus::Ok, false));
        assert!(ok.judge(now, &T).healthy);
        assert_eq!(
            gone.judge(now + 300_000, &T).problem,
            Some(Problem::NoGateway)
        );
        // Nothing reported yet; nothing judged without an owner.
        assert_eq!(
            LinkState::default().judge(now, &T).status,
            LinkStatus::Unknown
        );
        let off = Thresholds {
            configured: false,
            ..T
        };
        assert_eq!(
            gone.judge(now + 300_000, &off).status,
            LinkStatus::NotConfigured
        );
        // Inactive past the warning.
        let mut quiet = ok.clone();
        quiet.last_active = Some(now - 22 * 86_400_000);
        assert!(quiet.judge(now, &T).inactive);
        quiet.last_active = Some(now - 86_400_000);
        let j = quiet.judge(now, &T);
        assert!(!j.inactive);
        assert_eq!(j.wake_at, Some(now - 86_400_000 + 21 * 86_400_000));
    }

    #[test]
    fn the_words_say_what_broke_and_what_to_do() {
        let now = 1_765_116_000_000; // 2025-12-07 14:00 UTC
        let mut s = state(Registration::Ok, true, now - 60_000, now - 1_000);
        s.latest.as_mut().unwrap().health.build.presage = "9420827abcdef".into();
        s.latest.as_mut().unwrap().health.build.libsignal_service = "bd585ac".into();
        let words = s.report(now, &T).words();
        assert!(
            words.starts_with("✓ health: Signal link ok · connected since 13:59 UTC"),
            "{words}"
        );
        assert!(
            words.ends_with("direct (no proxy) · presage 9420827 · libsignal-service bd585ac"),
            "{words}"
        );
        // Through `[network] proxy`, as the gateway reported it (escaped like all it says).
        s.latest.as_mut().unwrap().health.proxy = Some("socks5h://127.0.0.1:9050\n".into());
        let words = s.report(now, &T).words();
        assert!(
            words.contains(" · through socks5h://127.0.0.1:9050") && !words.contains('\n'),
            "{words}"
        );
        let s = state(Registration::Unlinked, true, now, now - 120_000);
        let words = s.report(now, &T).words();
        assert!(
            words.starts_with(
                "✗ Signal unusable: unlinked since 13:58 UTC — relink with `pane-signal link`"
            ),
            "{words}"
        );
        let outage = Outage {
            started: now,
            problem: Problem::ProofRequired,
            fallback_told: false,
        };
        let down = fallback_down(&outage);
        assert!(
            down.contains("captcha required") && down.contains("signalcaptchas.org"),
            "{down}"
        );
        assert!(fallback_recovered(&outage, now + 60_000).contains("works again"));
    }
}
