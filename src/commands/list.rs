//! `list`: every context the agent holds.

use super::Args;
use crate::actors::agent::Core;
use crate::reply::CommandError;
use crate::store::decode;
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
        let mut contexts = Vec::new();
        for item in core.store.contexts.iter() {
            let (_, bytes) = item.map_err(|e| core.internal(e))?;
            let ctx: Value = decode(&bytes).map_err(|e| core.internal(e))?;
            contexts.push(ctx);
        }
        Ok(json!({"count": contexts.len(), "contexts": contexts}))
    }
}
