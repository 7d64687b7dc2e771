//! What the MCP key may do. A model that holds it can read and change the agent's own state
//! within `[mcp] tools` and ask for external actions, which only the owner can approve, on
//! their phone. It can never touch the policy itself: the tools in [`NEVER`] are refused to
//! it whatever the config says, so no text a model reads (a mail subject, a provider's
//! message) can talk it into approving, granting or unlocking anything.

use super::tools::{Tier, ToolSpec};
use crate::config::McpScope;
use crate::reply::{CommandError, ErrorKind};

/// The policy's own controls and the console's commands: never the MCP key's. `audit` is not
/// here: in phone-only mode it names approvals by reference only.
pub const NEVER: &[&str] = &[
    "approve",
    "deny",
    "grant",
    "revoke",
    "unlock",
    "lockdown",
    "seal",
    "trust",
    "secrets.reload",
    "signal.challenge",
];

/// `request.status`: the MCP key's own command, always in its scope.
pub const REQUEST_STATUS: &str = "request.status";

/// True when the MCP key may send `tool` under `scope`.
pub fn in_scope(tool: &ToolSpec, scope: &McpScope) -> bool {
    if NEVER.contains(&tool.name) {
        return false;
    }
    if tool.name == REQUEST_STATUS {
        return true;
    }
    match scope {
        McpScope::Default => matches!(tool.tier, Tier::Read | Tier::Write | Tier::External),
        McpScope::Only(names) => names.iter().any(|n| n == tool.name),
    }
}

/// Refuses `tool` to the MCP key unless it is in `scope`; the refusal says why.
pub fn admit(tool: &ToolSpec, scope: &McpScope) -> Result<(), CommandError> {
    if NEVER.contains(&tool.name) {
        return Err(CommandError::new(
            ErrorKind::NotGranted,
            format!(
                "{} is never available to the MCP key: approvals are answered only by the owner, on their phone, and their codes are never shown to the MCP key; grants, revokes, lockdown, seal, unlock and Signal's captchas belong to the owner too",
                tool.name
            ),
        ));
    }
    if !in_scope(tool, scope) {
        return Err(CommandError::new(
            ErrorKind::NotGranted,
            format!("{} is not in the MCP key's scope ([mcp] tools)", tool.name),
        ));
    }
    Ok(())
}

/// Checks `[mcp] tools`: every name must be a command, and none of [`NEVER`].
pub fn check_scope(scope: &McpScope, is_command: impl Fn(&str) -> bool) -> Result<(), String> {
    let McpScope::Only(names) = scope else {
        return Ok(());
    };
    for name in names {
        if !is_command(name) {
            return Err(format!("[mcp] tools: no such command {name:?}"));
        }
        if NEVER.contains(&name.as_str()) {
            return Err(format!(
                "[mcp] tools: {name} is one of the policy's own controls and is never the MCP key's"
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::commands::{find, specs};

    fn known(name: &str) -> bool {
        find(name).is_some()
    }

    #[test]
    fn the_policy_controls_are_never_in_scope() {
        // Even a scope that names them (one that bypassed check_scope) does not admit them.
        let all: Vec<String> = specs().map(|t| t.name().to_string()).collect();
        let scope = McpScope::Only(all);
        for name in NEVER {
            let tool = &find(name).unwrap().tool;
            let e = admit(tool, &scope).unwrap_err();
            assert_eq!(e.kind, ErrorKind::NotGranted);
            assert!(e.message.contains("owner, on their phone"), "{e:?}");
            assert!(admit(tool, &McpScope::Default).is_err());
        }
        assert!(check_scope(&McpScope::Only(vec!["approve".into()]), known).is_err());
        assert!(check_scope(&McpScope::Only(vec!["nope".into()]), known).is_err());
        assert!(check_scope(&McpScope::Only(vec!["card.fund".into()]), known).is_ok());
    }

    #[test]
    fn the_default_scope_has_reads_writes_and_externals() {
        let in_default = |scope: &McpScope| -> Vec<&str> {
            specs()
                .filter(|t| in_scope(&t.tool, scope))
                .map(|t| t.name())
                .collect()
        };
        let names = in_default(&McpScope::Default);
        for name in [
            "list",
            "status",
            "enroll",
            "check-incidents",
            "expire",
            "card.fund",
        ] {
            assert!(names.contains(&name), "{name}");
        }
        assert!(names.contains(&REQUEST_STATUS));
        let only = McpScope::Only(vec!["list".into()]);
        assert_eq!(in_default(&only), ["list", REQUEST_STATUS]);
    }
}
