//! What the agent answers: a command's typed output, or `{"error": "...", "kind": "..."}`.
//!
//! Every channel renders the same [`Reply`]; the HTTP channel also maps the error kind to a
//! status code, and the CLI turns an error reply into a non-zero exit.

use serde_json::{json, Value};

/// Why a command was not carried out. The kind is part of every error reply so that a
/// client (or a person reading it on a phone) can tell a bad signature from a clock problem.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// The envelope or HTTP body is over the size limit.
    TooLarge,
    /// The envelope is not valid JSON of the documented shape.
    Malformed,
    /// No configured secret produces the signature.
    BadSignature,
    /// The timestamp is outside the accepted window, in either direction.
    Expired,
    /// The same signature was already accepted inside the window.
    Replayed,
    /// The command name is not one the agent knows.
    UnknownCommand,
    /// The command is known but its arguments are wrong.
    InvalidArgs,
    /// The thing named does not exist (a context, an approval code).
    NotFound,
    /// The tool has no grant (revoked, or locked down).
    NotGranted,
    /// The tool's sliding-window rate limit is exhausted.
    RateLimited,
    /// An approval code that is used, settled, expired, or for something else.
    ApprovalInvalid,
    /// A dependency (provider, store) failed; nothing was acknowledged.
    Unavailable,
    /// The provider the command needs is not set up (no key).
    NotConfigured,
    /// The provider refused the API key (401/403, or a key without write access).
    KeyRejected,
    /// The provider refused the request itself (validation, not found there).
    ProviderRejected,
    /// The command does not fit the thing's current state (an expired context, a closed card).
    Conflict,
    /// A lockdown stopped the work: it was authorised before the lockdown and makes no
    /// further provider call after it.
    LockedDown,
    /// The job ran past its deadline (`[jobs] deadline_secs`); what it started is left for
    /// reconciliation.
    DeadlineExceeded,
    /// A fault inside the agent; the details are in the daemon's log, not the reply.
    Internal,
}

impl ErrorKind {
    /// The stable snake_case name carried in the reply's `kind` field.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorKind::TooLarge => "too_large",
            ErrorKind::Malformed => "malformed",
            ErrorKind::BadSignature => "bad_signature",
            ErrorKind::Expired => "expired",
            ErrorKind::Replayed => "replayed",
            ErrorKind::UnknownCommand => "unknown_command",
            ErrorKind::InvalidArgs => "invalid_args",
            ErrorKind::NotFound => "not_found",
            ErrorKind::NotGranted => "not_granted",
            ErrorKind::RateLimited => "rate_limited",
            ErrorKind::ApprovalInvalid => "approval_invalid",
            ErrorKind::Unavailable => "unavailable",
            ErrorKind::NotConfigured => "not_configured",
            ErrorKind::KeyRejected => "key_rejected",
            ErrorKind::ProviderRejected => "provider_rejected",
            ErrorKind::Conflict => "conflict",
            ErrorKind::LockedDown => "locked_down",
            ErrorKind::DeadlineExceeded => "deadline_exceeded",
            ErrorKind::Internal => "internal",
        }
    }

    /// The HTTP status the onion endpoint answers with for this kind.
    pub fn http_status(self) -> u16 {
        match self {
            ErrorKind::TooLarge => 413,
            ErrorKind::Malformed | ErrorKind::UnknownCommand | ErrorKind::InvalidArgs => 400,
            ErrorKind::BadSignature | ErrorKind::Expired => 401,
            ErrorKind::NotGranted => 403,
            ErrorKind::NotFound => 404,
            ErrorKind::Replayed | ErrorKind::ApprovalInvalid | ErrorKind::Conflict => 409,
            ErrorKind::ProviderRejected => 422,
            ErrorKind::NotConfigured | ErrorKind::KeyRejected => 502,
            ErrorKind::RateLimited => 429,
            ErrorKind::Unavailable => 503,
            ErrorKind::LockedDown => 423,
            ErrorKind::DeadlineExceeded => 504,
            ErrorKind::Internal => 500,
        }
    }
}

