//! `sweep`: run the breach monitor over every source now (the schedule does it hourly).

use super::{Args, Cmd, Fast, Run, Spec, Work};
use crate::policy::tools::Tier;
use crate::reply::CommandError;

/// `sweep` takes no arguments.
#[derive(Debug, Clone, PartialEq)]
pub struct Sweep;

impl Cmd for Sweep {
    const SPECS: &'static [Spec] = &[Spec::new(
        "sweep",
        Tier::Write,
        true,
        &[],
        "run the breach monitor over every source now",
    )];

    fn parse(_name: &str, _args: &Args<'_>) -> Result<Sweep, CommandError> {
        Ok(Sweep)
    }

    /// The breach monitor's work.
    fn run(self, _fast: &Fast<'_>) -> Result<Run, CommandError> {
        Ok(Run::Work(Work::Sweep))
    }
}
