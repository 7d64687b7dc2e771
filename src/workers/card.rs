//! The card manager: owns the configured card provider (Privacy.com or Lithic) and makes
//! every call to it. Card numbers and CVVs never reach it: the provider types do not read
//! them.

use super::throttle::Throttle;
use super::ticket::Ticket;
use crate::providers::card_activity::{TxnBatch, TxnCursor};
use crate::providers::configured::AnyCard;
use crate::providers::{CardInfo, CardProvider, CardUpdate, NewCard, ProviderError, Transaction};

/// The card manager: every call to the card provider goes through it, at most
/// `[cards] concurrency` at once, and none while the provider's 429 cool-down lasts.
#[derive(Clone, Debug)]
pub struct CardHandle {
    throttle: Throttle<AnyCard>,
}

impl CardHandle {
    /// Starts the manager over `provider` (or the reason it is not configured).
    pub fn start(provider: Result<AnyCard, ProviderError>, concurrency: usize) -> CardHandle {
        let name = match &provider {
            Ok(p) => p.name(),
            Err(_) => "none",
        };
        CardHandle {
            throttle: Throttle::new(provider, name, concurrency),
        }
    }

    /// The provider's name ("none" when it is not configured).
    pub fn provider_name(&self) -> &'static str {
        self.throttle.name()
    }

    /// True when a card provider is configured (its key was found).
    pub fn is_configured(&self) -> bool {
        self.throttle.provider().is_ok()
    }

    /// Creates a card, unless a lockdown came after `ticket`.
    pub async fn create(&self, new: NewCard, ticket: &Ticket) -> Result<CardInfo, ProviderError> {
        self.throttle
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
        self.throttle
            .run(Some(ticket), async |p| p.update(token, &update).await)
            .await
    }

    /// One card as the provider has it now (a read).
    pub async fn get(&self, token: &str) -> Result<CardInfo, ProviderError> {
        self.throttle.run(None, async |p| p.get(token).await).await
    }

    /// The card carrying `marker`, if any.
    pub async fn find(&self, marker: &str) -> Result<Option<CardInfo>, ProviderError> {
        self.throttle
            .run(None, async |p| p.find_by_marker(marker).await)
            .await
    }

    /// A card's transactions.
    pub async fn transactions(&self, token: &str) -> Result<Vec<Transaction>, ProviderError> {
        self.throttle
            .run(None, async |p| p.transactions(token).await)
            .await
    }

    /// Every card's transactions since `cursor`, for the breach monitor's card canaries (a
    /// read: it needs no ticket, and waits out the provider's 429 cool-down like every call).
    pub async fn account_transactions(
        &self,
        cursor: Option<TxnCursor>,
    ) -> Result<TxnBatch, ProviderError> {
        self.throttle
            .run(None, async |p| {
                p.account_transactions(cursor.as_ref()).await
            })
            .await
    }
}
