//! One envelope through the gate: parse, authenticate against the time it arrived, refuse
//! replays, parse the command, ask the policy, then carry it out or ask the owner.

use super::jobs::{After, Waiter};
use super::{Gate, RefusalWindow, REFUSALS_AUDITED_PER_MINUTE};
use crate::auth::{Envelope, WINDOW_SECS};
use crate::commands::Command;
use crate::origin::{Channel, Invocation};
use crate::policy::rate_limit::Lane;
use crate::policy::{Decision, PolicyError};
use crate::reply::{CommandError, ErrorKind, Reply};
use chrono::Duration as ChronoDuration;
use serde_json::json;
use std::time::{Duration, Instant};

impl Gate {
    /// Authenticates, parses, judges, runs and audits one envelope; the answer goes to
    /// `waiter` (at once, or when the job it started is done).
    pub(super) async fn handle_envelope(&mut self, bytes: &[u8], inv: &Invocation, waiter: Waiter) {
        match self.admit(bytes, inv) {
            Ok((command, envelope, inv)) => {
                self.judge_and_run(command, &envelope, &inv, waiter).await
            }
            Err(reply) => self.deliver(waiter, reply).await,
        }
    }

    /// Everything up to a parsed command of an accepted envelope, or the refusal. The
    /// invocation handed back names the credential's channel: `mcp` for an envelope the MCP
    /// key signed.
    fn admit(
        &mut self,
        bytes: &[u8],
        inv: &Invocation,
    ) -> Result<(Command, Envelope, Invocation), Reply> {
        let envelope = Envelope::parse(bytes).map_err(|e| self.refuse(inv, e, None))?;
        let (ts, inv) = match envelope.authenticate(&self.secrets, inv.now) {
            Ok(ts) => (ts, inv.clone()),
            Err(e) => match self.authenticate_mcp(&envelope, inv) {
                Some(Ok(found)) => found,
                Some(Err(e)) => return Err(self.refuse(inv, e, Some(&envelope))),
                None => return Err(self.refuse(inv, e, Some(&envelope))),
            },
        };
        let inv = &inv;
        if inv.channel == Channel::Mcp && !self.phone_only() {
            let e = CommandError::new(
                ErrorKind::Unavailable,
                "the MCP key works only when approvals go to the owner's phone: set [signal] owner and keep [approvals] codes_over_signal_only = true",
            );
            return Err(self.refuse(inv, e, Some(&envelope)));
        }
        self.check_rollback_floor(ts)
            .map_err(|e| self.refuse(inv, e, Some(&envelope)))?;
        // One budget for every authenticated envelope, parseable or not, before anything of
        // it is written.
        if let Err(wait) = self
            .policy
            .limiter
            .try_acquire_envelope(inv.channel.as_str(), Instant::now())
        {
            let e = CommandError::new(
                ErrorKind::RateLimited,
                format!(
                    "rate limited: too many envelopes on this channel ([rate_limits] envelopes); try again in {} s",
                    wait.as_secs().max(1)
                ),
            );
            return Err(self.refuse(inv, e, Some(&envelope)));
        }
        // Remembered until the envelope could not pass the window anyway.
        let forget_after = ts + ChronoDuration::seconds(WINDOW_SECS + 1);
        match self.replay.insert_new(&envelope.sig, forget_after) {
            Ok(true) => {}
            Ok(false) => {
                let e = CommandError::new(
                    ErrorKind::Replayed,
                    "replayed: this envelope was already accepted; sign a new one",
                );
                return Err(self.refuse(inv, e, Some(&envelope)));
            }
            Err(e) => return Err(Reply::Err(self.internal(e))),
        }
        let sig_prefix = &envelope.sig_hex()[..12];
        self.audit_event(
            "envelope.accepted",
            inv,
            json!({"cmd": crate::redact::truncate(&envelope.cmd, 40), "args": self.audited_args(&envelope), "ts": crate::redact::truncate(&envelope.ts, 40), "sig": sig_prefix}),
        )?;
        self.note_high_water(ts);
        match Command::parse(&envelope.cmd, &envelope.args) {
            Ok(c) => Ok((c, envelope, inv.clone())),
            Err(e) => {
                let _ = self.audit_event(
                    "command.invalid",
                    inv,
                    json!({"cmd": crate::redact::truncate(&envelope.cmd, 40), "error": crate::redact::truncate(&e.message, 300)}),
                );
                Err(Reply::Err(e))
            }
        }
    }

