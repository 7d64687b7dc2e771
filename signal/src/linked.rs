//! What the relay asks of a linked Signal device and what it gets back: presage's device
//! (`device.rs`) and the relay tests' double both implement [`Device`].

use pane_protocol::device::DeviceError;
use pane_protocol::messages::{Challenge, GatewayEvent, Registration};
use std::future::Future;

/// What the device reports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DeviceEvent {
    /// A `received` or `reaction` line for the core.
    Relay(GatewayEvent),
    /// A contact's identity key changed (the device has marked it pending).
    IdentityChanged {
        /// Whose.
        sender: String,
    },
    /// The server's queue of messages for this device is drained; sends may begin.
    QueueEmpty,
}

/// A message to send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outgoing {
    /// The recipient's ACI.
    pub recipient: String,
    /// The text.
    pub body: String,
    /// The Signal timestamp (ms).
    pub timestamp: u64,
    /// The disappearing-message timer (seconds).
    pub expire_timer: Option<u32>,
}

/// Why a send failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SendFailure {
    /// The recipient's identity key differs from the one confirmed: nothing was sent.
    IdentityChanged,
    /// Signal refused it for the registration's sake: credentials refused, a challenge to
    /// solve, a client too old. The relay reports it in the link's health.
    Refused {
        /// What Signal said.
        message: String,
        /// What it says of the registration.
        registration: Registration,
        /// The challenge, for [`Registration::ProofRequired`].
        challenge: Option<Challenge>,
    },
    /// Anything else.
    Failed {
        /// presage's error text.
        message: String,
        /// True when trying again may help.
        retryable: bool,
    },
}

/// A sent message; `identity_changed` when the recipient's key changed during the send
/// (libsignal-service fetched a new pre-key bundle and presage trusted it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Delivered {
    /// The key changed while sending.
    pub identity_changed: bool,
}

/// A linked Signal device, as the relay drives it (presage's, or a test double).
pub trait Device {
    /// Connects (or reconnects) the receiving websocket.
    fn connect(&mut self) -> impl Future<Output = Result<(), DeviceError>>;
    /// Waits for the next event; `Disconnected` when the websocket drops.
    fn next_event(&mut self) -> impl Future<Output = Result<DeviceEvent, DeviceError>>;
    /// Sends one message, refusing a recipient whose identity key is pending.
    fn send(&mut self, out: &Outgoing) -> impl Future<Output = Result<Delivered, SendFailure>>;
    /// The contacts whose changed identity key the core has not been told of.
    fn pending_identities(&self) -> Vec<String>;
    /// The core knows of `aci`'s changed key.
    fn confirm_identity(&mut self, aci: &str) -> std::io::Result<()>;
    /// Answers a `proof_required` challenge with the captcha the owner solved.
    fn submit_challenge(
        &mut self,
        token: &str,
        captcha: &str,
    ) -> impl Future<Output = Result<(), String>>;
}
