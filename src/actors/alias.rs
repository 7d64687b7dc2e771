//! The alias manager: owns the configured alias provider (addy.io or SimpleLogin) and makes
//! every call to it. Handle + actor + messages, as in "Actors with Tokio".

use crate::config::AliasesConfig;
use crate::providers::addy::{self, Addy};
use crate::providers::simplelogin::{self, Activity, SimpleLogin};
use crate::providers::{
    api_key, base_url, AliasInfo, AliasProvider, NewAlias, ProviderError, RetryPolicy,
};
use tokio::sync::{mpsc, oneshot};

/// The configured provider, or why there is none.
pub enum AnyAlias {
    /// addy.io.
    Addy(Addy),
    /// SimpleLogin.
    SimpleLogin(SimpleLogin),
}

impl AnyAlias {
    /// Builds the provider the config names, with its key from the environment.
    pub fn from_config(
        config: &AliasesConfig,
        policy: RetryPolicy,
    ) -> Result<AnyAlias, ProviderError> {
        match config.provider.as_str() {
            "simplelogin" => {
                let key = api_key("SimpleLogin", "SIMPLELOGIN_API_KEY")?;
                let base = base_url(
                    "SIMPLELOGIN_BASE_URL",
                    &config.simplelogin_base_url,
                    simplelogin::DEFAULT_BASE_URL,
                );
                Ok(AnyAlias::SimpleLogin(SimpleLogin::new(
                    &base, &key, policy,
                )?))
            }
            _ => {
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
                )?))
            }
        }
    }
}

macro_rules! dispatch {
    ($self:ident, $p:ident => $call:expr) => {
        match $self {
            AnyAlias::Addy($p) => $call,
            AnyAlias::SimpleLogin($p) => $call,
        }
    };
}

impl AliasProvider for AnyAlias {
    fn name(&self) -> &'static str {
        dispatch!(self, p => p.name())
    }
    async fn create(&self, new: &NewAlias) -> Result<AliasInfo, ProviderError> {
        dispatch!(self, p => p.create(new).await)
    }
    async fn get(&self, id: &str) -> Result<AliasInfo, ProviderError> {
        dispatch!(self, p => p.get(id).await)
    }
    async fn set_active(&self, id: &str, active: bool) -> Result<(), ProviderError> {
        dispatch!(self, p => p.set_active(id, active).await)
    }
    async fn delete(&self, id: &str) -> Result<(), ProviderError> {
        dispatch!(self, p => p.delete(id).await)
    }
    async fn list(&self) -> Result<(Vec<AliasInfo>, u32), ProviderError> {
        dispatch!(self, p => p.list().await)
    }
    async fn find_by_marker(&self, marker: &str) -> Result<Option<AliasInfo>, ProviderError> {
        dispatch!(self, p => p.find_by_marker(marker).await)
    }
}

type Reply<T> = oneshot::Sender<Result<T, ProviderError>>;

/// What the alias manager can be asked; each carries its own reply channel.
#[derive(Debug)]
pub enum AliasMessage {
    /// Create an alias.
    Create(NewAlias, Reply<AliasInfo>),
    /// Read one.
    Get(String, Reply<AliasInfo>),
    /// Turn forwarding on or off.
    SetActive(String, bool, Reply<()>),
    /// Delete one.
    Delete(String, Reply<()>),
    /// List every alias (and the requests it took).
    List(Reply<(Vec<AliasInfo>, u32)>),
    /// Find the alias an interrupted create made.
    Find(String, Reply<Option<AliasInfo>>),
    /// The newest entries of an alias's activity log; None when the provider has no such log.
    Activities(String, usize, Reply<Option<Vec<Activity>>>),
}

struct AliasManager {
    provider: Result<AnyAlias, ProviderError>,
    receiver: mpsc::Receiver<AliasMessage>,
}

async fn answer<T>(
    provider: &Result<AnyAlias, ProviderError>,
    reply: Reply<T>,
    call: impl AsyncFnOnce(&AnyAlias) -> Result<T, ProviderError>,
) {
    let result = match provider {
        Err(e) => Err(e.clone()),
        Ok(p) => call(p).await,
    };
    let _ = reply.send(result);
}

