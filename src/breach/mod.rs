//! The breach monitor's parts: reading sources, matching senders and merchants, judging
//! authentication results, keeping incidents.

pub mod authres;
pub mod imap;
pub mod imap_bodies;
pub mod incidents;
pub mod matching;
pub mod merchant;
