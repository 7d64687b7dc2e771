//! `request.status {request_id}`: where an approval that the MCP key asked for stands, and
//! the action's result once it ran. Only the MCP key may ask, only about its own requests,
//! and the answer never holds the approval's code: the model learns that the owner said yes
//! or no on their phone, never how to say it for them.
//!
//! A request id is random (`r-` and 16 hex digits), not derived from the code, and is kept
//! in the store's records beside the code it stands for.

use super::args::{req, Kind};
use super::{Args, Cmd, Fast, Run, Spec};
use crate::origin::Channel;
use crate::policy::approvals::{ApprovalCode, ApprovalState, Approvals};
use crate::policy::tools::Tier;
use crate::reply::{internal, CommandError, ErrorKind, Words};
use crate::store::records::{Family, Raw};
use crate::store::Records;
use serde::Serialize;
use serde_json::{Map, Value};

/// The approval code (its store key) a request id stands for, by request id.
const CODE_OF: Family<Raw> = Family::new("mcp.request.");
/// The request id given to an approval code, by the code's store key.
const REQUEST_OF: Family<Raw> = Family::new("mcp.request_of.");

/// `request.status {request_id}`.
#[derive(Debug, Clone, PartialEq)]
pub struct RequestStatus {
    /// The id an approval request's reply gave.
    pub request_id: String,
}

/// What `request.status` answers.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RequestState {
    /// The request id.
    pub request_id: String,
    /// `pending`, `approved`, `denied` or `expired`.
    pub state: &'static str,
    /// The command asked for.
    pub action: String,
    /// Its arguments.
    pub args: Map<String, Value>,
    /// When the approval expires.
    pub expires_at: String,
    /// The action's result once approved (`"running"` until it is recorded).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub result: Option<Value>,
    /// When the owner answered.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub settled_at: Option<String>,
}

impl Words for RequestState {
    fn words(&self, cmd: &str) -> String {
        crate::words::fields_of(cmd, self)
    }
}

impl Cmd for RequestStatus {
    const SPECS: &'static [Spec] = &[Spec::new(
        "request.status",
        Tier::Read,
        false,
        &[req(
            "request_id",
            Kind::RequestId,
            "the request id an approval request gave",
        )],
        "where an approval the MCP key asked for stands, and the action's result (MCP key only)",
    )];

    /// Parses and checks the id's shape.
    fn parse(_name: &str, args: &Args<'_>) -> Result<RequestStatus, CommandError> {
        let request_id = args.string("request_id")?;
        if !is_request_id(&request_id) {
            return Err(super::invalid(
                "request_id must look like r-0123456789abcdef",
            ));
        }
        Ok(RequestStatus { request_id })
    }

    /// The request's state (`pending`, `approved`, `denied`, `expired`), its action and
    /// arguments, and the action's result once it ran. Refused on every channel but MCP.
    fn run(self, fast: &Fast<'_>) -> Result<Run, CommandError> {
        let (meta, approvals, inv) = (fast.records, fast.approvals, fast.inv);
        if inv.channel != Channel::Mcp {
            return Err(CommandError::new(
                ErrorKind::NotGranted,
                "request.status answers the MCP key about its own requests; use `approvals` or `audit`",
            ));
        }
        let not_found = || {
            CommandError::new(
                ErrorKind::NotFound,
                format!("no such request: {}", self.request_id),
            )
        };
        let code = meta
            .get(&CODE_OF.key(&self.request_id))
            .map_err(internal)?
            .ok_or_else(not_found)?;
        let code = ApprovalCode::from_store_key(&code).ok_or_else(not_found)?;
        let approval = approvals
            .get(&code)
            .map_err(internal)?
            .filter(|a| a.channel == Channel::Mcp.as_str())
            .ok_or_else(not_found)?;
        let state = match approval.state {
            ApprovalState::Pending if approval.deadline <= inv.now.timestamp() => "expired",
            ApprovalState::Pending => "pending",
            ApprovalState::Approved => "approved",
            ApprovalState::Denied => "denied",
            ApprovalState::Expired => "expired",
        };
        let expires_at = approval.deadline_rfc3339();
        let result = match (&approval.state, approval.result) {
            (ApprovalState::Approved, Some(result)) => Some(result),
            (ApprovalState::Approved, None) => Some(Value::from("running")),
            _ => None,
        };
        Run::done(RequestState {
            request_id: self.request_id,
            state,
            action: approval.cmd,
            args: approval.args,
            expires_at,
            result,
            settled_at: approval.settled_at,
        })
    }
}

