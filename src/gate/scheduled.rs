//! Scheduled jobs (`[schedule]`): the sweep, the weekly digest and the rotation reminder,
//! each recorded with when it last ran.

use super::jobs::{After, PendingJob, Waiter};
use super::Gate;
use crate::breach::incidents::Incident;
use crate::commands::Work;
use crate::origin::{Channel, Invocation};
use crate::outbox::MessageKind;
use crate::reply::{CommandError, Output, Reply, Words};
use crate::schedule::Job;
use chrono::Duration as ChronoDuration;
use serde::Serialize;
use serde_json::json;

/// What the weekly digest answers whoever ran it (the digest itself goes to the owner as an
/// alert): how many incidents and pending approvals it named, and the contexts expired.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub(super) struct Digest {
    /// Incidents seen in the last seven days.
    incidents: usize,
    /// Approvals still waiting.
    pending_approvals: usize,
    /// The contexts expired in the last seven days.
    expired: Vec<String>,
}

/// What the rotation reminder answers: `{"status": "reminded"}` (the reminder went to the
/// owner as an alert).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub(super) struct Reminded {
    /// `reminded`.
    status: &'static str,
}

impl Words for Digest {
    fn words(&self, cmd: &str) -> String {
        crate::words::fields_of(cmd, self)
    }
}

impl Words for Reminded {
    fn words(&self, cmd: &str) -> String {
        crate::words::fields_of(cmd, self)
    }
}

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
        let result: Result<Box<dyn Output>, CommandError> = match job {
            Job::BreachSweep => {
                let pending = PendingJob::new("sweep", &inv, After::Sweep, waiter);
                return self.start_job(Work::Sweep, pending);
            }
            Job::WeeklyDigest => self
                .digest(&inv)
                .map(|d| Box::new(d) as Box<dyn Output>),
            Job::SecretRotationReminder => self
                .notify(
                    MessageKind::Alert,
                    "Reminder: rotate the command secret (quarterly at least). Make a new one, keep the old one in previous_secrets for a grace period, then remove it.",
                )
                .map(|_| Box::new(Reminded { status: "reminded" }) as Box<dyn Output>),
        };
        self.deliver(waiter, result.into()).await;
    }

    fn digest(&mut self, inv: &Invocation) -> Result<Digest, CommandError> {
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
        Ok(Digest {
            incidents: incidents.len(),
            pending_approvals: pending.len(),
            expired,
        })
    }
}
