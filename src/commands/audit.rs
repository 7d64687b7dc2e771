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
    /// The owner's copy of the chain head `(seq, hash)` to compare with this store's chain.
    pub head: Option<(u64, String)>,
}

impl Audit {
    /// Parses the arguments.
    pub fn parse(args: &Args<'_>) -> Result<Audit, CommandError> {
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
            head: match args.0.get("head") {
                None | Some(Value::Null) => None,
                Some(Value::Object(h)) => {
                    let seq = h.get("seq").and_then(Value::as_u64);
                    let hash = h.get("hash").and_then(Value::as_str);
                    match (seq, hash) {
                        (Some(seq), Some(hash)) if hash.len() == 64 => Some((seq, hash.to_string())),
                        _ => return Err(invalid("head must be {\"seq\": N, \"hash\": \"<64 hex>\"} as the digest gave it")),
                    }
                }
                Some(_) => {
                    return Err(invalid("head must be {\"seq\": N, \"hash\": \"<64 hex>\"}"))
                }
            },
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
        let head = audit.head().map_err(internal)?;
        reply["head"] = match &head {
            Some((seq, hash)) => json!({"seq": seq, "hash": hash}),
            None => Value::Null,
        };
        if let Some((seq, hash)) = self.head {
            // The owner's copy must still be in this chain, and not ahead of its head.
            let ours = audit.hash_of(seq).map_err(internal)?;
            let ahead = head.as_ref().is_none_or(|(h, _)| seq > *h);
            let matches = !ahead && ours.as_deref().is_none_or(|h| h == hash);
            reply["head_check"] = json!({
                "matches": matches,
                "reason": if ahead {
                    "the owner's copy is ahead of this store's head: the store was rolled back"
                } else if !matches {
                    "the entry at that seq has another hash: the chain was rewritten"
                } else if ours.is_none() {
                    "that entry was pruned; the chain since then is consistent"
                } else {
                    "the owner's copy is in this chain"
                },
            });
        }
        Ok(reply)
    }
}
