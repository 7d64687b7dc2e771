//! `list`: every context the agent holds.

use super::Args;
use crate::actors::agent::Core;
use crate::actors::enroll::EnrollMessage;
use crate::reply::{Answer, CommandError, Rendered};
use serde_json::json;

/// `list {refresh?}`
#[derive(Debug, Clone, PartialEq)]
pub struct List {
    /// First read every alias from the provider (all pages) and update the contexts.
    pub refresh: bool,
}

impl List {
    /// Parses the (empty) arguments.
    pub fn parse(args: &Args<'_>) -> Result<List, CommandError> {
        args.only(&["refresh"])?;
        Ok(List {
            refresh: args.opt_bool("refresh")?.unwrap_or(false),
        })
    }

    /// Returns `{"contexts": [view, ...], "count": n}` (and `refresh`, the provider report,
    /// when asked), by name. The views are rendered once per change of their context and
    /// put together as text (see `context::ViewCache`): with many contexts this is most of
    /// what `list` costs.
    pub async fn execute(self, core: &mut Core) -> Result<Answer, CommandError> {
        let refreshed = if self.refresh {
            Some(core.services.enroll.ask(EnrollMessage::Refresh).await?)
        } else {
            None
        };
        let (views, count) = core
            .services
            .contexts
            .rendered_views()
            .map_err(|e| core.internal(e))?;
        let mut fields = vec![
            ("contexts", views),
            ("count", Rendered::from_value(&json!(count))),
        ];
        if let Some(report) = refreshed {
            fields.push(("refresh", Rendered::from_value(&report)));
        }
        Ok(Answer::Rendered(Rendered::object(fields)))
    }
}
