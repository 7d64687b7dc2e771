//! `expire {context}` [external]: burn a context. The alias is deactivated and deleted, the
//! card closed, and the context kept as expired for the record.

use super::Args;
use crate::actors::agent::Core;
use crate::actors::enroll::EnrollMessage;
use crate::reply::CommandError;
use serde_json::Value;

/// `expire {context}`
#[derive(Debug, Clone, PartialEq)]
pub struct Expire {
    /// The context.
    pub context: String,
}

impl Expire {
    /// Parses `{context}`.
    pub fn parse(args: &Args<'_>) -> Result<Expire, CommandError> {
        args.only(&["context"])?;
        Ok(Expire {
            context: args.context()?,
        })
    }

    /// The approval prompt's words: exactly what will be destroyed.
    pub fn describe(&self, core: &Core) -> String {
        let ctx = core.services.contexts.get(&self.context).ok().flatten();
        let alias = ctx
            .as_ref()
            .and_then(|c| c.alias.as_ref())
            .map(|a| format!("deactivate and delete the alias {}", a.email))
            .unwrap_or_else(|| "delete its alias".into());
        let card = ctx
            .as_ref()
            .and_then(|c| c.card.as_ref())
            .map(|c| format!("close the card ending {}", c.last_four))
            .unwrap_or_else(|| "close its card".into());
        format!(
            "expire context {}: {alias}, {card}; the context is kept as expired",
            self.context
        )
    }

    /// Hands it to the enrollment actor.
    pub async fn execute(self, core: &mut Core) -> Result<Value, CommandError> {
        let name = self.context;
        core.services
            .enroll
            .ask(|r| EnrollMessage::Expire(name, r))
            .await
    }
}
