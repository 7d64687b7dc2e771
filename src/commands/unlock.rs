//! `unlock`: ends a lockdown. At the console (`pane-agent unlock`, the control socket) it
//! takes effect at once; from Signal it needs an approval whose code goes to the owner's phone
//! and is answered there; from anywhere else it is refused. So someone who holds only the
//! command secret cannot undo a lockdown.

use super::{Args, Cmd, Fast, GateAction, Run, Spec};
use crate::context::Contexts;
use crate::policy::tools::Tier;
use crate::reply::CommandError;

/// `unlock` takes no arguments.
#[derive(Debug, Clone, PartialEq)]
pub struct Unlock;

impl Cmd for Unlock {
    const SPECS: &'static [Spec] = &[Spec::new(
        "unlock",
        Tier::External,
        false,
        &[],
        "end a lockdown: at the console at once (pane-agent unlock), from Signal with an approval",
    )];

    fn parse(_name: &str, _args: &Args<'_>) -> Result<Unlock, CommandError> {
        Ok(Unlock)
    }

    /// The gate holds the lockdown switch.
    fn run(self, _fast: &Fast<'_>) -> Result<Run, CommandError> {
        Ok(Run::Gate(GateAction::Unlock))
    }

    fn describe(&self, _contexts: &Contexts) -> String {
        "end the lockdown: grant and approve work again (tools stay revoked until granted)".into()
    }
}
