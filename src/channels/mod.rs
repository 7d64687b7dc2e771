//! The ways envelopes reach the agent: the control socket (the CLI, also over SSH) and the
//! loopback HTTP endpoint (for a Tor onion service). Each hands raw bytes to the
//! [`AgentHandle`](crate::actors::agent::AgentHandle) and returns its reply unchanged.

pub mod client;
pub mod control_socket;
pub mod gateway;
pub mod http;
