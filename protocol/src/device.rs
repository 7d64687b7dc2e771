//! How a linked Signal device fails, as the gateway (`signal/`) reports it. The device itself
//! (presage behind the gateway's own `Device` trait) and the relay loop live in `signal/`;
//! the error is here so that code which tells the two failures apart (reconnect, or ask the
//! operator to relink) needs nothing of presage.

/// Why the device failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DeviceError {
    /// The websocket dropped; reconnecting may help.
    #[error("connection lost: {0}")]
    Disconnected(String),
    /// The registration is gone or unusable (Signal refused the device's credentials); the
    /// operator must relink.
    #[error("the device must be linked again: {0}")]
    Unlinked(String),
    /// Signal refuses this client as too old (HTTP 499): the gateway must be updated.
    #[error("Signal refuses this client as too old: {0}")]
    Outdated(String),
}
