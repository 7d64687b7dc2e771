//! `approve {code}`: the owner allows one pending action, which then runs once.

use super::{invalid, Args};
use crate::policy::approvals::ApprovalCode;
use crate::reply::{CommandError, ErrorKind};

/// `approve {code}`
#[derive(Debug, Clone, PartialEq)]
pub struct Approve {
    /// The code typed (shown as its reference).
    pub code: ApprovalCode,
}

impl Approve {
    /// Parses `{code}`.
    pub fn parse(args: &Args<'_>) -> Result<Approve, CommandError> {
        Ok(Approve {
            code: parse_code(args)?,
        })
    }
}

/// Reads and normalises the `code` argument.
pub fn parse_code(args: &Args<'_>) -> Result<ApprovalCode, CommandError> {
    let typed = args.string("code")?;
    ApprovalCode::parse(&typed).ok_or_else(|| invalid("code must look like ABCDE-FGHJK"))
}

/// The refusal for a code that was already used or settled.
pub fn used_code() -> CommandError {
    CommandError::new(
        ErrorKind::ApprovalInvalid,
        "approval code is no longer pending: a code works once",
    )
}
