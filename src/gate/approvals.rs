//! Approvals at the gate: asking the owner, settling `approve` and `deny`, expiring what
//! nobody answered, and `lockdown`. All of it is bookkeeping in the store, so it answers at
//! once; the action an approval runs may be slow, and then runs as a job.

use super::jobs::{After, Waiter};
use super::Gate;
use crate::commands::approve::used_code;
use crate::commands::Command;
use crate::origin::{Channel, Invocation};
use crate::outbox::MessageKind;
use crate::policy::approvals::{Approval, ApprovalState};
use crate::reply::{CommandError, ErrorKind, Reply};
use chrono::{DateTime, Utc};
use serde_json::{json, Value};
use std::time::Duration;

impl Gate {
    /// Opens an approval for `command` with exactly `args`, queues the prompt for the owner,
    /// and returns the reply that says what will happen.
    pub(super) fn ask_owner(
        &mut self,
        command: &Command,
        args: &serde_json::Map<String, Value>,
        inv: &Invocation,
    ) -> Result<Value, CommandError> {
        let summary = command.describe(&self.contexts);
        let tool = command.tool()?;
        let approval = self
            .policy
            .approvals
            .create(
                command.name(),
                args,
                &summary,
                inv.channel.as_str(),
                inv.now,
                self.policy.approval_timeout_secs,
            )
            .map_err(|e| self.internal(e))?;
        let code = approval.display_code();
        let prompt = format!(
            "Approval needed: {summary}. Reply `approve {code}` to go ahead or `deny {code}` to refuse. Expires {} (in {} s); unanswered means denied.",
            approval.deadline_rfc3339(),
            self.policy.approval_timeout_secs
        );
        let hide = self.hides_codes(inv);
        // With codes over Signal only, neither the reply nor the audit log (which `audit`
        // reads) may hold the code: it goes to the owner's phone and nowhere else.
        let audited_code = if hide {
            json!("[sent to the owner over Signal]")
        } else {
            json!(code)
        };
        self.audit_event(
            "policy.approval_required",
            inv,
            json!({"tool": tool.name, "code": audited_code, "action": command.name(), "args": args, "expires_at": approval.deadline_rfc3339()}),
        )?;
        self.notify(MessageKind::Prompt, &prompt)?;
        if hide {
            return Ok(json!({
                "status": "approval_required",
                "action": command.name(),
                "prompt": format!("Approval needed: {summary}. The code was sent to the owner over Signal; answer there."),
                "expires_at": approval.deadline_rfc3339(),
            }));
        }
        Ok(json!({
            "status": "approval_required",
            "code": code,
            "action": command.name(),
            "prompt": prompt,
            "expires_at": approval.deadline_rfc3339(),
        }))
    }

    /// `approve {code}`: settles the approval, then runs the action it is bound to (as a job
    /// when it is slow); the waiter gets the action's result.
    pub(super) async fn approve(&mut self, code: &str, inv: &Invocation, waiter: Waiter) {
        match self.settle_approved(code, inv) {
            Ok(command) => {
                let after = After::Approved {
                    code: code.to_string(),
                };
                Box::pin(self.execute(command, inv, after, waiter)).await
            }
            Err(e) => self.deliver(waiter, Reply::Err(e)).await,
        }
    }

    fn settle_approved(&mut self, code: &str, inv: &Invocation) -> Result<Command, CommandError> {
        let approval = self.pending_approval(code, inv)?;
        // The stored record must still be what the code was issued for.
        if !approval.binds(&approval.cmd, &approval.args) {
            return Err(self.internal("approval record does not match its binding"));
        }
        let command = Command::parse(&approval.cmd, &approval.args)?;
        if matches!(command, Command::Approve(_) | Command::Deny(_)) {
            return Err(self.internal("an approval cannot settle an approval"));
        }
        let tool = command.tool()?;
        if !self
            .policy
            .grants
            .is_granted(tool)
            .map_err(|e| self.internal(e))?
        {
            return Err(CommandError::new(
                ErrorKind::NotGranted,
                format!(
                    "not granted: {} lost its grant while waiting; the approval stays pending",
                    tool.name
                ),
            ));
        }
        let Some(settled) = self
            .policy
            .approvals
            .settle(code, ApprovalState::Approved, inv.now, None)
            .map_err(|e| self.internal(e))?
        else {
            return Err(used_code());
        };
        self.audit_event(
            "approval.approved",
            inv,
            json!({"code": settled.display_code(), "action": settled.cmd, "args": settled.args}),
        )?;
        Ok(command)
    }

    /// Records an approved action's result with its approval and words the reply.
    pub(super) fn approval_result(
        &mut self,
        code: &str,
        result: Result<crate::reply::Answer, CommandError>,
    ) -> Reply {
        let result = result.map(crate::reply::Answer::into_value);
        let recorded = match &result {
            Ok(v) => json!({"ok": v}),
            Err(e) => json!({"error": e.message}),
        };
        if let Err(e) = self.policy.approvals.record_result(code, recorded) {
            return Reply::Err(self.internal(e));
        }
        let action = self
            .policy
            .approvals
            .get(code)
            .ok()
            .flatten()
            .map(|a| a.cmd)
            .unwrap_or_default();
        Reply::Ok(json!({
            "status": "approved",
            "code": crate::policy::approvals::display_code(code),
            "action": action,
            "result": Reply::from(result).to_json(),
        }))
    }

