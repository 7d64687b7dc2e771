//! Envelope authentication: the canonical JSON the signature covers, the secrets that may
//! have made it, the time window, and the persisted replay cache.

pub mod canonical;
pub mod envelope;
pub mod mcp_key;
pub mod replay;
pub mod secret;

pub use envelope::{Envelope, MAX_ENVELOPE_BYTES, WINDOW_SECS};
pub use secret::{Secret, SecretSet};
