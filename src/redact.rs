//! Redaction of secrets before anything is written to the audit log, a log line or a reply.
//!
//! Three nets: every secret the process knows (command secrets, provider keys, the IMAP
//! password), of any length and in the forms it leaks in ([`known`]: upper case, split by
//! separators or across fields, base64, URL-encoded); fields whose names say they hold a
//! secret ([`is_secret_field`]); and strings shaped like one (long key-like tokens, card
//! numbers that pass the Luhn check).

pub mod fields;
pub mod known;

pub use fields::is_secret_field;

use known::KnownSecrets;
use regex::Regex;
use serde_json::Value;
use std::sync::{Arc, OnceLock};

/// What replaces a redacted value.
pub const REDACTED: &str = "[redacted]";

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

/// Removes secrets from text and JSON. Cheap to clone; built once at start with every
/// secret the process holds.
#[derive(Clone)]
pub struct Redactor {
    secrets: Arc<Vec<String>>,
    known: Arc<KnownSecrets>,
}

impl Default for Redactor {
    fn default() -> Redactor {
        Redactor::new(Vec::new())
    }
}

impl std::fmt::Debug for Redactor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Redactor({} known secrets)", self.secrets.len())
    }
}

impl Redactor {
    /// A redactor that also removes each of `secrets`, of any length, wherever it appears in
    /// one of the forms [`known`] searches for.
    pub fn new(secrets: impl IntoIterator<Item = String>) -> Redactor {
        let secrets: Vec<String> = secrets.into_iter().collect();
        let known = KnownSecrets::new(secrets.iter().map(String::as_str));
        Redactor {
            secrets: Arc::new(secrets),
            known: Arc::new(known),
        }
    }

    /// True when `text` holds one of the known secrets, in any of the forms searched for.
    pub fn holds_known_secret(&self, text: &str) -> bool {
        self.known.is_match(text)
    }

    /// The same redactor, also removing `more` secrets.
    pub fn with_more(&self, more: impl IntoIterator<Item = String>) -> Redactor {
        Redactor::new(self.secrets.iter().cloned().chain(more))
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
        let ranges = self.known.ranges(input);
        if ranges.is_empty() && !may_hold_pattern(input) {
            return None;
        }
        let mut out = String::with_capacity(input.len());
        let mut at = 0;
        for (from, to) in ranges {
            out.push_str(&input[at..from]);
            out.push_str(REDACTED);
            at = to;
        }
        out.push_str(&input[at..]);
        let out = token_re().replace_all(&out, REDACTED);
        Some(
            card_re()
                .replace_all(&out, |caps: &regex::Captures<'_>| {
                    let digits: String = caps[0].chars().filter(char::is_ascii_digit).collect();
                    if luhn_valid(&digits) {
                        REDACTED.to_string()
                    } else {
                        caps[0].to_string()
                    }
                })
                .into_owned(),
        )
    }

    /// Redacts every string in a JSON value, every value under a secret-named field, and
    /// every string of an object or array that a known secret is split across, in place:
    /// strings that hold nothing to redact are left where they are, so a large reply is not
    /// rebuilt.
    pub fn json_in_place(&self, value: &mut Value) {
        match value {
            Value::String(s) => {
                if let Some(out) = self.text_if_needed(s) {
                    *s = out;
                }
            }
            Value::Array(items) => {
                let strings: Vec<(usize, &str)> = items
                    .iter()
                    .enumerate()
                    .filter_map(|(i, v)| v.as_str().map(|s| (i, s)))
                    .collect();
                for i in self.split_across(&strings) {
                    items[i] = Value::String(REDACTED.into());
                }
                items.iter_mut().for_each(|v| self.json_in_place(v));
            }
            Value::Object(map) => {
                if map
                    .keys()
                    .any(|k| self.text_if_needed(k).is_some_and(|out| out != *k))
                {
                    // A key that itself holds a secret (rare): rename the keys first. A
                    // value under a secret-named field goes by its original name.
                    let old = std::mem::take(map);
                    for (k, v) in old {
                        let v = if is_secret_field(&k) {
                            Value::String(REDACTED.into())
                        } else {
                            v
                        };
                        map.insert(self.text(&k), v);
                    }
                }
                // A secret split across several strings of the object counts too,
                // but the chain's digests are never replaced.
                let split: Vec<String> = {
                    let strings: Vec<(&String, &str)> = map
                        .iter()
                        .filter_map(|(k, v)| v.as_str().map(|s| (k, s)))
                        .collect();
                    self.split_across(&strings).into_iter().cloned().collect()
                };
                for k in split {
                    if let Some(v) = map.get_mut(&k) {
                        if !is_chain_digest(&k, v) {
                            *v = Value::String(REDACTED.into());
                        }
                    }
                }
                for (k, v) in map.iter_mut() {
                    if is_secret_field(k) {
                        *v = Value::String(REDACTED.into());
                    } else if !is_chain_digest(k, v) {
                        self.json_in_place(v);
                    }
                }
            }
            _ => {}
        }
    }

    /// The ids of `strings` (the string children of one container, in order, each with an
    /// id) that a known secret runs across (see [`KnownSecrets::split_across`]).
    fn split_across<T: Clone>(&self, strings: &[(T, &str)]) -> Vec<T> {
        let texts: Vec<&str> = strings.iter().map(|(_, s)| *s).collect();
        self.known
            .split_across(&texts)
            .into_iter()
            .map(|i| strings[i].0.clone())
            .collect()
    }

    /// [`Redactor::json_in_place`] on a copy.
    pub fn json(&self, value: &Value) -> Value {
        let mut out = value.clone();
        self.json_in_place(&mut out);
        out
    }
}

