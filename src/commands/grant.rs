//! `grant {tool}`: gives a tool its grant back. External tier: it needs the owner's approval.

use super::Args;
use crate::actors::agent::Core;
use crate::policy::tools::ToolSpec;
use crate::reply::CommandError;
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
        args.only(&["tool"])?;
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
    pub fn execute(self, core: &mut Core) -> Result<Value, CommandError> {
        core.policy
            .grants
            .grant(self.tool)
            .map_err(|e| core.internal(e))?;
        Ok(json!({"status": "granted", "tool": self.tool.name}))
    }
}
