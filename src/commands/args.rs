//! A command's arguments, declared once in its file: the parser refuses any key not declared
//! and any required one that is missing ([`check`]), `help` shows them ([`usage`]), and the
//! MCP server gives the model a JSON Schema made from them ([`schema`]). So what the model is
//! told a tool takes is what the parser accepts.

use super::{find, Spec};
use crate::redact::truncate;
use crate::reply::{CommandError, ErrorKind};
use serde_json::{json, Map, Value};

/// What one argument holds. Each kind's schema matches what its typed reader in
/// `commands::Args` accepts (a unit test feeds every kind's [`Kind::example`] to the parser).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A context name: lowercase ASCII letters, digits, `.`, `_`, `-`, at most 63.
    Context,
    /// An http(s) URL.
    Url,
    /// Free text of at most `max` characters.
    Text {
        /// The longest it may be, in characters.
        max: usize,
    },
    /// true or false (`"true"` / `"false"` as text too).
    Flag,
    /// A money amount in whole units with at most two decimals (`25`, `"25.50"`).
    Amount,
    /// A whole number between `min` and `max`.
    Count {
        /// The smallest allowed.
        min: u64,
        /// The largest allowed.
        max: u64,
    },
    /// An RFC 3339 time.
    Time,
    /// An approval code, `ABCDE-FGHJK`.
    Code,
    /// The name of a tool that grants apply to.
    ToolName,
    /// An incident id, `i-` and ten hex digits.
    IncidentId,
    /// An MCP request id, `r-` and sixteen hex digits.
    RequestId,
    /// One of the listed words.
    Choice(&'static [&'static str]),
    /// A card: `{limit}`, or true / false.
    Card,
    /// At most 20 domain names.
    Domains,
    /// At most 20 card descriptors (merchant names as a card statement shows them).
    Descriptors,
    /// The audit chain's head as the digest gave it: `{seq, hash}`.
    ChainHead,
    /// A solved captcha: the `signalcaptcha://` link, printable ASCII without spaces.
    Captcha,
}

/// One argument of a command.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Arg {
    /// Its key in `args`.
    pub name: &'static str,
    /// What it holds.
    pub kind: Kind,
    /// False when it may be left out.
    pub required: bool,
    /// What it means, for the schema's description.
    pub about: &'static str,
}

/// A required argument.
pub const fn req(name: &'static str, kind: Kind, about: &'static str) -> Arg {
    Arg {
        name,
        kind,
        required: true,
        about,
    }
}

/// An optional argument.
pub const fn opt(name: &'static str, kind: Kind, about: &'static str) -> Arg {
    Arg {
        name,
        kind,
        required: false,
        about,
    }
}

/// The context argument most commands take.
pub const CONTEXT: Arg = req("context", Kind::Context, "the context's name");

/// The pattern of a context name.
pub const CONTEXT_PATTERN: &str = "^[a-z0-9][a-z0-9._-]{0,62}$";
/// The pattern of an amount given as text.
const AMOUNT_PATTERN: &str = "^[0-9]{1,9}(\\.[0-9]{1,2})?$";

/// Why `args` do not fit `spec`: an unexpected key (with what it takes) or a missing one.
pub fn check(spec: &[Arg], args: &Map<String, Value>) -> Result<(), String> {
    if let Some(k) = args.keys().find(|k| !spec.iter().any(|a| a.name == *k)) {
        let takes: Vec<&str> = spec.iter().map(|a| a.name).collect();
        return Err(format!(
            "unexpected argument {:?} (takes: {})",
            crate::redact::truncate(k, 40),
            if takes.is_empty() {
                "nothing".to_string()
            } else {
                takes.join(", ")
            }
        ));
    }
    match spec
        .iter()
        .find(|a| a.required && args.get(a.name).is_none_or(Value::is_null))
    {
        Some(a) => Err(format!("missing argument {}", a.name)),
        None => Ok(()),
    }
}

