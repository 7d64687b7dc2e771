//! The gate's own work: start-up and shutdown, scheduled jobs (the sweep's incidents, the
//! weekly digest, the rotation reminder), pruning, the tallies of refusals, the audit log
//! and the outbox.

use super::jobs::{context_args, After, PendingJob, Waiter};
use super::Gate;
use crate::breach::incidents::{CardStanding, Incident, IncidentKind};
use crate::commands::{Command, Work};
use crate::origin::{Channel, Invocation};
use crate::outbox::MessageKind;
use crate::policy::approvals::ApprovalCode;
use crate::reply::{CommandError, Output, Reply};
use crate::schedule::Job;
use crate::store::records::{Key, Text};
use crate::store::signal::SignalState;
use crate::words::Fields;
use crate::workers::breach::SweepReport;
use chrono::{DateTime, Duration as ChronoDuration, Utc};
use serde_json::{json, Value};
use std::time::Duration;

/// The fingerprint of the secret in use, to notice rotations.
const SECRET_FINGERPRINT: Key<Text<String>> = Key::new("auth.fingerprint");

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
        let reconcile = PendingJob::new("reconcile", &inv, After::Action, Waiter::Nobody);
        self.start_job(Work::Reconcile, reconcile);
        self.resume_approved().await;
        self.answer_cut_off().await;
        self.housekeeping(Utc::now());
        self.expire_due(Utc::now()).await;
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

    /// After a sweep: audits the sources that were down, then alerts the owner once per new
    /// incident and queues the burn (or starts it with `auto_burn`). `generation` is the
    /// lockdown generation the sweep was started under: an `auto_pause` is made only when
    /// no lockdown came since and none holds.
    pub(super) async fn after_sweep(
        &mut self,
        report: SweepReport,
        inv: &Invocation,
        generation: u64,
    ) -> Result<Box<dyn Output>, CommandError> {
        for source in report.sources.iter().filter(|s| !s.ok) {
            self.audit_event(
                "breach.source_down",
                inv,
                json!({"source": source.source, "error": source.error}),
            )?;
        }
        // Everything not yet alerted, which includes what a crash left un-alerted.
        let pending = self.incidents.unalerted().map_err(|e| self.internal(e))?;
        for incident in pending {
            self.raise_incident(incident, inv, Some(generation)).await?;
        }
        Ok(Box::new(report))
    }

    /// `[breach] auto_pause` for a `card.merchant` incident whose card is still usable:
    /// starts `card.pause` as a job (audited; the card manager checks its ticket before the
    /// provider call) and marks the card as being paused. Held while a lockdown holds or
    /// when one came after the sweep was authorised. Returns what the alert should add.
    fn auto_pause(
        &mut self,
        incident: &mut Incident,
        inv: &Invocation,
        generation: Option<u64>,
    ) -> Option<String> {
        let card = incident.card.as_mut()?;
        let usable = matches!(card.standing, CardStanding::Open | CardStanding::Unfunded);
        if incident.kind != IncidentKind::CardMerchant
            || !usable
            || !self.config.breach.auto_pause
            || self.config.breach.auto_burn
        {
            return None;
        }
        if self.locked_down()
            || generation.is_some_and(|g| g != self.execution.lockdown.generation())
        {
            return Some(" auto_pause is held: a lockdown holds or came during the sweep; pause the card with card.pause once you unlock.".into());
        }
        crate::commands::validate_context_name(&incident.context).ok()?;
        let pause = Work::Card(
            incident.context.clone(),
            crate::commands::card::CardAction::Pause,
        );
        card.standing = CardStanding::Pausing;
        let after = After::AutoPause {
            context: incident.context.clone(),
            incident: incident.id.clone(),
        };
        let job = PendingJob::new("card.pause", inv, after, Waiter::Nobody);
        self.start_job(pause, job);
        Some(" The pause's result follows.".into())
    }

    /// An `auto_pause` finished: the incident records where the card stands and the owner
    /// is told.
    pub(super) fn after_auto_pause(
        &mut self,
        context: &str,
        incident: &str,
        result: &crate::workers::jobs::JobResult,
    ) {
        let (standing, text) = match result {
            Ok(_) => (
                CardStanding::Paused,
                format!("auto_pause: the {context} card was paused."),
            ),
            Err(e) => (
                CardStanding::PauseFailed,
                format!(
                    "auto_pause: pausing the {context} card failed ({}); pause it with card.pause.",
                    e.message
                ),
            ),
        };
        if let Err(e) = self.incidents.set_card_standing(incident, standing) {
            tracing::error!(error = %e, "cannot record the auto_pause result in the incident");
        }
        if let Err(e) = self.notify(MessageKind::Alert, &text) {
            tracing::error!(error = %e, "cannot queue the auto_pause result");
        }
    }

    async fn raise_incident(
        &mut self,
        mut incident: Incident,
        inv: &Invocation,
        generation: Option<u64>,
    ) -> Result<(), CommandError> {
        let paused = self.auto_pause(&mut incident, inv, generation);
        self.audit_event("breach.incident", inv, incident.view())?;
        let kind = incident.effective_kind();
        let mut alert = format!(
            "⚠ breach signal: {} ← {} ({}): {}. First seen {}",
            incident.context,
            incident.sender_domain,
            kind.as_str(),
            incident.describe(),
            incident.first_seen
        );
        if matches!(
            kind,
            IncidentKind::MailSender | IncidentKind::MailImpersonation
        ) {
            alert.push_str(&format!(
                "; sample subject: \"{}\"",
                incident.sample_subject
            ));
        }
        alert.push('.');
        if let Some(p) = paused {
            alert.push_str(&p);
        }
        let expire = Command::parse("expire", &context_args(&incident.context));
        let ctx_active = self
            .contexts
            .get(&incident.context)
            .ok()
            .flatten()
            .is_some_and(|c| c.state != crate::context::ContextState::Expired);
        if let (Ok(expire), true) = (expire, ctx_active) {
            if self.config.breach.auto_burn {
                alert.push_str(
                    " auto_burn is on: the context is being expired; the result follows.",
                );
                let after = After::AutoBurn {
                    context: incident.context.clone(),
                };
                Box::pin(self.execute(expire, inv, after, Waiter::Nobody)).await;
            } else {
                // One queued burn per context: a later incident points at the pending one.
                let pending = self
                    .policy
                    .approvals
                    .pending()
                    .map_err(|e| self.internal(e))?;
                let existing = pending
                    .iter()
                    .find(|a| {
                        a.cmd == "expire"
                            && a.args.get("context").and_then(Value::as_str)
                                == Some(&incident.context)
                    })
                    .map(|a| a.code.clone());
                let (code, when) = match existing {
                    Some(code) => (code, "earlier"),
                    None => {
                        let code = self
                            .open_approval(&expire, &context_args(&incident.context), inv)?
                            .1;
                        (code, "just before this message")
                    }
                };
                // The code is in the prompt only; the alert, the incident (which
                // `check-incidents` and `incident.ack` show on every channel) and the audit
                // log name the burn by its reference.
                alert.push_str(&format!(
                    " A burn is queued ({}): approving its prompt, sent {when}, expires the context.",
                    code.reference()
                ));
                incident.burn_code = Some(code.reference());
            }
        }
        let alert = self.redactor.text(&alert);
        let id = self.store.next_id().map_err(|e| self.internal(e))?;
        self.incidents
            .mark_alerted(&mut incident, &self.outbox, id, &alert)
            .map_err(|e| self.internal(e))
    }

    /// Audits a rotation when the current secret is not the one seen before (by fingerprint,
    /// never the secret). Returns true when it was a rotation.
    fn note_secret_fingerprint(&mut self, inv: &Invocation) -> Result<bool, CommandError> {
        let now = self.admission.secrets().fingerprint();
        let before = self
            .store
            .records()
            .set(&SECRET_FINGERPRINT, &now)
            .map_err(|e| self.internal(e))?;
        let before = before.map(|b| String::from_utf8_lossy(&b).into_owned());
        let rotated = before.as_deref().is_some_and(|b| b != now);
        if rotated {
            self.audit_event(
                "auth.rotated",
                inv,
                json!({"from": before, "to": now, "accepted_secrets": self.admission.secrets().all().count()}),
            )?;
        }
        Ok(rotated)
    }

    /// `secrets.reload` (console only): the secrets are read again from the data dir, and
    /// the redactors of the replies, the audit log and the daemon's log learn them.
    pub(super) fn reload_secrets(&mut self, inv: &Invocation) -> Result<Fields, CommandError> {
        if inv.channel != Channel::Socket {
            return Err(CommandError::new(
                crate::reply::ErrorKind::NotGranted,
                "secrets.reload is accepted only at the console",
            ));
        }
        // What the start refuses, a reload refuses too; nothing is reloaded then.
        crate::ownership::check_reload(&self.data_dir).map_err(|e| {
            CommandError::new(
                crate::reply::ErrorKind::Internal,
                format!("nothing reloaded: {e}"),
            )
        })?;
        let fresh =
            crate::auth::SecretSet::load(&self.data_dir, &self.config.auth.previous_secrets)
                .map_err(|e| CommandError::new(crate::reply::ErrorKind::Internal, e.to_string()))?;
        let mcp_key = crate::auth::mcp_key::load(&self.data_dir)
            .map_err(|e| CommandError::new(crate::reply::ErrorKind::Internal, e.to_string()))?;
        if let Some(key) = &mcp_key {
            // As at start: a copy of a command secret is no scoped credential. Nothing is
            // reloaded.
            if fresh.all().any(|s| s.as_bytes() == key.as_bytes()) {
                return Err(CommandError::new(
                    crate::reply::ErrorKind::Internal,
                    format!(
                        "nothing reloaded: {} is the same as a command secret; the MCP key must be a credential of its own (delete it and run `pane-agent mcp-key`)",
                        crate::auth::mcp_key::path(&self.data_dir).display()
                    ),
                ));
            }
        }
        let known = fresh.all().chain(mcp_key.iter()).map(|s| s.as_text());
        self.redactor = self.redactor.with_more(known.collect::<Vec<_>>());
        self.audit.set_redactor(self.redactor.clone());
        crate::logging::set_redactor(self.redactor.clone());
        self.admission
            .set_credentials(fresh, mcp_key.map(crate::auth::mcp_key::as_set));
        let rotated = self.note_secret_fingerprint(inv)?;
        Ok(Fields(
            json!({"status": "reloaded", "rotated": rotated, "accepted_secrets": self.admission.secrets().all().count()}),
        ))
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

    /// Writes an audit entry; a failure refuses the command (fail secure).
    pub(super) fn audit_event(
        &self,
        event: &str,
        inv: &Invocation,
        detail: Value,
    ) -> Result<(), CommandError> {
        self.audit
            .append(event, Some(inv.channel.as_str()), detail)
            .map(|_| ())
            .map_err(|e| self.internal(e))
    }

    /// Queues a message for the owner in the outbox; its Signal timestamp.
    pub(super) fn notify(&self, kind: MessageKind, body: &str) -> Result<u64, CommandError> {
        self.queue(kind, body, None)
    }

    /// Queues the prompt of the approval `code` for the owner (redacted, as every message).
    pub(super) fn queue_prompt(&self, body: &str, code: &ApprovalCode) -> Result<(), CommandError> {
        let body = self.redactor.text(body);
        let seq = self.store.next_id().map_err(|e| self.internal(e))?;
        self.outbox
            .push_prompt(seq, &body, code.store_key())
            .map_err(|e| self.internal(e))?;
        Ok(())
    }

    /// Queues `body` (redacted) for the owner; with `answered`, also forgets that record of
    /// an owner message (`take_in`) in the same transaction.
    pub(super) fn queue(
        &self,
        kind: MessageKind,
        body: &str,
        answered: Option<[u8; 8]>,
    ) -> Result<u64, CommandError> {
        let body = self.redactor.text(body);
        let seq = self.store.next_id().map_err(|e| self.internal(e))?;
        let msg = match answered {
            Some(key) => {
                let signal = SignalState::new(&self.store);
                self.outbox
                    .push_removing(seq, kind, &body, signal.taken(&key))
            }
            None => self.outbox.push(seq, kind, &body),
        }
        .map_err(|e| self.internal(e))?;
        Ok(msg.timestamp)
    }
}
