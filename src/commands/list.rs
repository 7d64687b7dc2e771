//! `list`: every context the agent holds.

use super::Args;
use crate::actors::agent::Core;
use crate::actors::enroll::{context_view, EnrollMessage};
use crate::reply::CommandError;
use serde_json::{json, Value};

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

    /// Returns the contexts, by name.
    pub async fn execute(self, core: &mut Core) -> Result<Value, CommandError> {
        let refreshed = if self.refresh {
            Some(core.services.enroll.ask(EnrollMessage::Refresh).await?)
        } else {
            None
        };
        let contexts: Vec<Value> = core
            .services
            .contexts
            .all()
            .map_err(|e| core.internal(e))?
            .iter()
            .map(context_view)
            .collect();
        let mut reply = json!({"count": contexts.len(), "contexts": contexts});
        if let Some(r) = refreshed {
            reply["refresh"] = r;
        }
        Ok(reply)
    }
}
