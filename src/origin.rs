//! Where a command came from and when it arrived: what the audit log records with it and
//! what its time window is judged against.

use chrono::{DateTime, Utc};

/// Where an envelope came from, for the audit log.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Channel {
    /// The control socket (`pane-agent send` / `command`, the CLI over SSH).
    Socket,
    /// `POST /command` on the HTTP endpoint (behind a Tor onion service).
    Http,
    /// The Signal gateway.
    Signal,
    /// The MCP server (`pane-agent mcp`): envelopes signed with `mcp.key`, a credential of
    /// its own with a narrower scope than the command secret, on the control socket.
    Mcp,
    /// The agent itself (timers, start-up work).
    Internal,
}

impl Channel {
    /// The name written to the audit log.
    pub fn as_str(self) -> &'static str {
        match self {
            Channel::Socket => "socket",
            Channel::Http => "http",
            Channel::Signal => "signal",
            Channel::Mcp => "mcp",
            Channel::Internal => "internal",
        }
    }
}

/// The circumstances of one command: its channel and the time it is judged at, which is
/// the time it arrived, not the time the gate got to it.
#[derive(Debug, Clone)]
pub struct Invocation {
    /// The channel.
    pub channel: Channel,
    /// The agent's clock when the envelope arrived.
    pub now: DateTime<Utc>,
}

impl Invocation {
    /// An invocation on `channel` at the current time.
    pub fn now(channel: Channel) -> Invocation {
        Invocation {
            channel,
            now: Utc::now(),
        }
    }
}
