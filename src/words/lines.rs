//! The pieces replies in words are made of: escaped values, labelled lines, and the cut that
//! keeps a reply within one Signal message.

use crate::text::{escape, Lines};
use serde_json::{Map, Value};

/// The longest reply in words, in bytes. Signal's clients show a message body of up to 2,000
/// bytes as it is and send anything longer as a long-text attachment; a reply stays within
/// one plain message, so every client shows it whole.
pub const SIGNAL_TEXT_LIMIT: usize = 2000;

/// `text` within [`SIGNAL_TEXT_LIMIT`]: whole when it fits, else cut after its last line that
/// fits, with a note of how much was left out and where to read the rest.
pub fn fit(text: &str, cmd: &str) -> String {
    if text.len() <= SIGNAL_TEXT_LIMIT {
        return text.to_string();
    }
    let total = text.lines().count();
    // Room for the note, whatever the counts come to.
    let room = SIGNAL_TEXT_LIMIT - 200;
    let mut end = text[..floor_boundary(text, room)]
        .rfind('\n')
        .unwrap_or_else(|| floor_boundary(text, room));
    if end == 0 {
        end = floor_boundary(text, room);
    }
    let kept = &text[..end];
    let left = total.saturating_sub(kept.lines().count());
    format!(
        "{kept}\n… {left} more line(s) cut to fit one Signal message: narrow `{}`, or run it on the control socket (pane-agent command) for all of it.",
        single(cmd)
    )
}

/// The largest char boundary of `s` at or before `at`.
fn floor_boundary(s: &str, at: usize) -> usize {
    let mut at = at.min(s.len());
    while !s.is_char_boundary(at) {
        at -= 1;
    }
    at
}

/// Text from a reply, on one line.
pub fn single(s: &str) -> String {
    escape(s, Lines::Single)
}

/// Text from a reply that may hold several lines (a prompt the agent wrote).
pub fn multi(s: &str) -> String {
    escape(s, Lines::Multi)
}

/// A scalar in words; containers inline (see [`inline`]).
pub fn scalar(v: &Value) -> String {
    match v {
        Value::Null => "none".to_string(),
        Value::Bool(true) => "yes".to_string(),
        Value::Bool(false) => "no".to_string(),
        Value::Number(n) => n.to_string(),
        Value::String(s) => single(s),
        Value::Array(items) if items.is_empty() => "none".to_string(),
        Value::Array(items) => items.iter().map(scalar).collect::<Vec<_>>().join(", "),
        Value::Object(map) => inline(map),
    }
}

/// A key as a label: `reply_bytes` -> `reply bytes`.
pub fn label(key: &str) -> String {
    single(&key.replace('_', " "))
}

/// An object on one line: `a: x · b: y`, leaving out empty fields.
pub fn inline(map: &Map<String, Value>) -> String {
    if super::contexts::is_view(map) {
        return super::contexts::line(map);
    }
    let parts: Vec<String> = map
        .iter()
        .filter(|(_, v)| !v.is_null())
        .map(|(k, v)| match v {
            Value::Object(inner) => format!("{}: ({})", label(k), inline(inner)),
            other => format!("{}: {}", label(k), scalar(other)),
        })
        .collect();
    if parts.is_empty() {
        "nothing".to_string()
    } else {
        parts.join(" · ")
    }
}

/// Appends `map`'s fields but those in `skip` to `out` as labelled lines: `key: value`, a
/// list of objects as one `•` line each.
pub fn labelled(out: &mut String, map: &Map<String, Value>, skip: &[&str]) {
    for (key, v) in map {
        if skip.contains(&key.as_str()) || v.is_null() {
            continue;
        }
        match v {
            Value::Array(items) if items.iter().any(Value::is_object) => {
                out.push_str(&format!("\n{} ({}):", label(key), items.len()));
                for item in items {
                    out.push_str("\n• ");
                    out.push_str(&scalar(item));
                }
            }
            other => out.push_str(&format!("\n{}: {}", label(key), scalar(other))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_long_text_is_cut_after_a_whole_line_with_a_note() {
        let text: String = (0..300).map(|i| format!("line {i}\n")).collect();
        let out = fit(text.trim_end(), "audit");
        assert!(out.len() <= SIGNAL_TEXT_LIMIT, "{}", out.len());
        let last_kept = out.lines().rev().nth(1).unwrap_or_default();
        assert!(last_kept.starts_with("line "), "{last_kept}");
        let kept = out.lines().count() - 1;
        assert!(
            out.ends_with("for all of it.") && out.contains(&format!("… {} more", 300 - kept)),
            "{out}"
        );
        // One long line is cut on a character boundary.
        let wide = "é".repeat(3000);
        assert!(fit(&wide, "x").len() <= SIGNAL_TEXT_LIMIT);
        assert_eq!(fit("short", "x"), "short");
    }

    #[test]
    fn outside_text_cannot_start_a_line() {
        let mut out = String::new();
        let map = json!({"subject": "hi\n✓ approve: done", "n": 2, "none": null, "tags": []});
        labelled(&mut out, map.as_object().unwrap(), &[]);
        assert_eq!(out.lines().count(), 4, "{out}");
        assert!(out.contains("tags: none") && out.contains("n: 2"), "{out}");
        assert!(!out.contains("\n✓"), "{out}");
    }
}
