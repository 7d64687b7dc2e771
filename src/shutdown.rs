//! Shutdown signalling, as in mini-redis: every task holds a [`Shutdown`] and selects on it
//! beside its work; the daemon drops the broadcast sender to tell them all at once.

use tokio::sync::broadcast;

/// Listens for the shutdown signal.
#[derive(Debug)]
pub struct Shutdown {
    is_shutdown: bool,
    notify: broadcast::Receiver<()>,
}

impl Shutdown {
    /// Wraps a receiver of the daemon's shutdown broadcast.
    pub fn new(notify: broadcast::Receiver<()>) -> Shutdown {
        Shutdown {
            is_shutdown: false,
            notify,
        }
    }

    /// True once the signal has been received.
    pub fn is_shutdown(&self) -> bool {
        self.is_shutdown
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
