//! `lockdown`, the panic button, and `unlock`.

use super::Gate;
use crate::commands::lockdown::LockedDown;
use crate::commands::unlock::Unlocked;
use crate::origin::Invocation;
use crate::outbox::MessageKind;
use crate::policy::approvals::ApprovalState;
use crate::reply::CommandError;
use crate::store::records::{Key, Time};
use serde_json::json;

/// Set while a lockdown holds, with when it started.
const LOCKED_DOWN: Key<Time> = Key::new("policy.locked_down");

impl Gate {
    /// `lockdown`, the panic button: revokes every non-read grant, denies every pending
    /// approval, and stops every job in flight at its next provider call (queued jobs are
    /// cancelled when their turn comes), immediately and without asking.
    pub(super) fn lockdown(&mut self, inv: &Invocation) -> Result<LockedDown, CommandError> {
        self.execution.lockdown.trip();
        // Sticky: until the owner unlocks, grant and approve (of anything but the unlock)
        // are refused, so a stolen command secret cannot undo it.
        self.store
            .records()
            .set(&LOCKED_DOWN, &inv.now)
            .map_err(|e| self.internal(e))?;
        let revoked = self
            .policy
            .grants
            .lockdown(crate::commands::specs().map(|s| &s.tool))
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
                    json!({"code": a.code, "action": a.cmd, "by": "lockdown"}),
                )?;
                denied.push(a.reference());
            }
        }
        let stopping: Vec<u64> = self.execution.pending.keys().copied().collect();
        self.notify(
            MessageKind::Alert,
            &format!(
                "LOCKDOWN: revoked {} tool(s), denied {} pending approval(s), stopping {} job(s) in flight. Grants and approvals stay refused until you send `unlock` from this phone (it asks you to approve) or run `pane-agent unlock` at the console.",
                revoked.len(),
                denied.len(),
                stopping.len()
            ),
        )?;
        Ok(LockedDown {
            status: "locked_down",
            revoked,
            denied_approvals: denied,
            stopping_jobs: stopping,
        })
    }

    /// True while a lockdown holds.
    pub(super) fn locked_down(&self) -> bool {
        self.store.records().contains(&LOCKED_DOWN).unwrap_or(false)
    }

    /// Ends a lockdown (at the console, or approved from the owner's phone).
    pub(super) fn unlock(&mut self, inv: &Invocation) -> Result<Unlocked, CommandError> {
        let was = self
            .store
            .records()
            .remove(&LOCKED_DOWN)
            .map_err(|e| self.internal(e))?;
        if !was {
            return Ok(Unlocked::not_locked_down());
        }
        self.audit_event("lockdown.ended", inv, json!({"by": inv.channel.as_str()}))?;
        self.notify(
            MessageKind::Alert,
            &format!(
                "Lockdown ended ({}). Tools stay revoked until you grant them again.",
                inv.channel.as_str()
            ),
        )?;
        Ok(Unlocked::ended())
    }
}
