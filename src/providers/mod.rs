//! Providers: the outside services the agent drives, each behind a trait with a real
//! reqwest implementation. Which one serves aliases and which serves cards is chosen in the
//! config; keys come from the environment; base URLs default to the real services and may be
//! pointed at loopback test servers. The memory providers ([`memory`]) serve in-process tests;
//! they are built in code, never from the config.

pub mod addy;
pub mod card_activity;
pub mod configured;
pub mod hibp;
pub mod http;
pub mod lithic;
pub mod memory;
pub mod privacy;
pub mod simplelogin;

pub use http::{ProviderClient, ProviderError, RetryPolicy};

use serde::{Deserialize, Serialize};
use std::future::Future;

/// What the agent asks an alias provider to make.
#[derive(Debug, Clone, PartialEq)]
pub struct NewAlias {
    /// The description (addy.io) or note (SimpleLogin). It carries the intent marker, so an
    /// alias whose creation was interrupted can be found again.
    pub description: String,
    /// The site's host name (SimpleLogin uses it to suggest the alias's prefix).
    pub hostname: String,
}

/// An alias as the provider reports it (only what the agent keeps).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AliasInfo {
    /// The provider's id (a UUID at addy.io, an integer at SimpleLogin), as text.
    pub id: String,
    /// The address.
    pub email: String,
    /// Whether it forwards.
    pub active: bool,
    /// Description or note.
    pub description: Option<String>,
    /// Mails forwarded so far.
    pub forwarded: u64,
    /// Mails blocked so far.
    pub blocked: u64,
}

/// One entry of an alias's activity log (SimpleLogin's `GET /api/aliases/{id}/activities`).
#[derive(Debug, Clone, PartialEq, Deserialize, serde::Serialize)]
pub struct Activity {
    /// `forward`, `reply`, `block` or `bounced`.
    pub action: String,
    /// The sender (for `reply`, the alias).
    pub from: String,
    /// The alias (for `reply`, the contact).
    pub to: String,
    /// Unix seconds.
    #[serde(default)]
    pub timestamp: i64,
}

/// A disposable-alias service (addy.io, SimpleLogin).
pub trait AliasProvider: Send + Sync {
    /// The provider's name, for replies and the audit log.
    fn name(&self) -> &'static str;
    /// Creates an alias.
    fn create(
        &self,
        new: &NewAlias,
    ) -> impl Future<Output = Result<AliasInfo, ProviderError>> + Send;
    /// Reads one alias.
    fn get(&self, id: &str) -> impl Future<Output = Result<AliasInfo, ProviderError>> + Send;
    /// Turns forwarding on or off (idempotent: setting the current state is a no-op).
    fn set_active(
        &self,
        id: &str,
        active: bool,
    ) -> impl Future<Output = Result<(), ProviderError>> + Send;
    /// Deletes the alias (a deleted address stops receiving mail).
    fn delete(&self, id: &str) -> impl Future<Output = Result<(), ProviderError>> + Send;
    /// Every alias, all pages; returns the aliases and the number of requests made.
    fn list(&self) -> impl Future<Output = Result<(Vec<AliasInfo>, u32), ProviderError>> + Send;
    /// The alias whose description contains `marker`, if any (reconciling an interrupted create).
    fn find_by_marker(
        &self,
        marker: &str,
    ) -> impl Future<Output = Result<Option<AliasInfo>, ProviderError>> + Send;
    /// True when the provider keeps an activity log per alias that the breach monitor reads
    /// (SimpleLogin); false by default.
    fn keeps_activity_log(&self) -> bool {
        false
    }
    /// The newest `want` entries of an alias's activity log; None when the provider keeps
    /// no such log.
    fn activities(
        &self,
        _id: &str,
        _want: usize,
    ) -> impl Future<Output = Result<Option<Vec<Activity>>, ProviderError>> + Send {
        std::future::ready(Ok(None))
    }
}

/// The state of a card at the provider.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum CardState {
    /// Can be charged within its limit.
    Open,
    /// Cannot be charged until opened.
    Paused,
    /// Closed for good.
    Closed,
    /// Any state a newer API adds.
    #[serde(other)]
    Unknown,
}

/// What the agent asks a card provider to make: always paused, merchant-locked on first use.
#[derive(Debug, Clone, PartialEq)]
pub struct NewCard {
    /// The memo; it carries the intent marker.
    pub memo: String,
    /// The spend limit in cents (0 until the owner funds it).
    pub spend_limit_cents: u64,
}

/// A change to a card.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct CardUpdate {
    /// New state.
    pub state: Option<CardState>,
    /// New spend limit in cents.
    pub spend_limit_cents: Option<u64>,
}