    /// `deny {code}`: final.
    pub(super) fn deny(&mut self, code: &str, inv: &Invocation) -> Result<Value, CommandError> {
        self.pending_approval(code, inv)?;
        let Some(settled) = self
            .policy
            .approvals
            .settle(code, ApprovalState::Denied, inv.now, None)
            .map_err(|e| self.internal(e))?
        else {
            return Err(used_code());
        };
        self.audit_event(
            "approval.denied",
            inv,
            json!({"code": settled.display_code(), "action": settled.cmd, "by": "owner"}),
        )?;
        Ok(json!({
            "status": "denied",
            "code": settled.display_code(),
            "action": settled.cmd,
            "note": "denial is final; send a new command to ask again",
        }))
    }

    /// The pending approval for `code`, or the reason it cannot be settled. An approval
    /// whose deadline passed is expired here, so a late answer never counts.
    fn pending_approval(&mut self, code: &str, inv: &Invocation) -> Result<Approval, CommandError> {
        let approval = self
            .policy
            .approvals
            .get(code)
            .map_err(|e| self.internal(e))?
            .ok_or_else(|| {
                CommandError::new(ErrorKind::ApprovalInvalid, "no such approval code")
            })?;
        match approval.state {
            ApprovalState::Pending if approval.deadline > inv.now.timestamp() => Ok(approval),
            ApprovalState::Pending => {
                self.expire_one(&approval, inv.now)?;
                Err(CommandError::new(
                    ErrorKind::ApprovalInvalid,
                    "approval expired: the action was denied; send the command again to ask anew",
                ))
            }
            ApprovalState::Approved => Err(CommandError::new(
                ErrorKind::ApprovalInvalid,
                "approval code already used: a code works once",
            )),
            ApprovalState::Denied | ApprovalState::Expired => Err(CommandError::new(
                ErrorKind::ApprovalInvalid,
                "approval was denied; a denial is final",
            )),
        }
    }

    fn expire_one(&mut self, approval: &Approval, now: DateTime<Utc>) -> Result<(), CommandError> {
        let settled = self
            .policy
            .approvals
            .settle(&approval.code, ApprovalState::Expired, now, None)
            .map_err(|e| self.internal(e))?;
        if let Some(a) = settled {
            let inv = Invocation {
                channel: Channel::Internal,
                now,
            };
            self.audit_event(
                "approval.expired",
                &inv,
                json!({"code": a.display_code(), "action": a.cmd, "deadline": a.deadline_rfc3339()}),
            )?;
            self.notify(
                MessageKind::Alert,
                &format!(
                    "Approval {} expired unanswered, so it was denied: {} did not happen.",
                    a.display_code(),
                    a.summary
                ),
            )?;
        }
        Ok(())
    }

    /// Denies every pending approval whose deadline has passed.
    pub(super) async fn expire_due(&mut self, now: DateTime<Utc>) {
        let due: Vec<Approval> = match self.policy.approvals.pending() {
            Ok(p) => p
                .into_iter()
                .filter(|a| a.deadline <= now.timestamp())
                .collect(),
            Err(e) => {
                tracing::error!(error = %e, "cannot read approvals");
                return;
            }
        };
        if due.is_empty() {
            return;
        }
        for approval in &due {
            if let Err(e) = self.expire_one(approval, now) {
                tracing::error!(error = %e, "cannot expire an approval");
            }
        }
        if let Err(e) = self.store.flush().await {
            tracing::error!(error = %e, "store flush failed after expiring approvals");
        }
    }

    /// How long until the soonest pending approval's deadline.
    pub(super) fn next_deadline_in(&self) -> Duration {
        let soonest = match self.policy.approvals.pending() {
            Ok(p) => p.first().map(|a| a.deadline),
            Err(_) => None,
        };
        match soonest {
            Some(deadline) => {
                let secs = (deadline - Utc::now().timestamp()).max(0) as u64;
                // Wake at the deadline (plus a second, so `deadline <= now` holds).
                Duration::from_secs(secs + 1)
            }
            None => Duration::from_secs(3600),
        }
    }

    /// `lockdown`, the panic button: revokes every non-read grant, denies every pending
    /// approval, and stops every job in flight at its next provider call (queued jobs are
    /// cancelled when their turn comes), immediately and without asking.
    pub(super) fn lockdown(&mut self, inv: &Invocation) -> Result<Value, CommandError> {
        self.lockdown.trip();
        let revoked = self
            .policy
            .grants
            .lockdown()
            .map_err(|e| self.internal(e))?;
        let pending = self
            .policy
            .approvals
            .pending()
            .map_err(|e| self.internal(e))?;
        let mut denied = Vec::new();
        for approval in pending {
            let settled = self
                .policy
                .approvals
                .settle(&approval.code, ApprovalState::Denied, inv.now, None)
                .map_err(|e| self.internal(e))?;
            if let Some(a) = settled {
                self.audit_event(
                    "approval.denied",
                    inv,
                    json!({"code": a.display_code(), "action": a.cmd, "by": "lockdown"}),
                )?;
                denied.push(a.display_code());
            }
        }
        let stopping: Vec<u64> = self.pending.keys().copied().collect();
        self.notify(
            MessageKind::Alert,
            &format!(
                "LOCKDOWN: revoked {} tool(s), denied {} pending approval(s), stopping {} job(s) in flight. Restore a tool with `grant` (needs approval).",
                revoked.len(),
                denied.len(),
                stopping.len()
            ),
        )?;
        Ok(json!({
            "status": "locked_down",
            "revoked": revoked,
            "denied_approvals": denied,
            "stopping_jobs": stopping,
        }))
    }
}
