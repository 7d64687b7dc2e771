//! The breach monitor's parts: reading sources, matching senders, keeping incidents.

pub mod imap;
pub mod incidents;
pub mod matching;