/// A card as the agent keeps it. The number and CVV the provider returns are never read into
/// this type, so they cannot be stored, logged or sent on.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CardInfo {
    /// The provider's token.
    pub token: String,
    /// Last four digits (safe to show).
    pub last_four: String,
    /// The memo.
    pub memo: String,
    /// Spend limit in cents.
    pub spend_limit: u64,
    /// TRANSACTION, MONTHLY, ANNUALLY or FOREVER.
    pub spend_limit_duration: String,
    /// Its state.
    pub state: CardState,
}

/// One card transaction, as shown to the owner.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Transaction {
    /// The provider's token.
    pub token: String,
    /// Amount in cents.
    pub amount: i64,
    /// The merchant's descriptor.
    pub merchant: String,
    /// Status (APPROVED, DECLINED, SETTLED, ...).
    pub status: String,
    /// When (RFC 3339).
    pub created: String,
}

/// One authorisation or transaction on any card of the account, as the card canaries read
/// it: never the card's number, only its token.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CardTransaction {
    /// The provider's token for the transaction.
    pub token: String,
    /// The card's token.
    pub card_token: String,
    /// When it was created (RFC 3339).
    pub created: String,
    /// Amount in cents.
    pub amount: i64,
    /// `APPROVED` or the decline reason (`CARD_PAUSED`, `CARD_CLOSED`, ...), escaped.
    pub result: String,
    /// `PENDING`, `SETTLED`, `DECLINED`, ..., escaped.
    pub status: String,
    /// The merchant's descriptor, escaped and truncated.
    pub merchant: String,
}

/// A virtual-card service (Privacy.com, Lithic).
pub trait CardProvider: Send + Sync {
    /// The provider's name.
    fn name(&self) -> &'static str;
    /// Creates a card.
    fn create(&self, new: &NewCard)
        -> impl Future<Output = Result<CardInfo, ProviderError>> + Send;
    /// Changes a card.
    fn update(
        &self,
        token: &str,
        update: &CardUpdate,
    ) -> impl Future<Output = Result<CardInfo, ProviderError>> + Send;
    /// One card as the provider has it now: what start-up reconciliation reads after a change
    /// whose outcome is unknown, so the card record never lies.
    fn get(&self, token: &str) -> impl Future<Output = Result<CardInfo, ProviderError>> + Send;
    /// Every card, all pages, and the number of requests made.
    fn list(&self) -> impl Future<Output = Result<(Vec<CardInfo>, u32), ProviderError>> + Send;
    /// The card whose memo contains `marker`, if any.
    fn find_by_marker(
        &self,
        marker: &str,
    ) -> impl Future<Output = Result<Option<CardInfo>, ProviderError>> + Send;
    /// A card's transactions (the first page: the newest).
    fn transactions(
        &self,
        token: &str,
    ) -> impl Future<Output = Result<Vec<Transaction>, ProviderError>> + Send;
    /// Every card's transactions since `cursor` (all of them without one), declined ones
    /// included, in one account-wide read ([`card_activity`]).
    fn account_transactions(
        &self,
        cursor: Option<&card_activity::TxnCursor>,
    ) -> impl Future<Output = Result<card_activity::TxnBatch, ProviderError>> + Send;
}

/// The entries of one page of a listing that fit their documented shape. One that does not
/// (an odd alias or card made elsewhere in the owner's account, or a provider answering
/// nonsense) is left out with a warning instead of failing the whole listing: a listing
/// serves `list {refresh}`, reconciliation and the look-up of an interrupted create, which
/// one bad entry must not stop. The warning names the fault, never the value.
pub(crate) fn fitting<T>(
    provider: &'static str,
    entries: impl IntoIterator<Item = Result<T, ProviderError>>,
) -> Vec<T> {
    entries
        .into_iter()
        .filter_map(|entry| match entry {
            Ok(v) => Some(v),
            Err(e) => {
                tracing::warn!(provider, error = %e, "an entry of a listing is not of the documented shape; left out");
                None
            }
        })
        .collect()
}

/// Reads a base URL: the environment override, else the config value, else the default.
pub fn base_url(env_var: &str, configured: &str, default: &str) -> String {
    match std::env::var(env_var) {
        Ok(v) if !v.trim().is_empty() => v.trim().to_string(),
        _ if !configured.trim().is_empty() => configured.trim().to_string(),
        _ => default.to_string(),
    }
}

/// Reads an API key from the environment, else from the systemd `provider-keys` credential.
pub fn api_key(provider: &'static str, env_var: &str) -> Result<String, ProviderError> {
    crate::systemd::env_or_credential(env_var).ok_or_else(|| ProviderError::NotConfigured {
        provider,
        hint: format!("set {env_var} in the agent's environment (or the provider-keys credential)"),
    })
}

/// The longest alias address accepted (RFC 5321's limit on a path).
const MAX_EMAIL_LEN: usize = 254;

