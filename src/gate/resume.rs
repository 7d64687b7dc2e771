//! Approved actions that a crash cut off: the approval was spent (its `approved` state, with
//! no result recorded, is the action's durable job record), so at start each runs again, or is
//! reported when it must not (a lockdown holds, or the approval is more than a day old).

use super::jobs::{After, Waiter};
use super::Gate;
use crate::commands::Command;
use crate::origin::{Channel, Invocation};
use crate::outbox::MessageKind;
use chrono::DateTime;
use serde_json::json;

/// An approved action cut off by a crash is resumed at start within this many hours of its
/// approval; an older one is reported instead (the owner's intent may have moved on).
const RESUME_WITHIN_HOURS: i64 = 24;

impl Gate {
    /// Resumes, at start, every approved action that a crash cut off (approved, no result
    /// recorded): the approval was spent, so the work must not be lost. Each runs again as
    /// the job it was (every action an approval runs is safe to repeat: a card change sets a
    /// fixed state, `expire` resumes where it stopped, a grant is a grant), and the owner is
    /// told. During a lockdown, or more than a day after the approval, it is not run: the
    /// result records why and the owner is told to ask again.
    pub(super) async fn resume_approved(&mut self) {
        let unfinished = match self.policy.approvals.unfinished() {
            Ok(list) => list,
            Err(e) => {
                tracing::error!(error = %e, "cannot read approvals to resume");
                return;
            }
        };
        for approval in unfinished {
            let inv = Invocation::now(Channel::Internal);
            let code = approval.code.clone();
            let when = approval.settled_at.clone().unwrap_or_default();
            let fresh = DateTime::parse_from_rfc3339(&when)
                .map(|t| {
                    inv.now.signed_duration_since(t) < chrono::Duration::hours(RESUME_WITHIN_HOURS)
                })
                .unwrap_or(false);
            let unlock = approval.cmd == "unlock";
            let refusal = if self.locked_down() && !unlock {
                Some("locked down: the action was stopped by the lockdown and not resumed; ask again after `unlock`".to_string())
            } else if !fresh {
                Some(format!(
                    "not resumed: it was approved more than {RESUME_WITHIN_HOURS} h before the agent came back; send the command again to ask anew"
                ))
            } else {
                None
            };
            let command = match (refusal, Command::parse(&approval.cmd, &approval.args)) {
                (None, Ok(command)) => command,
                (refusal, parsed) => {
                    let why = refusal.unwrap_or_else(|| match parsed {
                        Err(e) => e.message,
                        Ok(_) => String::new(),
                    });
                    let _ = self
                        .policy
                        .approvals
                        .record_result(&code, json!({"error": why}));
                    let _ = self.audit_event(
                        "approval.not_resumed",
                        &inv,
                        json!({"code": code.reference(), "action": approval.cmd, "reason": why}),
                    );
                    let _ = self.notify(
                        MessageKind::Alert,
                        &format!(
                            "After a restart: {} (approved {when}) was cut off and not run again: {why}",
                            crate::text::escape(&approval.summary, crate::text::Lines::Single)
                        ),
                    );
                    continue;
                }
            };
            let _ = self.audit_event(
                "approval.resumed",
                &inv,
                json!({"code": code.reference(), "action": approval.cmd, "approved_at": when}),
            );
            let _ = self.notify(
                MessageKind::Alert,
                &format!(
                    "After a restart: {} (approved {when}) was cut off before it finished; it runs again now, and its result follows.",
                    crate::text::escape(&approval.summary, crate::text::Lines::Single)
                ),
            );
            let after = After::Approved { code };
            let waiter = Waiter::owner(None).naming("approve");
            Box::pin(self.execute(command, &inv, after, waiter)).await;
        }
    }
}
