//! `status {context}`: one context in full.

use super::Args;
use crate::actors::agent::Core;
use crate::reply::{CommandError, ErrorKind};
use crate::store::decode;
use serde_json::Value;

/// `status {context}`
#[derive(Debug, Clone, PartialEq)]
pub struct Status {
    /// The context's name.
    pub context: String,
}

impl Status {
    /// Parses `{context}`.
    pub fn parse(args: &Args<'_>) -> Result<Status, CommandError> {
        args.only(&["context"])?;
        Ok(Status {
            context: args.context()?,
        })
    }

    /// Returns the context, or `context not found: NAME`.
    pub fn execute(self, core: &mut Core) -> Result<Value, CommandError> {
        match core
            .store
            .contexts
            .get(self.context.as_bytes())
            .map_err(|e| core.internal(e))?
        {
            Some(bytes) => decode(&bytes).map_err(|e| core.internal(e)),
            None => Err(CommandError::new(
                ErrorKind::NotFound,
                format!("context not found: {}", self.context),
            )),
        }
    }
}
