//! `list`: every context the agent holds.

use super::Args;
use crate::context::Contexts;
use crate::reply::{internal, Answer, CommandError, Rendered};
use serde_json::{json, Value};

/// `list {refresh?, after?}`
#[derive(Debug, Clone, PartialEq)]
pub struct List {
    /// First read every alias from the provider (all pages) and update the contexts.
    pub refresh: bool,
    /// Only the contexts whose names sort after this one: the next page, for a reply that
    /// had to stop (a `list` on Signal shows what fits in one message).
    pub after: Option<String>,
}

impl List {
    /// Parses the (empty) arguments.
    pub fn parse(args: &Args<'_>) -> Result<List, CommandError> {
        Ok(List {
            refresh: args.opt_bool("refresh")?.unwrap_or(false),
            after: args.opt_string("after")?,
        })
    }

    /// Returns `{"contexts": [view, ...], "count": n}` (and `refresh`, the provider report
    /// of a `refresh: true`, which the enrollment worker makes first), by name, those after
    /// `after` when it is given. The views
    /// are rendered once per change of their context and put together as text (see
    /// `context::ViewCache`): with many contexts this is most of what `list` costs.
    pub fn apply(
        contexts: &Contexts,
        after: Option<&str>,
        refreshed: Option<&Value>,
    ) -> Result<Answer, CommandError> {
        let (views, count) = contexts.rendered_views(after).map_err(internal)?;
        let mut fields = vec![
            ("contexts", views),
            ("count", Rendered::from_value(&json!(count))),
        ];
        if let Some(report) = refreshed {
            fields.push(("refresh", Rendered::from_value(report)));
        }
        Ok(Answer::Rendered(Rendered::object(fields)))
    }
}
