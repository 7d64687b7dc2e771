//! Field names that say their value is a secret, whatever the value looks like.

/// Field names whose values are always redacted, whatever they look like, as
/// [`normalized_field`] writes them.
const SECRET_FIELDS: &[&str] = &[
    "pan",
    "cvv",
    "cvc",
    "cvv2",
    "cvc2",
    "cardnumber",
    "pin",
    "otp",
    "totp",
    "pass",
    "pwd",
    "authorization",
    "authentication",
    "bearer",
    "cookie",
    "setcookie",
    "credential",
    "credentials",
];

/// Endings of normalized field names that say the field holds a secret: `token` covers
/// `access_token`, `refresh_token`, `id_token`; `secret` covers `client_secret`; `apikey`
/// covers `api-key`, `x-api-key`, `apiKey`.
const SECRET_FIELD_ENDINGS: &[&str] = &[
    "token",
    "secret",
    "password",
    "passwd",
    "passphrase",
    "apikey",
    "privatekey",
    "secretkey",
    "accesskey",
];

/// A field name lowered with everything but ASCII letters and digits dropped, so that
/// `api-key`, `API_KEY` and `apiKey` are one name.
fn normalized_field(name: &str) -> String {
    name.chars()
        .filter(char::is_ascii_alphanumeric)
        .map(|c| c.to_ascii_lowercase())
        .collect()
}

/// True when a field of this name holds a secret, whatever its value looks like.
pub fn is_secret_field(name: &str) -> bool {
    let n = normalized_field(name);
    SECRET_FIELDS.contains(&n.as_str()) || SECRET_FIELD_ENDINGS.iter().any(|e| n.ends_with(e))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::redact::{Redactor, REDACTED};
    use serde_json::json;

    #[test]
    fn fields_named_for_secrets() {
        for name in [
            "token",
            "access_token",
            "refresh-token",
            "api-key",
            "X-Api-Key",
            "apiKey",
            "client_secret",
            "private_key",
            "passwd",
            "pin",
            "PIN",
            "Authorization",
            "card_number",
            "agent_secret",
        ] {
            assert!(is_secret_field(name), "{name}");
            let r = Redactor::default();
            assert_eq!(r.json(&json!({ name: "x" }))[name], REDACTED, "{name}");
        }
        for name in [
            "tokens_used",
            "pinned",
            "keyboard",
            "context",
            "spin",
            "sig",
            "hash",
        ] {
            assert!(!is_secret_field(name), "{name}");
        }
    }
}
