//! `lockdown`: the panic button. Revokes every non-read grant and denies every pending
//! approval, immediately and without asking; `grant` (with approval) undoes it tool by tool.

use super::Args;
use crate::actors::agent::{Core, Invocation};
use crate::outbox::MessageKind;
use crate::policy::approvals::ApprovalState;
use crate::reply::CommandError;
use serde_json::{json, Value};

/// `lockdown` takes no arguments.
#[derive(Debug, Clone, PartialEq)]
pub struct Lockdown;

impl Lockdown {
    /// Parses the (empty) arguments.
    pub fn parse(args: &Args<'_>) -> Result<Lockdown, CommandError> {
        args.only(&[])?;
        Ok(Lockdown)
    }

    /// Revokes, denies, and tells the owner.
    pub fn execute(self, core: &mut Core, inv: &Invocation) -> Result<Value, CommandError> {
        let revoked = core
            .policy
            .grants
            .lockdown()
            .map_err(|e| core.internal(e))?;
        let pending = core
            .policy
            .approvals
            .pending()
            .map_err(|e| core.internal(e))?;
        let mut denied = Vec::new();
        for approval in pending {
            let settled = core
                .policy
                .approvals
                .settle(&approval.code, ApprovalState::Denied, inv.now, None)
                .map_err(|e| core.internal(e))?;
            if let Some(a) = settled {
                core.audit_event(
                    "approval.denied",
                    inv,
                    json!({"code": a.display_code(), "action": a.cmd, "by": "lockdown"}),
                )?;
                denied.push(a.display_code());
            }
        }
        core.notify(
            MessageKind::Alert,
            &format!(
                "LOCKDOWN: revoked {} tool(s) and denied {} pending approval(s). Restore a tool with `grant` (needs approval).",
                revoked.len(),
                denied.len()
            ),
        )?;
        Ok(json!({"status": "locked_down", "revoked": revoked, "denied_approvals": denied}))
    }
}
