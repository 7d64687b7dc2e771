//! `approve {code}`: the owner allows one pending action, which then runs once.

use super::{invalid, Args, Command};
use crate::actors::agent::{Core, Invocation};
use crate::policy::approvals::{normalise_code, ApprovalState};
use crate::reply::{Answer, CommandError, ErrorKind};
use serde_json::{json, Value};

/// `approve {code}`
#[derive(Debug, Clone, PartialEq)]
pub struct Approve {
    /// The normalised code.
    pub code: String,
}

impl Approve {
    /// Parses `{code}`.
    pub fn parse(args: &Args<'_>) -> Result<Approve, CommandError> {
        args.only(&["code"])?;
        Ok(Approve {
            code: parse_code(args)?,
        })
    }

    /// Settles the approval as approved, then runs the action it is bound to.
    pub async fn execute(self, core: &mut Core, inv: &Invocation) -> Result<Value, CommandError> {
        let approval = core.pending_approval(&self.code, inv)?;
        // The stored record must still be what the code was issued for.
        if !approval.binds(&approval.cmd, &approval.args) {
            return Err(core.internal("approval record does not match its binding"));
        }
        let command = Command::parse(&approval.cmd, &approval.args)?;
        if matches!(command, Command::Approve(_)) {
            return Err(core.internal("an approval cannot approve an approval"));
        }
        let tool = command.tool();
        if !core
            .policy
            .grants
            .is_granted(tool)
            .map_err(|e| core.internal(e))?
        {
            return Err(CommandError::new(
                ErrorKind::NotGranted,
                format!(
                    "not granted: {} lost its grant while waiting; the approval stays pending",
                    tool.name
                ),
            ));
        }
        let Some(settled) = core
            .policy
            .approvals
            .settle(&self.code, ApprovalState::Approved, inv.now, None)
            .map_err(|e| core.internal(e))?
        else {
            return Err(used_code());
        };
        core.audit_event(
            "approval.approved",
            inv,
            json!({"code": settled.display_code(), "action": settled.cmd, "args": settled.args}),
        )?;
        let result = Box::pin(core.run_action(command, inv))
            .await
            .map(Answer::into_value);
        let recorded = match &result {
            Ok(v) => json!({"ok": v}),
            Err(e) => json!({"error": e.message}),
        };
        core.policy
            .approvals
            .record_result(&self.code, recorded)
            .map_err(|e| core.internal(e))?;
        Ok(json!({
            "status": "approved",
            "code": settled.display_code(),
            "action": settled.cmd,
            "result": crate::reply::Reply::from(result).to_json(),
        }))
    }
}

/// Reads and normalises the `code` argument.
pub fn parse_code(args: &Args<'_>) -> Result<String, CommandError> {
    let typed = args.string("code")?;
    normalise_code(&typed).ok_or_else(|| invalid("code must look like ABCDE-FGHJK"))
}

/// The refusal for a code that was already used or settled.
pub fn used_code() -> CommandError {
    CommandError::new(
        ErrorKind::ApprovalInvalid,
        "approval code is no longer pending: a code works once",
    )
}