/// The arguments as `help` shows them: `{context, limit?}`, or empty for none.
pub fn usage(spec: &[Arg]) -> String {
    if spec.is_empty() {
        return String::new();
    }
    let names: Vec<String> = spec
        .iter()
        .map(|a| {
            if a.required {
                a.name.to_string()
            } else {
                format!("{}?", a.name)
            }
        })
        .collect();
    format!("{{{}}}", names.join(", "))
}

/// The JSON Schema of an `args` object that fits `spec` (unknown keys refused, as the parser
/// refuses them).
pub fn schema(spec: &[Arg]) -> Map<String, Value> {
    let mut properties = Map::new();
    for a in spec {
        let mut s = a.kind.schema();
        s.insert("description".into(), json!(a.about));
        properties.insert(a.name.into(), Value::Object(s));
    }
    let required: Vec<&str> = spec.iter().filter(|a| a.required).map(|a| a.name).collect();
    let mut out = Map::new();
    out.insert("type".into(), json!("object"));
    out.insert("properties".into(), Value::Object(properties));
    if !required.is_empty() {
        out.insert("required".into(), json!(required));
    }
    out.insert("additionalProperties".into(), json!(false));
    out
}

impl Kind {
    /// This kind's JSON Schema (without a description).
    pub fn schema(self) -> Map<String, Value> {
        let v = match self {
            Kind::Context => json!({"type": "string", "pattern": CONTEXT_PATTERN}),
            Kind::Url => json!({"type": "string", "format": "uri", "pattern": "^https?://"}),
            Kind::Text { max } => json!({"type": "string", "maxLength": max}),
            Kind::Flag => json!({"type": "boolean"}),
            Kind::Amount => json!({"anyOf": [
                {"type": "number", "minimum": 0},
                {"type": "string", "pattern": AMOUNT_PATTERN},
            ]}),
            Kind::Count { min, max } => json!({"type": "integer", "minimum": min, "maximum": max}),
            Kind::Time => json!({"type": "string", "format": "date-time"}),
            Kind::Code => json!({"type": "string", "pattern": "^[A-Za-z0-9]{5}-?[A-Za-z0-9]{5}$"}),
            Kind::ToolName => {
                let names: Vec<&str> = super::specs()
                    .filter(|s| s.tool.grantable)
                    .map(|s| s.tool.name)
                    .collect();
                json!({"type": "string", "enum": names})
            }
            Kind::IncidentId => json!({"type": "string", "pattern": "^i-[0-9a-fA-F]{10}$"}),
            Kind::RequestId => json!({"type": "string", "pattern": "^r-[0-9a-f]{16}$"}),
            Kind::Choice(words) => json!({"type": "string", "enum": words}),
            Kind::Card => json!({"anyOf": [
                {"type": "boolean"},
                {"type": "object", "properties": {"limit": Kind::Amount.schema()}, "additionalProperties": false},
            ]}),
            Kind::Domains => json!({"type": "array", "items": {"type": "string"}, "maxItems": 20}),
            Kind::Descriptors => {
                json!({"type": "array", "items": {"type": "string", "maxLength": 60}, "maxItems": 20})
            }
            Kind::Captcha => json!({"type": "string", "maxLength": 8192, "pattern": "^[!-~]+$"}),
            Kind::ChainHead => json!({
                "type": "object",
                "properties": {
                    "seq": {"type": "integer", "minimum": 0},
                    "hash": {"type": "string", "pattern": "^[0-9a-f]{64}$"},
                },
                "required": ["seq", "hash"],
                "additionalProperties": false,
            }),
        };
        match v {
            Value::Object(m) => m,
            _ => Map::new(),
        }
    }