    /// An envelope's arguments as the audit log keeps them. The code of an `approve` or
    /// `deny` is kept as its reference, so that the log (which `audit` reads, the MCP key
    /// too) never holds a code that was typed somewhere (an `approve` refused for want of a
    /// grant leaves its approval pending).
    fn audited_args(&self, envelope: &Envelope) -> serde_json::Value {
        let mut args = envelope.args.clone();
        if matches!(envelope.cmd.as_str(), "approve" | "deny") {
            if let Some(typed) = args.get("code").and_then(serde_json::Value::as_str) {
                let shown = match crate::policy::approvals::ApprovalCode::parse(typed) {
                    Some(code) => code.reference(),
                    None => "[not a code]".to_string(),
                };
                args.insert("code".into(), json!(shown));
            }
        }
        bounded_args(&args)
    }

    /// An envelope the command secrets did not sign, checked against the MCP key: None when
    /// there is no MCP key or it came on a channel other than the control socket (where
    /// `pane-agent mcp` sends from); else its time and the `mcp` invocation, or why not.
    fn authenticate_mcp(
        &self,
        envelope: &Envelope,
        inv: &Invocation,
    ) -> Option<Result<(chrono::DateTime<chrono::Utc>, Invocation), CommandError>> {
        let key = self
            .mcp_key
            .as_ref()
            .filter(|_| inv.channel == Channel::Socket)?;
        let mcp = Invocation {
            channel: Channel::Mcp,
            now: inv.now,
        };
        match envelope.authenticate(key, inv.now) {
            Ok(ts) => Some(Ok((ts, mcp))),
            Err(e) if e.kind == ErrorKind::BadSignature => None,
            Err(e) => Some(Err(e)),
        }
    }

    /// Asks the policy about `command` and carries it out, or opens an approval.
    pub(super) async fn judge_and_run(
        &mut self,
        command: Command,
        envelope: &Envelope,
        inv: &Invocation,
        waiter: Waiter,
    ) {
        let waiter = waiter.naming(command.name());
        if inv.channel == Channel::Mcp {
            // The MCP key's scope, and never the policy's own controls, whatever the config.
            let scoped = command
                .tool()
                .and_then(|t| crate::policy::mcp::admit(t, &self.config.mcp.tools));
            if let Err(e) = scoped {
                let _ = self.audit_event(
                    "policy.deny",
                    inv,
                    json!({"tool": command.name(), "reason": e.message}),
                );
                return self.deliver(waiter, Reply::Err(e)).await;
            }
        }
        if let Command::Unlock(_) = command {
            // The console unlocks at once; the phone asks for an approval (below); nobody
            // else can.
            match inv.channel {
                Channel::Socket => {
                    let reply = self.unlock(inv).into();
                    return self.deliver(waiter, reply).await;
                }
                Channel::Signal => {}
                Channel::Http | Channel::Internal | Channel::Mcp => {
                    let e = CommandError::new(
                        ErrorKind::NotGranted,
                        "unlock is accepted at the console (pane-agent unlock) or from the owner's phone over Signal",
                    );
                    let _ = self.audit_event(
                        "policy.deny",
                        inv,
                        json!({"tool": "unlock", "reason": e.message}),
                    );
                    return self.deliver(waiter, Reply::Err(e)).await;
                }
            }
        }
        if self.over_budget
            && !matches!(
                command,
                Command::Lockdown(_)
                    | Command::Approve(_)
                    | Command::Deny(_)
                    | Command::Revoke(_)
                    | Command::Unlock(_)
            )
            && command
                .tool()
                .is_ok_and(|t| t.tier != crate::policy::tools::Tier::Read)
        {
            let e = CommandError::new(
                ErrorKind::Unavailable,
                "the store is over its size budget ([audit] store_budget_mb): only reads, lockdown, approve/deny, revoke and unlock are carried out until it is pruned or the budget raised",
            );
            let _ = self.audit_event(
                "policy.deny",
                inv,
                json!({"cmd": command.name(), "reason": "store over budget"}),
            );
            return self.deliver(waiter, Reply::Err(e)).await;
        }
        if matches!(command, Command::Grant(_)) && self.locked_down() {
            let e = super::approvals::locked_down_error("grant");
            let _ = self.audit_event(
                "policy.deny",
                inv,
                json!({"tool": "grant", "reason": e.message}),
            );
            return self.deliver(waiter, Reply::Err(e)).await;
        }
        match self.judge(&command, envelope, inv) {
            Ok(Decision::Allow) => match command {
                Command::Approve(c) => self.approve(&c.code, inv, waiter).await,
                Command::Deny(c) => {
                    let reply = self.deny(&c.code, inv).into();
                    self.deliver(waiter, reply).await
                }
                command => self.execute(command, inv, After::Action, waiter).await,
            },
            Ok(Decision::NeedsApproval) => {
                let reply = self.ask_owner(&command, &envelope.args, inv).into();
                self.deliver(waiter, reply).await
            }
            Err(e) => self.deliver(waiter, Reply::Err(e)).await,
        }
    }

