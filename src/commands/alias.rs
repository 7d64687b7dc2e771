//! `alias.create {context}`, `alias.deactivate {context}`, `alias.activate {context}`.

use super::Args;
use crate::actors::agent::Core;
use crate::actors::enroll::EnrollMessage;
use crate::reply::CommandError;
use serde_json::Value;

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
        args.only(&["context"])?;
        Ok(AliasCommand {
            context: args.context()?,
            action,
        })
    }

    /// Carries it out through the enrollment actor, which owns contexts.
    pub async fn execute(self, core: &mut Core) -> Result<Value, CommandError> {
        let name = self.context;
        let enroll = &core.services.enroll;
        match self.action {
            AliasAction::Create => enroll.ask(|r| EnrollMessage::CreateAlias(name, r)).await,
            AliasAction::Deactivate => {
                enroll
                    .ask(|r| EnrollMessage::SetAliasActive(name, false, r))
                    .await
            }
            AliasAction::Activate => {
                enroll
                    .ask(|r| EnrollMessage::SetAliasActive(name, true, r))
                    .await
            }
        }
    }
}
