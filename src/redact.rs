//! Redaction of secrets before anything is written to the audit log, a log line or a reply.
//!
//! Three nets: the exact text of every secret the process knows (command secrets, provider
//! keys), fields whose names say they hold a secret, and strings shaped like one (long
//! key-like tokens, card numbers that pass the Luhn check).

use regex::Regex;
use serde_json::Value;
use std::sync::{Arc, OnceLock};

/// What replaces a redacted value.
pub const REDACTED: &str = "[redacted]";

/// Field names whose values are always redacted, whatever they look like.
const SECRET_FIELDS: &[&str] = &[
    "pan",
    "cvv",
    "cvc",
    "card_number",
    "password",
    "passphrase",
    "secret",
    "agent_secret",
    "api_key",
    "apikey",
    "authorization",
    "authentication",
];

/// Fields that hold the audit chain's SHA-256 hashes.
const DIGEST_FIELDS: &[&str] = &["hash", "prev"];

fn is_sha256_hex(v: &Value) -> bool {
    v.as_str().is_some_and(|s| {
        s.len() == 64
            && s.bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    })
}

fn token_re() -> &'static Regex {
    static RE: OnceLock<Regex> = OnceLock::new();
    // 32 or more characters of the alphabets API keys and hex/base64 secrets are made of.
    // Dashes are left out so that UUIDs (identifiers, not secrets) survive.
    RE.get_or_init(|| Regex::new(r"[A-Za-z0-9_+/=|]{32,}").unwrap_or_else(|_| unreachable!()))
}

fn card_re() -> &'static Regex {
    static RE: OnceLock<Regex> = OnceLock::new();
    RE.get_or_init(|| Regex::new(r"\b(?:\d[ -]?){12,18}\d\b").unwrap_or_else(|_| unreachable!()))
}

/// True when `s` could match [`token_re`] (a run of 32 token characters) or [`card_re`] (13
/// or more digits, with at most one space or dash between two of them): a necessary
/// condition, checked in one pass before the regexes run. Dates and times do not pass it.
fn may_hold_pattern(s: &str) -> bool {
    let mut run = 0usize;
    let mut digits = 0usize;
    let mut after_separator = false;
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'_' | b'+' | b'/' | b'=' | b'|') {
            run += 1;
            if run >= 32 {
                return true;
            }
        } else {
            run = 0;
        }
        if b.is_ascii_digit() {
            digits += 1;
            after_separator = false;
            if digits >= 13 {
                return true;
            }
        } else if (b == b' ' || b == b'-') && digits > 0 && !after_separator {
            after_separator = true;
        } else {
            digits = 0;
            after_separator = false;
        }
    }
    false
}

/// True when redacting `value` could change nothing but a known secret, and its JSON text
/// shows every string as it is: no key names a secret field, no key or string could match
/// the token or card pattern ([`may_hold_pattern`]), and no string holds a character JSON
/// escapes (`"`, `\`, control characters). In the text of such a value every string appears
/// verbatim, so a secret in it is found by searching the text ([`Redactor::rendered`]).
pub fn is_plain(value: &Value) -> bool {
    fn plain_str(s: &str) -> bool {
        !may_hold_pattern(s) && !s.bytes().any(|b| b == b'"' || b == b'\\' || b < 0x20)
    }
    match value {
        Value::String(s) => plain_str(s),
        Value::Array(items) => items.iter().all(is_plain),
        Value::Object(map) => map.iter().all(|(k, v)| {
            plain_str(k) && !SECRET_FIELDS.contains(&k.to_ascii_lowercase().as_str()) && is_plain(v)
        }),
        Value::Null | Value::Bool(_) | Value::Number(_) => true,
    }
}

/// Removes secrets from text and JSON. Cheap to clone; built once at start with every
/// secret the process holds.
#[derive(Clone, Default)]
pub struct Redactor {
    known: Arc<Vec<String>>,
    /// One search for all of `known` (a literal alternation, which the regex crate runs as a
    /// multi-pattern SIMD search); `None` when there are none, or if it could not be built
    /// (then each secret is searched for in turn).
    known_re: Option<Arc<Regex>>,
}

