//! Every tool the agent has, its risk tier, and whether grants apply to it.
//!
//! A command runs one tool; the tool's tier decides what the policy asks before it runs.

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

/// A tool's declaration.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct ToolSpec {
    /// Its name, which is also the command name.
    pub name: &'static str,
    /// Its tier.
    pub tier: Tier,
    /// False for the policy's own controls (help, approvals, approve, deny, grant, revoke,
    /// lockdown): they cannot be revoked, or the owner could lock themselves out.
    pub grantable: bool,
    /// The arguments it takes, for `help`.
    pub usage: &'static str,
    /// What it does, for `help`.
    pub summary: &'static str,
}

const fn tool(
    name: &'static str,
    tier: Tier,
    grantable: bool,
    usage: &'static str,
    summary: &'static str,
) -> ToolSpec {
    ToolSpec {
        name,
        tier,
        grantable,
        usage,
        summary,
    }
}

/// Every tool, in the order `help` lists them.
pub const TOOLS: &[ToolSpec] = &[
    tool("help", Tier::Read, false, "", "list the commands"),
    tool(
        "list",
        Tier::Read,
        true,
        "{refresh?}",
        "list the contexts; refresh reads the alias provider first",
    ),
    tool("status", Tier::Read, true, "{context}", "show one context"),
    tool("approvals", Tier::Read, false, "", "list pending approvals"),
    tool(
        "approve",
        Tier::Write,
        false,
        "{code}",
        "approve a pending action",
    ),
    tool(
        "deny",
        Tier::Write,
        false,
        "{code}",
        "deny a pending action (final)",
    ),
    tool(
        "audit",
        Tier::Read,
        true,
        "{since?, limit?, verify?}",
        "show audit entries; verify the hash chain",
    ),
    tool(
        "grant",
        Tier::External,
        false,
        "{tool}",
        "grant a tool (needs approval)",
    ),
    tool(
        "revoke",
        Tier::Write,
        false,
        "{tool}",
        "revoke a tool's grant",
    ),
    tool(
        "lockdown",
        Tier::Write,
        false,
        "",
        "revoke every non-read grant and deny pending approvals, at once",
    ),
    tool(
        "enroll",
        Tier::Write,
        true,
        "{url, alias?, card?: {limit}, identity?, note?, senders?, merchants?}",
        "make a context: alias, paused card, placeholder identity",
    ),
    tool(
        "alias.create",
        Tier::Write,
        true,
        "{context}",
        "make an alias for a context without one",
    ),
    tool(
        "alias.deactivate",
        Tier::Write,
        true,
        "{context}",
        "stop the alias forwarding",
    ),
    tool(
        "alias.activate",
        Tier::Write,
        true,
        "{context}",
        "let the alias forward again",
    ),
    tool(
        "card.pause",
        Tier::Write,
        true,
        "{context}",
        "pause the card",
    ),
    tool(
        "card.fund",
        Tier::External,
        true,
        "{context, limit}",
        "set the card's limit and open it (needs approval)",
    ),
    tool(
        "card.close",
        Tier::External,
        true,
        "{context}",
        "close the card for good (needs approval)",
    ),
    tool(
        "transactions",
        Tier::Read,
        true,
        "{context}",
        "the card's newest transactions",
    ),
    tool(
        "expire",
        Tier::External,
        true,
        "{context}",
        "burn the context: alias deleted, card closed (needs approval)",
    ),
    tool(
        "sweep",
        Tier::Write,
        true,
        "",
        "run the breach monitor over every source now",
    ),
    tool(
        "check-incidents",
        Tier::Read,
        true,
        "",
        "list breach incidents",
    ),
    tool(
        "incident.ack",
        Tier::Write,
        true,
        "{id}",
        "acknowledge an incident",
    ),
    tool(
        "trust",
        Tier::Write,
        false,
        "",
        "accept the owner's new Signal safety number (console only)",
    ),
    tool(
        "unlock",
        Tier::External,
        false,
        "",
        "end a lockdown: at the console at once (pane-agent unlock), from Signal with an approval",
    ),
    tool(
        "secrets.reload",
        Tier::Write,
        false,
        "",
        "read the command secrets again (console only)",
    ),
];

/// Looks a tool up by name.
pub fn find(name: &str) -> Option<&'static ToolSpec> {
    TOOLS.iter().find(|t| t.name == name)
}
