//! `lockdown`: the panic button. Revokes every non-read grant and denies every pending
//! approval, immediately and without asking; `grant` (with approval) undoes it tool by tool.

use super::{Args, Cmd, Fast, GateAction, Run, Spec};
use crate::policy::tools::Tier;
use crate::reply::{CommandError, Words};
use serde::Serialize;

/// `lockdown` takes no arguments.
#[derive(Debug, Clone, PartialEq)]
pub struct Lockdown;

/// What `lockdown` answers: what it stopped.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LockedDown {
    /// `locked_down`.
    pub status: &'static str,
    /// The tools whose grants it revoked.
    pub revoked: Vec<&'static str>,
    /// The pending approvals it denied, by reference.
    pub denied_approvals: Vec<String>,
    /// The jobs in flight it stops at their next provider call.
    pub stopping_jobs: Vec<u64>,
}

impl Words for LockedDown {
    /// Labelled lines; the alert sent just before says it in a sentence.
    fn words(&self, cmd: &str) -> String {
        crate::words::fields_of(cmd, self)
    }
}

impl Cmd for Lockdown {
    const SPECS: &'static [Spec] = &[Spec::new(
        "lockdown",
        Tier::Write,
        false,
        &[],
        "revoke every non-read grant and deny pending approvals, at once",
    )];

    fn parse(_name: &str, _args: &Args<'_>) -> Result<Lockdown, CommandError> {
        Ok(Lockdown)
    }

    /// The gate holds the lockdown switch and the jobs in flight.
    fn run(self, _fast: &Fast<'_>) -> Result<Run, CommandError> {
        Ok(Run::Gate(GateAction::Lockdown))
    }
}
