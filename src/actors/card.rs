//! The card manager: owns the configured card provider (Privacy.com or Lithic) and makes
//! every call to it. Card numbers and CVVs never reach it: the provider types do not read
//! them.

use crate::config::CardsConfig;
use crate::providers::lithic::{self, Lithic};
use crate::providers::privacy::{self, Privacy};
use crate::providers::{
    api_key, base_url, CardInfo, CardProvider, CardUpdate, NewCard, ProviderError, RetryPolicy,
    Transaction,
};
use tokio::sync::{mpsc, oneshot};

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
        match config.provider.as_str() {
            "lithic" => {
                let key = api_key("Lithic", "LITHIC_API_KEY")?;
                let base = base_url(
                    "LITHIC_BASE_URL",
                    &config.lithic_base_url,
                    lithic::DEFAULT_BASE_URL,
                );
                Ok(AnyCard::Lithic(Lithic::new(&base, &key, policy)?))
            }
            _ => {
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
    async fn list(&self) -> Result<(Vec<CardInfo>, u32), ProviderError> {
        dispatch!(self, p => p.list().await)
    }
    async fn find_by_marker(&self, marker: &str) -> Result<Option<CardInfo>, ProviderError> {
        dispatch!(self, p => p.find_by_marker(marker).await)
    }
    async fn transactions(&self, token: &str) -> Result<Vec<Transaction>, ProviderError> {
        dispatch!(self, p => p.transactions(token).await)
    }
}

type Reply<T> = oneshot::Sender<Result<T, ProviderError>>;

/// What the card manager can be asked; each carries its own reply channel.
#[derive(Debug)]
pub enum CardMessage {
    /// Create a card.
    Create(NewCard, Reply<CardInfo>),
    /// Change a card.
    Update(String, CardUpdate, Reply<CardInfo>),
    /// Find the card an interrupted create made.
    Find(String, Reply<Option<CardInfo>>),
    /// A card's transactions.
    Transactions(String, Reply<Vec<Transaction>>),
}

struct CardManager {
    provider: Result<AnyCard, ProviderError>,
    receiver: mpsc::Receiver<CardMessage>,
}

async fn answer<T>(
    provider: &Result<AnyCard, ProviderError>,
    reply: Reply<T>,
    call: impl AsyncFnOnce(&AnyCard) -> Result<T, ProviderError>,
) {
    let result = match provider {
        Err(e) => Err(e.clone()),
        Ok(p) => call(p).await,
    };
    let _ = reply.send(result);
}

impl CardManager {
    async fn run(mut self) {
        while let Some(msg) = self.receiver.recv().await {
            let p = &self.provider;
            match msg {
                CardMessage::Create(new, r) => answer(p, r, async |p| p.create(&new).await).await,
                CardMessage::Update(token, u, r) => {
                    answer(p, r, async |p| p.update(&token, &u).await).await
                }
                CardMessage::Find(marker, r) => {
                    answer(p, r, async |p| p.find_by_marker(&marker).await).await
                }
                CardMessage::Transactions(token, r) => {
                    answer(p, r, async |p| p.transactions(&token).await).await
                }
            }
        }
    }
}

/// The handle every user of cards holds.
#[derive(Clone, Debug)]
pub struct CardHandle {
    sender: mpsc::Sender<CardMessage>,
    name: &'static str,
}

impl CardHandle {
    /// Starts the manager over `provider` (or the reason it is not configured).
    pub fn start(provider: Result<AnyCard, ProviderError>) -> CardHandle {
        let (sender, receiver) = mpsc::channel(64);
        let name = match &provider {
            Ok(p) => p.name(),
            Err(_) => "none",
        };
        tokio::spawn(CardManager { provider, receiver }.run());
        CardHandle { sender, name }
    }

    /// The provider's name ("none" when it is not configured).
    pub fn provider_name(&self) -> &'static str {
        self.name
    }

    async fn call<T>(
        &self,
        make: impl FnOnce(Reply<T>) -> CardMessage,
    ) -> Result<T, ProviderError> {
        let (reply, rx) = oneshot::channel();
        let stopped = || ProviderError::Unavailable {
            provider: "card manager",
            message: "stopped".into(),
        };
        self.sender.send(make(reply)).await.map_err(|_| stopped())?;
        rx.await.map_err(|_| stopped())?
    }

    /// Creates a card.
    pub async fn create(&self, new: NewCard) -> Result<CardInfo, ProviderError> {
        self.call(|r| CardMessage::Create(new, r)).await
    }

    /// Changes a card.
    pub async fn update(&self, token: &str, update: CardUpdate) -> Result<CardInfo, ProviderError> {
        self.call(|r| CardMessage::Update(token.to_string(), update, r))
            .await
    }

    /// The card carrying `marker`, if any.
    pub async fn find(&self, marker: &str) -> Result<Option<CardInfo>, ProviderError> {
        self.call(|r| CardMessage::Find(marker.to_string(), r))
            .await
    }

    /// A card's transactions.
    pub async fn transactions(&self, token: &str) -> Result<Vec<Transaction>, ProviderError> {
        self.call(|r| CardMessage::Transactions(token.to_string(), r))
            .await
    }
}
