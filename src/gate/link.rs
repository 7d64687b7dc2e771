//! The Signal link at the gate: what the Signal channel saw of it (a gateway connected or
//! gone, a `health` line) recorded, and the verdict acted on, as it changes and whenever a
//! threshold is crossed (the gate sleeps until the next one, never polling).
//!
//! An outage opens when Signal is judged unusable (audited `signal.link_unusable`); once it
//! has lasted `[alerts] fallback_after_mins` the fallback URL gets one message (the owner's
//! Signal cannot carry it). Approvals that expire during it are not announced one by one in
//! the outbox; when the link works again (audited `signal.link_recovered`) the owner gets one
//! message saying what happened and listing them, the fallback gets one saying it is over,
//! and what the outbox kept is delivered in order. A link with no activity for
//! `inactive_warn_days` warns the owner once. The systemd status line and
//! `<data-dir>/link.state` (for `doctor`) follow the verdict.

use super::Gate;
use crate::gateway::protocol::LinkHealth;
use crate::health::judge::{fallback_down, fallback_recovered, Judgement};
use crate::health::{now_ms, LinkReport, LinkState, Outage};
use crate::origin::{Channel, Invocation};
use crate::outbox::MessageKind;
use crate::text::{escape, Lines};
use crate::workers::alerts::Fallback;
use chrono::{DateTime, Utc};
use serde_json::json;
use std::time::Duration;

/// What the Signal channel saw of the link.
#[derive(Debug)]
pub enum LinkEvent {
    /// A gateway connected to the agent.
    GatewayConnected,
    /// The gateway connection ended.
    GatewayGone,
    /// The gateway wrote a `health` line.
    Health(Box<LinkHealth>),
}

/// The file `doctor` reads the link's state from: the report as JSON, written by the gate
/// whenever the verdict changes (the store is locked, and sealed, while the agent runs).
pub const STATE_FILE: &str = "link.state";

impl Gate {
    /// At start: no gateway can be connected yet, and none could while the agent was down
    /// (its downtime is not the gateway's), so the gateway counts as gone since now.
    pub(super) fn link_start(&mut self) {
        if let Err(e) = self.link.records().reset_gateway(now_ms()) {
            tracing::error!(error = %e, "cannot record the gateway's state");
        }
    }

    /// Records what the Signal channel saw, and acts on the verdict.
    pub(super) async fn link_event(&mut self, event: LinkEvent) {
        let records = self.link.records();
        let now = now_ms();
        let recorded = match event {
            LinkEvent::GatewayConnected => records.record_gateway(true, now),
            LinkEvent::GatewayGone => records.record_gateway(false, now),
            LinkEvent::Health(health) => records.record_health(*health, now),
        };
        if let Err(e) = recorded {
            tracing::error!(error = %e, "cannot record the Signal link's health");
        }
        self.check_link().await;
    }

    /// How long until a threshold of the link's is crossed.
    pub(super) fn link_wake_in(&self) -> Duration {
        match self.link_wake {
            Some(at) => Duration::from_millis(at.saturating_sub(now_ms()).saturating_add(10)),
            None => Duration::from_secs(3600),
        }
    }

    /// The report, now (for `/healthz`).
    pub(super) fn link_report(&self) -> Option<LinkReport> {
        self.link.report(now_ms()).ok()
    }

    /// True while an outage is open.
    pub(super) fn link_down(&self) -> bool {
        self.link
            .records()
            .state()
            .is_ok_and(|s| s.outage.is_some())
    }

    /// Judges the link now and acts on what changed.
    pub(super) async fn check_link(&mut self) {
        let now = now_ms();
        let state = match self.link.records().state() {
            Ok(s) => s,
            Err(e) => {
                tracing::error!(error = %e, "cannot read the Signal link's records");
                self.link_wake = Some(now + 60_000);
                return;
            }
        };
        let j = state.judge(now, self.link.thresholds());
        self.link_wake = j.wake_at;
        let changed = match (j.problem, state.outage.clone()) {
            (Some(problem), None) => {
                let outage = Outage {
                    started: now,
                    problem,
                    fallback_told: false,
                };
                self.outage_opened(&outage, &j);
                self.outage_continues(outage, now)
            }
            (Some(problem), Some(mut outage)) => {
                let moved = outage.problem != problem;
                if moved {
                    outage.problem = problem;
                    self.outage_opened(&outage, &j);
                }
                self.outage_continues(outage, now) || moved
            }
            (None, Some(outage)) if j.healthy => {
                self.outage_over(&outage, now);
                true
            }
            // Not unusable past a threshold yet, but not working either (a gateway that just
            // went, a reconnect in progress): the outage stays open until it works.
            (None, _) => false,
        };
        let warned = self.warn_if_inactive(&state, &j);
        self.publish_link(now);
        if changed || warned {
            if let Err(e) = self.store.flush().await {
                tracing::error!(error = %e, "store flush failed after a link change");
            }
        }
    }

    /// Audits an outage opened, or what broke changing during one.
    fn outage_opened(&mut self, outage: &Outage, j: &Judgement) {
        tracing::warn!(problem = outage.problem.what(), "Signal is unusable");
        let since = j.since.map(|s| ms_time(s).to_rfc3339());
        let _ = self.audit_event(
            "signal.link_unusable",
            &Invocation::now(Channel::Internal),
            json!({"problem": outage.problem, "since": since}),
        );
    }