/// True for `r-` and 16 lowercase hex digits.
pub fn is_request_id(id: &str) -> bool {
    id.len() == 18
        && id.starts_with("r-")
        && id[2..]
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

/// The request id of the approval `code`, making and recording a new one the first time.
pub fn request_id_for(meta: &Records, code: &ApprovalCode) -> Result<String, CommandError> {
    if let Some(id) = known_request_id(meta, code)? {
        return Ok(id);
    }
    let mut bytes = [0u8; 8];
    getrandom::fill(&mut bytes).map_err(|e| internal(format!("no randomness: {e}")))?;
    let id = format!("r-{}", hex::encode(bytes));
    meta.set(&CODE_OF.key(&id), &code.store_key().to_vec())
        .map_err(internal)?;
    meta.set(&REQUEST_OF.key(code.store_key()), &id.as_bytes().to_vec())
        .map_err(internal)?;
    Ok(id)
}

/// The request id already given to the approval `code`, if the MCP key asked for it.
pub fn known_request_id(
    meta: &Records,
    code: &ApprovalCode,
) -> Result<Option<String>, CommandError> {
    Ok(meta
        .get(&REQUEST_OF.key(code.store_key()))
        .map_err(internal)?
        .map(|v| String::from_utf8_lossy(&v).into_owned()))
}

/// Forgets the request ids whose approval has been pruned; returns how many.
pub fn forget_pruned(meta: &Records, approvals: &Approvals) -> Result<usize, CommandError> {
    let mut forgotten = 0;
    for (id, code) in meta.scan(&CODE_OF).map_err(internal)? {
        let code = code.ok().and_then(|c| ApprovalCode::from_store_key(&c));
        let live = match &code {
            Some(code) => approvals.get(code).map_err(internal)?.is_some(),
            None => false,
        };
        if !live {
            meta.remove(&CODE_OF.key(&id)).map_err(internal)?;
            if let Some(code) = &code {
                meta.remove(&REQUEST_OF.key(code.store_key()))
                    .map_err(internal)?;
            }
            forgotten += 1;
        }
    }
    Ok(forgotten)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_random_and_remembered() {
        let store = crate::store::Store::temporary().unwrap();
        let meta = store.records();
        let one = ApprovalCode::parse("ABCDEFGHJK").unwrap();
        let other = ApprovalCode::parse("KJHGFEDCBA").unwrap();
        let a = request_id_for(&meta, &one).unwrap();
        assert!(is_request_id(&a), "{a}");
        assert_eq!(request_id_for(&meta, &one).unwrap(), a);
        let b = request_id_for(&meta, &other).unwrap();
        assert_ne!(a, b);
        assert!(!a.contains("ABCDE"));
        for bad in ["r-0123", "a-0123456789abcdef", "r-0123456789ABCDEF"] {
            assert!(!is_request_id(bad), "{bad}");
        }
        // Neither code has an approval record: both ids are forgotten, and only they.
        let raw = store.table(crate::store::TableId::Meta);
        raw.insert("other", "kept").unwrap();
        let approvals = Approvals::new(&store);
        let live = approvals
            .create(
                "expire",
                &Default::default(),
                "x",
                "mcp",
                chrono::Utc::now(),
                60,
            )
            .unwrap();
        let kept = request_id_for(&meta, &live.code).unwrap();
        assert_eq!(forget_pruned(&meta, &approvals).unwrap(), 2);
        assert_eq!(raw.len(), 3);
        assert!(known_request_id(&meta, &one).unwrap().is_none());
        assert_eq!(known_request_id(&meta, &live.code).unwrap(), Some(kept));
    }
}
