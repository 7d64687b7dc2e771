//! What an approval code is, and how it may be shown.
//!
//! A code is 10 characters from a 31-letter alphabet with no look-alikes (about 49 bits),
//! shown as `ABCDE-FGHJK` and accepted in any case, with or without the dash. Whoever holds
//! a live one can approve an external action, so an [`ApprovalCode`] prints, debugs and
//! serialises as its reference (`a-` and ten hex digits of its SHA-256), which names the
//! approval without being usable as its code. No reply, audit entry, log line or incident
//! can carry a code by accident; the clear text comes out only through
//! [`ApprovalCode::reveal_in_clear`], which the gate calls in one place
//! (`gate::approvals`; docs/security-model.md, "Approval codes").
//!
//! It sits low (beside `text`) so that records below the policy (incidents) can name an
//! approval by its reference.

use serde::Serialize;
use sha2::{Digest, Sha256};
use std::fmt;

/// The letters codes are made of: no 0/O or 1/I/L to misread on a phone.
pub const CODE_ALPHABET: &[u8] = b"ABCDEFGHJKMNPQRSTUVWXYZ23456789";
const ALPHABET_LEN: usize = 31;
/// Characters in a code.
pub const CODE_LEN: usize = 10;

/// An approval code, live or typed. Whoever holds one can approve an external action, so it
/// is shown as its [reference](ApprovalCode::reference) everywhere (`Display`, `Debug`,
/// `Serialize`); only [`ApprovalCode::reveal_in_clear`] gives the code itself.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct ApprovalCode(String);

impl ApprovalCode {
    /// A new random code from the operating system's random source.
    pub fn random() -> Result<ApprovalCode, getrandom::Error> {
        let mut code = String::with_capacity(CODE_LEN);
        while code.len() < CODE_LEN {
            let mut buf = [0u8; 16];
            getrandom::fill(&mut buf)?;
            // Rejection sampling keeps every letter equally likely.
            for b in buf {
                if (b as usize) < ALPHABET_LEN * 8 && code.len() < CODE_LEN {
                    code.push(CODE_ALPHABET[b as usize % ALPHABET_LEN] as char);
                }
            }
        }
        Ok(ApprovalCode(code))
    }

    /// Reads what a person typed: case folded, dashes and spaces dropped. None when it cannot
    /// be a code.
    pub fn parse(typed: &str) -> Option<ApprovalCode> {
        normalise_code(typed).map(ApprovalCode)
    }

    /// The code a store key holds (the approvals tree, the prompts a reaction answers, the
    /// MCP key's request ids). None when the bytes are not a code.
    pub fn from_store_key(bytes: &[u8]) -> Option<ApprovalCode> {
        std::str::from_utf8(bytes)
            .ok()
            .and_then(ApprovalCode::parse)
    }

    /// The bytes the store keys this approval by. For store keys only: never for text.
    pub fn store_key(&self) -> &[u8] {
        self.0.as_bytes()
    }

    /// A name for the approval that cannot be used as its code: `a-` and the first ten hex
    /// digits of the code's SHA-256. Replies, the audit log and incidents name approvals so.
    pub fn reference(&self) -> String {
        reference(&self.0)
    }

    /// The code in clear, as the owner types it: `ABCDE-FGHJK`. The gate calls this in one
    /// place, the function that decides where a code may be shown (the owner's Signal prompt,
    /// and the console's own reply when there is no phone); see docs/security-model.md.
    pub fn reveal_in_clear(&self) -> String {
        display_code(&self.0)
    }
}

impl fmt::Display for ApprovalCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.reference())
    }
}

impl fmt::Debug for ApprovalCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ApprovalCode({})", self.reference())
    }
}

impl Serialize for ApprovalCode {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.reference())
    }
}

/// A name for the approval with the normalised `code` that cannot be used as the code: `a-`
/// and the first ten hex digits of the code's SHA-256. A text that is not a code (an older
/// record's field) is named the same way after normalising, so a code typed with a dash and
/// the same code without one have one reference.
pub fn reference(code: &str) -> String {
    let code = normalise_code(code).unwrap_or_else(|| code.to_string());
    let digest = Sha256::digest(code.as_bytes());
    format!("a-{}", &hex::encode(digest)[..10])
}

/// True for `a-` and ten lowercase hex digits: the shape of a reference.
pub fn is_reference(text: &str) -> bool {
    text.len() == 12
        && text.starts_with("a-")
        && text[2..]
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

/// Formats a normalised code with its dash.
fn display_code(code: &str) -> String {
    if code.len() == CODE_LEN && code.is_ascii() {
        format!("{}-{}", &code[..5], &code[5..])
    } else {
        code.to_string()
    }
}

/// Normalises what a person typed: case folded, dashes and spaces dropped. None when it
/// cannot be a code.
fn normalise_code(typed: &str) -> Option<String> {
    let code: String = typed
        .chars()
        .filter(|c| !matches!(c, '-' | ' '))
        .map(|c| c.to_ascii_uppercase())
        .collect();
    (code.len() == CODE_LEN && code.bytes().all(|b| CODE_ALPHABET.contains(&b))).then_some(code)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_normalise_and_have_the_right_shape() {
        let code = ApprovalCode::random().unwrap();
        assert_eq!(code.0.len(), CODE_LEN);
        let shown = code.reveal_in_clear();
        assert_eq!(
            ApprovalCode::parse(&shown.to_lowercase()),
            Some(code.clone())
        );
        assert_eq!(
            reference(&shown),
            code.reference(),
            "one reference, dash or not"
        );
        assert_eq!(
            ApprovalCode::parse("ABCDE-FGHJ0"),
            None,
            "0 is not in the alphabet"
        );
        assert_eq!(ApprovalCode::parse("short"), None);
        // 31^10 > 2^49: at least 40 bits.
        assert!((ALPHABET_LEN as f64).powi(CODE_LEN as i32).log2() >= 40.0);
    }

    #[test]
    fn a_code_shows_only_its_reference() {
        let code = ApprovalCode::random().unwrap();
        let clear = code.reveal_in_clear();
        let bare = clear.replace('-', "");
        let reference = code.reference();
        assert!(is_reference(&reference), "{reference}");
        assert!(!is_reference(&clear));
        for shown in [
            code.to_string(),
            format!("{code:?}"),
            format!("{code:#?}"),
            serde_json::to_string(&code).unwrap(),
            serde_json::json!({"code": code}).to_string(),
        ] {
            assert!(shown.contains(&reference), "{shown}");
            assert!(!shown.contains(&clear) && !shown.contains(&bare), "{shown}");
        }
    }
}
