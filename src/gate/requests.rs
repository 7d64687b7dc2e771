//! One request through the gate: admission ([`super::admission`]) hands over an envelope's
//! request, the policy decides ([`crate::policy::SecurityPolicy::decide`]), and the gate
//! carries the decision out: runs the command ([`super::jobs`]), settles the answer it is
//! ([`super::approvals`]) or asks the owner. The owner's answers from the phone come here
//! as requests of their own kind, judged the same way.

use super::admission::{Admitted, Refused, Request};
use super::jobs::{After, Waiter};
use super::Gate;
use crate::auth::Envelope;
use crate::commands::Command;
use crate::origin::Invocation;
use crate::policy::{Decision, Facts, Refusal};
use crate::reply::{CommandError, Reply};
use serde_json::json;
use std::time::Instant;

impl Gate {
    /// Admits, judges, runs and audits one envelope; the answer goes to `waiter` (at once,
    /// or when the job it started is done).
    pub(super) async fn handle_envelope(&mut self, bytes: &[u8], inv: &Invocation, waiter: Waiter) {
        let admitted = match self.admission.admit(bytes, inv) {
            Ok(a) => a,
            Err(Refused::Refused {
                error,
                envelope,
                inv,
            }) => {
                let reply = self.refuse(&inv, error, envelope.as_deref());
                return self.deliver(waiter, reply).await;
            }
            Err(Refused::Internal(e)) => {
                let reply = Reply::Err(self.internal(e));
                return self.deliver(waiter, reply).await;
            }
        };
        let Admitted { envelope, inv, ts } = admitted;
        let sig_prefix = &envelope.sig_hex()[..12];
        if let Err(e) = self.audit_event(
            "envelope.accepted",
            &inv,
            json!({"cmd": crate::redact::truncate(&envelope.cmd, 40), "args": audited_args(&envelope), "ts": crate::redact::truncate(&envelope.ts, 40), "sig": sig_prefix}),
        ) {
            return self.deliver(waiter, Reply::Err(e)).await;
        }
        self.note_high_water(ts);
        match Command::parse(&envelope.cmd, &envelope.args) {
            Ok(command) => {
                let request = Request::from_command(command, envelope.args);
                self.handle_request(request, &inv, waiter).await
            }
            Err(e) => {
                let _ = self.audit_event(
                    "command.invalid",
                    &inv,
                    json!({"cmd": crate::redact::truncate(&envelope.cmd, 40), "error": crate::redact::truncate(&e.message, 300)}),
                );
                self.deliver(waiter, Reply::Err(e)).await
            }
        }
    }

    /// Asks the policy about an admitted request and carries out its decision: runs it,
    /// settles the answer it is, or opens an approval.
    pub(super) async fn handle_request(
        &mut self,
        request: Request,
        inv: &Invocation,
        waiter: Waiter,
    ) {
        let waiter = waiter.naming(request.name());
        self.note_owner_activity(inv);
        let decision = match self.decide(request.name(), inv) {
            Ok(d) => d,
            Err(e) => return self.deliver(waiter, Reply::Err(e)).await,
        };
        match (request, decision) {
            (Request::Answer(answer), _) => self.settle(answer, inv, waiter).await,
            (Request::Command { command, .. }, Decision::Allow) => {
                if let Err(e) = self.check_enroll_limit(&command) {
                    return self.deliver(waiter, Reply::Err(e)).await;
                }
                self.execute(command, inv, After::Action, waiter).await
            }
            (Request::Command { command, args }, Decision::NeedsApproval) => {
                // An approval is checked for sense before the owner is asked.
                if let Err(e) = command.precheck(&self.contexts, &self.config.cards) {
                    let _ = self.audit_event(
                        "command.invalid",
                        inv,
                        json!({"cmd": command.name(), "error": crate::redact::truncate(&e.message, 300)}),
                    );
                    return self.deliver(waiter, Reply::Err(e)).await;
                }
                if let Err(e) = self.check_enroll_limit(&command) {
                    return self.deliver(waiter, Reply::Err(e)).await;
                }
                let reply = self.ask_owner(&command, &args, inv).into();
                self.deliver(waiter, reply).await
            }
        }
    }

    /// The facts the policy's rules read, as the gate knows them now.
    pub(super) fn facts(&self, inv: &Invocation) -> Facts {
        Facts {
            channel: inv.channel,
            locked_down: self.locked_down(),
            over_budget: self.budget.over(),
        }
    }

    /// The policy's decision about the tool `name`, audited.
    fn decide(&mut self, name: &'static str, inv: &Invocation) -> Result<Decision, CommandError> {
        let tool = crate::commands::find(name)
            .map(|spec| &spec.tool)
            .ok_or_else(|| {
                self.internal(format!(
                    "command {name} has no entry in the tool table; refused"
                ))
            })?;
        let facts = self.facts(inv);
        match self.policy.decide(tool, facts, Instant::now()) {
            Ok(decision) => {
                if decision == Decision::Allow {
                    self.audit_event(
                        "policy.allow",
                        inv,
                        json!({"tool": tool.name, "tier": tool.tier.as_str()}),
                    )?;
                }
                Ok(decision)
            }
            Err(Refusal::Denied(e)) => {
                self.audit_event(
                    "policy.deny",
                    inv,
                    json!({"tool": tool.name, "tier": tool.tier.as_str(), "reason": e.message}),
                )?;
                Err(e)
            }
            Err(Refusal::Store(e)) => Err(self.internal(e)),
        }
    }

    /// An enrollment's card limit, checked before any work starts or the owner is asked.
    fn check_enroll_limit(&self, command: &Command) -> Result<(), CommandError> {
        if let Command::Enroll(e) = command {
            if let Some(cents) = e.request.card_cents {
                crate::commands::card::check_limit(cents, &self.config.cards)?;
            }
        }
        Ok(())
    }
}

/// An envelope's arguments as the audit log keeps them. The code of an `approve` or `deny` is
/// kept as its reference, so that the log (which `audit` reads, the MCP key too) never holds
/// a code that was typed somewhere (an `approve` refused for want of a grant leaves its
/// approval pending).
fn audited_args(envelope: &Envelope) -> serde_json::Value {
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
    if envelope.cmd == "signal.challenge" && args.contains_key("captcha") {
        // A solved captcha is a credential to Signal for a few minutes: never kept.
        args.insert("captcha".into(), json!("[captcha]"));
    }
    bounded_args(&args)
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
