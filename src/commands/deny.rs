//! `deny {code}`: the owner refuses a pending action. Final: nothing retries it.

use super::approve::parse_code;
use super::Args;
use crate::reply::CommandError;

/// `deny {code}`
#[derive(Debug, Clone, PartialEq)]
pub struct Deny {
    /// The code typed (shown as its reference).
    pub code: crate::policy::approvals::ApprovalCode,
}

impl Deny {
    /// Parses `{code}`.
    pub fn parse(args: &Args<'_>) -> Result<Deny, CommandError> {
        Ok(Deny {
            code: parse_code(args)?,
        })
    }
}
