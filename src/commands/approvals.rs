//! `approvals`: what is waiting for the owner.

use super::Args;
use crate::reply::{internal, CommandError};
use serde_json::{json, Value};

/// `approvals` takes no arguments.
#[derive(Debug, Clone, PartialEq)]
pub struct Approvals;

impl Approvals {
    /// Parses the (empty) arguments.
    pub fn parse(_args: &Args<'_>) -> Result<Approvals, CommandError> {
        Ok(Approvals)
    }

    /// Lists pending approvals, soonest deadline first.
    pub fn apply(
        self,
        approvals: &crate::policy::approvals::Approvals,
        hide: bool,
    ) -> Result<Value, CommandError> {
        let pending = approvals.pending().map_err(internal)?;
        let items: Vec<Value> = pending
            .iter()
            .map(|a| {
                json!({
                    "code": if hide { "[sent to the owner over Signal]".to_string() } else { a.display_code() },
                    "action": a.cmd,
                    "args": a.args,
                    "summary": a.summary,
                    "requested": a.created,
                    "expires_at": a.deadline_rfc3339(),
                })
            })
            .collect();
        Ok(json!({"count": items.len(), "pending": items}))
    }
}
