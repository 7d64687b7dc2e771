//! `deny {code}`: the owner refuses a pending action. Final: nothing retries it.

use super::approve::{parse_code, used_code};
use super::Args;
use crate::actors::agent::{Core, Invocation};
use crate::policy::approvals::ApprovalState;
use crate::reply::CommandError;
use serde_json::{json, Value};

/// `deny {code}`
#[derive(Debug, Clone, PartialEq)]
pub struct Deny {
    /// The normalised code.
    pub code: String,
}

impl Deny {
    /// Parses `{code}`.
    pub fn parse(args: &Args<'_>) -> Result<Deny, CommandError> {
        args.only(&["code"])?;
        Ok(Deny {
            code: parse_code(args)?,
        })
    }

    /// Settles the approval as denied.
    pub fn execute(self, core: &mut Core, inv: &Invocation) -> Result<Value, CommandError> {
        core.pending_approval(&self.code, inv)?;
        let Some(settled) = core
            .policy
            .approvals
            .settle(&self.code, ApprovalState::Denied, inv.now, None)
            .map_err(|e| core.internal(e))?
        else {
            return Err(used_code());
        };
        core.audit_event(
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
}