    /// The policy's decision, audited; an approval request is checked for sense first.
    fn judge(
        &mut self,
        command: &Command,
        envelope: &Envelope,
        inv: &Invocation,
    ) -> Result<Decision, CommandError> {
        let tool = command.tool()?;
        // Only the owner's messages reach the gate from Signal (the channel drops
        // strangers'), so everything from there counts against the owner's own budget.
        let lane = match inv.channel {
            Channel::Signal => Lane::OwnerPhone,
            Channel::Mcp => Lane::Mcp,
            _ => Lane::Shared,
        };
        let decision = match self.policy.decide(tool, lane, Instant::now()) {
            Ok(d) => d,
            Err(PolicyError::Refused(e)) => {
                self.audit_event(
                    "policy.deny",
                    inv,
                    json!({"tool": tool.name, "tier": tool.tier.as_str(), "reason": e.message}),
                )?;
                return Err(e);
            }
            Err(PolicyError::Store(e)) => return Err(self.internal(e)),
        };
        match decision {
            Decision::Allow => {
                self.audit_event(
                    "policy.allow",
                    inv,
                    json!({"tool": tool.name, "tier": tool.tier.as_str()}),
                )?;
            }
            Decision::NeedsApproval => {
                if let Err(e) = command.precheck(&self.contexts, &self.config.cards) {
                    self.audit_event(
                        "command.invalid",
                        inv,
                        json!({"cmd": crate::redact::truncate(&envelope.cmd, 40), "error": crate::redact::truncate(&e.message, 300)}),
                    )?;
                    return Err(e);
                }
            }
        }
        if let Command::Enroll(e) = command {
            // Checked before any work starts, like an approval's precheck.
            if let Some(cents) = e.request.card_cents {
                crate::commands::card::check_limit(cents, &self.config.cards)?;
            }
        }
        Ok(decision)
    }

    /// Audits a refusal (at most [`REFUSALS_AUDITED_PER_MINUTE`] a channel a minute; the
    /// rest are counted and written as one summary) and returns it as the reply.
    pub(super) fn refuse(
        &mut self,
        inv: &Invocation,
        error: CommandError,
        envelope: Option<&Envelope>,
    ) -> Reply {
        tracing::info!(
            channel = inv.channel.as_str(),
            kind = error.kind.as_str(),
            "envelope refused"
        );
        let now = Instant::now();
        let window = self.refusals.entry(inv.channel).or_insert(RefusalWindow {
            started: now,
            audited: 0,
            suppressed: 0,
        });
        let mut summary = None;
        if now.duration_since(window.started) >= Duration::from_secs(60) {
            if window.suppressed > 0 {
                summary = Some(window.suppressed);
            }
            *window = RefusalWindow {
                started: now,
                audited: 0,
                suppressed: 0,
            };
        }
        let audit_this = window.audited < REFUSALS_AUDITED_PER_MINUTE;
        if audit_this {
            window.audited += 1;
        } else {
            window.suppressed += 1;
        }
        if let Some(n) = summary {
            let _ = self.audit_event("envelope.refused.suppressed", inv, json!({"count": n}));
        }
        if audit_this {
            let detail = match envelope {
                Some(env) => json!({
                    "kind": error.kind.as_str(),
                    "reason": error.message,
                    "cmd": crate::redact::truncate(&env.cmd, 40),
                    "ts": env.ts,
                    "sig": &env.sig_hex()[..12],
                }),
                None => json!({"kind": error.kind.as_str(), "reason": error.message}),
            };
            if let Err(e) = self.audit_event("envelope.refused", inv, detail) {
                return Reply::Err(e);
            }
        }
        Reply::Err(error)
    }
}

/// The largest `args` the audit log keeps whole, as canonical JSON.
const ARGS_KEPT_BYTES: usize = 1024;

/// An envelope's arguments as the audit log keeps them: whole up to [`ARGS_KEPT_BYTES`];
/// beyond that a bounded digest (size, SHA-256, the first keys), so that 60 KiB of arguments
/// never become 60 KiB of audit log.
fn bounded_args(args: &serde_json::Map<String, serde_json::Value>) -> serde_json::Value {
    let text = crate::auth::canonical::python_dumps(&serde_json::Value::Object(args.clone()));
    if text.len() <= ARGS_KEPT_BYTES {
        return serde_json::Value::Object(args.clone());
    }
    use sha2::{Digest, Sha256};
    let keys: Vec<String> = args
        .keys()
        .take(10)
        .map(|k| crate::redact::truncate(k, 40))
        .collect();
    json!({
        "bytes": text.len(),
        "sha256": hex::encode(Sha256::digest(text.as_bytes())),
        "keys": keys,
    })
}
