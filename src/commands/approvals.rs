//! `approvals`: what is waiting for the owner.

use super::{Args, Cmd, Fast, Run, Spec};
use crate::policy::tools::Tier;
use crate::reply::{internal, CommandError, Words};
use crate::text::{escape, Lines};
use serde::Serialize;
use serde_json::{Map, Value};

/// `approvals` takes no arguments.
#[derive(Debug, Clone, PartialEq)]
pub struct Approvals;

/// What `approvals` answers.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ApprovalsOutput {
    /// How many are pending.
    pub count: usize,
    /// Each, soonest deadline first.
    pub pending: Vec<PendingApproval>,
}

/// One pending approval.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PendingApproval {
    /// Its code, when this caller may see it; else where it went.
    pub code: String,
    /// Its reference.
    pub approval: String,
    /// The command it runs.
    pub action: String,
    /// The command's arguments.
    pub args: Map<String, Value>,
    /// What it does, in words.
    pub summary: String,
    /// When it was asked for.
    pub requested: String,
    /// When it expires.
    pub expires_at: String,
}

impl Cmd for Approvals {
    const SPECS: &'static [Spec] = &[Spec::new(
        "approvals",
        Tier::Read,
        false,
        &[],
        "list pending approvals",
    )];

    fn parse(_name: &str, _args: &Args<'_>) -> Result<Approvals, CommandError> {
        Ok(Approvals)
    }

    /// Lists pending approvals, soonest deadline first, each named by its reference; the
    /// code only where the gate says this caller may see it.
    fn run(self, fast: &Fast<'_>) -> Result<Run, CommandError> {
        let pending = fast.approvals.pending().map_err(internal)?;
        let pending: Vec<PendingApproval> = pending
            .iter()
            .map(|a| PendingApproval {
                code: (fast.code_shown)(a)
                    .unwrap_or_else(|| "[sent to the owner over Signal]".to_string()),
                approval: a.reference(),
                action: a.cmd.clone(),
                args: a.args.clone(),
                summary: escape(&a.summary, Lines::Single),
                requested: a.created.clone(),
                expires_at: a.deadline_rfc3339(),
            })
            .collect();
        Run::done(ApprovalsOutput {
            count: pending.len(),
            pending,
        })
    }
}

impl Words for ApprovalsOutput {
    fn words(&self, cmd: &str) -> String {
        crate::words::fields_of(cmd, self)
    }
}
