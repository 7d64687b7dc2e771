//! After a sweep: the incidents it found are raised (audited, alerted, a burn queued for the
//! owner's approval or started with `auto_burn`), and a card a stranger charged is paused
//! with `[breach] auto_pause`, as a job of its own.

use super::jobs::{context_args, After, PendingJob, Waiter};
use super::Gate;
use crate::breach::incidents::{CardStanding, Incident, IncidentKind};
use crate::commands::{Command, Work};
use crate::origin::Invocation;
use crate::outbox::MessageKind;
use crate::reply::{CommandError, Output};
use crate::workers::breach::SweepReport;
use serde_json::{json, Value};

impl Gate {
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
        ) && !incident.sample_subject.is_empty()
        {
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
}
