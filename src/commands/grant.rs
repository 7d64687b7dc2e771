//! `grant {tool}`: gives a tool its grant back. External tier: it needs the owner's approval.

use super::Args;
use crate::policy::grants::Grants;
use crate::policy::tools::ToolSpec;
use crate::reply::{internal, CommandError};
use serde_json::{json, Value};

/// `grant {tool}`
#[derive(Debug, Clone, PartialEq)]
pub struct Grant {
    /// The tool.
    pub tool: &'static ToolSpec,
}

impl Grant {
    /// Parses `{tool}`; only grantable tools are accepted.
    pub fn parse(args: &Args<'_>) -> Result<Grant, CommandError> {
        Ok(Grant {
            tool: args.grantable_tool()?,
        })
    }

    /// The approval prompt's words.
    pub fn describe(&self) -> String {
        format!(
            "grant the tool `{}` ({} tier): it will be allowed to run again",
            self.tool.name,
            self.tool.tier.as_str()
        )
    }

    /// Records the grant.
    pub fn apply(self, grants: &Grants) -> Result<Value, CommandError> {
        grants.grant(self.tool).map_err(internal)?;
        Ok(json!({"status": "granted", "tool": self.tool.name}))
    }
}
