//! `approve {code}`: the owner allows one pending action, which then runs once.

use super::args::{req, Arg, Kind};
use super::{invalid, Args, Cmd, Fast, Run, Spec};
use crate::policy::approvals::ApprovalCode;
use crate::policy::tools::Tier;
use crate::reply::{internal, CommandError, ErrorKind, Output, Reply, Words};
use serde::{Serialize, Serializer};

/// `approve {code}`
#[derive(Debug, Clone, PartialEq)]
pub struct Approve {
    /// The code typed (shown as its reference).
    pub code: ApprovalCode,
}

/// The argument of `approve` and `deny`.
pub const CODE: &[Arg] = &[req(
    "code",
    Kind::Code,
    "the approval code from the owner's phone",
)];

impl Cmd for Approve {
    const SPECS: &'static [Spec] = &[Spec::new(
        "approve",
        Tier::Write,
        false,
        CODE,
        "approve a pending action",
    )];

    fn parse(_name: &str, args: &Args<'_>) -> Result<Approve, CommandError> {
        Ok(Approve {
            code: parse_code(args)?,
        })
    }

    /// The gate settles an approval itself (it holds the approval's command and its
    /// waiter) before anything runs; it never reaches here.
    fn run(self, _fast: &Fast<'_>) -> Result<Run, CommandError> {
        Err(internal("approve is settled before it reaches execute"))
    }
}

/// What an `approve` answers once the action ran: the approval, and the action's own result.
#[derive(Debug)]
pub struct Approved {
    /// The approval's code (as the store names it).
    pub code: ApprovalCode,
    /// The command it ran.
    pub action: String,
    /// What the command answered.
    pub result: Result<Box<dyn Output>, CommandError>,
}

impl Serialize for Approved {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        /// `{"status": "approved", "code", "action", "result"}`.
        #[derive(Serialize)]
        struct Shown<'a> {
            status: &'static str,
            code: &'a ApprovalCode,
            action: &'a str,
            result: serde_json::Value,
        }
        let result = match &self.result {
            Ok(out) => out.json(),
            // The action's error reply, as it would have answered on its own.
            Err(e) => Reply::Err(e.clone()).to_json(),
        };
        Shown {
            status: "approved",
            code: &self.code,
            action: &self.action,
            result,
        }
        .serialize(s)
    }
}

impl Words for Approved {
    /// The approval in a sentence, then what the action answered, in its own words.
    fn words(&self, _cmd: &str) -> String {
        let action = if self.action.is_empty() {
            "the action"
        } else {
            &self.action
        };
        let outcome = match &self.result {
            Ok(out) => out.words(action),
            Err(e) => format!("✗ {action}: {}", crate::words::lines::single(&e.message)),
        };
        format!("✓ Approved: {action} ran.\n{outcome}")
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::commands::unlock::Unlocked;

    #[test]
    fn an_approval_names_the_action_and_its_result() {
        let code = ApprovalCode::parse("ABCDE-FGHJK").unwrap();
        let ran = Approved {
            code: code.clone(),
            action: "unlock".into(),
            result: Ok(Box::new(Unlocked::ended())),
        };
        let text = Words::words(&ran, "approve");
        assert_eq!(
            text,
            "✓ Approved: unlock ran.\n✓ unlock: unlocked\nnote: tools stay revoked until granted again"
        );
        assert_eq!(ran.json()["result"]["status"], "unlocked");
        let failed = Approved {
            code,
            action: "expire".into(),
            result: Err(CommandError::new(ErrorKind::Unavailable, "provider down")),
        };
        let text = Words::words(&failed, "approve");
        assert!(text.ends_with("✗ expire: provider down"), "{text}");
        assert_eq!(failed.json()["result"]["kind"], "unavailable");
    }
}
