//! Pending approvals: one-time codes bound to one exact command, settled by the owner.
//!
//! A code is 10 characters from a 31-letter alphabet with no look-alikes (about 49 bits),
//! shown as `ABCDE-FGHJK` and accepted in any case, with or without the dash. It is bound to
//! the SHA-256 of the command and its canonical arguments; it works once; a denial (or the
//! timeout, which is a denial) is final.
//!
//! A code is an [`ApprovalCode`] ([`crate::approval_code`]): it prints, debugs and serialises
//! as its reference, never as the code.

pub use crate::approval_code::{is_reference, ApprovalCode, CODE_ALPHABET, CODE_LEN};
use crate::auth::canonical::python_dumps;
use crate::store::{decode, encode, Store, StoreError, Table, TableId};
use chrono::{DateTime, SecondsFormat, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

/// Where an approval stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ApprovalState {
    /// Waiting for the owner.
    Pending,
    /// Approved; the action ran (its result is recorded).
    Approved,
    /// Denied by the owner or by lockdown.
    Denied,
    /// Not answered in time: denied.
    Expired,
}

/// One approval. It is not `Serialize`: the store writes it through a record of its own, so
/// that nothing else can turn it, code included, into JSON.
#[derive(Debug, Clone, PartialEq)]
pub struct Approval {
    /// The code.
    pub code: ApprovalCode,
    /// The command it approves.
    pub cmd: String,
    /// Its exact arguments.
    pub args: Map<String, Value>,
    /// SHA-256 of `cmd` and the canonical arguments: the binding checked at approval.
    pub binding: String,
    /// What will happen, in words, as the prompt says it (outside text in it escaped).
    pub summary: String,
    /// The channel the command came in on.
    pub channel: String,
    /// When it was asked for (RFC 3339).
    pub created: String,
    /// When it is denied if unanswered (Unix seconds); survives restarts unchanged.
    pub deadline: i64,
    /// Where it stands.
    pub state: ApprovalState,
    /// When it was settled.
    pub settled_at: Option<String>,
    /// The action's reply, once approved and run.
    pub result: Option<Value>,
}

/// An approval as the store keeps it (the code in clear: the store is the agent's own).
#[derive(Serialize, Deserialize)]
struct Record {
    code: String,
    cmd: String,
    args: Map<String, Value>,
    binding: String,
    summary: String,
    channel: String,
    created: String,
    deadline: i64,
    state: ApprovalState,
    settled_at: Option<String>,
    result: Option<Value>,
}

impl Record {
    fn of(a: &Approval) -> Record {
        Record {
            code: String::from_utf8_lossy(a.code.store_key()).into_owned(),
            cmd: a.cmd.clone(),
            args: a.args.clone(),
            binding: a.binding.clone(),
            summary: a.summary.clone(),
            channel: a.channel.clone(),
            created: a.created.clone(),
            deadline: a.deadline,
            state: a.state,
            settled_at: a.settled_at.clone(),
            result: a.result.clone(),
        }
    }

    fn into_approval(self) -> Result<Approval, StoreError> {
        let code = ApprovalCode::parse(&self.code)
            .ok_or_else(|| StoreError::Corrupt("an approval record without a code".into()))?;
        Ok(Approval {
            code,
            cmd: self.cmd,
            args: self.args,
            binding: self.binding,
            summary: self.summary,
            channel: self.channel,
            created: self.created,
            deadline: self.deadline,
            state: self.state,
            settled_at: self.settled_at,
            result: self.result,
        })
    }
}

fn encode_approval(a: &Approval) -> Result<Vec<u8>, StoreError> {
    encode(&Record::of(a))
}

fn decode_approval(bytes: &[u8]) -> Result<Approval, StoreError> {
    decode::<Record>(bytes)?.into_approval()
}

impl Approval {
    /// The approval's reference (`a-` and ten hex digits), which names it everywhere the
    /// code may not go.
    pub fn reference(&self) -> String {
        self.code.reference()
    }

    /// The deadline as RFC 3339.
    pub fn deadline_rfc3339(&self) -> String {
        DateTime::<Utc>::from_timestamp(self.deadline, 0)
            .unwrap_or_default()
            .to_rfc3339_opts(SecondsFormat::Secs, true)
    }

    /// True when `cmd` and `args` are exactly what this approval was made for.
    pub fn binds(&self, cmd: &str, args: &Map<String, Value>) -> bool {
        self.binding == binding(cmd, args)
    }
}

fn binding(cmd: &str, args: &Map<String, Value>) -> String {
    let mut h = Sha256::new();
    h.update(cmd.as_bytes());
    h.update(b"\n");
    h.update(python_dumps(&Value::Object(args.clone())).as_bytes());
    hex::encode(h.finalize())
}

/// A failure to make a code.
#[derive(Debug, thiserror::Error)]
pub enum ApprovalError {
    /// The operating system's random source failed.
    #[error("no randomness for an approval code: {0}")]
    Random(String),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

fn new_code() -> Result<ApprovalCode, ApprovalError> {
    ApprovalCode::random().map_err(|e| ApprovalError::Random(e.to_string()))
}

/// The approvals tree.
#[derive(Clone)]
pub struct Approvals {
    tree: Table,
}

impl Approvals {
    /// Uses the store's `approvals` tree.
    pub fn new(store: &Store) -> Approvals {
        Approvals {
            tree: store.table(TableId::Approvals),
        }
    }

