//! Approvals at the gate: asking the owner, settling `approve` and `deny`, and expiring what
//! nobody answered. All of it is bookkeeping in the store, so it answers at
//! once; the action an approval runs may be slow, and then runs as a job.
//!
//! A live code becomes text in one place, [`Gate::code_in_clear`]: in the owner's Signal
//! prompt, and, only when codes are not phone-only, in the reply and `approvals` of the
//! channel that asked. Everywhere else an [`ApprovalCode`] is its reference.

use super::admission::Answer;
use super::jobs::{After, Waiter};
use super::Gate;
use crate::commands::approve::used_code;
use crate::commands::approve::Approved;
use crate::commands::deny::Denied;
use crate::commands::Command;
use crate::origin::{Channel, Invocation};
use crate::outbox::MessageKind;
use crate::policy::approvals::{Approval, ApprovalCode, ApprovalState};
use crate::policy::Refusal;
use crate::reply::{CommandError, ErrorKind, Output, Reply, Words};
use crate::text::{escape, Lines};
use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::{json, Value};
use std::time::Duration;

/// Where a live approval code may be written in clear. There is no other place.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum ShownTo {
    /// The approval prompt queued for the owner's Signal.
    OwnerPrompt,
    /// The reply to the command that asked, or `approvals`, on the channel that sent it.
    /// Only when codes are not phone-only (no `[signal] owner`, or `codes_over_signal_only =
    /// false`): then whoever holds the command secret is the one who approves, and this is
    /// how they learn the code. Never to the MCP key.
    Asker,
}

impl Gate {
    /// The one place a live approval code becomes clear text, or None where it may not.
    /// Everything else names an approval by its reference, which is all an [`ApprovalCode`]
    /// shows (docs/security-model.md, "Approval codes").
    pub(super) fn code_in_clear(
        &self,
        code: &ApprovalCode,
        to: ShownTo,
        inv: &Invocation,
    ) -> Option<String> {
        let shown = match to {
            ShownTo::OwnerPrompt => true,
            ShownTo::Asker => !self.phone_only() && inv.channel != Channel::Mcp,
        };
        shown.then(|| code.reveal_in_clear())
    }

    /// Opens an approval for `command` with exactly `args`, queues the prompt for the owner,
    /// and returns the reply that says what will happen.
    pub(super) fn ask_owner(
        &mut self,
        command: &Command,
        args: &serde_json::Map<String, Value>,
        inv: &Invocation,
    ) -> Result<Asked, CommandError> {
        let (reply, code) = self.open_approval(command, args, inv)?;
        if inv.channel == Channel::Mcp {
            return self.mcp_request_reply(reply, &code).map(Asked::Requested);
        }
        Ok(Asked::Required(reply))
    }

    /// The MCP key's view of an approval it asked for: a request id to follow it with
    /// `request.status`, never the code, and the words that say who decides.
    fn mcp_request_reply(
        &mut self,
        reply: ApprovalRequired,
        code: &ApprovalCode,
    ) -> Result<ApprovalRequested, CommandError> {
        let pending = self
            .policy
            .approvals
            .get(code)
            .map_err(|e| self.internal(e))?;
        let mine = pending.is_some_and(|a| a.channel == Channel::Mcp.as_str());
        let (request_id, note) = if mine {
            let id = crate::commands::request_status::request_id_for(&self.store.records(), code)?;
            (Some(id), "Nothing has happened yet. The owner has been asked on their phone (Signal) and alone decides; the approval code is never shown to the MCP key. Call request.status with this request_id to learn whether it was approved, denied or expired, and the result once it ran.")
        } else {
            (None, "The same action is already waiting for the owner's answer on their phone, asked by another channel; nothing has happened yet.")
        };
        Ok(ApprovalRequested {
            status: "approval_requested",
            action: reply.action,
            expires_at: reply.expires_at,
            request_id,
            note,
        })
    }

