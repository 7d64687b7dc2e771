//! `lockdown`: the panic button. Revokes every non-read grant and denies every pending
//! approval, immediately and without asking; `grant` (with approval) undoes it tool by tool.

use super::{Args, Cmd, Fast, GateAction, Run, Spec};
use crate::policy::tools::Tier;
use crate::reply::CommandError;

/// `lockdown` takes no arguments.
#[derive(Debug, Clone, PartialEq)]
pub struct Lockdown;

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
