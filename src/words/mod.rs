//! Replies in words, for the owner's phone.
//!
//! The control socket and HTTP answer JSON, which programs read; the owner reads Signal on a
//! phone, where a 2,700-character line of `{"commands":[{"args":...` is of no use. Every reply
//! that goes to Signal is put into short text here: one line per context for `list`,
//! labelled lines for `status`, one line per command for `help`, `✗ <what>: <why>` for an
//! error, the result of an approval in a sentence, and labelled lines for anything else. The
//! audit log keeps the structured reply. Text that came from outside (a site, a mail
//! header, a provider's message) is escaped ([`crate::text::escape`]) so it cannot start a
//! line of its own.

mod contexts;
mod lines;

use crate::reply::{CommandError, Reply};
use serde_json::Value;

pub use lines::{fit, SIGNAL_TEXT_LIMIT};

/// The reply to the owner's `cmd` (None when the envelope was refused before its command
/// was known), in words, within [`SIGNAL_TEXT_LIMIT`].
pub fn reply(cmd: Option<&str>, reply: &Reply) -> String {
    let text = match reply {
        Reply::Err(e) => error(cmd, e),
        Reply::Ok(v) => value(cmd.unwrap_or("command"), v),
        Reply::Rendered(r) => value(cmd.unwrap_or("command"), &r.to_value()),
    };
    fit(&text, cmd.unwrap_or("the command"))
}

/// `✗ <what>: <why>`.
pub fn error(cmd: Option<&str>, e: &CommandError) -> String {
    let what = cmd.unwrap_or("refused");
    format!("✗ {what}: {}", lines::single(&e.message))
}

/// A successful reply to `cmd`.
fn value(cmd: &str, v: &Value) -> String {
    match cmd {
        "list" => contexts::list(v),
        "status" => contexts::status(v),
        "help" => help(v),
        "approve" => approved(v),
        "check-incidents" => incidents(v),
        "deny" if v["status"] == "denied" => format!(
            "✓ Denied: {} will not run (denial is final; send the command again to ask anew).",
            lines::single(v["action"].as_str().unwrap_or("the action"))
        ),
        _ => other(cmd, v),
    }
}

/// One line per command: its name and arguments, what it does, its tier, and whether it is
/// granted now; without what it does when that would not fit in one message.
fn help(v: &Value) -> String {
    let full = help_lines(v, true);
    if full.len() <= lines::SIGNAL_TEXT_LIMIT {
        return full;
    }
    help_lines(v, false)
}

fn help_lines(v: &Value, summaries: bool) -> String {
    let mut out = String::from("Commands (send each as a signed envelope):");
    for c in v["commands"].as_array().into_iter().flatten() {
        let args = c["args"].as_str().unwrap_or_default();
        let granted = if c["granted"] == Value::Bool(false) {
            ", not granted"
        } else {
            ""
        };
        let summary = match c["summary"].as_str() {
            Some(s) if summaries => format!(" — {s}"),
            _ => String::new(),
        };
        out.push_str(&format!(
            "\n• {}{}{}{summary} ({}{granted})",
            c["name"].as_str().unwrap_or_default(),
            if args.is_empty() { "" } else { " " },
            args,
            c["tier"].as_str().unwrap_or_default(),
        ));
    }
    out
}

/// `check-incidents`: one line per incident, strongest first, in the words of its summary,
/// with its id (for `incident.ack`) and the burn it queued.
fn incidents(v: &Value) -> String {
    let all: Vec<&Value> = v["incidents"].as_array().into_iter().flatten().collect();
    if all.is_empty() {
        return "✓ No incidents.".to_string();
    }
    let mut out = match all.len() {
        1 => "1 incident:".to_string(),
        n => format!("{n} incidents, strongest first:"),
    };
    for i in all {
        out.push_str(&format!(
            "\n• {} ({}",
            lines::single(i["summary"].as_str().unwrap_or("an incident")),
            lines::single(i["id"].as_str().unwrap_or("?"))
        ));
        if i["acked"] == Value::Bool(true) {
            out.push_str(", acknowledged");
        }
        if let Some(reference) = i["burn_code"].as_str() {
            out.push_str(&format!(
                "; burn queued: approval {}, answer its prompt",
                lines::single(reference)
            ));
        }
        out.push(')');
    }
    out
}

/// `approve`: the approval in a sentence, then what the action answered.
fn approved(v: &Value) -> String {
    let action = v["action"].as_str().unwrap_or("the action");
    let result = &v["result"];
    let outcome = match result.get("error").and_then(Value::as_str) {
        Some(why) => format!("✗ {action}: {}", lines::single(why)),
        None => value(action, result),
    };
    format!("✓ Approved: {action} ran.\n{outcome}")
}

