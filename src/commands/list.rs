//! `list`: every context the agent holds.

use super::args::{opt, Kind};
use super::{Args, Cmd, Fast, Run, Spec, Work};
use crate::context::{Context, Contexts};
use crate::policy::tools::Tier;
use crate::reply::{internal, CommandError, Words};
use serde::{Serialize, Serializer};

/// `list {refresh?, after?}`
#[derive(Debug, Clone, PartialEq)]
pub struct List {
    /// First read every alias from the provider (all pages) and update the contexts.
    pub refresh: bool,
    /// Only the contexts whose names sort after this one: the next page, for a reply that
    /// had to stop (a `list` on Signal shows what fits in one message).
    pub after: Option<String>,
}

/// What `list` answers: `{"contexts": [view, ...], "count": n}`, and `refresh`, the provider
/// report of a `refresh: true`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ListOutput {
    /// The contexts, by name (shown as their views, `Context::view`).
    #[serde(serialize_with = "views")]
    pub contexts: Vec<Context>,
    /// How many.
    pub count: usize,
    /// What reading the provider found, for `refresh: true`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub refresh: Option<RefreshReport>,
}

fn views<S: Serializer>(contexts: &[Context], s: S) -> Result<S::Ok, S::Error> {
    s.collect_seq(contexts.iter().map(Context::view))
}

impl ListOutput {
    /// The contexts by name, those after `after` when it is given, with the provider report
    /// of a refresh.
    pub fn of(
        contexts: &Contexts,
        after: Option<&str>,
        refresh: Option<RefreshReport>,
    ) -> Result<ListOutput, CommandError> {
        let mut all = contexts.all().map_err(internal)?;
        if let Some(after) = after {
            all.retain(|c| c.name.as_str() > after);
        }
        Ok(ListOutput {
            count: all.len(),
            contexts: all,
            refresh,
        })
    }
}

impl Cmd for List {
    const SPECS: &'static [Spec] = &[Spec::new(
        "list",
        Tier::Read,
        true,
        &[
            opt(
                "refresh",
                Kind::Flag,
                "read every alias from the provider first",
            ),
            opt(
                "after",
                Kind::Context,
                "only the contexts named after this one (the next page of a long list)",
            ),
        ],
        "list the contexts (after: those named after it); refresh reads the alias provider first",
    )];

    fn parse(_name: &str, args: &Args<'_>) -> Result<List, CommandError> {
        Ok(List {
            refresh: args.opt_bool("refresh")?.unwrap_or(false),
            after: args.opt_string("after")?,
        })
    }

    /// The contexts now, or (with `refresh`) the worker's read of the provider first.
    fn run(self, fast: &Fast<'_>) -> Result<Run, CommandError> {
        if self.refresh {
            return Ok(Run::Work(Work::Refresh { after: self.after }));
        }
        Run::done(ListOutput::of(fast.contexts, self.after.as_deref(), None)?)
    }
}

/// One context's line.
pub fn line(ctx: &Context) -> String {
    ctx.view().line()
}

/// What reading the alias provider found, for `list {refresh: true}`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RefreshReport {
    /// How many aliases the provider holds.
    pub provider_aliases: usize,
    /// How many requests reading them all took (one per page).
    pub provider_requests: u32,
    /// How many contexts took a change from it (forwarding on or off, mails forwarded).
    pub contexts_updated: usize,
}

impl Words for ListOutput {
    /// A count, then one line per context, as many as fit in one message.
    /// After a refresh, first a line that says what the provider said.
    fn words(&self, _cmd: &str) -> String {
        let list = crate::words::contexts::list(
            self.contexts.len(),
            self.contexts.iter().map(|c| (c.name.as_str(), line(c))),
        );
        match &self.refresh {
            Some(r) => format!(
                "Refreshed from the alias provider: {} alias(es), {} context(s) updated.\n{list}",
                r.provider_aliases, r.contexts_updated
            ),
            None => list,
        }
    }
}
