//! `status {context}`: one context in full.

use super::args::CONTEXT;
use super::{Args, Cmd, Fast, Run, Spec};
use crate::context::{Context, ContextView};
use crate::words::lines::single;
use crate::policy::tools::Tier;
use crate::reply::{internal, CommandError, ErrorKind, Words};
use serde::{Serialize, Serializer};

/// `status {context}`
#[derive(Debug, Clone, PartialEq)]
pub struct Status {
    /// The context's name.
    pub context: String,
}

/// What `status` answers: the context's view (`Context::view`).
#[derive(Debug, Clone, PartialEq)]
pub struct StatusOutput(pub Context);

impl Serialize for StatusOutput {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.0.view().serialize(s)
    }
}

impl Words for StatusOutput {
    /// The context's name and state, then its parts as labelled lines.
    fn words(&self, _cmd: &str) -> String {
        let view = serde_json::to_value(self.0.view()).unwrap_or_default();
        crate::words::contexts::status(&view)
    }
}

/// What the alias and card commands answer (`alias.create`, `alias.activate`,
/// `alias.deactivate`, `card.pause`, `card.fund`, `card.close`): the context as the change
/// left it, the same view `status` shows, so a client reads one shape for a context.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(transparent)]
pub struct ContextChanged(pub ContextView);

impl Words for ContextChanged {
    /// The context's line as the change left it: `✓ card.pause: notion · n7x@alias.io ·
    /// card 4242 paused`.
    fn words(&self, cmd: &str) -> String {
        format!("✓ {}: {}", single(cmd), self.0.line())
    }
}

impl Cmd for Status {
    const SPECS: &'static [Spec] = &[Spec::new(
        "status",
        Tier::Read,
        true,
        &[CONTEXT],
        "show one context",
    )];

    fn parse(_name: &str, args: &Args<'_>) -> Result<Status, CommandError> {
        Ok(Status {
            context: args.context()?,
        })
    }

    /// The context, or `context not found: NAME`.
    fn run(self, fast: &Fast<'_>) -> Result<Run, CommandError> {
        match fast.contexts.get(&self.context).map_err(internal)? {
            Some(ctx) => Run::done(StatusOutput(ctx)),
            None => Err(CommandError::new(
                ErrorKind::NotFound,
                format!("context not found: {}", self.context),
            )),
        }
    }
}