    /// Keeps the outage, and calls the fallback once it has lasted long enough; true when
    /// the record changed.
    fn outage_continues(&mut self, mut outage: Outage, now: u64) -> bool {
        let records = self.link.records().clone();
        let due = outage
            .started
            .saturating_add(self.link.thresholds().fallback_after);
        if let (false, Some(fallback)) = (outage.fallback_told, &self.fallback) {
            if now >= due {
                fallback.send(Fallback {
                    title: "pane-agent: Signal is unusable",
                    priority: 4,
                    tags: "warning",
                    body: fallback_down(&outage),
                });
                outage.fallback_told = true;
                let _ = self.audit_event(
                    "alerts.fallback",
                    &Invocation::now(Channel::Internal),
                    json!({"event": "unusable", "problem": outage.problem}),
                );
            } else {
                self.link_wake = Some(self.link_wake.map_or(due, |w| w.min(due)));
            }
        }
        match records.state().map(|s| s.outage) {
            Ok(Some(kept)) if kept == outage => false,
            _ => {
                if let Err(e) = records.set_outage(&outage) {
                    tracing::error!(error = %e, "cannot record the Signal outage");
                }
                true
            }
        }
    }

    /// The link works again: audited, the owner told once (with the approvals that expired
    /// meanwhile), the fallback told it is over when it was told it began.
    fn outage_over(&mut self, outage: &Outage, now: u64) {
        let started = ms_time(outage.started);
        let minutes = now.saturating_sub(outage.started) / 60_000;
        tracing::info!(
            problem = outage.problem.what(),
            minutes,
            "Signal works again"
        );
        let _ = self.audit_event(
            "signal.link_recovered",
            &Invocation::now(Channel::Internal),
            json!({"problem": outage.problem, "started": started.to_rfc3339(), "minutes": minutes}),
        );
        if outage.fallback_told {
            if let Some(fallback) = &self.fallback {
                fallback.send(Fallback {
                    title: "pane-agent: Signal works again",
                    priority: 3,
                    tags: "white_check_mark",
                    body: fallback_recovered(outage, now),
                });
                let _ = self.audit_event(
                    "alerts.fallback",
                    &Invocation::now(Channel::Internal),
                    json!({"event": "recovered", "problem": outage.problem}),
                );
            }
        }
        let expired = self
            .policy
            .approvals
            .expired_since(started)
            .unwrap_or_else(|e| {
                tracing::error!(error = %e, "cannot read the approvals that expired");
                Vec::new()
            });
        let mut text = format!(
            "Signal works again: it was unusable from {} to {} ({}). What waited for it is delivered in order.",
            started.format("%Y-%m-%d %H:%M UTC"),
            ms_time(now).format("%Y-%m-%d %H:%M UTC"),
            outage.problem.what()
        );
        if !expired.is_empty() {
            text.push_str(&format!(
                "\n{} approval(s) expired meanwhile, unanswered, so they did not happen:",
                expired.len()
            ));
            for a in &expired {
                text.push_str(&format!(
                    "\n• {}: {}",
                    a.reference(),
                    escape(&a.summary, Lines::Single)
                ));
            }
        }
        if let Err(e) = self.notify(MessageKind::Alert, &text) {
            tracing::error!(error = %e, "cannot queue the owner's message that Signal works again");
        }
        if let Err(e) = self.link.records().end_outage() {
            tracing::error!(error = %e, "cannot close the Signal outage");
        }
    }

    /// Warns the owner once per quiet spell past `inactive_warn_days`; true when it did.
    fn warn_if_inactive(&mut self, state: &LinkState, j: &Judgement) -> bool {
        let Some(last) = state.last_active.filter(|_| j.inactive) else {
            return false;
        };
        if state.inactive_warned == Some(last) {
            return false;
        }
        let days = now_ms().saturating_sub(last) / 86_400_000;
        let _ = self.audit_event(
            "signal.link_inactive",
            &Invocation::now(Channel::Internal),
            json!({"last_active": ms_time(last).to_rfc3339(), "days": days}),
        );
        let text = format!(
            "The Signal link has had no activity for {days} days (since {}). Signal unlinks a linked device after about 30 days without activity: send the agent any message (`health` will do) and check that pane-signal is running.",
            ms_time(last).format("%Y-%m-%d %H:%M UTC")
        );
        if let Err(e) = self.notify(MessageKind::Alert, &text) {
            tracing::error!(error = %e, "cannot queue the inactivity warning");
            return false;
        }
        if let Err(e) = self.link.records().warned_inactive(last) {
            tracing::error!(error = %e, "cannot record the inactivity warning");
        }
        true
    }

    /// The systemd status line and `link.state`, when the verdict's words changed.
    fn publish_link(&mut self, now: u64) {
        let Ok(report) = self.link.report(now) else {
            return;
        };
        let line = report.status_line();
        if self.link_status.as_deref() != Some(line.as_str()) {
            crate::systemd::notify(&format!("STATUS={line}"));
            self.link_status = Some(line);
        }
        let json = serde_json::to_string(&report).unwrap_or_default();
        if self.link_published.as_deref() != Some(json.as_str()) {
            if let Err(e) = std::fs::write(self.data_dir.join(STATE_FILE), &json) {
                tracing::warn!(error = %e, "cannot write {STATE_FILE}");
            }
            self.link_published = Some(json);
        }
    }
}

/// A time in ms since the epoch.
fn ms_time(ms: u64) -> DateTime<Utc> {
    DateTime::from_timestamp_millis(ms.min(i64::MAX as u64) as i64).unwrap_or_default()
}
