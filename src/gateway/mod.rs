//! What the core and the Signal gateway (`signal/`, built on its own) share: the relay
//! protocol's message shapes as the core reads them (the gateway keeps its own strict copy,
//! held to this one by `tests/protocol_copies.rs`), the device's errors, and the gateway's
//! sent-id log. The relay loop and presage live in `signal/`.

pub mod device;
pub mod protocol;
pub mod sent_log;