    /// Opens a pending approval for `cmd` with `args`, due at `now + timeout_secs`.
    pub fn create(
        &self,
        cmd: &str,
        args: &Map<String, Value>,
        summary: &str,
        channel: &str,
        now: DateTime<Utc>,
        timeout_secs: u64,
    ) -> Result<Approval, ApprovalError> {
        loop {
            let code = new_code()?;
            let approval = Approval {
                code: code.clone(),
                cmd: cmd.to_string(),
                args: args.clone(),
                binding: binding(cmd, args),
                summary: summary.to_string(),
                channel: channel.to_string(),
                created: now.to_rfc3339_opts(SecondsFormat::Secs, true),
                deadline: now.timestamp() + timeout_secs as i64,
                state: ApprovalState::Pending,
                settled_at: None,
                result: None,
            };
            let bytes = encode_approval(&approval)?;
            let inserted =
                self.tree
                    .compare_and_swap(code.store_key(), None, Some(bytes.as_slice()))?;
            if inserted {
                return Ok(approval);
            }
        }
    }

    /// The approval with this code.
    pub fn get(&self, code: &ApprovalCode) -> Result<Option<Approval>, StoreError> {
        self.tree
            .get(code.store_key())?
            .map(|b| decode_approval(&b))
            .transpose()
    }

    /// Moves a pending approval to `state`; returns the updated record, or None if it was
    /// not pending (already settled by someone else).
    pub fn settle(
        &self,
        code: &ApprovalCode,
        state: ApprovalState,
        now: DateTime<Utc>,
        result: Option<Value>,
    ) -> Result<Option<Approval>, StoreError> {
        let Some(old_bytes) = self.tree.get(code.store_key())? else {
            return Ok(None);
        };
        let mut approval = decode_approval(&old_bytes)?;
        if approval.state != ApprovalState::Pending {
            return Ok(None);
        }
        approval.state = state;
        approval.settled_at = Some(now.to_rfc3339_opts(SecondsFormat::Secs, true));
        approval.result = result;
        let swapped = self.tree.compare_and_swap(
            code.store_key(),
            Some(&old_bytes),
            Some(encode_approval(&approval)?.as_slice()),
        )?;
        Ok(swapped.then_some(approval))
    }

    /// Records the result of an approved action.
    pub fn record_result(&self, code: &ApprovalCode, result: Value) -> Result<(), StoreError> {
        if let Some(mut approval) = self.get(code)? {
            approval.result = Some(result);
            self.tree
                .insert(code.store_key(), encode_approval(&approval)?)?;
        }
        Ok(())
    }

    /// Approvals that were approved and whose action has no recorded result, oldest first:
    /// the approval was spent but a crash cut its action off. The approved state is the
    /// action's durable job record; the gate resumes these at start.
    pub fn unfinished(&self) -> Result<Vec<Approval>, StoreError> {
        let mut out: Vec<Approval> = Vec::new();
        for item in self.tree.iter() {
            let (_, bytes) = item?;
            let a = decode_approval(&bytes)?;
            if a.state == ApprovalState::Approved && a.result.is_none() {
                out.push(a);
            }
        }
        out.sort_by(|a, b| a.settled_at.cmp(&b.settled_at));
        Ok(out)
    }

    /// Every pending approval, soonest deadline first.
    pub fn pending(&self) -> Result<Vec<Approval>, StoreError> {
        let mut out: Vec<Approval> = Vec::new();
        for item in self.tree.iter() {
            let (_, bytes) = item?;
            let a = decode_approval(&bytes)?;
            if a.state == ApprovalState::Pending {
                out.push(a);
            }
        }
        out.sort_by_key(|a| a.deadline);
        Ok(out)
    }

    /// The approvals that expired unanswered at or after `since`, in the order they expired.
    pub fn expired_since(&self, since: DateTime<Utc>) -> Result<Vec<Approval>, StoreError> {
        let since = since.to_rfc3339_opts(SecondsFormat::Secs, true);
        let mut out: Vec<Approval> = Vec::new();
        for item in self.tree.iter() {
            let (_, bytes) = item?;
            let a = decode_approval(&bytes)?;
            if a.state == ApprovalState::Expired
                && a.settled_at.as_deref().is_some_and(|s| s >= since.as_str())
            {
                out.push(a);
            }
        }
        out.sort_by(|a, b| a.settled_at.cmp(&b.settled_at));
        Ok(out)
    }

    /// Removes settled approvals settled before `cutoff` (the audit keeps their history).
    pub fn prune_settled(&self, cutoff: DateTime<Utc>) -> Result<usize, StoreError> {
        let cutoff = cutoff.to_rfc3339_opts(SecondsFormat::Secs, true);
        let mut removed = 0;
        for item in self.tree.iter() {
            let (key, bytes) = item?;
            let a = decode_approval(&bytes)?;
            let unfinished = a.state == ApprovalState::Approved && a.result.is_none();
            if a.state != ApprovalState::Pending
                && !unfinished
                && a.settled_at.as_deref().is_some_and(|s| s < cutoff.as_str())
            {
                self.tree.remove(key)?;
                removed += 1;
            }
        }
        Ok(removed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_approval_debugs_without_its_code_and_round_trips_the_store() {
        let store = Store::temporary().unwrap();
        let approvals = Approvals::new(&store);
        let a = approvals
            .create("expire", &Map::new(), "x", "socket", Utc::now(), 60)
            .unwrap();
        let debug = format!("{a:?}");
        let bare = a.code.reveal_in_clear().replace('-', "");
        assert!(!debug.contains(&bare), "{debug}");
        assert!(debug.contains(&a.reference()), "{debug}");
        assert_eq!(approvals.get(&a.code).unwrap(), Some(a));
    }
}