/// An alias address as a provider sent it, checked for the shape of a plain address: one
/// `@`; a local part of at most 64 characters from RFC 5322's atoms (letters, digits,
/// ``!#$%&'*+/=?^_`{|}~-``) and dots; a domain of at least two dot-separated labels of
/// letters, digits and `-`; at most 254 characters in all. The address reaches the owner's
/// approval prompts (`expire` names it), so a compromised provider must not be able to put a
/// line break, a zero-width or bidirectional character, or anything that is not an address
/// into it: such a value is a `Decode` error, and nothing of it is kept (nor quoted in the
/// error).
pub fn checked_email(provider: &'static str, email: String) -> Result<String, ProviderError> {
    let refuse = |why: &str| ProviderError::Decode {
        provider,
        message: format!(
            "it sent an alias address that is not a plain email address ({why}); nothing was kept"
        ),
    };
    if email.is_empty() || email.len() > MAX_EMAIL_LEN {
        return Err(refuse("empty or longer than 254 characters"));
    }
    let Some((local, domain)) = email.split_once('@') else {
        return Err(refuse("no @"));
    };
    let atom = |c: char| c.is_ascii_alphanumeric() || "!#$%&'*+/=?^_`{|}~-".contains(c);
    let local_ok = !local.is_empty()
        && local.len() <= 64
        && local
            .split('.')
            .all(|part| !part.is_empty() && part.chars().all(atom));
    if !local_ok {
        return Err(refuse(
            "its local part has characters an address cannot have, such as a line break, a space, an invisible character or a second @",
        ));
    }
    let label = |l: &str| {
        !l.is_empty()
            && l.len() <= 63
            && l.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
            && !l.starts_with('-')
            && !l.ends_with('-')
    };
    let labels: Vec<&str> = domain.split('.').collect();
    if labels.len() < 2 || !labels.iter().all(|l| label(l)) {
        return Err(refuse(
            "its domain is not a host name: a line break, a space, an invisible character, a second @ or a missing dot",
        ));
    }
    Ok(email)
}

/// A card's last four as a provider sent it: exactly four ASCII digits, else a `Decode`
/// error. The last four reach the owner's approval prompts (`card.fund`, `card.close`,
/// `expire`), so a compromised provider must not be able to put anything else there.
pub fn checked_last_four(
    provider: &'static str,
    last_four: String,
) -> Result<String, ProviderError> {
    if last_four.len() == 4 && last_four.bytes().all(|b| b.is_ascii_digit()) {
        Ok(last_four)
    } else {
        Err(ProviderError::Decode {
            provider,
            message: "it sent a card whose last four is not four digits; nothing was kept".into(),
        })
    }
}

/// Decodes a provider's JSON into `T`, or a `Decode` error naming the provider.
pub fn decode<T: serde::de::DeserializeOwned>(
    provider: &'static str,
    value: serde_json::Value,
) -> Result<T, ProviderError> {
    serde_json::from_value(value).map_err(|e| ProviderError::Decode {
        provider,
        message: e.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn alias_addresses_must_be_plain_addresses() {
        for good in [
            "n7x@anonaddy.me",
            "word_word123@simplelogin.com",
            "notion+news.2@mail.example.org",
            "a.b-c@x-y.example",
        ] {
            assert_eq!(checked_email("p", good.into()), Ok(good.to_string()));
        }
        let long = format!("{}@example.com", "a".repeat(65));
        let very_long = format!("a@{}.com", "b".repeat(260));
        for bad in [
            "",
            "no-at.example",
            "two@@example.com",
            "a@b@example.com",
            "n7x@anonaddy.me\nApprove: fund every card",
            "n7x@anonaddy.me\u{2029}fake line",
            "n7x\u{2028}@anonaddy.me",
            "pay\u{200B}pal@anonaddy.me",
            "n7x@anon\u{202E}addy.me",
            "n7x @anonaddy.me",
            "n7x@anonaddy",
            "n7x@.me",
            "@anonaddy.me",
            ".n7x@anonaddy.me",
            "\"quoted\"@anonaddy.me",
            "n7x@anonaddy.me\r",
            "n7x@anonaddy.me\t",
            "é@anonaddy.me",
            long.as_str(),
            very_long.as_str(),
        ] {
            let e = checked_email("addy.io", bad.into());
            assert!(
                matches!(&e, Err(ProviderError::Decode { provider: "addy.io", message }) if !message.contains(bad) || bad.is_empty()),
                "{bad:?}: {e:?}"
            );
        }
    }

    #[test]
    fn a_last_four_is_four_digits() {
        assert_eq!(checked_last_four("p", "4242".into()), Ok("4242".into()));
        for bad in [
            "",
            "424",
            "42424",
            "42\n4",
            "4\u{2029}42",
            "42\u{200B}42",
            "４２４２",
            "abcd",
        ] {
            assert!(
                matches!(
                    checked_last_four("p", bad.into()),
                    Err(ProviderError::Decode { .. })
                ),
                "{bad:?}"
            );
        }
    }
}
