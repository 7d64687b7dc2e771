//! `alias.create {context}`, `alias.deactivate {context}`, `alias.activate {context}`.

use super::Args;
use super::Work;
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

impl AliasCommand {
    /// Parses `{context}`.
    pub fn parse(args: &Args<'_>, action: AliasAction) -> Result<AliasCommand, CommandError> {
        Ok(AliasCommand {
            context: args.context()?,
            action,
        })
    }

    /// The work it hands to the enrollment worker, which owns contexts.
    pub fn work(self) -> Work {
        match self.action {
            AliasAction::Create => Work::CreateAlias(self.context),
            AliasAction::Deactivate => Work::SetAliasActive(self.context, false),
            AliasAction::Activate => Work::SetAliasActive(self.context, true),
        }
    }
}