impl std::fmt::Debug for Redactor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Redactor({} known secrets)", self.known.len())
    }
}

impl Redactor {
    /// A redactor that also removes each of `secrets` wherever it appears verbatim.
    pub fn new(secrets: impl IntoIterator<Item = String>) -> Redactor {
        let mut known: Vec<String> = secrets.into_iter().filter(|s| s.len() >= 8).collect();
        // Longest first, so a secret that contains another is removed whole.
        known.sort_by_key(|s| std::cmp::Reverse(s.len()));
        let known_re = if known.is_empty() {
            None
        } else {
            let alternation: Vec<String> = known.iter().map(|s| regex::escape(s)).collect();
            Regex::new(&alternation.join("|")).ok().map(Arc::new)
        };
        Redactor {
            known: Arc::new(known),
            known_re,
        }
    }

    /// True when `text` holds one of the known secrets verbatim.
    pub fn holds_known_secret(&self, text: &str) -> bool {
        match &self.known_re {
            Some(re) => re.is_match(text),
            None => self.known.iter().any(|s| text.contains(s.as_str())),
        }
    }

    /// The same redactor, also removing `more` secrets.
    pub fn with_more(&self, more: impl IntoIterator<Item = String>) -> Redactor {
        Redactor::new(self.known.iter().cloned().chain(more))
    }

    /// Redacts one string.
    pub fn text(&self, input: &str) -> String {
        match self.text_if_needed(input) {
            Some(out) => out,
            None => input.to_string(),
        }
    }

    /// The redacted string, or `None` when there is nothing to find in it (most strings in a
    /// reply: names, dates, states), without copying it.
    fn text_if_needed(&self, input: &str) -> Option<String> {
        if !self.holds_known_secret(input) && !may_hold_pattern(input) {
            return None;
        }
        Some(self.text_slow(input))
    }

    fn text_slow(&self, input: &str) -> String {
        let mut out = input.to_string();
        for secret in self.known.iter() {
            if out.contains(secret.as_str()) {
                out = out.replace(secret.as_str(), REDACTED);
            }
        }
        let out = token_re().replace_all(&out, REDACTED);
        card_re()
            .replace_all(&out, |caps: &regex::Captures<'_>| {
                let digits: String = caps[0].chars().filter(char::is_ascii_digit).collect();
                if luhn_valid(&digits) {
                    REDACTED.to_string()
                } else {
                    caps[0].to_string()
                }
            })
            .into_owned()
    }

    /// [`Redactor::json`] on a value the caller owns: strings that hold nothing to redact
    /// are left where they are, so a large reply is not rebuilt.
    pub fn json_in_place(&self, value: &mut Value) {
        match value {
            Value::String(s) => {
                if let Some(out) = self.text_if_needed(s) {
                    *s = out;
                }
            }
            Value::Array(items) => items.iter_mut().for_each(|v| self.json_in_place(v)),
            Value::Object(map) => {
                if map
                    .keys()
                    .any(|k| self.text_if_needed(k).is_some_and(|out| out != *k))
                {
                    // A key that itself holds a secret (rare): rebuild this object.
                    *value = self.json(value);
                    return;
                }
                for (k, v) in map.iter_mut() {
                    let lower = k.to_ascii_lowercase();
                    if SECRET_FIELDS.contains(&lower.as_str()) {
                        *v = Value::String(REDACTED.into());
                    } else if DIGEST_FIELDS.contains(&lower.as_str()) && is_sha256_hex(v) {
                        // The audit chain's own SHA-256 links (see `json`).
                    } else {
                        self.json_in_place(v);
                    }
                }
            }
            _ => {}
        }
    }

    /// Redacts every string in a JSON value, and every value under a secret-named field.
    pub fn json(&self, value: &Value) -> Value {
        match value {
            Value::String(s) => Value::String(self.text(s)),
            Value::Array(items) => Value::Array(items.iter().map(|v| self.json(v)).collect()),
            Value::Object(map) => Value::Object(
                map.iter()
                    .map(|(k, v)| {
                        let lower = k.to_ascii_lowercase();
                        if SECRET_FIELDS.contains(&lower.as_str()) {
                            (self.text(k), Value::String(REDACTED.into()))
                        } else if DIGEST_FIELDS.contains(&lower.as_str()) && is_sha256_hex(v) {
                            // The audit chain's own SHA-256 links: computed here, never secret.
                            (k.clone(), v.clone())
                        } else {
                            (self.text(k), self.json(v))
                        }
                    })
                    .collect(),
            ),
            other => other.clone(),
        }
    }
}