/// The audit chain's own SHA-256 links (`hash`, `prev`): computed here, never secret, and
/// left as they are so that the chain can still be checked from what is shown.
fn is_chain_digest(key: &str, value: &Value) -> bool {
    DIGEST_FIELDS.contains(&key.to_ascii_lowercase().as_str()) && is_sha256_hex(value)
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
    sum.is_multiple_of(10)
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
    use serde_json::json;

    #[test]
    fn removes_known_shaped_and_named_secrets() {
        let r = Redactor::new(["hunter2hunter2".to_string()]);
        let v = json!({
            "note": "my secret is hunter2hunter2",
            "key": "sk_live_0123456789abcdefghijklmnopqrstuv",
            "card": "4111 1111 1111 1111",
            "cvv": "123",
            "id": "123e4567-e89b-12d3-a456-426614174000",
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
    fn known_secrets_of_any_length_in_any_form() {
        let r = Redactor::new(["p@s%w0r".to_string(), "Q".to_string()]);
        for (form, text) in [
            ("verbatim", "pw p@s%w0r."),
            ("upper case", "pw P@S%W0R."),
            ("dashed and spaced", "pw p@s-%w0 r."),
            ("url-encoded", "pw p%40s%25w0r."),
        ] {
            assert_eq!(r.text(text), "pw [redacted].", "{form}");
        }
        assert_eq!(r.text("a q b"), "a [redacted] b");
        // Split across the strings of one object or array: each piece goes.
        let v = json!({"a": "p@s", "b": "%W0R", "c": "kept", "n": 1});
        assert_eq!(
            r.json(&v),
            json!({"a": REDACTED, "b": REDACTED, "c": "kept", "n": 1})
        );
        let v = json!(["x", "p@s%", "w0r"]);
        assert_eq!(r.json(&v), json!(["x", REDACTED, REDACTED]));
        // A digest of the audit chain is never replaced.
        let digest = "a".repeat(64);
        let v = json!({"hash": digest, "note": "p@s%", "x": "w0r"});
        assert_eq!(
            r.json(&v),
            json!({"hash": digest, "note": REDACTED, "x": REDACTED})
        );
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
    fn truncates_on_char_boundaries() {
        assert_eq!(truncate("ééééé", 3), "ééé…");
        assert_eq!(truncate("abc", 3), "abc");
    }
}
