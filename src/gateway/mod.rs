//! The Signal gateway's protocol and relay: everything of the gateway that can be tested
//! without presage lives here; `signal/` only implements [`device::SignalDevice`].

pub mod device;
pub mod protocol;
pub mod relay;