    /// A value of this kind that the parser accepts, for the tests that keep the schema and
    /// the parser in step.
    pub fn example(self) -> Value {
        match self {
            Kind::Context => json!("notion"),
            Kind::Url => json!("https://www.notion.so/x"),
            Kind::Text { .. } => json!("a note"),
            Kind::Flag => json!(true),
            Kind::Amount => json!("25.50"),
            Kind::Count { min, .. } => json!(min),
            Kind::Time => json!("2026-11-22T10:00:00Z"),
            Kind::Code => json!("ABCDE-FGHJK"),
            Kind::ToolName => json!("list"),
            Kind::IncidentId => json!("i-0123456789"),
            Kind::RequestId => json!("r-0123456789abcdef"),
            Kind::Choice(words) => json!(words.first().copied().unwrap_or_default()),
            Kind::Card => json!({"limit": 5}),
            Kind::Domains => json!(["mailgun.net"]),
            Kind::Descriptors => json!(["NOTION LABS"]),
            Kind::ChainHead => json!({"seq": 1, "hash": "0".repeat(64)}),
            Kind::Captcha => json!("signalcaptcha://signal-hcaptcha.5fad97ac.registration.P1_eyJ0"),
        }
    }
}

/// Typed access to an envelope's `args`, refusing anything unexpected.
pub struct Args<'a>(pub &'a Map<String, Value>);

impl Args<'_> {
    /// Refuses any key not in `allowed`.
    pub fn only(&self, allowed: &[&str]) -> Result<(), CommandError> {
        match self.0.keys().find(|k| !allowed.contains(&k.as_str())) {
            Some(k) => Err(invalid(format!(
                "unexpected argument {:?} (takes: {})",
                truncate(k, 40),
                if allowed.is_empty() {
                    "nothing".to_string()
                } else {
                    allowed.join(", ")
                }
            ))),
            None => Ok(()),
        }
    }

    /// A required string.
    pub fn string(&self, key: &str) -> Result<String, CommandError> {
        self.opt_string(key)?
            .ok_or_else(|| invalid(format!("missing argument {key}")))
    }

    /// An optional string.
    pub fn opt_string(&self, key: &str) -> Result<Option<String>, CommandError> {
        match self.0.get(key) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.clone())),
            Some(_) => Err(invalid(format!("{key} must be a string"))),
        }
    }

    /// An optional non-negative integer (a numeric string is accepted, as typed on a phone).
    pub fn opt_u64(&self, key: &str) -> Result<Option<u64>, CommandError> {
        match self.0.get(key) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::Number(n)) => n
                .as_u64()
                .map(Some)
                .ok_or_else(|| invalid(format!("{key} must be a whole number of 0 or more"))),
            Some(Value::String(s)) => s
                .trim()
                .parse()
                .map(Some)
                .map_err(|_| invalid(format!("{key} must be a whole number of 0 or more"))),
            Some(_) => Err(invalid(format!("{key} must be a whole number"))),
        }
    }

    /// An optional boolean (`"true"`/`"false"` strings are accepted).
    pub fn opt_bool(&self, key: &str) -> Result<Option<bool>, CommandError> {
        match self.0.get(key) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::Bool(b)) => Ok(Some(*b)),
            Some(Value::String(s)) if s == "true" => Ok(Some(true)),
            Some(Value::String(s)) if s == "false" => Ok(Some(false)),
            Some(_) => Err(invalid(format!("{key} must be true or false"))),
        }
    }

    /// An optional money amount in whole units with at most two decimals (`25`, `25.5`,
    /// `"25.50"`), returned in cents.
    pub fn opt_amount_cents(&self, key: &str) -> Result<Option<u64>, CommandError> {
        let text = match self.0.get(key) {
            None | Some(Value::Null) => return Ok(None),
            Some(Value::Number(n)) => n.to_string(),
            Some(Value::String(s)) => s.trim().to_string(),
            Some(_) => {
                return Err(invalid(format!(
                    "{key} must be an amount such as 25 or 25.50"
                )))
            }
        };
        parse_cents(&text).map(Some).ok_or_else(|| {
            invalid(format!(
                "{key} must be an amount of 0 or more with at most two decimals, such as 25.50"
            ))
        })
    }

    /// A required context name: lowercase ASCII letters, digits, `.`, `_`, `-`, at most 63,
    /// starting with a letter or digit. Look-alike Unicode names are refused, not folded.
    pub fn context(&self) -> Result<String, CommandError> {
        let name = self.string("context")?;
        validate_context_name(&name)?;
        Ok(name)
    }

    /// A required tool name that grants apply to.
    pub fn grantable_tool(&self) -> Result<&'static Spec, CommandError> {
        let name = self.string("tool")?;
        match find(&name) {
            Some(t) if t.tool.grantable => Ok(t),
            Some(t) => Err(invalid(format!(
                "{} is one of the policy's own controls and always available",
                t.name()
            ))),
            None => Err(CommandError::new(
                ErrorKind::NotFound,
                format!("no such tool: {}", truncate(&name, 40)),
            )),
        }
    }
}

