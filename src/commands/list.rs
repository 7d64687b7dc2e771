//! `list`: every context the agent holds.

use super::Args;
use crate::actors::agent::Core;
use crate::actors::enroll::context_view;
use crate::reply::CommandError;
use serde_json::{json, Value};

/// `list` takes no arguments.
#[derive(Debug, Clone, PartialEq)]
pub struct List;

impl List {
    /// Parses the (empty) arguments.
    pub fn parse(args: &Args<'_>) -> Result<List, CommandError> {
        args.only(&[])?;
        Ok(List)
    }

    /// Returns the contexts, by name.
    pub fn execute(self, core: &mut Core) -> Result<Value, CommandError> {
        let contexts: Vec<Value> = core
            .services
            .contexts
            .all()
            .map_err(|e| core.internal(e))?
            .iter()
            .map(context_view)
            .collect();
        Ok(json!({"count": contexts.len(), "contexts": contexts}))
    }
}
