//! `alias.create {context}`, `alias.deactivate {context}`, `alias.activate {context}`.

use super::args::CONTEXT;
use super::{Args, Cmd, Fast, Run, Spec, Work};
use crate::policy::tools::Tier;
use crate::reply::CommandError;

/// What to do with a context's alias.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AliasAction {
    /// Make one (the context has none).
    Create,
    /// Stop forwarding.
    Deactivate,
    /// Forward again.
    Activate,
}

/// `alias.create`, `alias.deactivate` or `alias.activate`.
#[derive(Debug, Clone, PartialEq)]
pub struct AliasCommand {
    /// The context.
    pub context: String,
    /// The action.
    pub action: AliasAction,
}

impl Cmd for AliasCommand {
    const SPECS: &'static [Spec] = &[
        Spec::new(
            "alias.create",
            Tier::Write,
            true,
            &[CONTEXT],
            "make an alias for a context without one",
        ),
        Spec::new(
            "alias.deactivate",
            Tier::Write,
            true,
            &[CONTEXT],
            "stop the alias forwarding",
        ),
        Spec::new(
            "alias.activate",
            Tier::Write,
            true,
            &[CONTEXT],
            "let the alias forward again",
        ),
    ];

    fn parse(name: &str, args: &Args<'_>) -> Result<AliasCommand, CommandError> {
        let action = match name {
            "alias.create" => AliasAction::Create,
            "alias.deactivate" => AliasAction::Deactivate,
            _ => AliasAction::Activate,
        };
        Ok(AliasCommand {
            context: args.context()?,
            action,
        })
    }

    fn spec(&self) -> &'static Spec {
        &Self::SPECS[self.action as usize]
    }

    /// The job runner, which owns contexts, asks the alias provider.
    fn run(self, _fast: &Fast<'_>) -> Result<Run, CommandError> {
        Ok(Run::Work(match self.action {
            AliasAction::Create => Work::CreateAlias(self.context),
            AliasAction::Deactivate => Work::SetAliasActive(self.context, false),
            AliasAction::Activate => Work::SetAliasActive(self.context, true),
        }))
    }
}
