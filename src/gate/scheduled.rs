//! Scheduled jobs (`[schedule]`): the sweep, the weekly digest and the rotation reminder,
//! each recorded with when it last ran.

use super::jobs::{After, PendingJob, Waiter};
use super::Gate;
use crate::breach::incidents::Incident;
use crate::commands::Work;
use crate::origin::{Channel, Invocation};
use crate::outbox::MessageKind;
use crate::reply::{CommandError, Reply};
use crate::schedule::Job;
use crate::words::Fields;
use chrono::Duration as ChronoDuration;
use serde_json::{json, Value};

impl Gate {
    /// Runs a scheduled job and records when it ran; a sweep runs as a job and its waiter
    /// hears when it is done.
    pub(super) async fn run_scheduled(&mut self, job: Job, waiter: Waiter) {
        let inv = Invocation::now(Channel::Internal);
        if let Err(e) = self.audit_event("schedule.run", &inv, json!({"job": job.name()})) {
            return self.deliver(waiter, Reply::Err(e)).await;
        }
        if let Err(e) = crate::schedule::LastRuns::new(&self.store).record(job, inv.now) {
            let e = self.internal(e);
            return self.deliver(waiter, Reply::Err(e)).await;
        }
        let result = match job {
            Job::BreachSweep => {
                let pending = PendingJob::new("sweep", &inv, After::Sweep, waiter);
                return self.start_job(Work::Sweep, pending);
            }
            Job::WeeklyDigest => self.digest(&inv).map(Fields),
            Job::SecretRotationReminder => self
                .notify(
                    MessageKind::Alert,
                    "Reminder: rotate the command secret (quarterly at least). Make a new one, keep the old one in previous_secrets for a grace period, then remove it.",
                )
                .map(|_| Fields(json!({"status": "reminded"}))),
        };
        self.deliver(waiter, result.into()).await;
    }

    fn digest(&mut self, inv: &Invocation) -> Result<Value, CommandError> {
        let since =
            (inv.now - ChronoDuration::days(7)).to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
        let incidents: Vec<Incident> = self
            .incidents
            .all()
            .map_err(|e| self.internal(e))?
            .into_iter()
            .filter(|i| i.last_seen >= since)
            .collect();
        let pending = self
            .policy
            .approvals
            .pending()
            .map_err(|e| self.internal(e))?;
        let expired: Vec<String> = self
            .contexts
            .all()
            .map_err(|e| self.internal(e))?
            .into_iter()
            .filter(|c| c.expired_at.as_deref().is_some_and(|t| t >= since.as_str()))
            .map(|c| c.name)
            .collect();
        let mut text = format!(
            "Weekly digest: {} incident(s), {} pending approval(s), {} context(s) expired this week.",
            incidents.len(),
            pending.len(),
            expired.len()
        );
        for i in &incidents {
            text.push_str(&format!("\n{}", crate::commands::check_incidents::line(i)));
        }
        for a in &pending {
            text.push_str(&format!(
                "\npending {}: {}",
                a.reference(),
                crate::text::escape(&a.summary, crate::text::Lines::Single)
            ));
        }
        for name in &expired {
            text.push_str(&format!("\nexpired: {name}"));
        }
        if let Ok(Some((seq, hash))) = self.audit.head() {
            // The owner's copy: a store rolled back to an older copy shows against it
            // (`audit` with `head: {seq, hash}` compares).
            text.push_str(&format!("\naudit head: seq {seq} hash {hash}"));
        }
        self.notify(MessageKind::Alert, &text)?;
        Ok(
            json!({"incidents": incidents.len(), "pending_approvals": pending.len(), "expired": expired}),
        )
    }
}
