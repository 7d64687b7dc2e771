//! `expire {context}` [external]: burn a context. The alias is deactivated and deleted, the
//! card closed, and the context kept as expired for the record.

use super::Args;
use super::Work;
use crate::context::Contexts;
use crate::reply::CommandError;

/// `expire {context}`
#[derive(Debug, Clone, PartialEq)]
pub struct Expire {
    /// The context.
    pub context: String,
}

impl Expire {
    /// Parses `{context}`.
    pub fn parse(args: &Args<'_>) -> Result<Expire, CommandError> {
        Ok(Expire {
            context: args.context()?,
        })
    }

    /// The approval prompt's words: exactly what will be destroyed.
    pub fn describe(&self, contexts: &Contexts) -> String {
        let ctx = contexts.get(&self.context).ok().flatten();
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

    /// The work it hands to the enrollment worker.
    pub fn work(self) -> Work {
        Work::Expire(self.context)
    }
}
