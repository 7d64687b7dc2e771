//! The card manager: owns the configured card provider (Privacy.com or Lithic) and makes
//! every call to it. Card numbers and CVVs never reach it: the provider types do not read
//! them.

use super::pool::Pool;
use super::ticket::Ticket;
use crate::config::{CardProviderKind, CardsConfig};
use crate::providers::card_activity::{TxnBatch, TxnCursor};
use crate::providers::lithic::{self, Lithic};
use crate::providers::privacy::{self, Privacy};
use crate::providers::{
    api_key, base_url, CardInfo, CardProvider, CardUpdate, NewCard, ProviderError, RetryPolicy,
    Transaction,
};

/// The configured provider.
pub enum AnyCard {
    /// Privacy.com.
    Privacy(Privacy),
    /// Lithic.
    Lithic(Lithic),
}

impl AnyCard {
    /// Builds the provider the config names, with its key from the environment.
    pub fn from_config(
        config: &CardsConfig,
        policy: RetryPolicy,
    ) -> Result<AnyCard, ProviderError> {
        match config.provider {
            CardProviderKind::Lithic => {
                let key = api_key("Lithic", "LITHIC_API_KEY")?;
                let base = base_url(
                    "LITHIC_BASE_URL",
                    &config.lithic_base_url,
                    lithic::DEFAULT_BASE_URL,
                );
                Ok(AnyCard::Lithic(Lithic::new(&base, &key, policy)?))
            }
            CardProviderKind::Privacy => {
                let key = api_key("Privacy.com", "PRIVACY_API_KEY")?;
                let base = base_url(
                    "PRIVACY_BASE_URL",
                    &config.privacy_base_url,
                    privacy::DEFAULT_BASE_URL,
                );
                Ok(AnyCard::Privacy(Privacy::new(&base, &key, policy)?))
            }
        }
    }
}

macro_rules! dispatch {
    ($self:ident, $p:ident => $call:expr) => {
        match $self {
            AnyCard::Privacy($p) => $call,
            AnyCard::Lithic($p) => $call,
        }
    };
}

impl CardProvider for AnyCard {
    fn name(&self) -> &'static str {
        dispatch!(self, p => p.name())
    }
    async fn create(&self, new: &NewCard) -> Result<CardInfo, ProviderError> {
        dispatch!(self, p => p.create(new).await)
    }
    async fn update(&self, token: &str, update: &CardUpdate) -> Result<CardInfo, ProviderError> {
        dispatch!(self, p => p.update(token, update).await)
    }
    async fn get(&self, token: &str) -> Result<CardInfo, ProviderError> {
        dispatch!(self, p => p.get(token).await)
    }
    async fn list(&self) -> Result<(Vec<CardInfo>, u32), ProviderError> {
        dispatch!(self, p => p.list().await)
    }
    async fn find_by_marker(&self, marker: &str) -> Result<Option<CardInfo>, ProviderError> {
        dispatch!(self, p => p.find_by_marker(marker).await)
    }
    async fn transactions(&self, token: &str) -> Result<Vec<Transaction>, ProviderError> {
        dispatch!(self, p => p.transactions(token).await)
    }
    async fn account_transactions(
        &self,
        cursor: Option<&TxnCursor>,
    ) -> Result<TxnBatch, ProviderError> {
        dispatch!(self, p => p.account_transactions(cursor).await)
    }
}

/// The card manager: every call to the card provider goes through it, at most
/// `[cards] concurrency` at once, and none while the provider's 429 cool-down lasts.
#[derive(Clone, Debug)]
pub struct CardHandle {
    pool: Pool<AnyCard>,
}

impl CardHandle {
    /// Starts the manager over `provider` (or the reason it is not configured).
    pub fn start(provider: Result<AnyCard, ProviderError>, concurrency: usize) -> CardHandle {
        let name = match &provider {
            Ok(p) => p.name(),
            Err(_) => "none",
        };
        CardHandle {
            pool: Pool::new(provider, name, concurrency),
        }
    }

    /// The provider's name ("none" when it is not configured).
    pub fn provider_name(&self) -> &'static str {
        self.pool.name()
    }

    /// Creates a card, unless a lockdown came after `ticket`.
    pub async fn create(&self, new: NewCard, ticket: &Ticket) -> Result<CardInfo, ProviderError> {
        self.pool
            .run(Some(ticket), async |p| p.create(&new).await)
            .await
    }

    /// Changes a card, unless a lockdown came after `ticket`.
    pub async fn update(
        &self,
        token: &str,
        update: CardUpdate,
        ticket: &Ticket,
    ) -> Result<CardInfo, ProviderError> {
        self.pool
            .run(Some(ticket), async |p| p.update(token, &update).await)
            .await
    }

    /// One card as the provider has it now (a read).
    pub async fn get(&self, token: &str) -> Result<CardInfo, ProviderError> {
        self.pool.run(None, async |p| p.get(token).await).await
    }

    /// The card carrying `marker`, if any.
    pub async fn find(&self, marker: &str) -> Result<Option<CardInfo>, ProviderError> {
        self.pool
            .run(None, async |p| p.find_by_marker(marker).await)
            .await
    }

    /// A card's transactions.
    pub async fn transactions(&self, token: &str) -> Result<Vec<Transaction>, ProviderError> {
        self.pool
            .run(None, async |p| p.transactions(token).await)
            .await
    }

    /// Every card's transactions since `cursor`, for the breach monitor's card canaries (a
    /// read: it needs no ticket, and waits out the provider's 429 cool-down like every call).
    pub async fn account_transactions(
        &self,
        cursor: Option<TxnCursor>,
    ) -> Result<TxnBatch, ProviderError> {
        self.pool
            .run(None, async |p| {
                p.account_transactions(cursor.as_ref()).await
            })
            .await
    }
}
