//! The ways work reaches the gate: the control socket (the CLI, also over SSH), the
//! loopback HTTP endpoint (for a Tor onion service), the Signal gateway's socket, and the
//! timers (the cron schedule and IMAP IDLE). Each hands raw bytes or a due job to the
//! [`GateHandle`](crate::gate::GateHandle) and returns its reply unchanged; none waits on
//! the gate for anything slow.

pub mod client;
pub mod control_socket;
pub mod door;
pub mod http;
pub mod http_conn;
pub mod idle;
pub mod outage;
pub mod signal;
pub mod timers;