/// Parses "25", "25.5" or "25.50" into cents; None for anything else (negative, three
/// decimals, exponents, over a billion).
pub fn parse_cents(text: &str) -> Option<u64> {
    let (whole, frac) = match text.split_once('.') {
        Some((w, f)) => (w, f),
        None => (text, ""),
    };
    if whole.is_empty() || whole.len() > 9 || frac.len() > 2 {
        return None;
    }
    if !whole.bytes().all(|b| b.is_ascii_digit()) || !frac.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let whole: u64 = whole.parse().ok()?;
    let frac: u64 = if frac.is_empty() {
        0
    } else {
        format!("{frac:0<2}").parse().ok()?
    };
    Some(whole * 100 + frac)
}

/// Checks a context name (see [`Args::context`]).
pub fn validate_context_name(name: &str) -> Result<(), CommandError> {
    let ok = !name.is_empty()
        && name.len() <= 63
        && name.bytes().all(|b| {
            b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'.' | b'_' | b'-')
        })
        && name.as_bytes()[0].is_ascii_alphanumeric();
    if ok {
        Ok(())
    } else {
        Err(invalid(format!(
            "invalid context name {:?}: use lowercase letters, digits, '.', '_' or '-' (at most 63)",
            truncate(name, 40)
        )))
    }
}

/// An `invalid_args` error.
pub fn invalid(message: impl Into<String>) -> CommandError {
    CommandError::new(ErrorKind::InvalidArgs, message)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn check_refuses_unknown_and_missing_keys() {
        let spec = [CONTEXT, opt("limit", Kind::Amount, "x")];
        let ok = json!({"context": "a"});
        assert!(check(&spec, ok.as_object().unwrap()).is_ok());
        let extra = json!({"context": "a", "x": 1});
        let e = check(&spec, extra.as_object().unwrap()).unwrap_err();
        assert!(e.contains("takes: context, limit"), "{e}");
        let missing = json!({"limit": 1});
        assert_eq!(
            check(&spec, missing.as_object().unwrap()).unwrap_err(),
            "missing argument context"
        );
        assert_eq!(usage(&spec), "{context, limit?}");
        let s = schema(&spec);
        assert_eq!(s["required"], json!(["context"]));
        assert_eq!(s["additionalProperties"], json!(false));
    }

    #[test]
    fn amounts() {
        assert_eq!(parse_cents("25"), Some(2500));
        assert_eq!(parse_cents("25.5"), Some(2550));
        assert_eq!(parse_cents("0.07"), Some(7));
        for bad in ["-1", "1.234", "1e3", "", ".5", "abc", "1234567890"] {
            assert_eq!(parse_cents(bad), None, "{bad}");
        }
    }

    #[test]
    fn context_names_are_strict() {
        for bad in ["", "Notion", "nоtion", "-x", "a b", "a/b", &"a".repeat(64)] {
            assert!(validate_context_name(bad).is_err(), "{bad:?}");
        }
        for good in ["notion", "travel-aa-2025", "a.b_c"] {
            assert!(validate_context_name(good).is_ok(), "{good}");
        }
    }
}
