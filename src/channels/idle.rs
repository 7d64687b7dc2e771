//! IMAP IDLE between sweeps: a task waits on the mailbox and asks the agent for a sweep as
//! soon as mail arrives, so incidents are seen in seconds instead of at the next scheduled
//! sweep. A server without IDLE, or a connection that keeps failing, leaves the schedule to
//! do the work.

use crate::breach::imap::{ImapError, ImapSource};
use crate::gate::GateHandle;
use crate::retry::Backoff;
use crate::schedule::Job;
use crate::shutdown::Shutdown;
use std::time::Duration;

/// Watches the mailbox until shutdown.
pub async fn watch(source: ImapSource, agent: GateHandle, mut shutdown: Shutdown) {
    let mut backoff = Backoff::forever(Duration::from_secs(1), Duration::from_secs(300));
    loop {
        let waited = tokio::select! {
            r = source.wait_for_mail(Duration::from_secs(25 * 60)) => r,
            _ = shutdown.recv() => return,
        };
        match waited {
            Ok(true) => {
                backoff.reset();
                // Let a burst of deliveries settle into one sweep.
                tokio::select! {
                    _ = tokio::time::sleep(Duration::from_millis(500)) => {}
                    _ = shutdown.recv() => return,
                }
                agent.run_job(Job::BreachSweep).await;
            }
            Ok(false) => backoff.reset(),
            Err(ImapError::NotConfigured(why)) => {
                tracing::info!(%why, "IMAP IDLE off; the schedule sweeps");
                shutdown.recv().await;
                return;
            }
            Err(e) => {
                let wait = backoff.next_delay().unwrap_or(Duration::from_secs(300));
                tracing::warn!(error = %e, retry_in_s = wait.as_secs(), "IMAP IDLE failed");
                tokio::select! {
                    _ = tokio::time::sleep(wait) => {}
                    _ = shutdown.recv() => return,
                }
            }
        }
    }
}