impl AliasManager {
    async fn run(mut self) {
        while let Some(msg) = self.receiver.recv().await {
            let p = &self.provider;
            match msg {
                AliasMessage::Create(new, r) => answer(p, r, async |p| p.create(&new).await).await,
                AliasMessage::Get(id, r) => answer(p, r, async |p| p.get(&id).await).await,
                AliasMessage::SetActive(id, on, r) => {
                    answer(p, r, async |p| p.set_active(&id, on).await).await
                }
                AliasMessage::Delete(id, r) => answer(p, r, async |p| p.delete(&id).await).await,
                AliasMessage::List(r) => answer(p, r, async |p| p.list().await).await,
                AliasMessage::Find(marker, r) => {
                    answer(p, r, async |p| p.find_by_marker(&marker).await).await
                }
                AliasMessage::Activities(id, want, r) => {
                    answer(p, r, async |p| match p {
                        AnyAlias::SimpleLogin(sl) => sl.activities(&id, want).await.map(Some),
                        AnyAlias::Addy(_) => Ok(None),
                    })
                    .await
                }
            }
        }
    }
}

/// The handle every user of aliases holds.
#[derive(Clone, Debug)]
pub struct AliasHandle {
    sender: mpsc::Sender<AliasMessage>,
    name: &'static str,
}

impl AliasHandle {
    /// Starts the manager over `provider` (or the reason it is not configured, which every
    /// request is then answered with).
    pub fn start(provider: Result<AnyAlias, ProviderError>) -> AliasHandle {
        let (sender, receiver) = mpsc::channel(64);
        let name = match &provider {
            Ok(p) => p.name(),
            Err(_) => "none",
        };
        tokio::spawn(AliasManager { provider, receiver }.run());
        AliasHandle { sender, name }
    }

    /// The provider's name ("none" when it is not configured).
    pub fn provider_name(&self) -> &'static str {
        self.name
    }

    async fn call<T>(
        &self,
        make: impl FnOnce(Reply<T>) -> AliasMessage,
    ) -> Result<T, ProviderError> {
        let (reply, rx) = oneshot::channel();
        let stopped = || ProviderError::Unavailable {
            provider: "alias manager",
            message: "stopped".into(),
        };
        self.sender.send(make(reply)).await.map_err(|_| stopped())?;
        rx.await.map_err(|_| stopped())?
    }

    /// Creates an alias.
    pub async fn create(&self, new: NewAlias) -> Result<AliasInfo, ProviderError> {
        self.call(|r| AliasMessage::Create(new, r)).await
    }

    /// Reads one alias.
    pub async fn get(&self, id: &str) -> Result<AliasInfo, ProviderError> {
        self.call(|r| AliasMessage::Get(id.to_string(), r)).await
    }

    /// Turns forwarding on or off.
    pub async fn set_active(&self, id: &str, active: bool) -> Result<(), ProviderError> {
        self.call(|r| AliasMessage::SetActive(id.to_string(), active, r))
            .await
    }

    /// Deletes an alias.
    pub async fn delete(&self, id: &str) -> Result<(), ProviderError> {
        self.call(|r| AliasMessage::Delete(id.to_string(), r)).await
    }

    /// Every alias and the number of requests it took.
    pub async fn list(&self) -> Result<(Vec<AliasInfo>, u32), ProviderError> {
        self.call(AliasMessage::List).await
    }

    /// The newest `want` entries of an alias's activity log (SimpleLogin); None when the
    /// provider keeps no such log (addy.io).
    pub async fn activities(
        &self,
        id: &str,
        want: usize,
    ) -> Result<Option<Vec<Activity>>, ProviderError> {
        self.call(|r| AliasMessage::Activities(id.to_string(), want, r))
            .await
    }

    /// The alias carrying `marker`, if the provider has one.
    pub async fn find(&self, marker: &str) -> Result<Option<AliasInfo>, ProviderError> {
        self.call(|r| AliasMessage::Find(marker.to_string(), r))
            .await
    }
}
