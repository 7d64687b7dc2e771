//! `audit {since?, limit?, verify?}`: read the audit log and check its hash chain.

use super::args::{opt, Kind};
use super::{invalid, Args, Cmd, Fast, Run, Spec};
use crate::audit::{AuditEntry, VerifyReport};
use crate::policy::tools::Tier;
use crate::reply::{internal, CommandError, Words};
use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::Value;

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

/// What `audit` answers.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AuditOutput {
    /// How many entries.
    pub count: usize,
    /// The entries, oldest first.
    pub entries: Vec<AuditEntry>,
    /// The chain's verification, when asked.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub verify: Option<VerifyReport>,
    /// This store's chain head (null for an empty log).
    pub head: Option<ChainHead>,
    /// How the owner's copy of the head compares, when given.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub head_check: Option<HeadCheck>,
}

/// A point of the hash chain.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ChainHead {
    /// Its sequence number.
    pub seq: u64,
    /// Its hash.
    pub hash: String,
}

/// The owner's copy of the head, checked against this chain.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct HeadCheck {
    /// True when the copy is in this chain.
    pub matches: bool,
    /// Why, in words.
    pub reason: &'static str,
}

impl Words for AuditOutput {
    fn words(&self, cmd: &str) -> String {
        crate::words::fields_of(cmd, self)
    }
}

impl Cmd for Audit {
    const SPECS: &'static [Spec] = &[Spec::new(
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
    )];

    fn parse(_name: &str, args: &Args<'_>) -> Result<Audit, CommandError> {
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
    fn run(self, fast: &Fast<'_>) -> Result<Run, CommandError> {
        let audit = fast.audit;
        let entries = audit
            .recent(self.since, self.limit as usize)
            .map_err(internal)?;
        let verify = match self.verify {
            true => Some(audit.verify().map_err(internal)?),
            false => None,
        };
        let head = audit.head().map_err(internal)?;
        let head_check = match self.head {
            None => None,
            Some((seq, hash)) => {
                // The owner's copy must still be in this chain, and not ahead of its head.
                let ours = audit.hash_of(seq).map_err(internal)?;
                let ahead = head.as_ref().is_none_or(|(h, _)| seq > *h);
                let matches = !ahead && ours.as_deref().is_none_or(|h| h == hash);
                Some(HeadCheck {
                    matches,
                    reason: if ahead {
                        "the owner's copy is ahead of this store's head: the store was rolled back"
                    } else if !matches {
                        "the entry at that seq has another hash: the chain was rewritten"
                    } else if ours.is_none() {
                        "that entry was pruned; the chain since then is consistent"
                    } else {
                        "the owner's copy is in this chain"
                    },
                })
            }
        };
        Run::done(AuditOutput {
            count: entries.len(),
            entries,
            verify,
            head: head.map(|(seq, hash)| ChainHead { seq, hash }),
            head_check,
        })
    }
}
