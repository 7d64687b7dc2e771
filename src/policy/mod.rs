//! The SecurityPolicy: the one entry point for every decision about whether a command runs.
//!
//! Order: grant ▸ rate limit ▸ tier. Read and write tools run once they pass the first two;
//! external and destructive tools need the owner's approval ([`approvals`]). Every decision
//! is audited by the caller.

pub mod approvals;
pub mod args;
pub mod grants;
pub mod mcp;
pub mod rate_limit;
pub mod tools;

use crate::reply::{CommandError, ErrorKind};
use crate::store::StoreError;
use approvals::Approvals;
use grants::Grants;
use rate_limit::RateLimiter;
use std::time::Instant;
use tools::{Tier, ToolSpec};

/// What the policy decided for one command.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// Run it now.
    Allow,
    /// Ask the owner first.
    NeedsApproval,
}

/// Grants, rate limits and approvals together.
pub struct SecurityPolicy {
    /// Which tools may run.
    pub grants: Grants,
    /// How often.
    pub limiter: RateLimiter,
    /// The owner's pending and settled approvals.
    pub approvals: Approvals,
    /// Seconds before a pending approval is denied.
    pub approval_timeout_secs: u64,
}

impl SecurityPolicy {
    /// Decides whether `tool` may run now. A refusal is an error with its reason; it is
    /// final for this envelope (the owner sends a new command after changing a grant).
    pub fn decide(
        &mut self,
        tool: &ToolSpec,
        lane: rate_limit::Lane,
        now: Instant,
    ) -> Result<Decision, PolicyError> {
        if !self.grants.is_granted(tool)? {
            return Err(PolicyError::Refused(CommandError::new(
                ErrorKind::NotGranted,
                format!(
                    "not granted: the tool {} has no grant (send `grant` with tool={} to restore it)",
                    tool.name, tool.name
                ),
            )));
        }
        if let Err(wait) = self.limiter.try_acquire(tool, lane, now) {
            let limit = self.limiter.limit_in(tool, lane);
            return Err(PolicyError::Refused(CommandError::new(
                ErrorKind::RateLimited,
                format!(
                    "rate limited: {} allows {} per {} s; try again in {} s",
                    tool.name,
                    limit.max,
                    limit.window_secs,
                    wait.as_secs().max(1)
                ),
            )));
        }
        Ok(match tool.tier {
            Tier::Read | Tier::Write => Decision::Allow,
            Tier::External => Decision::NeedsApproval,
        })
    }
}

/// Why the policy did not allow a command.
#[derive(Debug, thiserror::Error)]
pub enum PolicyError {
    /// Refused, with the reply to give.
    #[error("{0}")]
    Refused(CommandError),
    /// The grant table could not be read: fail secure.
    #[error(transparent)]
    Store(#[from] StoreError),
}
