//! `transactions {context}`: the newest charges on a context's card.

use super::args::CONTEXT;
use super::{Args, Cmd, Fast, Run, Spec, Work};
use crate::policy::tools::Tier;
use crate::context::format_amount;
use crate::providers::Transaction;
use crate::reply::{CommandError, Words};
use crate::words::lines::single;
use serde::Serialize;

/// `transactions {context}`
#[derive(Debug, Clone, PartialEq)]
pub struct Transactions {
    /// The context.
    pub context: String,
}

/// What `transactions` answers: the card's newest transactions, as the provider gave them.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TransactionsOutput {
    /// The context.
    pub context: String,
    /// The card's last four digits.
    pub card: String,
    /// How many transactions.
    pub count: usize,
    /// The transactions, newest first.
    pub transactions: Vec<Transaction>,
}

impl Words for TransactionsOutput {
    /// A headline naming the card, then one line per transaction: when, how much, where,
    /// and its status.
    fn words(&self, cmd: &str) -> String {
        let mut out = format!(
            "✓ {}: {} card {}, {} transaction(s)",
            single(cmd),
            single(&self.context),
            single(&self.card),
            self.count
        );
        for t in &self.transactions {
            let sign = if t.amount < 0 { "-" } else { "" };
            out.push_str(&format!(
                "\n• {} {sign}{} {} ({})",
                single(&t.created),
                format_amount(t.amount.unsigned_abs()),
                single(&t.merchant),
                single(&t.status)
            ));
        }
        out
    }
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
