//! The providers the config names, built with their keys from the environment: one enum per
//! kind of provider, so the rest of the agent holds "the alias provider" and "the card
//! provider" without knowing which. Adding a provider is its module in `src/providers/` and a
//! variant here. The `Memory` variants are never built from the config: in-process tests build
//! them in code ([`super::memory`]).

use super::addy::{self, Addy};
use super::card_activity::{TxnBatch, TxnCursor};
use super::lithic::{self, Lithic};
use super::memory::{MemoryAliases, MemoryCards};
use super::privacy::{self, Privacy};
use super::simplelogin::{self, SimpleLogin};
use super::{
    api_key, base_url, Activity, AliasInfo, AliasProvider, CardInfo, CardProvider, CardUpdate,
    NewAlias, NewCard, ProviderError, RetryPolicy, Transaction,
};
use crate::config::{AliasProviderKind, AliasesConfig, CardProviderKind, CardsConfig};
use crate::egress::Egress;

/// The configured provider, or why there is none.
pub enum AnyAlias {
    /// addy.io.
    Addy(Addy),
    /// SimpleLogin.
    SimpleLogin(SimpleLogin),
    /// Aliases kept in memory, for in-process tests (not configurable).
    Memory(MemoryAliases),
}

impl AnyAlias {
    /// Builds the provider the config names, with its key from the environment.
    pub fn from_config(
        config: &AliasesConfig,
        policy: RetryPolicy,
        egress: &Egress,
    ) -> Result<AnyAlias, ProviderError> {
        match config.provider {
            AliasProviderKind::Simplelogin => {
                let key = api_key("SimpleLogin", "SIMPLELOGIN_API_KEY")?;
                let base = base_url(
                    "SIMPLELOGIN_BASE_URL",
                    &config.simplelogin_base_url,
                    simplelogin::DEFAULT_BASE_URL,
                );
                Ok(AnyAlias::SimpleLogin(SimpleLogin::new(
                    &base, &key, policy, egress,
                )?))
            }
            AliasProviderKind::Addy => {
                let key = api_key("addy.io", "ADDY_API_KEY")?;
                let base = base_url(
                    "ADDY_BASE_URL",
                    &config.addy_base_url,
                    addy::DEFAULT_BASE_URL,
                );
                Ok(AnyAlias::Addy(Addy::new(
                    &base,
                    &key,
                    &config.addy_domain,
                    &config.addy_format,
                    policy,
                    egress,
                )?))
            }
        }
    }
}

macro_rules! dispatch_alias {
    ($self:ident, $p:ident => $call:expr) => {
        match $self {
            AnyAlias::Addy($p) => $call,
            AnyAlias::SimpleLogin($p) => $call,
            AnyAlias::Memory($p) => $call,
        }
    };
}

impl AliasProvider for AnyAlias {
    fn name(&self) -> &'static str {
        dispatch_alias!(self, p => p.name())
    }
    async fn create(&self, new: &NewAlias) -> Result<AliasInfo, ProviderError> {
        dispatch_alias!(self, p => p.create(new).await)
    }
    async fn get(&self, id: &str) -> Result<AliasInfo, ProviderError> {
        dispatch_alias!(self, p => p.get(id).await)
    }
    async fn set_active(&self, id: &str, active: bool) -> Result<(), ProviderError> {
        dispatch_alias!(self, p => p.set_active(id, active).await)
    }
    async fn delete(&self, id: &str) -> Result<(), ProviderError> {
        dispatch_alias!(self, p => p.delete(id).await)
    }
    async fn list(&self) -> Result<(Vec<AliasInfo>, u32), ProviderError> {
        dispatch_alias!(self, p => p.list().await)
    }
    async fn find_by_marker(&self, marker: &str) -> Result<Option<AliasInfo>, ProviderError> {
        dispatch_alias!(self, p => p.find_by_marker(marker).await)
    }
    fn keeps_activity_log(&self) -> bool {
        dispatch_alias!(self, p => p.keeps_activity_log())
    }
    async fn activities(
        &self,
        id: &str,
        want: usize,
    ) -> Result<Option<Vec<Activity>>, ProviderError> {
        dispatch_alias!(self, p => p.activities(id, want).await)
    }
}

/// The configured provider.
pub enum AnyCard {
    /// Privacy.com.
    Privacy(Privacy),
    /// Lithic.
    Lithic(Lithic),
    /// Cards kept in memory, for in-process tests (not configurable).
    Memory(MemoryCards),
}

impl AnyCard {
    /// Builds the provider the config names, with its key from the environment.
    pub fn from_config(
        config: &CardsConfig,
        policy: RetryPolicy,
        egress: &Egress,
    ) -> Result<AnyCard, ProviderError> {
        match config.provider {
            CardProviderKind::Lithic => {
                let key = api_key("Lithic", "LITHIC_API_KEY")?;
                let base = base_url(
                    "LITHIC_BASE_URL",
                    &config.lithic_base_url,
                    lithic::DEFAULT_BASE_URL,
                );
                Ok(AnyCard::Lithic(Lithic::new(&base, &key, policy, egress)?))
            }
            CardProviderKind::Privacy => {
                let key = api_key("Privacy.com", "PRIVACY_API_KEY")?;
                let base = base_url(
                    "PRIVACY_BASE_URL",
                    &config.privacy_base_url,
                    privacy::DEFAULT_BASE_URL,
                );
                Ok(AnyCard::Privacy(Privacy::new(&base, &key, policy, egress)?))
            }
        }
    }
}

macro_rules! dispatch_card {
    ($self:ident, $p:ident => $call:expr) => {
        match $self {
            AnyCard::Privacy($p) => $call,
            AnyCard::Lithic($p) => $call,
            AnyCard::Memory($p) => $call,
        }
    };
}

impl CardProvider for AnyCard {
    fn name(&self) -> &'static str {
        dispatch_card!(self, p => p.name())
    }
    async fn create(&self, new: &NewCard) -> Result<CardInfo, ProviderError> {
        dispatch_card!(self, p => p.create(new).await)
    }
    async fn update(&self, token: &str, update: &CardUpdate) -> Result<CardInfo, ProviderError> {
        dispatch_card!(self, p => p.update(token, update).await)
    }
    async fn get(&self, token: &str) -> Result<CardInfo, ProviderError> {
        dispatch_card!(self, p => p.get(token).await)
    }
    async fn list(&self) -> Result<(Vec<CardInfo>, u32), ProviderError> {
        dispatch_card!(self, p => p.list().await)
    }
    async fn find_by_marker(&self, marker: &str) -> Result<Option<CardInfo>, ProviderError> {
        dispatch_card!(self, p => p.find_by_marker(marker).await)
    }
    async fn transactions(&self, token: &str) -> Result<Vec<Transaction>, ProviderError> {
        dispatch_card!(self, p => p.transactions(token).await)
    }
    async fn account_transactions(
        &self,
        cursor: Option<&TxnCursor>,
    ) -> Result<TxnBatch, ProviderError> {
        dispatch_card!(self, p => p.account_transactions(cursor).await)
    }
}
