//! Shutdown signalling, as in mini-redis: every task holds a [`Shutdown`] and selects on it
//! beside its work; the daemon fires its [`Trigger`] to tell them all at once.
//!
//! The signal is a state, not a message (a `watch` channel): a task that subscribes after it
//! was given (a channel task spawned during the start, a connection accepted in the same
//! instant) still sees it. With a broadcast message, such a task missed it and the daemon's
//! shutdown waited for it for ever: a SIGTERM right after the start hung the daemon.

use std::sync::Arc;
use tokio::sync::watch;

/// The daemon's side: fires the shutdown signal; clones share it.
#[derive(Clone, Debug)]
pub struct Trigger(Arc<watch::Sender<bool>>);

impl Trigger {
    /// A trigger that has not fired.
    pub fn new() -> Trigger {
        Trigger(Arc::new(watch::Sender::new(false)))
    }

    /// A listener; it sees the signal even when it subscribes after it was fired.
    pub fn subscribe(&self) -> Shutdown {
        Shutdown {
            notify: self.0.subscribe(),
        }
    }

    /// Tells every listener, present and future, to stop.
    pub fn fire(&self) {
        self.0.send_replace(true);
    }
}

impl Default for Trigger {
    fn default() -> Self {
        Trigger::new()
    }
}

/// Listens for the shutdown signal.
#[derive(Debug)]
pub struct Shutdown {
    notify: watch::Receiver<bool>,
}

impl Shutdown {
    /// True once the signal has been given.
    pub fn is_shutdown(&self) -> bool {
        *self.notify.borrow()
    }

    /// Waits for the signal (returns at once if it already came). A trigger dropped without
    /// firing counts as the signal too: nobody is left to give it.
    pub async fn recv(&mut self) {
        let _ = self.notify.wait_for(|stop| *stop).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_listener_that_subscribes_after_the_signal_still_sees_it() {
        let trigger = Trigger::new();
        let mut early = trigger.subscribe();
        assert!(!early.is_shutdown());
        trigger.fire();
        let mut late = trigger.subscribe();
        assert!(late.is_shutdown());
        late.recv().await;
        early.recv().await;
    }

    #[tokio::test]
    async fn a_dropped_trigger_counts_as_the_signal() {
        let trigger = Trigger::new();
        let mut listener = trigger.subscribe();
        drop(trigger);
        listener.recv().await;
    }
}
