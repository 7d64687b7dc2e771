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

/// Removes secrets from text and JSON. Cheap to clone; built once at start with every
/// secret the process holds.
#[derive(Clone, Default)]
pub struct Redactor {
    known: Arc<Vec<String>>,
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
        Redactor {
            known: Arc::new(known),
        }
    }

    /// The same redactor, also removing `more` secrets.
    pub fn with_more(&self, more: impl IntoIterator<Item = String>) -> Redactor {
        Redactor::new(self.known.iter().cloned().chain(more))
    }

    /// Redacts one string.
    pub fn text(&self, input: &str) -> String {
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
    fn truncates_on_char_boundaries() {
        assert_eq!(truncate("ééééé", 3), "ééé…");
        assert_eq!(truncate("abc", 3), "abc");
    }
}
