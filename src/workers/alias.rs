//! The alias manager: owns the configured alias provider (addy.io or SimpleLogin) and makes
//! every call to it, with its own cap on calls in flight and its own 429 cool-down.

use super::throttle::Throttle;
use super::ticket::Ticket;
use crate::providers::configured::AnyAlias;
use crate::providers::{Activity, AliasInfo, AliasProvider, NewAlias, ProviderError};

/// The alias manager: every call to the alias provider goes through it, at most
/// `[aliases] concurrency` at once, and none while the provider's 429 cool-down lasts.
#[derive(Clone, Debug)]
pub struct AliasHandle {
    throttle: Throttle<AnyAlias>,
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
            throttle: Throttle::new(provider, name, concurrency),
        }
    }

    /// The provider's name ("none" when it is not configured).
    pub fn provider_name(&self) -> &'static str {
        self.throttle.name()
    }

    /// Creates an alias, unless a lockdown came after `ticket`.
    pub async fn create(&self, new: NewAlias, ticket: &Ticket) -> Result<AliasInfo, ProviderError> {
        self.throttle
            .run(Some(ticket), async |p| p.create(&new).await)
            .await
    }

    /// Reads one alias.
    pub async fn get(&self, id: &str) -> Result<AliasInfo, ProviderError> {
        self.throttle.run(None, async |p| p.get(id).await).await
    }

    /// Turns forwarding on or off, unless a lockdown came after `ticket`.
    pub async fn set_active(
        &self,
        id: &str,
        active: bool,
        ticket: &Ticket,
    ) -> Result<(), ProviderError> {
        self.throttle
            .run(Some(ticket), async |p| p.set_active(id, active).await)
            .await
    }

    /// Deletes an alias, unless a lockdown came after `ticket`.
    pub async fn delete(&self, id: &str, ticket: &Ticket) -> Result<(), ProviderError> {
        self.throttle
            .run(Some(ticket), async |p| p.delete(id).await)
            .await
    }

    /// Every alias and the number of requests it took.
    pub async fn list(&self) -> Result<(Vec<AliasInfo>, u32), ProviderError> {
        self.throttle.run(None, async |p| p.list().await).await
    }

    /// True when the provider keeps an activity log per alias (SimpleLogin) that the breach
    /// monitor reads.
    pub fn keeps_activity_log(&self) -> bool {
        self.throttle
            .provider()
            .is_ok_and(AliasProvider::keeps_activity_log)
    }

    /// The newest `want` entries of an alias's activity log; None when the provider keeps
    /// no such log (addy.io).
    pub async fn activities(
        &self,
        id: &str,
        want: usize,
    ) -> Result<Option<Vec<Activity>>, ProviderError> {
        self.throttle
            .run(None, async |p| p.activities(id, want).await)
            .await
    }

    /// The alias carrying `marker`, if the provider has one.
    pub async fn find(&self, marker: &str) -> Result<Option<AliasInfo>, ProviderError> {
        self.throttle
            .run(None, async |p| p.find_by_marker(marker).await)
            .await
    }
}
