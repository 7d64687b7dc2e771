//! A tool's risk tier, and what the policy knows of a tool: its name, tier and whether grants
//! apply to it. Every command declares these in its own file (`commands`); the policy is
//! handed them, so it never needs the list of commands.

use serde::Serialize;

/// How much a tool can do, which decides what the policy requires.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Tier {
    /// Reads state: auto-approved once granted.
    Read,
    /// Changes the agent's own state: policy-checked (grant and rate limit).
    Write,
    /// Reaches outside (providers, money) or destroys something: needs the owner's approval.
    External,
}

impl Tier {
    /// The lowercase name.
    pub fn as_str(self) -> &'static str {
        match self {
            Tier::Read => "read",
            Tier::Write => "write",
            Tier::External => "external",
        }
    }
}

/// What the policy judges a command by: its name, tier and whether grants apply. Each
/// command declares its own in its file (`commands::Spec`), with its arguments and summary.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ToolSpec {
    /// Its name, which is also the command name.
    pub name: &'static str,
    /// Its tier.
    pub tier: Tier,
    /// False for the policy's own controls (help, approvals, approve, deny, grant, revoke,
    /// lockdown): they cannot be revoked, or the owner could lock themselves out.
    pub grantable: bool,
}
