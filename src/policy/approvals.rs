//! Pending approvals: one-time codes bound to one exact command, settled by the owner.
//!
//! A code is 10 characters from a 31-letter alphabet with no look-alikes (about 49 bits),
//! shown as `ABCDE-FGHJK` and accepted in any case, with or without the dash. It is bound to
//! the SHA-256 of the command and its canonical arguments; it works once; a denial (or the
//! timeout, which is a denial) is final.

use crate::auth::canonical::python_dumps;
use crate::store::{decode, encode, StoreError};
use chrono::{DateTime, SecondsFormat, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

/// The letters codes are made of: no 0/O or 1/I/L to misread on a phone.
pub const CODE_ALPHABET: &[u8] = b"ABCDEFGHJKMNPQRSTUVWXYZ23456789";
const ALPHABET_LEN: usize = 31;
/// Characters in a code.
pub const CODE_LEN: usize = 10;

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

/// One approval.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Approval {
    /// The normalised code (no dash).
    pub code: String,
    /// The command it approves.
    pub cmd: String,
    /// Its exact arguments.
    pub args: Map<String, Value>,
    /// SHA-256 of `cmd` and the canonical arguments: the binding checked at approval.
    pub binding: String,
    /// What will happen, in words, as the prompt says it.
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

impl Approval {
    /// The code as shown to people: `ABCDE-FGHJK`.
    pub fn display_code(&self) -> String {
        display_code(&self.code)
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

/// A name for the approval with `code` that cannot be used as the code: `a-` and the first
/// ten hex digits of the code's SHA-256. The audit log uses it in phone-only mode.
pub fn reference(code: &str) -> String {
    let digest = Sha256::digest(code.as_bytes());
    format!("a-{}", &hex::encode(digest)[..10])
}

/// Formats a normalised code with its dash.
pub fn display_code(code: &str) -> String {
    if code.len() == CODE_LEN && code.is_ascii() {
        format!("{}-{}", &code[..5], &code[5..])
    } else {
        code.to_string()
    }
}

/// Normalises what a person typed: case folded, dashes and spaces dropped. None when it
/// cannot be a code.
pub fn normalise_code(typed: &str) -> Option<String> {
    let code: String = typed
        .chars()
        .filter(|c| !matches!(c, '-' | ' '))
        .map(|c| c.to_ascii_uppercase())
        .collect();
    (code.len() == CODE_LEN && code.bytes().all(|b| CODE_ALPHABET.contains(&b))).then_some(code)
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

fn new_code() -> Result<String, ApprovalError> {
    let mut code = String::with_capacity(CODE_LEN);
    while code.len() < CODE_LEN {
        let mut buf = [0u8; 16];
        getrandom::fill(&mut buf).map_err(|e| ApprovalError::Random(e.to_string()))?;
        // Rejection sampling keeps every letter equally likely.
        for b in buf {
            if (b as usize) < ALPHABET_LEN * 8 && code.len() < CODE_LEN {
                code.push(CODE_ALPHABET[b as usize % ALPHABET_LEN] as char);
            }
        }
    }
    Ok(code)
}

/// The approvals tree.
#[derive(Clone)]
pub struct Approvals {
    tree: sled::Tree,
}

impl Approvals {
    /// Uses the store's `approvals` tree.
    pub fn new(tree: sled::Tree) -> Approvals {
        Approvals { tree }
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
            let bytes = encode(&approval)?;
            let inserted = self
                .tree
                .compare_and_swap(code.as_bytes(), None as Option<&[u8]>, Some(bytes))
                .map_err(StoreError::from)?;
            if inserted.is_ok() {
                return Ok(approval);
            }
        }
    }

    /// The approval with this (normalised) code.
    pub fn get(&self, code: &str) -> Result<Option<Approval>, StoreError> {
        self.tree
            .get(code.as_bytes())?
            .map(|b| decode(&b))
            .transpose()
    }

    /// Moves a pending approval to `state`; returns the updated record, or None if it was
    /// not pending (already settled by someone else).
    pub fn settle(
        &self,
        code: &str,
        state: ApprovalState,
        now: DateTime<Utc>,
        result: Option<Value>,
    ) -> Result<Option<Approval>, StoreError> {
        let Some(old_bytes) = self.tree.get(code.as_bytes())? else {
            return Ok(None);
        };
        let mut approval: Approval = decode(&old_bytes)?;
        if approval.state != ApprovalState::Pending {
            return Ok(None);
        }
        approval.state = state;
        approval.settled_at = Some(now.to_rfc3339_opts(SecondsFormat::Secs, true));
        approval.result = result;
        let swapped = self.tree.compare_and_swap(
            code.as_bytes(),
            Some(old_bytes),
            Some(encode(&approval)?),
        )?;
        Ok(swapped.is_ok().then_some(approval))
    }

    /// Records the result of an approved action.
    pub fn record_result(&self, code: &str, result: Value) -> Result<(), StoreError> {
        if let Some(mut approval) = self.get(code)? {
            approval.result = Some(result);
            self.tree.insert(code.as_bytes(), encode(&approval)?)?;
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
            let a: Approval = decode(&bytes)?;
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
            let a: Approval = decode(&bytes)?;
            if a.state == ApprovalState::Pending {
                out.push(a);
            }
        }
        out.sort_by_key(|a| a.deadline);
        Ok(out)
    }

    /// Removes settled approvals settled before `cutoff` (the audit keeps their history).
    pub fn prune_settled(&self, cutoff: DateTime<Utc>) -> Result<usize, StoreError> {
        let cutoff = cutoff.to_rfc3339_opts(SecondsFormat::Secs, true);
        let mut removed = 0;
        for item in self.tree.iter() {
            let (key, bytes) = item?;
            let a: Approval = decode(&bytes)?;
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
    fn codes_normalise_and_have_the_right_shape() {
        let code = new_code().unwrap();
        assert_eq!(code.len(), CODE_LEN);
        let shown = display_code(&code);
        assert_eq!(normalise_code(&shown.to_lowercase()), Some(code));
        assert_eq!(
            normalise_code("ABCDE-FGHJ0"),
            None,
            "0 is not in the alphabet"
        );
        assert_eq!(normalise_code("short"), None);
        // 31^10 > 2^49: at least 40 bits.
        assert!((ALPHABET_LEN as f64).powi(CODE_LEN as i32).log2() >= 40.0);
    }
}
