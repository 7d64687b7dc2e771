//! Shutdown signalling, as in mini-redis: the relay holds a [`Shutdown`] and selects on it
//! beside its work; the main thread drops the broadcast sender to tell it to stop.
//!
//! A copy of the core's `src/shutdown.rs` (a dozen lines): the gateway does not depend on
//! the core crate, and this is not part of what the two share.

use tokio::sync::broadcast;

/// Listens for the shutdown signal.
#[derive(Debug)]
pub struct Shutdown {
    is_shutdown: bool,
    notify: broadcast::Receiver<()>,
}

impl Shutdown {
    /// Wraps a receiver of the shutdown broadcast.
    pub fn new(notify: broadcast::Receiver<()>) -> Shutdown {
        Shutdown {
            is_shutdown: false,
            notify,
        }
    }

    /// Waits for the signal (returns at once if it already came).
    pub async fn recv(&mut self) {
        if self.is_shutdown {
            return;
        }
        // Either a value or "all senders dropped" means: shut down.
        let _ = self.notify.recv().await;
        self.is_shutdown = true;
    }
}
