//! The throttle the alias manager and the card manager each put their provider behind: a cap
//! on the calls in flight to it (`[aliases] concurrency`, `[cards] concurrency`), and a
//! cool-down after the provider said 429. One throttled provider slows only its own work.

use super::ticket::Ticket;
use crate::providers::http::AttemptGuard;
use crate::providers::ProviderError;
use std::sync::{Arc, Mutex};
use tokio::sync::Semaphore;
use tokio::time::{Duration, Instant};

/// A provider, its cap and its cool-down; clones share all three.
pub struct Throttle<P> {
    provider: Arc<Result<P, ProviderError>>,
    name: &'static str,
    permits: Arc<Semaphore>,
    cooldown: Arc<Mutex<Option<Instant>>>,
}

impl<P> Clone for Throttle<P> {
    fn clone(&self) -> Self {
        Throttle {
            provider: self.provider.clone(),
            name: self.name,
            permits: self.permits.clone(),
            cooldown: self.cooldown.clone(),
        }
    }
}

impl<P> std::fmt::Debug for Throttle<P> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "Throttle({}, {} free)",
            self.name,
            self.permits.available_permits()
        )
    }
}

impl<P> Throttle<P> {
    /// `provider` (or why there is none), called at most `cap` times at once.
    pub fn new(provider: Result<P, ProviderError>, name: &'static str, cap: usize) -> Throttle<P> {
        Throttle {
            provider: Arc::new(provider),
            name,
            permits: Arc::new(Semaphore::new(cap.max(1))),
            cooldown: Arc::new(Mutex::new(None)),
        }
    }

    /// The provider's name ("none" when it is not configured).
    pub fn name(&self) -> &'static str {
        self.name
    }

    /// The provider itself, for calls that need its own type (SimpleLogin's activity log).
    pub fn provider(&self) -> Result<&P, ProviderError> {
        self.provider.as_ref().as_ref().map_err(Clone::clone)
    }

    /// Makes one call once a place is free and any cool-down is over. With `guard` (a call
    /// that changes something at the provider, for a job), a lockdown since the job was
    /// authorised refuses the call instead.
    pub async fn run<T>(
        &self,
        guard: Option<&Ticket>,
        call: impl AsyncFnOnce(&P) -> Result<T, ProviderError>,
    ) -> Result<T, ProviderError> {
        let provider = self.provider()?;
        let _permit = self
            .permits
            .acquire()
            .await
            .map_err(|_| ProviderError::Unavailable {
                provider: self.name,
                message: "the agent is stopping".into(),
            })?;
        let until = *self.cooldown.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(until) = until {
            tokio::time::sleep_until(until).await;
        }
        let result = match guard {
            Some(ticket) => {
                ticket.check().map_err(|_| ProviderError::LockedDown {
                    provider: self.name,
                })?;
                // Every attempt of every request the call makes is checked again.
                let ticket = ticket.clone();
                let attempts: AttemptGuard = Arc::new(move || ticket.check().is_ok());
                crate::providers::http::guarded(attempts, call(provider)).await
            }
            None => call(provider).await,
        };
        if let Err(ProviderError::RateLimited {
            retry_after_secs, ..
        }) = &result
        {
            let until = Instant::now() + Duration::from_secs(*retry_after_secs);
            let mut cooldown = self.cooldown.lock().unwrap_or_else(|p| p.into_inner());
            if cooldown.is_none_or(|t| t < until) {
                *cooldown = Some(until);
            }
        }
        result
    }
}
