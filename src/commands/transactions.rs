//! `transactions {context}`: the newest charges on a context's card.

use super::Args;
use crate::actors::agent::Core;
use crate::actors::enroll::EnrollMessage;
use crate::reply::CommandError;
use serde_json::Value;

/// `transactions {context}`
#[derive(Debug, Clone, PartialEq)]
pub struct Transactions {
    /// The context.
    pub context: String,
}

impl Transactions {
    /// Parses `{context}`.
    pub fn parse(args: &Args<'_>) -> Result<Transactions, CommandError> {
        args.only(&["context"])?;
        Ok(Transactions {
            context: args.context()?,
        })
    }

    /// Asks the card provider.
    pub async fn execute(self, core: &mut Core) -> Result<Value, CommandError> {
        let name = self.context;
        core.services
            .enroll
            .ask(|r| EnrollMessage::Transactions(name, r))
            .await
    }
}
