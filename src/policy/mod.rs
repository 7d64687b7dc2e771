//! The SecurityPolicy: every rule about whether a command runs, in one place.
//!
//! [`SecurityPolicy::decide`] judges a request the gate admitted, from the tool it runs and
//! the [`Facts`] the gate knows (channel, lockdown, store budget): MCP scope ▸ unlock's
//! channels ▸ store budget ▸ lockdown ▸ grant ▸ rate limit ▸ tier. Read and write tools run
//! once they pass; external and destructive tools need the owner's approval ([`approvals`]),
//! and [`SecurityPolicy::may_settle`] judges the approval when it comes. The gate carries the
//! decision out and audits it.

pub mod approvals;
pub mod grants;
pub mod mcp;
pub mod rate_limit;
pub mod tools;

use crate::config::McpScope;
use crate::origin::Channel;
use crate::reply::{CommandError, ErrorKind};
use crate::store::StoreError;
use approvals::Approvals;
use grants::Grants;
use rate_limit::{Lane, RateLimiter};
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

/// What the gate knows when it asks, which the rules read: where the command came from and
/// the agent's own state. The policy owns the rules; the gate owns these facts.
#[derive(Debug, Clone, Copy)]
pub struct Facts {
    /// The channel of the credential that signed it (`mcp` for the MCP key).
    pub channel: Channel,
    /// A lockdown holds.
    pub locked_down: bool,
    /// The store is over `[audit] store_budget_mb`.
    pub over_budget: bool,
}

/// A refusal: the reply to give, and the reason the audit log keeps (`policy.deny`).
#[derive(Debug, thiserror::Error)]
pub enum Refusal {
    /// A rule refused it; audited as `policy.deny` with the tool, its tier and the reason.
    #[error("{0}")]
    Denied(CommandError),
    /// The grant table could not be read: fail secure (an internal error, not audited as a
    /// decision).
    #[error(transparent)]
    Store(StoreError),
}

/// The policy's own controls that stay available when the store is over its budget: what
/// keeps the owner in control.
const OVER_BUDGET_ALLOWED: &[&str] = &["lockdown", "approve", "deny", "revoke", "unlock"];

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
    /// What the MCP key may send.
    pub mcp_scope: McpScope,
}

