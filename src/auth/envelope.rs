//! The signed envelope `{"ts", "cmd", "args", "sig"}` of the pane agents note.
//!
//! `sig` is the lowercase hex HMAC-SHA256, keyed with the secret's UTF-8 bytes, of
//! `ts + cmd + json.dumps(args, sort_keys=True)`. Parsing is strict: a duplicate key, an
//! unknown field, an integer outside 64 bits or an over-long body is refused before any
//! signature work, with a reply that says which.

use super::canonical::python_dumps;
use super::secret::{Secret, SecretSet};
use crate::reply::{CommandError, ErrorKind};
use chrono::{DateTime, NaiveDateTime, SecondsFormat, Utc};
use hmac::{KeyInit, Mac};
use serde::de::{self, Deserializer, MapAccess, SeqAccess, Visitor};
use serde::Deserialize;
use serde_json::{Map, Value};
use sha2::Sha256;
use std::fmt;

type HmacSha256 = hmac::Hmac<Sha256>;

/// The largest envelope accepted on any channel, in bytes. Defined in pane-protocol: the
/// Signal gateway cuts a long text one byte over it.
pub use pane_protocol::messages::MAX_ENVELOPE_BYTES;

/// How far `ts` may be from the agent's clock, either way, in seconds.
pub const WINDOW_SECS: i64 = 300;

const MAX_CMD_LEN: usize = 64;
const MAX_TS_LEN: usize = 64;

/// A parsed envelope whose signature has not been checked yet.
#[derive(Debug, Clone, PartialEq)]
pub struct Envelope {
    /// The timestamp text exactly as signed.
    pub ts: String,
    /// The command name.
    pub cmd: String,
    /// The arguments object.
    pub args: Map<String, Value>,
    /// The 32 signature bytes.
    pub sig: [u8; 32],
}

impl Envelope {
    /// Parses envelope bytes strictly. Errors are `too_large` or `malformed`.
    pub fn parse(bytes: &[u8]) -> Result<Envelope, CommandError> {
        if bytes.len() > MAX_ENVELOPE_BYTES {
            return Err(CommandError::new(
                ErrorKind::TooLarge,
                format!("too large: an envelope is at most {MAX_ENVELOPE_BYTES} bytes"),
            ));
        }
        let text =
            std::str::from_utf8(bytes).map_err(|_| malformed("the envelope is not valid UTF-8"))?;
        check_integer_ranges(text)?;
        let StrictValue(value) =
            serde_json::from_str(text).map_err(|e| malformed(&format!("not valid JSON ({e})")))?;
        let Value::Object(mut obj) = value else {
            return Err(malformed("the envelope must be a JSON object"));
        };
        if let Some(extra) = obj
            .keys()
            .find(|k| !matches!(k.as_str(), "ts" | "cmd" | "args" | "sig"))
        {
            return Err(malformed(&format!(
                "unknown field {:?}; an envelope has ts, cmd, args, sig",
                crate::redact::truncate(extra, 40)
            )));
        }
        let ts = take_string(&mut obj, "ts", MAX_TS_LEN)?;
        let cmd = take_string(&mut obj, "cmd", MAX_CMD_LEN)?;
        let sig_hex = take_string(&mut obj, "sig", 64)?;
        let args = match obj.remove("args") {
            None => Map::new(),
            Some(Value::Object(m)) => m,
            Some(_) => return Err(malformed("args must be a JSON object")),
        };
        let mut sig = [0u8; 32];
        hex::decode_to_slice(&sig_hex, &mut sig)
            .map_err(|_| malformed("sig must be 64 hex characters"))?;
        Ok(Envelope { ts, cmd, args, sig })
    }

    /// Makes and signs an envelope for `cmd` with `args`, timestamped `now`.
    pub fn sign(
        secret: &Secret,
        now: DateTime<Utc>,
        cmd: &str,
        args: Map<String, Value>,
    ) -> Envelope {
        // Milliseconds, so that the same command sent twice in one second is two envelopes.
        let ts = now.to_rfc3339_opts(SecondsFormat::Millis, true);
        Envelope::sign_with_ts(secret, ts, cmd, args)
    }

