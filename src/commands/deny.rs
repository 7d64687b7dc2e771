//! `deny {code}`: the owner refuses a pending action. Final: nothing retries it.

use super::approve::{parse_code, CODE};
use super::{Args, Cmd, Fast, Run, Spec};
use crate::policy::approvals::ApprovalCode;
use crate::policy::tools::Tier;
use crate::reply::{internal, CommandError, Words};
use serde::Serialize;

/// `deny {code}`
#[derive(Debug, Clone, PartialEq)]
pub struct Deny {
    /// The code typed (shown as its reference).
    pub code: ApprovalCode,
}

/// What a `deny` answers.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Denied {
    /// Always `denied`.
    pub status: &'static str,
    /// The approval's code (as the store names it).
    pub code: ApprovalCode,
    /// The command that will not run.
    pub action: String,
    /// That denial is final.
    pub note: &'static str,
}

impl Denied {
    /// The denial of `action`, approval `code`.
    pub fn new(code: ApprovalCode, action: String) -> Denied {
        Denied {
            status: "denied",
            code,
            action,
            note: "denial is final; send a new command to ask again",
        }
    }
}

impl Words for Denied {
    fn words(&self, _cmd: &str) -> String {
        format!(
            "✓ Denied: {} will not run (denial is final; send the command again to ask anew).",
            crate::words::lines::single(&self.action)
        )
    }
}

impl Cmd for Deny {
    const SPECS: &'static [Spec] = &[Spec::new(
        "deny",
        Tier::Write,
        false,
        CODE,
        "deny a pending action (final)",
    )];

    fn parse(_name: &str, args: &Args<'_>) -> Result<Deny, CommandError> {
        Ok(Deny {
            code: parse_code(args)?,
        })
    }

    /// The gate settles a denial itself, before anything runs; it never reaches here.
    fn run(self, _fast: &Fast<'_>) -> Result<Run, CommandError> {
        Err(internal("deny is settled before it reaches execute"))
    }
}
