//! The core's view of what it shares with the Signal gateway (`signal/`, built on its own):
//! the relay protocol's lines and the gateway's sent-id log, both from the `pane-protocol`
//! crate (`protocol/`), re-exported here under the paths the core and its tests use. The
//! relay loop and presage live in `signal/`; the core's side of the socket is
//! `crate::channels::gateway`.

pub use pane_protocol::messages as protocol;
pub use pane_protocol::sent_log;
