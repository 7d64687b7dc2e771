//! The alias manager: owns the configured alias provider (addy.io or SimpleLogin) and makes
//! every call to it, with its own cap on calls in flight and its own 429 cool-down.

use super::pool::Pool;
use super::ticket::Ticket;
use crate::config::{AliasProviderKind, AliasesConfig};
use crate::providers::addy::{self, Addy};
use crate::providers::simplelogin::{self, Activity, SimpleLogin};
use crate::providers::{
    api_key, base_url, AliasInfo, AliasProvider, NewAlias, ProviderError, RetryPolicy,
};

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
        match config.provider {
            AliasProviderKind::Simplelogin => {
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

/// The alias manager: every call to the alias provider goes through it, at most
/// `[aliases] concurrency` at once, and none while the provider's 429 cool-down lasts.
#[derive(Clone, Debug)]
pub struct AliasHandle {
    pool: Pool<AnyAlias>,
}

impl AliasHandle {
    /// Starts the manager over `provider` (or the reason it is not configured, which every
    /// request is then answered with).
    pub fn start(provider: Result<AnyAlias, ProviderError>, concurrency: usize) -> AliasHandle {
        let name = match &provider {
            Ok(p) => p.name(),
            Err(_) => "none",
        };
        AliasHandle {
            pool: Pool::new(provider, name, concurrency),
        }
    }

    /// The provider's name ("none" when it is not configured).
    pub fn provider_name(&self) -> &'static str {
        self.pool.name()
    }

    /// Creates an alias, unless a lockdown came after `ticket`.
    pub async fn create(&self, new: NewAlias, ticket: &Ticket) -> Result<AliasInfo, ProviderError> {
        self.pool
            .run(Some(ticket), async |p| p.create(&new).await)
            .await
    }

    /// Reads one alias.
    pub async fn get(&self, id: &str) -> Result<AliasInfo, ProviderError> {
        self.pool.run(None, async |p| p.get(id).await).await
    }

    /// Turns forwarding on or off, unless a lockdown came after `ticket`.
    pub async fn set_active(
        &self,
        id: &str,
        active: bool,
        ticket: &Ticket,
    ) -> Result<(), ProviderError> {
        self.pool
            .run(Some(ticket), async |p| p.set_active(id, active).await)
            .await
    }

    /// Deletes an alias, unless a lockdown came after `ticket`.
    pub async fn delete(&self, id: &str, ticket: &Ticket) -> Result<(), ProviderError> {
        self.pool
            .run(Some(ticket), async |p| p.delete(id).await)
            .await
    }

    /// Every alias and the number of requests it took.
    pub async fn list(&self) -> Result<(Vec<AliasInfo>, u32), ProviderError> {
        self.pool.run(None, async |p| p.list().await).await
    }

    /// The newest `want` entries of an alias's activity log (SimpleLogin); None when the
    /// provider keeps no such log (addy.io).
    pub async fn activities(
        &self,
        id: &str,
        want: usize,
    ) -> Result<Option<Vec<Activity>>, ProviderError> {
        self.pool
            .run(None, async |p| match p {
                AnyAlias::SimpleLogin(sl) => sl.activities(id, want).await.map(Some),
                AnyAlias::Addy(_) => Ok(None),
            })
            .await
    }

    /// The alias carrying `marker`, if the provider has one.
    pub async fn find(&self, marker: &str) -> Result<Option<AliasInfo>, ProviderError> {
        self.pool
            .run(None, async |p| p.find_by_marker(marker).await)
            .await
    }
}