    /// [`Gate::ask_owner`], also handing back the code (to name it in the owner's alerts by
    /// its reference). The same request while one is pending is merged into it: no second
    /// approval, no second prompt. The summary is escaped: it names an alias address and a
    /// card's last four, which came from a provider.
    pub(super) fn open_approval(
        &mut self,
        command: &Command,
        args: &serde_json::Map<String, Value>,
        inv: &Invocation,
    ) -> Result<(ApprovalRequired, ApprovalCode), CommandError> {
        let summary = escape(&command.describe(&self.contexts), Lines::Single);
        let tool = command.tool()?;
        let pending = self
            .policy
            .approvals
            .pending()
            .map_err(|e| self.internal(e))?;
        if let Some(same) = pending
            .into_iter()
            .find(|a| a.cmd == command.name() && a.binds(command.name(), args))
        {
            self.audit_event(
                "policy.approval_merged",
                inv,
                json!({"tool": tool.name, "code": same.code, "action": same.cmd}),
            )?;
            let reply = ApprovalRequired {
                status: "approval_required",
                code: self.code_in_clear(&same.code, ShownTo::Asker, inv),
                approval: same.reference(),
                action: same.cmd.clone(),
                prompt: format!(
                    "Already waiting for the owner: {}. The earlier prompt ({}) stands.",
                    escape(&same.summary, Lines::Single),
                    same.reference()
                ),
                expires_at: same.deadline_rfc3339(),
                merged: true,
            };
            return Ok((reply, same.code));
        }
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
        let reference = approval.reference();
        let asked = inv.now.to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
        let prompt_with = |code: &str| {
            format!(
                "Approval needed ({reference}): {summary}. Asked over {} at {asked}. Reply `approve {code}` to go ahead or `deny {code}` to refuse, or react 👍 or 👎 to this message. Expires {} (in {} s); unanswered means denied.",
                inv.channel.as_str(),
                approval.deadline_rfc3339(),
                self.policy.approval_timeout_secs
            )
        };
        // The audit log (which `audit` reads) names the approval by its reference only.
        self.audit_event(
            "policy.approval_required",
            inv,
            json!({"tool": tool.name, "code": approval.code, "action": command.name(), "args": args, "expires_at": approval.deadline_rfc3339()}),
        )?;
        let for_owner = self
            .code_in_clear(&approval.code, ShownTo::OwnerPrompt, inv)
            .unwrap_or_default();
        // A 👍 or 👎 on this prompt answers it (the Signal channel records it as it goes).
        self.queue_prompt(&prompt_with(&for_owner), &approval.code)?;
        let code = self.code_in_clear(&approval.code, ShownTo::Asker, inv);
        let prompt = match &code {
            Some(code) => prompt_with(code),
            None => format!("Approval needed ({reference}): {summary}. The code was sent to the owner over Signal; answer there."),
        };
        let reply = ApprovalRequired {
            status: "approval_required",
            code,
            approval: reference,
            action: command.name().to_string(),
            prompt,
            expires_at: approval.deadline_rfc3339(),
            merged: false,
        };
        Ok((reply, approval.code))
    }

    /// The owner's answer, whichever way it came (a signed `approve`/`deny`, typed on the
    /// phone, a reaction on the prompt): a denial is final at once; an approval settles, then
    /// runs the action it is bound to (as a job when it is slow), and the waiter gets the
    /// action's result.
    pub(super) async fn settle(&mut self, answer: Answer, inv: &Invocation, waiter: Waiter) {
        if !answer.approve {
            let reply = self.deny(&answer.code, inv).into();
            return self.deliver(waiter, reply).await;
        }
        match self.settle_approved(&answer.code, inv) {
            Ok(command) => {
                let after = After::Approved { code: answer.code };
                Box::pin(self.execute(command, inv, after, waiter)).await
            }
            Err(e) => self.deliver(waiter, Reply::Err(e)).await,
        }
    }

    fn settle_approved(
        &mut self,
        code: &ApprovalCode,
        inv: &Invocation,
    ) -> Result<Command, CommandError> {
        let approval = self.pending_approval(code, inv)?;
        self.check_approval_floor(&approval.created)?;
        // The stored record must still be what the code was issued for.
        if !approval.binds(&approval.cmd, &approval.args) {
            return Err(self.internal("approval record does not match its binding"));
        }
        let command = Command::parse(&approval.cmd, &approval.args)?;
        if matches!(command, Command::Approve(_) | Command::Deny(_)) {
            return Err(self.internal("an approval cannot settle an approval"));
        }
        let tool = command.tool()?;
        let facts = self.facts(inv);
        match self.policy.may_settle(tool, &approval.channel, facts) {
            Ok(()) => {}
            Err(Refusal::Denied(e)) => return Err(e),
            Err(Refusal::Store(e)) => return Err(self.internal(e)),
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
            json!({"code": settled.code, "action": settled.cmd, "args": settled.args}),
        )?;
        Ok(command)
    }

