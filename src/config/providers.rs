//! The provider sections of the config: which alias and card services the agent drives
//! (`[aliases]`, `[cards]`), how many calls each may have in flight, their base URLs, and the
//! placeholder identities' forwarding address (`[identity]`).

use serde::Deserialize;

/// The alias services the agent can drive.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AliasProviderKind {
    /// addy.io (`ADDY_API_KEY`).
    Addy,
    /// SimpleLogin (`SIMPLELOGIN_API_KEY`).
    Simplelogin,
}

/// The card services the agent can drive.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum CardProviderKind {
    /// Privacy.com (`PRIVACY_API_KEY`).
    Privacy,
    /// Lithic (`LITHIC_API_KEY`).
    Lithic,
}

/// `[aliases]`
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AliasesConfig {
    /// Who makes aliases.
    pub provider: AliasProviderKind,
    /// At most this many calls to the alias provider at once.
    pub concurrency: usize,
    /// addy.io base URL; empty means the real service (`ADDY_BASE_URL` overrides).
    pub addy_base_url: String,
    /// SimpleLogin base URL; empty means the real service (`SIMPLELOGIN_BASE_URL` overrides).
    pub simplelogin_base_url: String,
    /// addy.io: the domain new aliases are made on.
    pub addy_domain: String,
    /// addy.io: the format of new aliases (`random_characters`, `uuid`, `random_words`).
    pub addy_format: String,
}

impl Default for AliasesConfig {
    fn default() -> Self {
        AliasesConfig {
            provider: AliasProviderKind::Addy,
            concurrency: 10,
            addy_base_url: String::new(),
            simplelogin_base_url: String::new(),
            addy_domain: "anonaddy.me".into(),
            addy_format: "random_characters".into(),
        }
    }
}

/// `[cards]`
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CardsConfig {
    /// Who makes cards.
    pub provider: CardProviderKind,
    /// At most this many calls to the card provider at once.
    pub concurrency: usize,
    /// Privacy.com base URL; empty means the real service (`PRIVACY_BASE_URL` overrides).
    pub privacy_base_url: String,
    /// Lithic base URL; empty means the real service (`LITHIC_BASE_URL` overrides).
    pub lithic_base_url: String,
    /// The largest spend limit `card.fund` accepts, in whole currency units.
    pub max_limit: u64,
}

impl Default for CardsConfig {
    fn default() -> Self {
        CardsConfig {
            provider: CardProviderKind::Privacy,
            concurrency: 10,
            privacy_base_url: String::new(),
            lithic_base_url: String::new(),
            max_limit: 1000,
        }
    }
}

/// `[identity]`
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct IdentityConfig {
    /// The postal address placeholder identities give (a P.O. box or forwarding service),
    /// never the owner's real one.
    pub forwarding_address: String,
}
