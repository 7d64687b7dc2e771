//! Contexts in words: `list` as one line per context, `status` as labelled lines.

use super::lines::{label, scalar, single, SIGNAL_TEXT_LIMIT};
use serde_json::{Map, Value};

/// True for a context's view (`Context::view`): it names a context and its site.
pub fn is_view(map: &Map<String, Value>) -> bool {
    map.get("context").is_some_and(Value::is_string) && map.contains_key("site")
}

/// One context on one line: `notion · n7x@alias.io · card 4242 open · 1 incident`, with its
/// state when it is not active.
pub fn line(view: &Map<String, Value>) -> String {
    let mut parts = vec![single(view["context"].as_str().unwrap_or_default())];
    let state = view
        .get("state")
        .and_then(Value::as_str)
        .unwrap_or_default();
    if state != "active" && !state.is_empty() {
        parts.push(single(state));
    }
    match view.get("alias").and_then(Value::as_object) {
        Some(alias) => {
            let mut a = single(alias["email"].as_str().unwrap_or_default());
            if alias.get("deleted") == Some(&Value::Bool(true)) {
                a.push_str(" (deleted)");
            } else if alias.get("active") == Some(&Value::Bool(false)) {
                a.push_str(" (off)");
            }
            parts.push(a);
        }
        None => parts.push("no alias".to_string()),
    }
    if let Some(card) = view.get("card").and_then(Value::as_object) {
        parts.push(format!(
            "card {} {}",
            single(card["last_four"].as_str().unwrap_or("????")),
            single(card["state"].as_str().unwrap_or_default())
        ));
    }
    match view.get("incidents").and_then(Value::as_u64).unwrap_or(0) {
        0 => {}
        1 => parts.push("1 incident".to_string()),
        n => parts.push(format!("{n} incidents")),
    }
    parts.join(" · ")
}

/// `list`: a count, then one line per context; when they do not all fit in one message, the
/// lines that fit and the `after` to send for the next ones.
pub fn list(v: &Value) -> String {
    let views: Vec<&Map<String, Value>> = v["contexts"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_object)
        .collect();
    let mut out = match views.len() {
        0 => return "No contexts yet: `enroll` one.".to_string(),
        1 => "1 context:".to_string(),
        n => format!("{n} contexts:"),
    };
    // Room for the continuation line, whatever the name in it.
    let room = SIGNAL_TEXT_LIMIT - 250;
    for (shown, view) in views.iter().enumerate() {
        let next = line(view);
        if out.len() + 3 + next.len() > room {
            let last = views[shown - 1]["context"].as_str().unwrap_or_default();
            out.push_str(&format!(
                "\n… {} more: send `list` with {{\"after\": \"{}\"}} for the next ones.",
                views.len() - shown,
                single(last)
            ));
            return out;
        }
        out.push_str("\n• ");
        out.push_str(&next);
    }
    out
}

/// `status`: the context's name and state, then its parts as labelled lines.
pub fn status(v: &Value) -> String {
    let Some(view) = v.as_object() else {
        return scalar(v);
    };
    let name = single(view.get("context").and_then(Value::as_str).unwrap_or("?"));
    let state = single(view.get("state").and_then(Value::as_str).unwrap_or("?"));
    let mut out = format!("{name} ({state})");
    for (key, value) in view {
        if matches!(key.as_str(), "context" | "state") || value.is_null() {
            continue;
        }
        out.push_str(&format!("\n{}: {}", label(key), scalar(value)));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn view(name: &str) -> Value {
        json!({
            "context": name, "site": "https://www.notion.so", "domain": "notion.so",
            "state": "active", "created": "2026-11-01T00:00:00Z", "note": null,
            "alias": {"email": format!("{name}@alias.io"), "active": true, "deleted": false, "provider": "addy", "forwarded": 3},
            "card": {"last_four": "4242", "limit": "0.00", "state": "paused", "provider": "privacy"},
            "identity": null, "incidents": 2, "sender_domains": [], "expired_at": null,
        })
    }

    #[test]
    fn list_is_one_line_per_context() {
        let v = json!({"contexts": [view("notion"), view("shop")], "count": 2});
        let text = list(&v);
        assert_eq!(
            text,
            "2 contexts:\n• notion · notion@alias.io · card 4242 paused · 2 incidents\n• shop · shop@alias.io · card 4242 paused · 2 incidents"
        );
        assert_eq!(
            list(&json!({"contexts": [], "count": 0})),
            "No contexts yet: `enroll` one."
        );
    }

    #[test]
    fn a_long_list_says_how_to_ask_for_the_rest() {
        let views: Vec<Value> = (0..1000).map(|i| view(&format!("site{i:04}"))).collect();
        let text = list(&json!({"contexts": views, "count": 1000}));
        assert!(text.len() <= SIGNAL_TEXT_LIMIT, "{}", text.len());
        let shown = text.lines().filter(|l| l.starts_with("• ")).count();
        let last = format!("site{:04}", shown - 1);
        assert!(
            text.ends_with(&format!(
                "… {} more: send `list` with {{\"after\": \"{last}\"}} for the next ones.",
                1000 - shown
            )),
            "{text}"
        );
    }

    #[test]
    fn status_is_labelled_lines() {
        let text = status(&view("notion"));
        assert!(text.starts_with("notion (active)\n"), "{text}");
        assert!(
            text.contains("\nalias: active: yes · deleted: no · email: notion@alias.io"),
            "{text}"
        );
        assert!(text.contains("\nincidents: 2"), "{text}");
        assert!(!text.contains("note:"), "{text}");
    }
}
