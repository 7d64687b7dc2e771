//! The gate's own upkeep: start-up and shutdown, pruning, and the tallies of what was
//! refused or dropped without an audit entry each.

use super::jobs::{After, PendingJob, Waiter};
use super::Gate;
use crate::commands::Work;
use crate::origin::{Channel, Invocation};
use crate::outbox::MessageKind;
use chrono::{DateTime, Duration as ChronoDuration, Utc};
use serde_json::json;
use std::time::Duration;

impl Gate {
    /// What runs once before the first message: the gate is ready at once, and intent
    /// reconciliation runs as a job beside it.
    pub(super) async fn start_up(&mut self) {
        let inv = Invocation::now(Channel::Internal);
        if let Err(e) = self.note_secret_fingerprint(&inv) {
            tracing::warn!(error = %e, "cannot record the secret's fingerprint");
        }
        self.check_high_water();
        self.check_store_budget();
        self.link_start();
        let reconcile = PendingJob::new("reconcile", &inv, After::Action, Waiter::Nobody);
        self.start_job(Work::Reconcile, reconcile);
        self.resume_approved().await;
        self.answer_cut_off().await;
        self.housekeeping(Utc::now());
        self.expire_due(Utc::now()).await;
        self.check_link().await;
        if let Err(e) = self.store.flush().await {
            tracing::error!(error = %e, "store flush failed after start-up work");
        }
    }

    /// What runs once after the last message: jobs get a moment, the tallies are written.
    pub(super) async fn stop(&mut self) {
        self.drain_jobs(Duration::from_secs(5)).await;
        self.write_tallies().await;
        match self.store.flush().await {
            Ok(()) => self.sync_high_water(),
            Err(e) => tracing::error!(error = %e, "final store flush failed"),
        }
        self.rollback.stop().await;
        tracing::debug!("gate stopped");
    }

    /// Writes the count of refusals not audited one by one and of strangers dropped by the
    /// Signal channel, so that a flood leaves a trace even when nothing follows it.
    pub(super) async fn write_tallies(&mut self) {
        let mut wrote = false;
        for (channel, n) in self.refusals.take_suppressed() {
            let inv = Invocation::now(channel);
            let _ = self.audit_event("envelope.refused.suppressed", &inv, json!({"count": n}));
            wrote = true;
        }
        let (strangers, reactions) = self.tally.take();
        if strangers > 0 {
            let inv = Invocation::now(Channel::Signal);
            let _ = self.audit_event(
                "signal.strangers_dropped",
                &inv,
                json!({"count": strangers}),
            );
            wrote = true;
        }
        if reactions > 0 {
            let inv = Invocation::now(Channel::Signal);
            let _ = self.audit_event(
                "signal.reactions_ignored",
                &inv,
                json!({"count": reactions}),
            );
            wrote = true;
        }
        if wrote {
            if let Err(e) = self.store.flush().await {
                tracing::error!(error = %e, "store flush failed after writing tallies");
            }
        }
    }

    /// Prunes what may be forgotten: old replay-cache entries, audit entries past the
    /// retention, approvals settled long ago.
    pub(super) fn housekeeping(&mut self, now: DateTime<Utc>) {
        if let Err(e) = self.admission.replay().prune(now) {
            tracing::warn!(error = %e, "replay cache prune failed");
        }
        let days = self.config.audit.retention_days;
        if days > 0 {
            let cutoff = now - ChronoDuration::days(days as i64);
            // At most a tenth of the log at once: a clock that jumped past the retention
            // cannot cut it, and every prune leaves an entry saying what went.
            let kept = self.audit.len();
            let at_most = (kept / 10).max(1);
            let inv = Invocation::now(Channel::Internal);
            match self.audit.prune_before(cutoff, at_most) {
                Ok(0) => {}
                Ok(n) => {
                    tracing::info!(removed = n, "audit entries past retention pruned");
                    let head = self.audit.head().ok().flatten();
                    let _ = self.audit_event(
                        "audit.pruned",
                        &inv,
                        json!({"removed": n, "before": cutoff.to_rfc3339(), "kept": kept - n, "head_seq": head.map(|h| h.0), "limited": n == at_most}),
                    );
                    if n == at_most {
                        tracing::warn!(removed = n, "more audit entries are past retention than may be pruned at once; is the clock right?");
                        let _ = self.notify(MessageKind::Alert, &format!("The audit log had more entries past its retention than a tenth of it; {n} were pruned and the rest kept. If the server's clock jumped, check it."));
                    }
                }
                Err(e) => tracing::warn!(error = %e, "audit prune failed"),
            }
            if let Err(e) = self.policy.approvals.prune_settled(cutoff) {
                tracing::warn!(error = %e, "approval prune failed");
            }
            let forgotten = crate::commands::request_status::forget_pruned(
                &self.store.records(),
                &self.policy.approvals,
            );
            if let Err(e) = forgotten {
                tracing::warn!(error = %e, "MCP request ids prune failed");
            }
        }
    }
}
