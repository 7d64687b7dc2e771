//! `audit {since?, limit?, verify?}`: read the audit log and check its hash chain.

use super::{invalid, Args};
use crate::audit::AuditLog;
use crate::reply::{internal, CommandError};
use chrono::{DateTime, Utc};
use serde_json::{json, Value};

/// The most entries one reply carries.
pub const MAX_LIMIT: u64 = 1000;

/// `audit {since?, limit?, verify?}`
#[derive(Debug, Clone, PartialEq)]
pub struct Audit {
    /// Only entries at or after this time.
    pub since: Option<DateTime<Utc>>,
    /// At most this many (the newest), default 50.
    pub limit: u64,
    /// Also verify the whole chain.
    pub verify: bool,
}

impl Audit {
    /// Parses the arguments.
    pub fn parse(args: &Args<'_>) -> Result<Audit, CommandError> {
        args.only(&["since", "limit", "verify"])?;
        let since = match args.opt_string("since")? {
            None => None,
            Some(s) => Some(
                DateTime::parse_from_rfc3339(&s)
                    .map_err(|_| {
                        invalid("since must be an RFC 3339 time such as 2026-11-22T10:00:00Z")
                    })?
                    .with_timezone(&Utc),
            ),
        };
        let limit = args.opt_u64("limit")?.unwrap_or(50);
        if limit == 0 || limit > MAX_LIMIT {
            return Err(invalid(format!("limit must be between 1 and {MAX_LIMIT}")));
        }
        Ok(Audit {
            since,
            limit,
            verify: args.opt_bool("verify")?.unwrap_or(false),
        })
    }

    /// Returns the entries, and the verification report when asked.
    pub fn apply(self, audit: &AuditLog) -> Result<Value, CommandError> {
        let entries = audit
            .recent(self.since, self.limit as usize)
            .map_err(internal)?;
        let mut reply = json!({"count": entries.len(), "entries": entries});
        if self.verify {
            let report = audit.verify().map_err(internal)?;
            reply["verify"] = serde_json::to_value(report).map_err(internal)?;
        }
        Ok(reply)
    }
}
