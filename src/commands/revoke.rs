//! `revoke {tool}`: takes a tool's grant away, at once.

use super::Args;
use crate::policy::grants::Grants;
use crate::policy::tools::ToolSpec;
use crate::reply::{internal, CommandError};
use serde_json::{json, Value};

/// `revoke {tool}`
#[derive(Debug, Clone, PartialEq)]
pub struct Revoke {
    /// The tool.
    pub tool: &'static ToolSpec,
}

impl Revoke {
    /// Parses `{tool}`; only grantable tools are accepted.
    pub fn parse(args: &Args<'_>) -> Result<Revoke, CommandError> {
        Ok(Revoke {
            tool: args.grantable_tool()?,
        })
    }

    /// Records the revocation.
    pub fn apply(self, grants: &Grants) -> Result<Value, CommandError> {
        grants.revoke(self.tool).map_err(internal)?;
        Ok(json!({"status": "revoked", "tool": self.tool.name}))
    }
}