/// A refusal with its kind and a message fit to show the owner.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct CommandError {
    /// The category, rendered as `kind`.
    pub kind: ErrorKind,
    /// The human-readable message, rendered as `error`.
    pub message: String,
}

impl CommandError {
    /// Makes an error of `kind` with `message`.
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        CommandError {
            kind,
            message: message.into(),
        }
    }
}

/// A command's result: what the socket, HTTP, MCP and the audit log get as JSON, and what
/// the owner reads on the phone. Each command's output is a type of its own, so its words
/// are made from its fields, never read back out of its JSON.
pub trait Output: std::fmt::Debug + Send {
    /// The JSON object (the same shape on every channel).
    fn json(&self) -> Value;
    /// The words for the owner's phone, as the answer to `cmd` (an approved action's
    /// result is worded as the action's, not the `approve`'s).
    fn words(&self, cmd: &str) -> String;
}

/// How an output reads on the phone: the part of [`Output`] a command's type writes itself.
pub trait Words {
    /// The words, as the answer to `cmd`.
    fn words(&self, cmd: &str) -> String;
}

impl<T: serde::Serialize + Words + std::fmt::Debug + Send> Output for T {
    fn json(&self) -> Value {
        serde_json::to_value(self).unwrap_or_else(|e| {
            // Outputs are plain records (string keys only): this does not happen.
            tracing::error!(error = %e, "an output did not serialise");
            Value::Null
        })
    }

    fn words(&self, cmd: &str) -> String {
        Words::words(self, cmd)
    }
}

/// The answer to one envelope.
#[derive(Debug)]
pub enum Reply {
    /// The command ran (or is waiting for approval): its typed output.
    Ok(Box<dyn Output>),
    /// The command was refused or failed.
    Err(CommandError),
}

impl Reply {
    /// A reply carrying `output`.
    pub fn ok(output: impl Output + 'static) -> Reply {
        Reply::Ok(Box::new(output))
    }

    /// The JSON object sent back on every channel.
    pub fn to_json(&self) -> Value {
        match self {
            Reply::Ok(out) => out.json(),
            Reply::Err(e) => json!({"error": e.message, "kind": e.kind.as_str()}),
        }
    }

    /// The JSON object as text.
    pub fn to_json_string(&self) -> String {
        self.to_json().to_string()
    }

    /// True for an error reply.
    pub fn is_err(&self) -> bool {
        matches!(self, Reply::Err(_))
    }

    /// The HTTP status for the reply `json` (as [`Reply::to_json`] made it): 200, 202
    /// while waiting for approval, or the error's.
    pub fn http_status(&self, json: &Value) -> u16 {
        match self {
            Reply::Ok(_)
                if json.get("status").and_then(Value::as_str) == Some("approval_required") =>
            {
                202
            }
            Reply::Ok(_) => 200,
            Reply::Err(e) => e.kind.http_status(),
        }
    }
}

/// Logs an internal fault (the log is redacted) and returns the generic error for it: the
/// details stay in the daemon's log, never in a reply.
pub fn internal(error: impl std::fmt::Display) -> CommandError {
    tracing::error!(error = %error, "internal error");
    CommandError::new(
        ErrorKind::Internal,
        "internal error; the agent's log has the details",
    )
}

impl From<CommandError> for Reply {
    fn from(e: CommandError) -> Self {
        Reply::Err(e)
    }
}

impl<T: Output + 'static> From<Result<T, CommandError>> for Reply {
    fn from(r: Result<T, CommandError>) -> Self {
        match r {
            Ok(v) => Reply::Ok(Box::new(v)),
            Err(e) => Reply::Err(e),
        }
    }
}

impl From<Result<Box<dyn Output>, CommandError>> for Reply {
    fn from(r: Result<Box<dyn Output>, CommandError>) -> Self {
        match r {
            Ok(v) => Reply::Ok(v),
            Err(e) => Reply::Err(e),
        }
    }
}
