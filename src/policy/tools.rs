//! Every tool the agent has, its risk tier, and whether grants apply to it.
//!
//! A command runs one tool; the tool's tier decides what the policy asks before it runs.

use super::args::{opt, req, Arg, Kind, CONTEXT};
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
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ToolSpec {
    /// Its name, which is also the command name.
    pub name: &'static str,
    /// Its tier.
    pub tier: Tier,
    /// False for the policy's own controls (help, approvals, approve, deny, grant, revoke,
    /// lockdown): they cannot be revoked, or the owner could lock themselves out.
    pub grantable: bool,
    /// The arguments it takes: the parser, `help` and the MCP schemas all read them.
    pub args: &'static [Arg],
    /// What it does, for `help`.
    pub summary: &'static str,
}

impl ToolSpec {
    /// The arguments as `help` shows them (`{context, limit}`).
    pub fn usage(&self) -> String {
        super::args::usage(self.args)
    }
}

const fn tool(
    name: &'static str,
    tier: Tier,
    grantable: bool,
    args: &'static [Arg],
    summary: &'static str,
) -> ToolSpec {
    ToolSpec {
        name,
        tier,
        grantable,
        args,
        summary,
    }
}

const NONE: &[Arg] = &[];
const CONTEXT_ONLY: &[Arg] = &[CONTEXT];
const CODE: &[Arg] = &[req(
    "code",
    Kind::Code,
    "the approval code from the owner's phone",
)];
const TOOL: &[Arg] = &[req("tool", Kind::ToolName, "the tool's name")];

/// Every tool, in the order `help` lists them.
pub const TOOLS: &[ToolSpec] = &[
    tool("help", Tier::Read, false, NONE, "list the commands"),
    tool(
        "list",
        Tier::Read,
        true,
        &[
            opt(
                "refresh",
                Kind::Flag,
                "read every alias from the provider first",
            ),
            opt(
                "after",
                Kind::Context,
                "only the contexts named after this one (the next page of a long list)",
            ),
        ],
        "list the contexts (after: those named after it); refresh reads the alias provider first",
    ),
    tool("status", Tier::Read, true, CONTEXT_ONLY, "show one context"),
    tool(
        "approvals",
        Tier::Read,
        false,
        NONE,
        "list pending approvals",
    ),
    tool(
        "approve",
        Tier::Write,
        false,
        CODE,
        "approve a pending action",
    ),
    tool(
        "deny",
        Tier::Write,
        false,
        CODE,
        "deny a pending action (final)",
    ),
    tool(
        "audit",
        Tier::Read,
        true,
        &[
            opt("since", Kind::Time, "only entries since this RFC 3339 time"),
            opt(
                "limit",
                Kind::Count { min: 1, max: 1000 },
                "the newest this many entries (50)",
            ),
            opt("verify", Kind::Flag, "also check the hash chain"),
            opt(
                "head",
                Kind::ChainHead,
                "the owner's copy of the chain head, to check against",
            ),
        ],
        "show audit entries; verify the hash chain",
    ),
    tool(
        "grant",
        Tier::External,
        false,
        TOOL,
        "grant a tool (needs approval)",
    ),
    tool("revoke", Tier::Write, false, TOOL, "revoke a tool's grant"),
    tool(
        "lockdown",
        Tier::Write,
        false,
        NONE,
        "revoke every non-read grant and deny pending approvals, at once",
    ),
    tool(
        "enroll",
        Tier::Write,
        true,
        &[
            req("url", Kind::Url, "the site, such as https://www.notion.so"),
            opt(
                "alias",
                Kind::Context,
                "the context's name (default: after the site's domain)",
            ),
            opt(
                "card",
                Kind::Card,
                "{limit} for a card with that spend limit (default 0), false for none",
            ),
            opt(
                "identity",
                Kind::Choice(&["placeholder", "none"]),
                "a placeholder identity (default) or none",
            ),
            opt(
                "note",
                Kind::Text { max: 500 },
                "a note kept with the context",
            ),
            opt(
                "senders",
                Kind::Domains,
                "other domains that may mail the alias for this site",
            ),
            opt(
                "merchants",
                Kind::Descriptors,
                "other card descriptors that are this site's own charges",
            ),
        ],
        "make a context: alias, paused card, placeholder identity",
    ),
    tool(
        "alias.create",
        Tier::Write,
        true,
        CONTEXT_ONLY,
        "make an alias for a context without one",
    ),
    tool(
        "alias.deactivate",
        Tier::Write,
        true,
        CONTEXT_ONLY,
        "stop the alias forwarding",
    ),
    tool(
        "alias.activate",
        Tier::Write,
        true,
        CONTEXT_ONLY,
        "let the alias forward again",
    ),
    tool(
        "card.pause",
        Tier::Write,
        true,
        CONTEXT_ONLY,
        "pause the card",
    ),
    tool(
        "card.fund",
        Tier::External,
        true,
        &[
            CONTEXT,
            req(
                "limit",
                Kind::Amount,
                "the spend limit, such as 25 or 25.50",
            ),
        ],
        "set the card's limit and open it (needs approval)",
    ),
    tool(
        "card.close",
        Tier::External,
        true,
        CONTEXT_ONLY,
        "close the card for good (needs approval)",
    ),
    tool(
        "transactions",
        Tier::Read,
        true,
        CONTEXT_ONLY,
        "the card's newest transactions",
    ),
    tool(
        "expire",
        Tier::External,
        true,
        CONTEXT_ONLY,
        "burn the context: alias deleted, card closed (needs approval)",
    ),
    tool(
        "sweep",
        Tier::Write,
        true,
        NONE,
        "run the breach monitor over every source now",
    ),
    tool(
        "check-incidents",
        Tier::Read,
        true,
        NONE,
        "list breach incidents",
    ),
    tool(
        "incident.ack",
        Tier::Write,
        true,
        &[req(
            "id",
            Kind::IncidentId,
            "the incident's id, as check-incidents gives it",
        )],
        "acknowledge an incident",
    ),
    tool(
        "trust",
        Tier::Write,
        false,
        NONE,
        "accept the owner's new Signal safety number (console only)",
    ),
    tool(
        "unlock",
        Tier::External,
        false,
        NONE,
        "end a lockdown: at the console at once (pane-agent unlock), from Signal with an approval",
    ),
    tool(
        "secrets.reload",
        Tier::Write,
        false,
        NONE,
        "read the command secrets again (console only)",
    ),
    tool(
        "request.status",
        Tier::Read,
        false,
        &[req(
            "request_id",
            Kind::RequestId,
            "the request id an approval request gave",
        )],
        "where an approval the MCP key asked for stands, and the action's result (MCP key only)",
    ),
];

/// Looks a tool up by name.
pub fn find(name: &str) -> Option<&'static ToolSpec> {
    TOOLS.iter().find(|t| t.name == name)
}
