//! `transactions {context}`: the newest charges on a context's card.

use super::Args;
use super::Work;
use crate::reply::CommandError;

/// `transactions {context}`
#[derive(Debug, Clone, PartialEq)]
pub struct Transactions {
    /// The context.
    pub context: String,
}

impl Transactions {
    /// Parses `{context}`.
    pub fn parse(args: &Args<'_>) -> Result<Transactions, CommandError> {
        Ok(Transactions {
            context: args.context()?,
        })
    }

    /// The work it hands to the enrollment worker.
    pub fn work(self) -> Work {
        Work::Transactions(self.context)
    }
}
