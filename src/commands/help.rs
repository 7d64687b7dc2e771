//! `help`: the commands, their tiers and arguments, and which tools are granted now.

use super::Args;
use crate::policy::grants::Grants;
use crate::policy::tools::TOOLS;
use crate::reply::{internal, CommandError};
use serde_json::{json, Value};

/// `help` takes no arguments.
#[derive(Debug, Clone, PartialEq)]
pub struct Help;

impl Help {
    /// Parses the (empty) arguments.
    pub fn parse(_args: &Args<'_>) -> Result<Help, CommandError> {
        Ok(Help)
    }

    /// Lists every command with its tier and whether it may run now.
    pub fn apply(self, grants: &Grants) -> Result<Value, CommandError> {
        let mut commands = Vec::new();
        for tool in TOOLS {
            let granted = grants.is_granted(tool).map_err(internal)?;
            commands.push(json!({
                "name": tool.name,
                "args": tool.usage(),
                "tier": tool.tier.as_str(),
                "granted": granted,
                "summary": tool.summary,
            }));
        }
        Ok(json!({
            "commands": commands,
            "envelope": "{\"ts\", \"cmd\", \"args\", \"sig\"}: sig = hex HMAC-SHA256(secret, ts + cmd + json.dumps(args, sort_keys=True))",
        }))
    }
}