    /// Signs with `ts` exactly as given (for other clients' timestamp formats and tests).
    pub fn sign_with_ts(
        secret: &Secret,
        ts: String,
        cmd: &str,
        args: Map<String, Value>,
    ) -> Envelope {
        let mac = mac_for(secret, &ts, cmd, &args);
        let sig: [u8; 32] = mac.finalize().into_bytes().into();
        Envelope {
            ts,
            cmd: cmd.to_string(),
            args,
            sig,
        }
    }

    /// The envelope as JSON text, `sig` in lowercase hex.
    pub fn to_json(&self) -> String {
        serde_json::json!({
            "ts": self.ts,
            "cmd": self.cmd,
            "args": self.args,
            "sig": hex::encode(self.sig),
        })
        .to_string()
    }

    /// The signature as lowercase hex.
    pub fn sig_hex(&self) -> String {
        hex::encode(self.sig)
    }

    /// True when any of `secrets` accepted now made this signature (compared in constant
    /// time).
    pub fn signature_valid(&self, secrets: &SecretSet) -> bool {
        self.signature_valid_at(secrets, Utc::now())
    }

    /// True when any of `secrets` still accepted at `now` (a rotated-out secret only until
    /// its grace ends) made this signature, compared in constant time.
    pub fn signature_valid_at(&self, secrets: &SecretSet, now: DateTime<Utc>) -> bool {
        // Every secret is tried, expired or not, so the time taken does not tell which one
        // matched; an expired one's match does not count.
        let now = now.timestamp();
        let mut ok = false;
        for secret in secrets.all() {
            let mac = mac_for(secret, &self.ts, &self.cmd, &self.args);
            ok |= mac.verify_slice(&self.sig).is_ok() & secret.accepted_at(now);
        }
        ok
    }

    /// Parses `ts`: RFC 3339 (`Z` or an offset), or an ISO date-time without an offset,
    /// taken as UTC (as the Python prototype does).
    pub fn timestamp(&self) -> Result<DateTime<Utc>, CommandError> {
        if let Ok(t) = DateTime::parse_from_rfc3339(&self.ts) {
            return Ok(t.with_timezone(&Utc));
        }
        for format in ["%Y-%m-%dT%H:%M:%S%.f", "%Y-%m-%dT%H:%M:%S"] {
            if let Ok(t) = NaiveDateTime::parse_from_str(&self.ts, format) {
                return Ok(t.and_utc());
            }
        }
        Err(malformed(
            "ts must be an ISO 8601 time such as 2026-11-22T10:00:00Z",
        ))
    }

    /// Checks the signature (with the secrets accepted at `now`, the envelope's arrival) and
    /// then the time window. Replay is checked by the caller, against the persisted cache,
    /// after this succeeds.
    pub fn authenticate(
        &self,
        secrets: &SecretSet,
        now: DateTime<Utc>,
    ) -> Result<DateTime<Utc>, CommandError> {
        let ts = self.timestamp()?;
        if !self.signature_valid_at(secrets, now) {
            return Err(CommandError::new(ErrorKind::BadSignature, "bad signature"));
        }
        let skew_ms = (now - ts).num_milliseconds();
        let skew = skew_ms / 1000;
        if skew_ms.abs() > WINDOW_SECS * 1000 {
            let direction = if skew > 0 {
                "in the past"
            } else {
                "in the future"
            };
            return Err(CommandError::new(
                ErrorKind::Expired,
                format!(
                    "expired or clock skew: ts is {} s {direction}; commands are accepted within {WINDOW_SECS} s",
                    skew.abs()
                ),
            ));
        }
        Ok(ts)
    }
}

