//! `transactions {context}`: the newest charges on a context's card.

use super::args::CONTEXT;
use super::{Args, Cmd, Fast, Run, Spec, Work};
use crate::policy::tools::Tier;
use crate::reply::CommandError;

/// `transactions {context}`
#[derive(Debug, Clone, PartialEq)]
pub struct Transactions {
    /// The context.
    pub context: String,
}

impl Cmd for Transactions {
    const SPECS: &'static [Spec] = &[Spec::new(
        "transactions",
        Tier::Read,
        true,
        &[CONTEXT],
        "the card's newest transactions",
    )];

    fn parse(_name: &str, args: &Args<'_>) -> Result<Transactions, CommandError> {
        Ok(Transactions {
            context: args.context()?,
        })
    }

    /// The job runner asks the card provider.
    fn run(self, _fast: &Fast<'_>) -> Result<Run, CommandError> {
        Ok(Run::Work(Work::Transactions(self.context)))
    }
}
