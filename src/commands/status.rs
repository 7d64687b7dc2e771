//! `status {context}`: one context in full.

use super::Args;
use crate::context::Contexts;
use crate::reply::{internal, CommandError, ErrorKind};
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
        Ok(Status {
            context: args.context()?,
        })
    }

    /// Returns the context, or `context not found: NAME`.
    pub fn apply(self, contexts: &Contexts) -> Result<Value, CommandError> {
        match contexts.get(&self.context).map_err(internal)? {
            Some(ctx) => Ok(ctx.view()),
            None => Err(CommandError::new(
                ErrorKind::NotFound,
                format!("context not found: {}", self.context),
            )),
        }
    }
}