    /// Records an approved action's result with its approval and words the reply.
    pub(super) fn approval_result(
        &mut self,
        code: &ApprovalCode,
        result: Result<Box<dyn Output>, CommandError>,
    ) -> Reply {
        let recorded = match &result {
            Ok(out) => json!({"ok": out.json()}),
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
        Reply::ok(Approved {
            code: code.clone(),
            action,
            result,
        })
    }

    /// `deny {code}`: final.
    pub(super) fn deny(
        &mut self,
        code: &ApprovalCode,
        inv: &Invocation,
    ) -> Result<Denied, CommandError> {
        let approval = self.pending_approval(code, inv)?;
        self.policy.may_deny(&approval.channel, self.facts(inv))?;
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
            json!({"code": settled.code, "action": settled.cmd, "by": "owner"}),
        )?;
        Ok(Denied::new(settled.code, settled.cmd))
    }

    /// The pending approval for `code`, or the reason it cannot be settled. An approval
    /// whose deadline passed is expired here, so a late answer never counts.
    fn pending_approval(
        &mut self,
        code: &ApprovalCode,
        inv: &Invocation,
    ) -> Result<Approval, CommandError> {
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
                json!({"code": a.code, "action": a.cmd, "deadline": a.deadline_rfc3339()}),
            )?;
            // While Signal is unusable the owner hears of it once, when it works again, in
            // one message listing every approval that expired meanwhile.
            if !self.link_down() {
                self.notify(
                    MessageKind::Alert,
                    &format!(
                        "Approval {} expired unanswered, so it was denied: {} did not happen.",
                        a.reference(),
                        escape(&a.summary, Lines::Single)
                    ),
                )?;
            }
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
                // Wake just past the deadline, to the millisecond: the loop asks again after
                // every message, and a wait rounded up to whole seconds would start over at
                // each one, so a steady stream of messages (a client polling) once kept an
                // approval from ever expiring.
                let ms = deadline.saturating_mul(1000) - Utc::now().timestamp_millis();
                Duration::from_millis(ms.max(0) as u64 + 10)
            }
            None => Duration::from_secs(3600),
        }
    }
}

/// The answer to a command that needs the owner's approval: the approval opened (or the one
/// it was merged into), its prompt and deadline; for the MCP key, its request id instead.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(untagged)]
pub(super) enum Asked {
    /// To every channel but MCP.
    Required(ApprovalRequired),
    /// To the MCP key, which never sees the code.
    Requested(ApprovalRequested),
}

/// `approval_required`: the approval opened for the command (or the one already pending it
/// was merged into).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub(super) struct ApprovalRequired {
    /// `approval_required`.
    status: &'static str,
    /// The code in clear, only where [`Gate::code_in_clear`] allows it to the asker.
    #[serde(skip_serializing_if = "Option::is_none")]
    code: Option<String>,
    /// The approval's reference (`a-` and 10 hex), which names it everywhere else.
    approval: String,
    /// The command waiting.
    action: String,
    /// What the owner is asked, or where the code went.
    prompt: String,
    /// When it is denied if nobody answers (RFC 3339).
    expires_at: String,
    /// True when it was merged into the same request already pending (no new prompt).
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    merged: bool,
}

/// `approval_requested`: what the MCP key hears instead of a code.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub(super) struct ApprovalRequested {
    /// `approval_requested`.
    status: &'static str,
    /// The command waiting.
    action: String,
    /// When it is denied if nobody answers (RFC 3339).
    expires_at: String,
    /// The id to follow it with `request.status`, when the MCP key asked it itself.
    #[serde(skip_serializing_if = "Option::is_none")]
    request_id: Option<String>,
    /// Who decides, and what to do meanwhile.
    note: &'static str,
}

impl Words for Asked {
    /// The prompt itself went to the phone just before this reply: this says to answer it
    /// (or, merged into one already asked, says so).
    fn words(&self, cmd: &str) -> String {
        match self {
            Asked::Required(r) if !r.merged => format!(
                "⏳ {cmd}: waiting for your approval: answer the prompt just sent (`approve` or `deny` with its code, or react 👍 or 👎). Expires {}.",
                crate::words::lines::single(&r.expires_at)
            ),
            Asked::Required(r) => crate::words::lines::multi(&r.prompt),
            Asked::Requested(_) => crate::words::fields_of(cmd, self),
        }
    }
}
