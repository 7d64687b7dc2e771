//! `approvals`: what is waiting for the owner.

use super::Args;
use crate::policy::approvals::Approval;
use crate::reply::{internal, CommandError};
use crate::text::{escape, Lines};
use serde_json::{json, Value};

/// `approvals` takes no arguments.
#[derive(Debug, Clone, PartialEq)]
pub struct Approvals;

impl Approvals {
    /// Parses the (empty) arguments.
    pub fn parse(_args: &Args<'_>) -> Result<Approvals, CommandError> {
        Ok(Approvals)
    }

    /// Lists pending approvals, soonest deadline first, each named by its reference.
    /// `code_shown` is the gate's decision whether this channel may see an approval's code
    /// in clear (only when codes are not phone-only); None leaves it out.
    pub fn apply(
        self,
        approvals: &crate::policy::approvals::Approvals,
        code_shown: &dyn Fn(&Approval) -> Option<String>,
    ) -> Result<Value, CommandError> {
        let pending = approvals.pending().map_err(internal)?;
        let items: Vec<Value> = pending
            .iter()
            .map(|a| {
                json!({
                    "code": code_shown(a).unwrap_or_else(|| "[sent to the owner over Signal]".to_string()),
                    "approval": a.reference(),
                    "action": a.cmd,
                    "args": a.args,
                    "summary": escape(&a.summary, Lines::Single),
                    "requested": a.created,
                    "expires_at": a.deadline_rfc3339(),
                })
            })
            .collect();
        Ok(json!({"count": items.len(), "pending": items}))
    }
}
