//! What pane-agent's core and its Signal gateway (`pane-signal`, in `signal/`) share, kept
//! in one place so the two cannot drift apart:
//!
//! - [`messages`]: the relay protocol's lines over `<data-dir>/gateway.sock` (the message
//!   shapes, their encoding, the line limit), written once for both sides
//!   (`docs/gateway-protocol.md`);
//! - [`sent_log`]: the gateway's log of the send ids it has sent, which makes a send happen
//!   once across restarts of either side;
//! - [`device`]: how a linked Signal device fails;
//! - [`health`]: the link's health, as the gateway reports it;
//! - [`network`]: `[network] proxy`, the one way out for both.
//!
//! The crate needs nothing of presage and nothing of the core, so the gateway (built on its
//! own, with its own lock and git dependencies) depends on it alone, and everything here is
//! tested beside the core.

pub mod device;
pub mod health;
pub mod messages;
pub mod network;
pub mod sent_log;