fn mac_for(secret: &Secret, ts: &str, cmd: &str, args: &Map<String, Value>) -> HmacSha256 {
    // HMAC takes keys of any length, so this cannot fail.
    let mut mac = match HmacSha256::new_from_slice(secret.as_bytes()) {
        Ok(m) => m,
        Err(_) => unreachable!("HMAC accepts keys of any length"),
    };
    mac.update(ts.as_bytes());
    mac.update(cmd.as_bytes());
    mac.update(python_dumps(&Value::Object(args.clone())).as_bytes());
    mac
}

fn malformed(why: &str) -> CommandError {
    CommandError::new(ErrorKind::Malformed, format!("malformed envelope: {why}"))
}

fn take_string(
    obj: &mut Map<String, Value>,
    key: &str,
    max: usize,
) -> Result<String, CommandError> {
    match obj.remove(key) {
        Some(Value::String(s)) if s.len() <= max => Ok(s),
        Some(Value::String(_)) => Err(malformed(&format!("{key} is longer than {max} bytes"))),
        Some(_) => Err(malformed(&format!("{key} must be a string"))),
        None => Err(malformed(&format!("missing {key}"))),
    }
}

/// Refuses integers that do not fit in 64 bits. serde_json would read them as floats and
/// the signature would then fail for a reason nobody could see; saying so is clearer.
fn check_integer_ranges(text: &str) -> Result<(), CommandError> {
    let out_of_range = integer_tokens(text)
        .any(|token| token.parse::<i64>().is_err() && token.parse::<u64>().is_err());
    if out_of_range {
        return Err(malformed("an integer is out of range (64 bits at most)"));
    }
    Ok(())
}

/// The integer number tokens of JSON text (numbers without a fraction or an exponent, sign
/// included), outside strings, as written. For text that serde_json accepts; on other text
/// it still ends, and returns what looks like an integer.
pub fn integer_tokens(text: &str) -> impl Iterator<Item = &str> {
    let bytes = text.as_bytes();
    let mut i = 0;
    let mut in_string = false;
    std::iter::from_fn(move || {
        while i < bytes.len() {
            let b = bytes[i];
            if in_string {
                match b {
                    b'\\' => i += 1,
                    b'"' => in_string = false,
                    _ => {}
                }
                i += 1;
            } else if b == b'"' {
                in_string = true;
                i += 1;
            } else if b == b'-' || b.is_ascii_digit() {
                let start = i;
                i += 1;
                while i < bytes.len()
                    && matches!(bytes[i], b'0'..=b'9' | b'.' | b'e' | b'E' | b'+' | b'-')
                {
                    i += 1;
                }
                let token = &text[start..i];
                if !token.contains(['.', 'e', 'E']) {
                    return Some(token);
                }
            } else {
                i += 1;
            }
        }
        None
    })
}

/// A JSON value parsed with duplicate object keys refused.
struct StrictValue(Value);

impl<'de> Deserialize<'de> for StrictValue {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(StrictVisitor).map(StrictValue)
    }
}

struct StrictVisitor;

