//! Per-tool sliding-window rate limits, read tools included.

use super::tools::{Tier, ToolSpec};
use crate::config::{Limit, McpRateLimits, RateLimitsConfig};
use std::collections::{HashMap, VecDeque};
use std::time::{Duration, Instant};

/// Whose budget a use counts against. Everything the owner sends over Signal has a budget of
/// its own, for every tier, so a flood of requests or wrong codes from another channel (a
/// holder of the secret asking for `grant` again and again) cannot lock the owner out of
/// approving, denying or asking for anything from the phone.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Lane {
    /// Every channel's commands.
    Shared,
    /// Every command from the owner's phone (Signal), `approve` and `deny` included.
    OwnerPhone,
    /// Everything the MCP key sends, under `[mcp.rate_limits]`: a model in a loop uses up
    /// its own budget, never the owner's.
    Mcp,
}

/// Remembers when each tool last ran, within its window.
#[derive(Debug)]
pub struct RateLimiter {
    config: RateLimitsConfig,
    mcp: McpRateLimits,
    history: HashMap<(Lane, &'static str), VecDeque<Instant>>,
    envelopes: HashMap<&'static str, VecDeque<Instant>>,
}

impl RateLimiter {
    /// Limits from the config: per tier, with per-tool overrides.
    pub fn new(config: RateLimitsConfig) -> RateLimiter {
        RateLimiter {
            config,
            mcp: McpRateLimits::default(),
            history: HashMap::new(),
            envelopes: HashMap::new(),
        }
    }

    /// The MCP key's own limits (`[mcp.rate_limits]`).
    pub fn with_mcp(mut self, mcp: McpRateLimits) -> RateLimiter {
        self.mcp = mcp;
        self
    }

    /// The limit that applies to `tool` in `lane`.
    pub fn limit_in(&self, tool: &ToolSpec, lane: Lane) -> Limit {
        if lane != Lane::Mcp {
            return self.limit_for(tool);
        }
        match tool.tier {
            Tier::Read => self.mcp.read,
            Tier::Write => self.mcp.write,
            Tier::External => self.mcp.external,
        }
    }

    /// The limit that applies to `tool`.
    pub fn limit_for(&self, tool: &ToolSpec) -> Limit {
        if let Some(l) = self.config.tools.get(tool.name) {
            return *l;
        }
        match tool.tier {
            Tier::Read => self.config.read,
            Tier::Write => self.config.write,
            Tier::External => self.config.external,
        }
    }

    /// Counts one authenticated envelope on `channel` against `[rate_limits] envelopes`.
    pub fn try_acquire_envelope(
        &mut self,
        channel: &'static str,
        now: Instant,
    ) -> Result<(), Duration> {
        let limit = if channel == "mcp" {
            self.mcp.envelopes
        } else {
            self.config.envelopes
        };
        take(self.envelopes.entry(channel).or_default(), limit, now)
    }

    /// Counts one use of `tool` in `lane` at `now` if the window has room; otherwise returns
    /// how long until it has.
    pub fn try_acquire(
        &mut self,
        tool: &ToolSpec,
        lane: Lane,
        now: Instant,
    ) -> Result<(), Duration> {
        let limit = self.limit_in(tool, lane);
        take(
            self.history.entry((lane, tool.name)).or_default(),
            limit,
            now,
        )
    }
}

/// One use within `limit`'s sliding window, or how long until there is room.
fn take(uses: &mut VecDeque<Instant>, limit: Limit, now: Instant) -> Result<(), Duration> {
    let window = Duration::from_secs(limit.window_secs);
    while let Some(first) = uses.front() {
        if now.duration_since(*first) >= window {
            uses.pop_front();
        } else {
            break;
        }
    }
    if uses.len() >= limit.max as usize {
        let retry = uses
            .front()
            .map(|first| window.saturating_sub(now.duration_since(*first)))
            .unwrap_or(window);
        return Err(retry);
    }
    uses.push_back(now);
    Ok(())
}
