//! `revoke {tool}`: takes a tool's grant away, at once.

use super::grant::{GrantChanged, TOOL};
use super::{Args, Cmd, Fast, Run, Spec};
use crate::policy::tools::Tier;
use crate::reply::{internal, CommandError};

/// `revoke {tool}`
#[derive(Debug, Clone, PartialEq)]
pub struct Revoke {
    /// The tool.
    pub tool: &'static Spec,
}

impl Cmd for Revoke {
    const SPECS: &'static [Spec] = &[Spec::new(
        "revoke",
        Tier::Write,
        false,
        TOOL,
        "revoke a tool's grant",
    )];

    /// Only grantable tools are accepted.
    fn parse(_name: &str, args: &Args<'_>) -> Result<Revoke, CommandError> {
        Ok(Revoke {
            tool: args.grantable_tool()?,
        })
    }

    /// Records the revocation.
    fn run(self, fast: &Fast<'_>) -> Result<Run, CommandError> {
        fast.grants.revoke(&self.tool.tool).map_err(internal)?;
        Run::done(GrantChanged {
            status: "revoked",
            tool: self.tool.name(),
        })
    }
}
