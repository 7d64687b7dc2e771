//! `grant {tool}`: gives a tool its grant back. External tier: it needs the owner's approval.

use super::args::{req, Arg, Kind};
use super::{Args, Cmd, Fast, Run, Spec};
use crate::context::Contexts;
use crate::policy::tools::Tier;
use crate::reply::{internal, CommandError, Words};
use serde::Serialize;

/// `grant {tool}`
#[derive(Debug, Clone, PartialEq)]
pub struct Grant {
    /// The tool.
    pub tool: &'static Spec,
}

/// The argument of `grant` and `revoke`.
pub const TOOL: &[Arg] = &[req("tool", Kind::ToolName, "the tool's name")];

/// What `grant` and `revoke` answer.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct GrantChanged {
    /// `granted` or `revoked`.
    pub status: &'static str,
    /// The tool.
    pub tool: &'static str,
}

impl Words for GrantChanged {
    fn words(&self, cmd: &str) -> String {
        crate::words::fields_of(cmd, self)
    }
}

impl Cmd for Grant {
    const SPECS: &'static [Spec] = &[Spec::new(
        "grant",
        Tier::External,
        false,
        TOOL,
        "grant a tool (needs approval)",
    )];

    /// Only grantable tools are accepted.
    fn parse(_name: &str, args: &Args<'_>) -> Result<Grant, CommandError> {
        Ok(Grant {
            tool: args.grantable_tool()?,
        })
    }

    /// Records the grant.
    fn run(self, fast: &Fast<'_>) -> Result<Run, CommandError> {
        fast.grants.grant(&self.tool.tool).map_err(internal)?;
        Run::done(GrantChanged {
            status: "granted",
            tool: self.tool.name(),
        })
    }

    fn describe(&self, _contexts: &Contexts) -> String {
        format!(
            "grant the tool `{}` ({} tier): it will be allowed to run again",
            self.tool.name(),
            self.tool.tool.tier.as_str()
        )
    }
}