/// Any other reply: its prompt when it asks the owner something, else a headline with its
/// status and labelled lines for the rest.
fn other(cmd: &str, v: &Value) -> String {
    if v["status"] == "approval_required" && v.get("merged").is_none() {
        // The prompt itself went to the phone just before this reply.
        return format!(
            "⏳ {cmd}: waiting for your approval: answer the prompt just sent (`approve` or `deny` with its code, or react 👍 or 👎). Expires {}.",
            lines::single(v["expires_at"].as_str().unwrap_or("soon"))
        );
    }
    if let Some(prompt) = v.get("prompt").and_then(Value::as_str) {
        return lines::multi(prompt);
    }
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
    fn help_is_one_line_per_command() {
        let v = json!({"commands": [
            {"name": "list", "args": "{refresh?}", "tier": "read", "granted": true, "summary": "list the contexts"},
            {"name": "expire", "args": "{context}", "tier": "external", "granted": false, "summary": "burn a context"},
        ], "envelope": "..."});
        let text = reply(Some("help"), &Reply::Ok(v));
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 3, "{text}");
        assert_eq!(lines[1], "• list {refresh?} — list the contexts (read)");
        assert_eq!(
            lines[2],
            "• expire {context} — burn a context (external, not granted)"
        );
        // Too many to fit with what each does: one line each all the same, without it.
        let many: Vec<Value> = (0..40)
            .map(|i| json!({"name": format!("tool{i}"), "args": "{context}", "tier": "read", "granted": true, "summary": "does something useful with a context"}))
            .collect();
        let text = reply(Some("help"), &Reply::Ok(json!({"commands": many})));
        assert_eq!(text.lines().count(), 41, "{text}");
        assert!(text.ends_with("\n• tool39 {context} (read)"), "{text}");
    }

    #[test]
    fn an_approval_names_the_action_and_its_result() {
        let v = json!({"status": "approved", "action": "expire", "result": {"context": "notion", "state": "expired"}});
        let text = reply(Some("approve"), &Reply::Ok(v));
        assert!(text.starts_with("✓ Approved: expire ran.\n"), "{text}");
        assert!(text.contains("notion"), "{text}");
        let failed = json!({"status": "approved", "action": "expire", "result": {"error": "provider down", "kind": "provider"}});
        let text = reply(Some("approve"), &Reply::Ok(failed));
        assert!(text.ends_with("✗ expire: provider down"), "{text}");
    }

    #[test]
    fn a_prompt_is_its_own_text_and_other_replies_are_labelled_lines() {
        let merged = json!({"status": "approval_required", "merged": true, "prompt": "Already waiting for the owner: expire notion.", "code": "X"});
        assert_eq!(
            reply(Some("expire"), &Reply::Ok(merged)),
            "Already waiting for the owner: expire notion."
        );
        let asked = json!({"status": "approval_required", "prompt": "Approval needed: expire notion.", "code": "X", "expires_at": "2026-12-01T15:00:00Z"});
        let text = reply(Some("expire"), &Reply::Ok(asked));
        assert!(
            text.starts_with("⏳ expire: waiting for your approval"),
            "{text}"
        );
        assert!(text.ends_with("Expires 2026-12-01T15:00:00Z."), "{text}");
        assert!(!text.contains('X'), "{text}");
        let granted = json!({"status": "granted", "tool": "card.fund"});
        assert_eq!(
            reply(Some("grant"), &Reply::Ok(granted)),
            "✓ grant: granted\ntool: card.fund"
        );
    }

    #[test]
    fn incidents_are_their_summaries() {
        let v = json!({"count": 1, "incidents": [{"id": "i-0123456789", "summary": "someone tried to charge the notion card at SHADYSHOP LLC; the card is paused", "acked": false, "burn_code": "a-3f9c0e12ab"}], "lines": []});
        assert_eq!(
            reply(Some("check-incidents"), &Reply::Ok(v)),
            "1 incident:\n• someone tried to charge the notion card at SHADYSHOP LLC; the card is paused (i-0123456789; burn queued: approval a-3f9c0e12ab, answer its prompt)"
        );
        let none = json!({"count": 0, "incidents": [], "lines": []});
        assert_eq!(
            reply(Some("check-incidents"), &Reply::Ok(none)),
            "✓ No incidents."
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
            let text = reply(Some("audit"), &Reply::Ok(v.clone()));
            assert!(serde_json::from_str::<Value>(&text).is_err(), "{v}: {text}");
        }
    }
}
