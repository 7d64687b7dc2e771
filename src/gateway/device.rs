//! The Signal library behind a trait (as gurk-rs does with its `SignalManager`): the gateway
//! relay drives any [`SignalDevice`]; `pane-signal` implements it with presage, and the tests
//! with a double. presage's futures are not `Send`, so neither are these: the relay runs on
//! a current-thread runtime inside a `LocalSet`.

use std::future::Future;

/// A message the device received.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Incoming {
    /// The sender's ACI.
    pub sender: String,
    /// The sender's device id.
    pub device: u32,
    /// Milliseconds since the epoch.
    pub timestamp: u64,
    /// The text.
    pub body: String,
    /// Delivered with sealed sender.
    pub sealed: bool,
}

/// What the device reports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DeviceEvent {
    /// A text message (a data message, or a sync "sent" message in Note to Self mode).
    Message(Incoming),
    /// A contact's safety number changed.
    IdentityChanged {
        /// Whose.
        sender: String,
    },
    /// The server's queue of messages waiting for this device is drained; sends may begin.
    QueueEmpty,
}

/// Why the device failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DeviceError {
    /// The websocket dropped; reconnecting may help.
    #[error("connection lost: {0}")]
    Disconnected(String),
    /// The registration is gone or unusable; the operator must relink.
    #[error("the device must be linked again: {0}")]
    Unlinked(String),
}

/// Why a send failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct SendError {
    /// What went wrong.
    pub message: String,
    /// True when trying again may work.
    pub retryable: bool,
}

/// A linked Signal device.
pub trait SignalDevice {
    /// Connects (or reconnects) the receiving websocket.
    fn connect(&mut self) -> impl Future<Output = Result<(), DeviceError>>;
    /// Waits for the next event; `Disconnected` when the websocket drops.
    fn next_event(&mut self) -> impl Future<Output = Result<DeviceEvent, DeviceError>>;
    /// Sends a text message (sealed sender where the recipient's profile key is known).
    fn send(&mut self, recipient: &str, body: &str) -> impl Future<Output = Result<(), SendError>>;
}