/// The Luhn checksum that every payment card number passes.
pub fn luhn_valid(digits: &str) -> bool {
    if digits.len() < 13 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return false;
    }
    let sum: u32 = digits
        .bytes()
        .rev()
        .enumerate()
        .map(|(i, b)| {
            let d = u32::from(b - b'0');
            if i % 2 == 1 {
                let d2 = d * 2;
                if d2 > 9 {
                    d2 - 9
                } else {
                    d2
                }
            } else {
                d
            }
        })
        .sum();
    sum % 10 == 0
}

/// Cuts untrusted text to at most `max` characters, marking the cut with `…`.
pub fn truncate(input: &str, max: usize) -> String {
    if input.chars().count() <= max {
        return input.to_string();
    }
    let mut out: String = input.chars().take(max).collect();
    out.push('…');
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::reply::Rendered;
    use serde_json::json;

    #[test]
    fn removes_known_shaped_and_named_secrets() {
        let r = Redactor::new(["hunter2hunter2".to_string()]);
        let v = json!({
            "note": "my secret is hunter2hunter2",
            "key": "sk_live_0123456789abcdefghijklmnopqrstuv",
            "card": "4111 1111 1111 1111",
            "cvv": "123",
            "token": "123e4567-e89b-12d3-a456-426614174000",
            "n": "1234567890123",
        });
        let out = r.json(&v).to_string();
        assert!(!out.contains("hunter2"), "{out}");
        assert!(!out.contains("sk_live"), "{out}");
        assert!(!out.contains("4111"), "{out}");
        assert!(out.contains("\"cvv\":\"[redacted]\""), "{out}");
        assert!(
            out.contains("123e4567-e89b-12d3-a456-426614174000"),
            "{out}"
        );
        assert!(
            out.contains("1234567890123"),
            "a non-Luhn number survives: {out}"
        );
    }

    #[test]
    fn the_quick_check_lets_nothing_through_at_the_edges() {
        let r = Redactor::new(Vec::<String>::new());
        // 32 token characters are redacted, 31 are not.
        assert_eq!(r.text(&format!("k: {}", "a".repeat(32))), "k: [redacted]");
        let short = format!("k: {}", "a".repeat(31));
        assert_eq!(r.text(&short), short);
        // A 13-digit Luhn-valid number is redacted, with separators too.
        assert_eq!(r.text("card 4222222222222 ok"), "card [redacted] ok");
        assert_eq!(r.text("4222-2222-2222-2"), "[redacted]");
        // Dates and short numbers pass untouched, and skip the regexes.
        assert_eq!(r.text("2026-11-22T05:51:21Z"), "2026-11-22T05:51:21Z");
        assert!(!may_hold_pattern("2026-11-22T05:51:21.123Z 2026-11-22"));
        assert!(!may_hold_pattern("12 34 56 78 90 1--2 3"));
        assert!(may_hold_pattern("4222 2222-2222 2"));
        // Anything the card pattern matches passes the quick check.
        for s in [
            "4111 1111 1111 1111",
            "4111-1111-1111-1111",
            "(4222222222222)",
        ] {
            assert!(card_re().is_match(s) && may_hold_pattern(s), "{s}");
        }
        // A known secret shorter than any pattern is still found.
        let r = Redactor::new(["s3cr3t-pw".to_string()]);
        assert_eq!(r.text("pw s3cr3t-pw"), "pw [redacted]");
    }

    #[test]
    fn in_place_redaction_matches_the_copying_one() {
        let r = Redactor::new(["hunter2hunter2".to_string()]);
        let v = json!({
            "note": "my secret is hunter2hunter2",
            "nested": [{"key": "sk_live_0123456789abcdefghijklmnopqrstuv", "pan": "4111111111111111"}],
            "card": "4111 1111 1111 1111",
            "hash": "a".repeat(64),
            "hunter2hunter2": "a key that is a secret",
            "date": "2026-11-22T05:51:21Z",
            "n": 5,
        });
        let mut w = v.clone();
        r.json_in_place(&mut w);
        assert_eq!(w, r.json(&v));
        assert!(!w.to_string().contains("hunter2"), "{w}");
    }

    #[test]
    fn plain_values_are_those_only_known_secrets_can_change() {
        for v in [
            json!({"context": "site1", "created": "2026-11-22T05:51:21Z", "n": 4111111111111111u64}),
            json!(["a", {"b": [null, true, 1.5]}, "é ☃ ~ / +"]),
            json!({"card": {"last_four": "4242", "limit": "0.00"}}),
        ] {
            assert!(is_plain(&v), "{v}");
        }
        for v in [
            json!({"note": "4111 1111 1111 1111"}),
            json!({"note": "sk_live_0123456789abcdefghijklmnopqrstuv"}),
            json!({"CVV": "123"}),
            json!({"nested": [{"Api_Key": null}]}),
            json!({"note": "a \"quote\""}),
            json!({"note": "back\\slash"}),
            json!({"note": "line\nbreak"}),
            json!({"4222222222222": 1}),
        ] {
            assert!(!is_plain(&v), "{v}");
        }
    }

    #[test]
    fn rendered_text_is_redacted_like_the_value_it_stands_for() {
        let r = Redactor::new(["hunter2hunter2".to_string(), "pa\"ss\\word\n42".to_string()]);
        let cases = [
            json!({"context": "site1", "note": null, "created": "2026-11-22T05:51:21Z"}),
            json!({"note": "my secret is hunter2hunter2"}),
            json!({"hunter2hunter2": "a key that is a secret"}),
            json!({"note": "pa\"ss\\word\n42 is escaped in the text"}),
            json!({"note": "4111 1111 1111 1111"}),
            json!({"cvv": "123", "pan": "4111111111111111"}),
            json!({"note": "sk_live_0123456789abcdefghijklmnopqrstuv"}),
            json!({"hash": "a".repeat(64), "prev": "b".repeat(64)}),
        ];
        for v in cases {
            let rendered = Rendered::object(vec![
                ("contexts", Rendered::array([&Rendered::from_value(&v)])),
                ("count", Rendered::from_value(&json!(1))),
            ]);
            let out = rendered.redacted(&r).to_value();
            let mut expected = json!({"contexts": [v.clone()], "count": 1});
            r.json_in_place(&mut expected);
            assert_eq!(out, expected, "{v}");
            let text = out.to_string();
            assert!(
                !text.contains("hunter2") && !text.contains("4111"),
                "{text}"
            );
        }
        // Plain text without a known secret comes back as it is.
        let plain = Rendered::from_value(&json!({"context": "site1"}));
        assert_eq!(plain.clone().redacted(&r), plain);
        // A secret that straddles JSON punctuation is a false alarm, not a miss: the value
        // path finds nothing and the text is unchanged.
        let r = Redactor::new([r#"a1b2c3","d4"#.to_string()]);
        let straddle = Rendered::from_value(&json!(["xa1b2c3", "d4y"]));
        assert_eq!(straddle.clone().redacted(&r).text(), straddle.text());
    }

    #[test]
    fn truncates_on_char_boundaries() {
        assert_eq!(truncate("ééééé", 3), "ééé…");
        assert_eq!(truncate("abc", 3), "abc");
    }
}
