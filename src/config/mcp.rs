//! `[mcp]`: what the MCP key (`pane-agent mcp-key`) may do, and how often.
//!
//! The scope can only narrow what the key may do: whatever it lists, the policy's own
//! controls (approve, deny, grant, revoke, unlock, trust, secrets.reload, lockdown) are never
//! the MCP key's (`policy::mcp::NEVER`), and external tools only ever open an approval that
//! the owner answers on their phone.

use super::{ConfigError, Limit};
use serde::Deserialize;

/// `[mcp]`
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct McpConfig {
    /// The commands the MCP key may send.
    pub tools: McpScope,
    /// Its own rate limits, apart from every other channel's.
    pub rate_limits: McpRateLimits,
}

/// `[mcp] tools`: `"default"` (every read and write tool, and the external ones as approval
/// requests, none of the policy's own controls), or a list of command names.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(try_from = "RawScope")]
pub enum McpScope {
    /// The default scope.
    #[default]
    Default,
    /// Exactly these commands (by their command names, `card.fund`, `check-incidents`).
    Only(Vec<String>),
}

#[derive(Deserialize)]
#[serde(untagged)]
enum RawScope {
    Word(String),
    List(Vec<String>),
}

impl TryFrom<RawScope> for McpScope {
    type Error = String;

    fn try_from(raw: RawScope) -> Result<McpScope, String> {
        match raw {
            RawScope::Word(w) if w == "default" => Ok(McpScope::Default),
            RawScope::Word(w) => Err(format!(
                "[mcp] tools is \"default\" or a list of command names, not {w:?}"
            )),
            RawScope::List(names) => Ok(McpScope::Only(names)),
        }
    }
}

/// `[mcp.rate_limits]`: sliding windows for the MCP key alone, so a model in a loop uses up
/// its own budget and never the owner's.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct McpRateLimits {
    /// For each read tool.
    pub read: Limit,
    /// For each write tool.
    pub write: Limit,
    /// For each external tool (each use opens an approval request).
    pub external: Limit,
    /// Envelopes signed with the MCP key, before anything of them is written.
    pub envelopes: Limit,
}

impl Default for McpRateLimits {
    fn default() -> Self {
        McpRateLimits {
            read: Limit {
                max: 60,
                window_secs: 60,
            },
            write: Limit {
                max: 10,
                window_secs: 60,
            },
            external: Limit {
                max: 3,
                window_secs: 60,
            },
            envelopes: Limit {
                max: 120,
                window_secs: 60,
            },
        }
    }
}

impl McpRateLimits {
    /// Every window must be between 1 s and a day.
    pub fn validate(&self) -> Result<(), ConfigError> {
        for (name, limit) in [
            ("read", &self.read),
            ("write", &self.write),
            ("external", &self.external),
            ("envelopes", &self.envelopes),
        ] {
            if limit.window_secs == 0 || limit.window_secs > 86_400 {
                return Err(ConfigError::Invalid(format!(
                    "[mcp.rate_limits] {name}: window_secs must be between 1 and 86400"
                )));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::super::Config;
    use super::*;

    #[test]
    fn scope_is_default_or_a_list() {
        let c = Config::parse("[mcp]\ntools = \"default\"\n", "t").unwrap();
        assert_eq!(c.mcp.tools, McpScope::Default);
        let c = Config::parse("[mcp]\ntools = [\"list\", \"status\"]\n", "t").unwrap();
        assert_eq!(
            c.mcp.tools,
            McpScope::Only(vec!["list".into(), "status".into()])
        );
        assert!(Config::parse("[mcp]\ntools = \"all\"\n", "t").is_err());
        assert!(Config::parse("[mcp]\ntool = []\n", "t").is_err());
        let zero = "[mcp.rate_limits]\nread = { max = 1, window_secs = 0 }\n";
        assert!(Config::parse(zero, "t").is_err());
    }
}
