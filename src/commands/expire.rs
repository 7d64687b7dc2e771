//! `expire {context}` [external]: burn a context. The alias is deactivated and deleted, the
//! card closed, and the context kept as expired for the record.

use super::args::CONTEXT;
use super::{live_context, Args, Cmd, Fast, Run, Spec, Work};
use crate::config::CardsConfig;
use crate::context::{ContextView, Contexts};
use crate::policy::tools::Tier;
use crate::reply::{CommandError, Words};
use crate::words::lines::single;
use serde::Serialize;

/// What `expire` answers: the context's view as burned, with `status: "expired"`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Expired {
    /// The context as expired.
    #[serde(flatten)]
    pub context: ContextView,
    /// `expired`.
    pub status: &'static str,
}

impl Words for Expired {
    /// `✓ expire: expired` and the context's line (alias deleted, card closed).
    fn words(&self, cmd: &str) -> String {
        format!(
            "✓ {}: {}\n{}",
            single(cmd),
            single(self.status),
            self.context.line()
        )
    }
}

/// `expire {context}`
#[derive(Debug, Clone, PartialEq)]
pub struct Expire {
    /// The context.
    pub context: String,
}

impl Cmd for Expire {
    const SPECS: &'static [Spec] = &[Spec::new(
        "expire",
        Tier::External,
        true,
        &[CONTEXT],
        "burn the context: alias deleted, card closed (needs approval)",
    )];

    fn parse(_name: &str, args: &Args<'_>) -> Result<Expire, CommandError> {
        Ok(Expire {
            context: args.context()?,
        })
    }

    /// The approval prompt's words: exactly what will be destroyed.
    fn describe(&self, contexts: &Contexts) -> String {
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

    /// The job runner burns it at the providers.
    fn run(self, _fast: &Fast<'_>) -> Result<Run, CommandError> {
        Ok(Run::Work(Work::Expire(self.context)))
    }

    /// The context must exist and not be expired already.
    fn precheck(&self, contexts: &Contexts, _cards: &CardsConfig) -> Result<(), CommandError> {
        live_context(contexts, &self.context).map(|_| ())
    }
}