impl SecurityPolicy {
    /// The one decision about whether `tool` runs, in this order: the MCP key's scope, who
    /// may unlock, the store budget, no grant during a lockdown, the grant, the rate limit
    /// of the caller's lane, then the tier (external tools need the owner's approval). A
    /// refusal is final for this request (the owner sends a new command after changing a
    /// grant).
    pub fn decide(
        &mut self,
        tool: &ToolSpec,
        facts: Facts,
        now: Instant,
    ) -> Result<Decision, Refusal> {
        if facts.channel == Channel::Mcp {
            // The MCP key's scope, and never the policy's own controls, whatever the config.
            mcp::admit(tool, &self.mcp_scope).map_err(Refusal::Denied)?;
        }
        if tool.name == "unlock" {
            // The console unlocks at once; the phone asks for an approval (below); nobody
            // else can.
            match facts.channel {
                Channel::Socket => return Ok(Decision::Allow),
                Channel::Signal => {}
                Channel::Http | Channel::Internal | Channel::Mcp => {
                    return Err(Refusal::Denied(CommandError::new(
                        ErrorKind::NotGranted,
                        "unlock is accepted at the console (pane-agent unlock) or from the owner's phone over Signal",
                    )))
                }
            }
        }
        if facts.over_budget && !OVER_BUDGET_ALLOWED.contains(&tool.name) && tool.tier != Tier::Read
        {
            return Err(Refusal::Denied(CommandError::new(
                ErrorKind::Unavailable,
                "the store is over its size budget ([audit] store_budget_mb): only reads, lockdown, approve/deny, revoke and unlock are carried out until it is pruned or the budget raised",
            )));
        }
        if tool.name == "grant" && facts.locked_down {
            return Err(Refusal::Denied(locked_down_error("grant")));
        }
        if !self.grants.is_granted(tool).map_err(Refusal::Store)? {
            return Err(Refusal::Denied(CommandError::new(
                ErrorKind::NotGranted,
                format!(
                    "not granted: the tool {} has no grant (send `grant` with tool={} to restore it)",
                    tool.name, tool.name
                ),
            )));
        }
        // Only the owner's messages reach the gate from Signal (the channel drops
        // strangers'), so everything from there counts against the owner's own budget.
        let lane = match facts.channel {
            Channel::Signal => Lane::OwnerPhone,
            Channel::Mcp => Lane::Mcp,
            _ => Lane::Shared,
        };
        if let Err(wait) = self.limiter.try_acquire(tool, lane, now) {
            let limit = self.limiter.limit_in(tool, lane);
            return Err(Refusal::Denied(CommandError::new(
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

    /// Whether an approved action may run now that the owner approved it (`tool`, asked
    /// over `asked_on`, approved over `facts.channel`): an approval the MCP key asked for is
    /// answered from the phone only; an unlock is approved from the phone only; nothing but
    /// an unlock is approved during a lockdown; and the tool must still hold its grant.
    pub fn may_settle(&self, tool: &ToolSpec, asked_on: &str, facts: Facts) -> Result<(), Refusal> {
        phone_answers_mcp(asked_on, facts.channel).map_err(Refusal::Denied)?;
        let unlock = tool.name == "unlock";
        if unlock && facts.channel != Channel::Signal {
            return Err(Refusal::Denied(CommandError::new(
                ErrorKind::NotGranted,
                "an unlock is approved from the owner's phone only (or run `pane-agent unlock` at the console)",
            )));
        }
        if !unlock && facts.locked_down {
            return Err(Refusal::Denied(locked_down_error("approve")));
        }
        if !self.grants.is_granted(tool).map_err(Refusal::Store)? {
            return Err(Refusal::Denied(CommandError::new(
                ErrorKind::NotGranted,
                format!(
                    "not granted: {} lost its grant while waiting; the approval stays pending",
                    tool.name
                ),
            )));
        }
        Ok(())
    }

    /// Whether a denial may be given over `facts.channel` for an approval asked over
    /// `asked_on`.
    pub fn may_deny(&self, asked_on: &str, facts: Facts) -> Result<(), CommandError> {
        phone_answers_mcp(asked_on, facts.channel)
    }
}

/// An approval the MCP key asked for is answered from the owner's phone only: whoever else
/// learned its code (a model, a holder of the command secret) cannot settle it.
fn phone_answers_mcp(asked_on: &str, answered_on: Channel) -> Result<(), CommandError> {
    if asked_on == Channel::Mcp.as_str() && answered_on != Channel::Signal {
        return Err(CommandError::new(
            ErrorKind::NotGranted,
            "this approval was asked for over MCP: only the owner answers it, from their phone over Signal",
        ));
    }
    Ok(())
}

/// The refusal of `what` during a lockdown.
pub fn locked_down_error(what: &str) -> CommandError {
    CommandError::new(
        ErrorKind::LockedDown,
        format!(
            "locked down: {what} is refused until the owner unlocks (`unlock` from Signal with an approval, or `pane-agent unlock` at the console)"
        ),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::RateLimitsConfig;
    use crate::store::Store;

    fn policy(store: &Store) -> SecurityPolicy {
        SecurityPolicy {
            grants: Grants::new(store, Vec::new()),
            limiter: RateLimiter::new(RateLimitsConfig::default()),
            approvals: Approvals::new(store),
            approval_timeout_secs: 600,
            mcp_scope: McpScope::Default,
        }
    }

    fn facts(channel: Channel) -> Facts {
        Facts {
            channel,
            locked_down: false,
            over_budget: false,
        }
    }

    fn tool(name: &str) -> &'static ToolSpec {
        &crate::commands::find(name).unwrap().tool
    }

    fn denied(r: Result<Decision, Refusal>) -> ErrorKind {
        match r {
            Err(Refusal::Denied(e)) => e.kind,
            other => panic!("not denied: {other:?}"),
        }
    }

    /// The tier decides: reads and writes run, external tools wait for the owner.
    #[test]
    fn the_tier_decides_once_granted_and_within_the_rate() {
        let store = Store::temporary().unwrap();
        let mut p = policy(&store);
        let now = Instant::now();
        let f = facts(Channel::Socket);
        assert_eq!(p.decide(tool("list"), f, now).unwrap(), Decision::Allow);
        assert_eq!(p.decide(tool("enroll"), f, now).unwrap(), Decision::Allow);
        assert_eq!(
            p.decide(tool("card.fund"), f, now).unwrap(),
            Decision::NeedsApproval
        );
        p.grants.revoke(tool("list")).unwrap();
        assert_eq!(
            denied(p.decide(tool("list"), f, now)),
            ErrorKind::NotGranted
        );
    }

    /// Each lane has its own budget: the owner's phone is not starved by the shared lane.
    #[test]
    fn rate_limits_count_per_lane() {
        let store = Store::temporary().unwrap();
        let mut p = policy(&store);
        let now = Instant::now();
        let external = tool("expire");
        let max = p.limiter.limit_in(external, Lane::Shared).max;
        for _ in 0..max {
            p.decide(external, facts(Channel::Http), now).unwrap();
        }
        assert_eq!(
            denied(p.decide(external, facts(Channel::Socket), now)),
            ErrorKind::RateLimited
        );
        assert_eq!(
            p.decide(external, facts(Channel::Signal), now).unwrap(),
            Decision::NeedsApproval
        );
    }

    /// The MCP key never reaches the policy's own controls, whatever is granted.
    #[test]
    fn the_mcp_key_never_gets_the_controls() {
        let store = Store::temporary().unwrap();
        let mut p = policy(&store);
        let now = Instant::now();
        for name in mcp::NEVER {
            assert_eq!(
                denied(p.decide(tool(name), facts(Channel::Mcp), now)),
                ErrorKind::NotGranted,
                "{name}"
            );
        }
        assert_eq!(
            p.decide(tool("list"), facts(Channel::Mcp), now).unwrap(),
            Decision::Allow
        );
    }

    /// Unlock: at once at the console, with an approval from the phone, nowhere else.
    #[test]
    fn unlock_is_the_consoles_or_the_phones() {
        let store = Store::temporary().unwrap();
        let mut p = policy(&store);
        let now = Instant::now();
        let unlock = tool("unlock");
        let mut locked = facts(Channel::Socket);
        locked.locked_down = true;
        assert_eq!(p.decide(unlock, locked, now).unwrap(), Decision::Allow);
        locked.channel = Channel::Signal;
        assert_eq!(
            p.decide(unlock, locked, now).unwrap(),
            Decision::NeedsApproval
        );
        locked.channel = Channel::Http;
        assert_eq!(denied(p.decide(unlock, locked, now)), ErrorKind::NotGranted);
    }

    /// During a lockdown nothing is granted and nothing but an unlock is approved; over the
    /// store budget only what keeps the owner in control runs.
    #[test]
    fn lockdown_and_the_store_budget() {
        let store = Store::temporary().unwrap();
        let mut p = policy(&store);
        let now = Instant::now();
        let mut f = facts(Channel::Socket);
        f.locked_down = true;
        assert_eq!(
            denied(p.decide(tool("grant"), f, now)),
            ErrorKind::LockedDown
        );
        let refused = p.may_settle(tool("card.fund"), "socket", f);
        assert!(matches!(refused, Err(Refusal::Denied(e)) if e.kind == ErrorKind::LockedDown));
        f.channel = Channel::Signal;
        assert!(p.may_settle(tool("unlock"), "signal", f).is_ok());

        let mut f = facts(Channel::Socket);
        f.over_budget = true;
        assert_eq!(
            denied(p.decide(tool("enroll"), f, now)),
            ErrorKind::Unavailable
        );
        for name in ["list", "lockdown", "approve", "deny", "revoke"] {
            assert!(p.decide(tool(name), f, now).is_ok(), "{name}");
        }
    }

    /// An approval the MCP key asked for is answered from the phone only; a tool that lost
    /// its grant while waiting is not run.
    #[test]
    fn who_may_answer_an_approval() {
        let store = Store::temporary().unwrap();
        let p = policy(&store);
        let fund = tool("card.fund");
        assert!(p.may_settle(fund, "mcp", facts(Channel::Socket)).is_err());
        assert!(p.may_deny("mcp", facts(Channel::Http)).is_err());
        assert!(p.may_settle(fund, "mcp", facts(Channel::Signal)).is_ok());
        assert!(p.may_deny("mcp", facts(Channel::Signal)).is_ok());
        p.grants.revoke(fund).unwrap();
        let refused = p.may_settle(fund, "socket", facts(Channel::Socket));
        assert!(matches!(refused, Err(Refusal::Denied(e)) if e.kind == ErrorKind::NotGranted));
    }
}
