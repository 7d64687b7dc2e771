//! Contexts in words: `list` as one line per context, `status` as labelled lines.

use super::lines::{label, scalar, single, SIGNAL_TEXT_LIMIT};
use serde_json::{Map, Value};

/// True for a context's view (`Context::view`): it names a context and its site.
pub fn is_view(map: &Map<String, Value>) -> bool {
    map.get("context").is_some_and(Value::is_string) && map.contains_key("site")
}

/// One context's line, from its parts: `notion · n7x@alias.io · card 4242 open · 1 incident`,
/// with its state when it is not active.
#[derive(Debug, Clone, Default)]
pub struct ContextLine<'a> {
    /// The context's name.
    pub name: &'a str,
    /// Its state (`active`, `expired`, ...).
    pub state: &'a str,
    /// Its alias: address, deleted, forwarding.
    pub alias: Option<(&'a str, bool, bool)>,
    /// Its card: last four digits and state.
    pub card: Option<(&'a str, &'a str)>,
    /// How many incidents it has.
    pub incidents: u64,
}

impl ContextLine<'_> {
    /// The line.
    pub fn text(&self) -> String {
        let mut parts = vec![single(self.name)];
        if self.state != "active" && !self.state.is_empty() {
            parts.push(single(self.state));
        }
        match self.alias {
            Some((email, deleted, active)) => {
                let mut a = single(email);
                if deleted {
                    a.push_str(" (deleted)");
                } else if !active {
                    a.push_str(" (off)");
                }
                parts.push(a);
            }
            None => parts.push("no alias".to_string()),
        }
        if let Some((last_four, state)) = self.card {
            parts.push(format!("card {} {}", single(last_four), single(state)));
        }
        match self.incidents {
            0 => {}
            1 => parts.push("1 incident".to_string()),
            n => parts.push(format!("{n} incidents")),
        }
        parts.join(" · ")
    }
}

/// One context's view (`Context::view`, met inside another record) on one line.
pub fn line(view: &Map<String, Value>) -> String {
    fn str_of<'a>(m: &'a Map<String, Value>, k: &str) -> Option<&'a str> {
        m.get(k).and_then(Value::as_str)
    }
    ContextLine {
        name: str_of(view, "context").unwrap_or_default(),
        state: str_of(view, "state").unwrap_or_default(),
        alias: view.get("alias").and_then(Value::as_object).map(|a| {
            (
                str_of(a, "email").unwrap_or_default(),
                a.get("deleted") == Some(&Value::Bool(true)),
                a.get("active") != Some(&Value::Bool(false)),
            )
        }),
        card: view.get("card").and_then(Value::as_object).map(|c| {
            (
                str_of(c, "last_four").unwrap_or("????"),
                str_of(c, "state").unwrap_or_default(),
            )
        }),
        incidents: view.get("incidents").and_then(Value::as_u64).unwrap_or(0),
    }
    .text()
}

/// `list`: a count, then one line per context; when they do not all fit in one message, the
/// lines that fit and the `after` to send for the next ones. `total` is how many there are;
/// `lines` gives each one's line, in order, and is read only as far as fits.
pub fn list<'a>(total: usize, lines: impl Iterator<Item = (&'a str, String)>) -> String {
    let mut out = match total {
        0 => return "No contexts yet: `enroll` one.".to_string(),
        1 => "1 context:".to_string(),
        n => format!("{n} contexts:"),
    };
    // Room for the continuation line, whatever the name in it.
    let room = SIGNAL_TEXT_LIMIT - 250;
    let mut last = "";
    for (shown, (name, next)) in lines.enumerate() {
        if out.len() + 3 + next.len() > room {
            out.push_str(&format!(
                "\n… {} more: send `list` with {{\"after\": \"{}\"}} for the next ones.",
                total - shown,
                single(last)
            ));
            return out;
        }
        out.push_str("\n• ");
        out.push_str(&next);
        last = name;
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

    fn of(views: &[Value]) -> String {
        list(
            views.len(),
            views.iter().map(|v| {
                let map = v.as_object().unwrap();
                (map["context"].as_str().unwrap(), line(map))
            }),
        )
    }

    #[test]
    fn list_is_one_line_per_context() {
        let views = [view("notion"), view("shop")];
        let text = of(&views);
        assert_eq!(
            text,
            "2 contexts:\n• notion · notion@alias.io · card 4242 paused · 2 incidents\n• shop · shop@alias.io · card 4242 paused · 2 incidents"
        );
        assert_eq!(of(&[]), "No contexts yet: `enroll` one.");
    }

    #[test]
    fn a_long_list_says_how_to_ask_for_the_rest() {
        let views: Vec<Value> = (0..1000).map(|i| view(&format!("site{i:04}"))).collect();
        let text = of(&views);
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
