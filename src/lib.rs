//! pane-agent: a command agent for privacy operations, driven by signed commands from its
//! owner over Signal, a Tor onion HTTP endpoint, or the CLI over SSH.
//!
//! One path serves every command, whatever channel brought it:
//!
//! ```text
//! channel (socket | http | gateway) ▸ auth (HMAC, window, replay) ▸ command parse
//!   ▸ SecurityPolicy (grant ▸ rate limit ▸ tier ▸ approval) ▸ action ▸ audit ▸ reply / outbox
//! ```
//!
//! A reader follows a command from [`channels`] to the [`gate`], through [`auth`] and
//! [`policy`], to its file in [`commands`], and for slow work on to its worker in
//! [`workers`]. `docs/architecture.md` has the layers.
#![warn(missing_docs)]

pub mod approval_code;
pub mod assembly;
pub mod audit;
pub mod auth;
pub mod breach;
pub mod channels;
pub mod cli;
pub mod commands;
pub mod config;
pub mod context;
pub mod egress;
pub mod gate;
pub mod gateway;
pub mod health;
pub mod inbox;
pub mod logging;
pub mod mcp;
pub mod origin;
pub mod outbox;
pub mod ownership;
pub mod persona;
pub mod policy;
pub mod providers;
pub mod redact;
pub mod reply;
pub mod retry;
pub mod schedule;
pub mod seal;
pub mod shutdown;
pub mod sim;
pub mod store;
pub mod systemd;
pub mod text;
pub mod unix;
pub mod words;
pub mod workers;