impl<'de> Visitor<'de> for StrictVisitor {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON value")
    }
    fn visit_bool<E>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }
    fn visit_i64<E>(self, v: i64) -> Result<Value, E> {
        Ok(Value::from(v))
    }
    fn visit_u64<E>(self, v: u64) -> Result<Value, E> {
        Ok(Value::from(v))
    }
    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Value, E> {
        serde_json::Number::from_f64(v)
            .map(Value::Number)
            .ok_or_else(|| E::custom("a number is out of range"))
    }
    fn visit_str<E>(self, v: &str) -> Result<Value, E> {
        Ok(Value::String(v.to_string()))
    }
    fn visit_string<E>(self, v: String) -> Result<Value, E> {
        Ok(Value::String(v))
    }
    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }
    fn visit_none<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut items = Vec::new();
        while let Some(StrictValue(v)) = seq.next_element()? {
            items.push(v);
        }
        Ok(Value::Array(items))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let mut out = Map::new();
        while let Some(key) = map.next_key::<String>()? {
            let StrictValue(v) = map.next_value()?;
            if out.contains_key(&key) {
                return Err(de::Error::custom(format!(
                    "duplicate key {:?}",
                    crate::redact::truncate(&key, 40)
                )));
            }
            out.insert(key, v);
        }
        Ok(Value::Object(out))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn secrets() -> SecretSet {
        SecretSet {
            current: Secret::new(&"k".repeat(64)),
            previous: vec![Secret::new(&"p".repeat(64))],
        }
    }

    #[test]
    fn sign_then_verify_roundtrip() {
        let now = Utc::now();
        let args = json!({"context": "notion"}).as_object().cloned().unwrap();
        let env = Envelope::sign(&secrets().current, now, "status", args);
        let parsed = Envelope::parse(env.to_json().as_bytes()).unwrap();
        assert_eq!(parsed, env);
        assert!(parsed.authenticate(&secrets(), now).is_ok());
    }

    #[test]
    fn previous_secret_verifies_and_unknown_does_not() {
        let now = Utc::now();
        let prev = Envelope::sign(&secrets().previous[0], now, "list", Map::new());
        assert!(prev.signature_valid(&secrets()));
        let other = Envelope::sign(&Secret::new(&"z".repeat(64)), now, "list", Map::new());
        assert!(!other.signature_valid(&secrets()));
    }

    #[test]
    fn a_rotated_secret_verifies_until_its_expiry_only() {
        let now = Utc::now();
        let rotated = Secret::new(&"r".repeat(64)).until(now.timestamp() + 10);
        let set = SecretSet {
            current: Secret::new(&"k".repeat(64)),
            previous: vec![rotated.clone()],
        };
        let env = Envelope::sign(&rotated, now, "list", Map::new());
        assert!(env.authenticate(&set, now).is_ok());
        let later = now + chrono::Duration::seconds(10);
        assert!(!env.signature_valid_at(&set, later));
        assert_eq!(
            env.authenticate(&set, later).unwrap_err().kind,
            ErrorKind::BadSignature
        );
    }

    #[test]
    fn strictness() {
        let dup = br#"{"ts":"x","cmd":"list","args":{"a":1,"a":2},"sig":"00"}"#;
        assert_eq!(Envelope::parse(dup).unwrap_err().kind, ErrorKind::Malformed);
        let big =
            br#"{"ts":"x","cmd":"list","args":{"a":123456789012345678901234567890},"sig":"00"}"#;
        assert!(Envelope::parse(big)
            .unwrap_err()
            .message
            .contains("out of range"));
        let huge = vec![b' '; MAX_ENVELOPE_BYTES + 1];
        assert_eq!(
            Envelope::parse(&huge).unwrap_err().kind,
            ErrorKind::TooLarge
        );
        let extra = br#"{"ts":"x","cmd":"list","args":{},"sig":"00","x":1}"#;
        assert!(Envelope::parse(extra)
            .unwrap_err()
            .message
            .contains("unknown field"));
    }

    #[test]
    fn window_both_ways() {
        let now = Utc::now();
        let s = secrets();
        let old = Envelope::sign(
            &s.current,
            now - chrono::Duration::seconds(301),
            "list",
            Map::new(),
        );
        assert_eq!(
            old.authenticate(&s, now).unwrap_err().kind,
            ErrorKind::Expired
        );
        let future = Envelope::sign(
            &s.current,
            now + chrono::Duration::seconds(301),
            "list",
            Map::new(),
        );
        assert_eq!(
            future.authenticate(&s, now).unwrap_err().kind,
            ErrorKind::Expired
        );
        let edge = Envelope::sign(
            &s.current,
            now - chrono::Duration::seconds(299),
            "list",
            Map::new(),
        );
        assert!(edge.authenticate(&s, now).is_ok());
    }
}
