//! What the agent answers: a JSON object, either a result or `{"error": "...", "kind": "..."}`.
//!
//! Every channel renders the same [`Reply`]; the HTTP channel also maps the error kind to a
//! status code, and the CLI turns an error reply into a non-zero exit.

mod rendered;

pub use rendered::Rendered;
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

/// What a command that succeeded answers: a value, or text rendered ahead.
#[derive(Debug, Clone, PartialEq)]
pub enum Answer {
    /// A JSON value (most commands).
    Value(Value),
    /// JSON text put together from parts rendered ahead (`list`).
    Rendered(Rendered),
}

impl Answer {
    /// The answer as a value (parsing rendered text).
    pub fn into_value(self) -> Value {
        match self {
            Answer::Value(v) => v,
            Answer::Rendered(r) => r.to_value(),
        }
    }

    /// The length of the answer's JSON text, without building it for a value.
    pub fn json_len(&self) -> usize {
        match self {
            Answer::Value(v) => json_len(v),
            Answer::Rendered(r) => r.len(),
        }
    }
}

impl From<Value> for Answer {
    fn from(v: Value) -> Self {
        Answer::Value(v)
    }
}

/// The answer to one envelope.
#[derive(Debug, Clone, PartialEq)]
pub enum Reply {
    /// The command ran (or is waiting for approval); the value is the reply object.
    Ok(Value),
    /// The command ran and its reply object was rendered ahead (`list`).
    Rendered(Rendered),
    /// The command was refused or failed.
    Err(CommandError),
}

impl Reply {
    /// The JSON object sent back on every channel.
    pub fn to_json(&self) -> Value {
        match self {
            Reply::Ok(v) => v.clone(),
            Reply::Rendered(r) => r.to_value(),
            Reply::Err(e) => json!({"error": e.message, "kind": e.kind.as_str()}),
        }
    }

    /// The JSON object as text, without copying the value first (a `list` of many contexts
    /// is large).
    pub fn to_json_string(&self) -> String {
        match self {
            Reply::Ok(v) => v.to_string(),
            Reply::Rendered(r) => r.to_text(),
            Reply::Err(_) => self.to_json().to_string(),
        }
    }

    /// The same, consuming the reply: rendered text is handed over without a copy.
    pub fn into_json_string(self) -> String {
        match self {
            Reply::Rendered(r) => r.into_text(),
            other => other.to_json_string(),
        }
    }

    /// True for an error reply.
    pub fn is_err(&self) -> bool {
        matches!(self, Reply::Err(_))
    }

    /// The HTTP status for this reply: 200, 202 while waiting for approval, or the error's.
    pub fn http_status(&self) -> u16 {
        match self {
            Reply::Ok(v)
                if v.get("status").and_then(Value::as_str) == Some("approval_required") =>
            {
                202
            }
            Reply::Ok(_) | Reply::Rendered(_) => 200,
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

impl From<Result<Value, CommandError>> for Reply {
    fn from(r: Result<Value, CommandError>) -> Self {
        match r {
            Ok(v) => Reply::Ok(v),
            Err(e) => Reply::Err(e),
        }
    }
}

impl From<Result<Answer, CommandError>> for Reply {
    fn from(r: Result<Answer, CommandError>) -> Self {
        match r {
            Ok(Answer::Value(v)) => Reply::Ok(v),
            Ok(Answer::Rendered(r)) => Reply::Rendered(r),
            Err(e) => Reply::Err(e),
        }
    }
}

/// The length of `value` as JSON text, counted without building the text.
pub fn json_len(value: &Value) -> usize {
    struct Count(usize);
    impl std::io::Write for Count {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0 += buf.len();
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let mut count = Count(0);
    match serde_json::to_writer(&mut count, value) {
        Ok(()) => count.0,
        Err(_) => 0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn views() -> Vec<Value> {
        vec![
            json!({"context": "b", "n": 1, "alias": {"email": "b@x.io", "active": true}, "note": null}),
            json!({"context": "a", "list": [1, 2.5, "x"], "empty": {}, "none": []}),
            json!({"context": "quote\"and\\back\nslash é ☃", "k\u{1}ey": "v"}),
        ]
    }

    #[test]
    fn rendered_text_is_what_serialising_the_value_gives() {
        let parts: Vec<Rendered> = views().iter().map(Rendered::from_value).collect();
        let rendered = Rendered::object(vec![
            ("count", Rendered::from_value(&json!(3))),
            ("contexts", Rendered::array(&parts)),
            ("é\"key", Rendered::from_value(&json!(null))),
        ]);
        let value = json!({"contexts": views(), "count": 3, "é\"key": null});
        assert_eq!(rendered.to_text(), value.to_string());
        assert_eq!(rendered.to_value(), value);
        assert_eq!(
            Answer::Rendered(rendered.clone()).json_len(),
            json_len(&value)
        );
        assert_eq!(Answer::Rendered(rendered).into_value(), value);
        assert_eq!(Rendered::array(&[]).to_text(), "[]");
        assert_eq!(Rendered::object(Vec::new()).to_text(), "{}");
        // A key given twice keeps its last value, as a JSON object does.
        let twice = Rendered::object(vec![
            ("k", Rendered::from_value(&json!(1))),
            ("k", Rendered::from_value(&json!(2))),
        ]);
        assert_eq!(twice.to_text(), r#"{"k":2}"#);
    }

    #[test]
    fn a_rendered_reply_is_sent_as_it_is() {
        let value = json!({"contexts": views(), "count": 3});
        let reply = Reply::Rendered(Rendered::object(vec![
            (
                "contexts",
                Rendered::array(&views().iter().map(Rendered::from_value).collect::<Vec<_>>()),
            ),
            ("count", Rendered::from_value(&json!(3))),
        ]));
        assert_eq!(reply.http_status(), 200);
        assert!(!reply.is_err());
        assert_eq!(reply.to_json(), value);
        assert_eq!(reply.to_json_string(), value.to_string());
        assert_eq!(reply.into_json_string(), value.to_string());
    }

    #[test]
    fn plainness_is_that_of_every_part_and_key() {
        let plain = Rendered::from_value(&json!({"a": "b"}));
        assert!(plain.is_plain());
        let escaped = Rendered::from_value(&json!({"a": "say \"hi\""}));
        assert!(!escaped.is_plain());
        assert!(!Rendered::array([&plain, &escaped]).is_plain());
        assert!(Rendered::array([&plain, &plain]).is_plain());
        assert!(Rendered::object(vec![("x", plain.clone())]).is_plain());
        assert!(!Rendered::object(vec![("cvv", plain.clone())]).is_plain());
        assert!(!Rendered::object(vec![("x", escaped)]).is_plain());
    }
}
