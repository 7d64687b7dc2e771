//! Replies in words, for the owner's phone.
//!
//! The control socket and HTTP answer JSON, which programs read; the owner reads Signal on a
//! phone, where a 2,700-character line of `{"commands":[{"args":...` is of no use. Every
//! command's output words itself ([`crate::reply::Words`], in the command's file); this module
//! holds what they are made of: labelled lines, one line per context, `✗ <what>: <why>` for
//! an error, and the cut that keeps a reply within one Signal message. The audit log keeps
//! the structured reply. Text that came from outside (a site, a mail header, a provider's
//! message) is escaped ([`crate::text::escape`]) so it cannot start a line of its own.

pub mod contexts;
pub mod lines;

use crate::reply::{CommandError, Output, Reply};
use serde_json::Value;

pub use lines::{fit, SIGNAL_TEXT_LIMIT};

/// The reply to the owner's `cmd` (None when the envelope was refused before its command
/// was known), in words, within [`SIGNAL_TEXT_LIMIT`].
pub fn reply(cmd: Option<&str>, reply: &Reply) -> String {
    let text = match reply {
        Reply::Err(e) => error(cmd, e),
        Reply::Ok(out) => out.words(cmd.unwrap_or("command")),
    };
    fit(&text, cmd.unwrap_or("the command"))
}

/// `✗ <what>: <why>`.
pub fn error(cmd: Option<&str>, e: &CommandError) -> String {
    let what = cmd.unwrap_or("refused");
    format!("✗ {what}: {}", lines::single(&e.message))
}

/// A reply whose secrets were redacted out of its JSON (the gate's `redact_reply`): the typed
/// output it came from no longer matches it, so it is worded from the redacted JSON, as a
/// headline with its `status` and labelled lines for the rest. Every command's and job's
/// output is a type of its own; this is for nothing else.
#[derive(Debug, Clone, PartialEq)]
pub struct Fields(pub Value);

impl Output for Fields {
    fn json(&self) -> Value {
        self.0.clone()
    }

    fn words(&self, cmd: &str) -> String {
        fields(cmd, &self.0)
    }
}

/// `v` as a headline (`✓ cmd: status`) and labelled lines for its other fields.
pub fn fields(cmd: &str, v: &Value) -> String {
    let Some(map) = v.as_object() else {
        return format!("✓ {cmd}: {}", lines::scalar(v));
    };
    let mut out = match map.get("status").and_then(Value::as_str) {
        Some(status) => format!("✓ {cmd}: {}", lines::single(status)),
        None => format!("✓ {cmd}"),
    };
    lines::labelled(&mut out, map, &["status"]);
    out
}

/// The words of a [`serde::Serialize`] output that has none of its own: [`fields`] over
/// its JSON.
pub fn fields_of(cmd: &str, output: &impl serde::Serialize) -> String {
    fields(cmd, &serde_json::to_value(output).unwrap_or(Value::Null))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::reply::ErrorKind;
    use serde_json::json;

    #[test]
    fn an_error_says_what_and_why() {
        let e = CommandError::new(ErrorKind::NotFound, "context not found: notion");
        assert_eq!(
            reply(Some("status"), &Reply::Err(e.clone())),
            "✗ status: context not found: notion"
        );
        assert_eq!(
            reply(None, &Reply::Err(e)),
            "✗ refused: context not found: notion"
        );
    }

    #[test]
    fn other_replies_are_labelled_lines() {
        let granted = json!({"status": "granted", "tool": "card.fund"});
        assert_eq!(
            reply(Some("grant"), &Reply::ok(Fields(granted))),
            "✓ grant: granted\ntool: card.fund"
        );
    }

    #[test]
    fn no_reply_parses_as_json() {
        for v in [
            json!(3),
            json!("x"),
            json!(null),
            json!([]),
            json!({}),
            json!({"n": [1, {"a": null}]}),
        ] {
            let text = reply(Some("audit"), &Reply::ok(Fields(v.clone())));
            assert!(serde_json::from_str::<Value>(&text).is_err(), "{v}: {text}");
        }
    }
}
