//! The agent actor: the one place every envelope goes through, from every channel.
//!
//! [`AgentHandle`] is the cloneable front (an `mpsc::Sender`); [`Agent`] owns the [`Core`]
//! state and the receiver and handles one message at a time, so authentication, the replay
//! cache, rate limits and approvals need no locks. It answers over a `oneshot` after the
//! store is flushed, and ends when every handle is dropped.

use crate::actors::breach::BreachHandle;
use crate::actors::enroll::{EnrollHandle, EnrollMessage};
use crate::audit::AuditLog;
use crate::auth::replay::ReplayCache;
use crate::auth::{Envelope, SecretSet, WINDOW_SECS};
use crate::breach::incidents::{Incident, Incidents};
use crate::commands::Command;
use crate::config::Config;
use crate::context::Contexts;
use crate::gateway::protocol::GatewayEvent;
use crate::outbox::{MessageKind, Outbox, OutboxMessage};
use crate::policy::approvals::{Approval, ApprovalState};
use crate::policy::{Decision, PolicyError, SecurityPolicy};
use crate::redact::Redactor;
use crate::reply::{Answer, CommandError, ErrorKind, Reply};
use crate::schedule::Job;
use crate::store::Store;
use chrono::{DateTime, Duration as ChronoDuration, Utc};
use serde_json::{json, Value};
use std::collections::HashMap;
use std::time::{Duration, Instant};
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;

/// Where an envelope came from, for the audit log.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Channel {
    /// The control socket (`pane-agent send` / `command`, the CLI over SSH).
    Socket,
    /// `POST /command` on the HTTP endpoint (behind a Tor onion service).
    Http,
    /// The Signal gateway.
    Signal,
    /// The agent itself (timers).
    Internal,
}

impl Channel {
    /// The name written to the audit log.
    pub fn as_str(self) -> &'static str {
        match self {
            Channel::Socket => "socket",
            Channel::Http => "http",
            Channel::Signal => "signal",
            Channel::Internal => "internal",
        }
    }
}

/// The circumstances of one command: its channel and the time it is judged at.
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

/// Messages the actor handles.
#[derive(Debug)]
pub enum AgentMessage {
    /// An envelope's raw bytes, to authenticate and carry out.
    Envelope {
        /// The bytes as received (at most the envelope limit, checked again here).
        bytes: Vec<u8>,
        /// Where they came from.
        channel: Channel,
        /// Where the answer goes.
        reply: oneshot::Sender<Reply>,
    },
    /// A scheduled job is due.
    Job {
        /// Which.
        job: Job,
        /// Told when it is done.
        reply: oneshot::Sender<Reply>,
    },
    /// Something the Signal gateway reported.
    Signal {
        /// The event.
        event: GatewayEvent,
        /// Told when it is handled.
        reply: oneshot::Sender<Reply>,
    },
    /// The gateway asks what to send, and to whom.
    OutboxPending {
        /// The owner's ACI (None when not configured) and the waiting messages.
        reply: oneshot::Sender<(Option<String>, Vec<OutboxMessage>)>,
    },
    /// A channel refused something before it was an envelope (too large, unreadable); the
    /// actor audits it like any other refusal and hands the reply back.
    Refused {
        /// Why.
        error: CommandError,
        /// Where it came from.
        channel: Channel,
        /// Where the answer goes.
        reply: oneshot::Sender<Reply>,
    },
}

/// The cloneable handle every channel holds.
#[derive(Clone, Debug)]
pub struct AgentHandle {
    sender: mpsc::Sender<AgentMessage>,
}

impl AgentHandle {
    /// Starts the actor on `core`; returns its handle and its task.
    pub fn start(core: Core) -> (AgentHandle, JoinHandle<()>) {
        let (sender, receiver) = mpsc::channel(256);
        let agent = Agent { core, receiver };
        let task = tokio::spawn(agent.run());
        (AgentHandle { sender }, task)
    }

    /// Submits an envelope and waits for the answer.
    pub async fn submit(&self, bytes: Vec<u8>, channel: Channel) -> Reply {
        let (reply, answer) = oneshot::channel();
        let msg = AgentMessage::Envelope {
            bytes,
            channel,
            reply,
        };
        if self.sender.send(msg).await.is_err() {
            return unavailable();
        }
        answer.await.unwrap_or_else(|_| unavailable())
    }

    /// Runs a scheduled job and waits for it.
    pub async fn run_job(&self, job: Job) -> Reply {
        let (reply, answer) = oneshot::channel();
        if self
            .sender
            .send(AgentMessage::Job { job, reply })
            .await
            .is_err()
        {
            return unavailable();
        }
        answer.await.unwrap_or_else(|_| unavailable())
    }

    /// Hands a gateway event to the agent.
    pub async fn signal_event(&self, event: GatewayEvent) {
        let (reply, answer) = oneshot::channel();
        if self
            .sender
            .send(AgentMessage::Signal { event, reply })
            .await
            .is_ok()
        {
            let _ = answer.await;
        }
    }

    /// The owner's ACI and the outbox messages waiting for delivery.
    pub async fn outbox_pending(&self) -> (Option<String>, Vec<OutboxMessage>) {
        let (reply, answer) = oneshot::channel();
        if self
            .sender
            .send(AgentMessage::OutboxPending { reply })
            .await
            .is_err()
        {
            return (None, Vec::new());
        }
        answer.await.unwrap_or((None, Vec::new()))
    }

    /// Reports a refusal made by a channel itself, so that it is audited too.
    pub async fn refused(&self, error: CommandError, channel: Channel) -> Reply {
        let (reply, answer) = oneshot::channel();
        let msg = AgentMessage::Refused {
            error: error.clone(),
            channel,
            reply,
        };
        if self.sender.send(msg).await.is_err() {
            return Reply::Err(error);
        }
        answer.await.unwrap_or(Reply::Err(error))
    }
}

fn unavailable() -> Reply {
    Reply::Err(CommandError::new(
        ErrorKind::Unavailable,
        "the agent is shutting down; try again shortly",
    ))
}

/// The actor: the core state plus its mailbox.
pub struct Agent {
    core: Core,
    receiver: mpsc::Receiver<AgentMessage>,
}

impl Agent {
    async fn run(mut self) {
        if let Err(e) = self
            .core
            .note_secret_fingerprint(&Invocation::now(Channel::Internal))
        {
            tracing::warn!(error = %e, "cannot record the secret's fingerprint");
        }
        match self
            .core
            .services
            .enroll
            .ask(EnrollMessage::Reconcile)
            .await
        {
            Ok(report) => tracing::info!(%report, "intents reconciled"),
            Err(e) => {
                tracing::warn!(error = %e, "intent reconciliation failed; it is retried by the next enroll")
            }
        }
        self.core.answer_cut_off().await;
        self.core.housekeeping(Utc::now());
        self.core.expire_due(Utc::now()).await;
        if let Err(e) = self.core.store.flush().await {
            tracing::error!(error = %e, "store flush failed after start-up work");
        }
        let mut housekeeping = tokio::time::interval(Duration::from_secs(3600));
        housekeeping.tick().await;
        loop {
            let next_deadline = self.core.next_deadline_in();
            tokio::select! {
                msg = self.receiver.recv() => match msg {
                    Some(msg) => self.handle(msg).await,
                    None => break,
                },
                _ = tokio::time::sleep(next_deadline) => {
                    self.core.expire_due(Utc::now()).await;
                }
                _ = housekeeping.tick() => self.core.housekeeping(Utc::now()),
            }
        }
        if let Err(e) = self.core.store.flush().await {
            tracing::error!(error = %e, "final store flush failed");
        }
        tracing::debug!("agent actor stopped");
    }

    async fn handle(&mut self, msg: AgentMessage) {
        let (answer, reply) = match msg {
            AgentMessage::Envelope {
                bytes,
                channel,
                reply,
            } => {
                let inv = Invocation::now(channel);
                (self.core.handle_envelope(&bytes, &inv).await, reply)
            }
            AgentMessage::Refused {
                error,
                channel,
                reply,
            } => (
                self.core.refuse(&Invocation::now(channel), error, None),
                reply,
            ),
            AgentMessage::Job { job, reply } => (self.core.run_job(job).await.into(), reply),
            AgentMessage::Signal { event, reply } => {
                self.core.signal_event(event).await;
                (Reply::Ok(Value::Null), reply)
            }
            AgentMessage::OutboxPending { reply } => {
                let owner = Some(self.core.config.signal.owner.trim().to_string())
                    .filter(|o| !o.is_empty());
                let pending = match self.core.outbox.pending(100) {
                    Ok(p) => p,
                    Err(e) => {
                        tracing::error!(error = %e, "cannot read the outbox");
                        Vec::new()
                    }
                };
                let _ = reply.send((owner, pending));
                return;
            }
        };
        // Nothing is acknowledged before it is on disk.
        let answer = match self.core.store.flush().await {
            Ok(()) => self.core.redact_reply(answer),
            Err(e) => Reply::Err(self.core.internal(e)),
        };
        let _ = reply.send(answer);
    }
}

/// The fingerprint of the secret in use, to notice rotations.
const SECRET_FINGERPRINT_KEY: &[u8] = b"auth.fingerprint";

/// Set while the owner's safety number changed and the operator has not run `trust`.
pub const IDENTITY_BLOCK_KEY: &[u8] = b"signal.identity_blocked";

/// Refused envelopes written to the audit log per channel per minute; more are counted and
/// written as one summary, so a flood cannot fill the store.
const REFUSALS_AUDITED_PER_MINUTE: u32 = 30;

#[derive(Debug)]
struct RefusalWindow {
    started: Instant,
    audited: u32,
    suppressed: u64,
}

/// What the provider commands work through.
#[derive(Clone)]
pub struct Services {
    /// The contexts (read directly for list, status and prompts).
    pub contexts: Contexts,
    /// The enrollment actor, which owns every change to contexts.
    pub enroll: EnrollHandle,
    /// The breach monitor.
    pub breach: BreachHandle,
    /// Breach incidents.
    pub incidents: Incidents,
}

/// Everything the actor owns.
pub struct Core {
    /// The store.
    pub store: Store,
    /// The audit log.
    pub audit: AuditLog,
    /// The outbox.
    pub outbox: Outbox,
    /// The security policy.
    pub policy: SecurityPolicy,
    /// Accepted signatures.
    pub replay: ReplayCache,
    /// The command secrets.
    pub secrets: SecretSet,
    /// The configuration.
    pub config: Config,
    /// The redactor built from every secret the process holds.
    pub redactor: Redactor,
    /// The actors and records behind the provider commands.
    pub services: Services,
    /// The data dir (secrets are reloaded from it).
    pub data_dir: std::path::PathBuf,
    refusals: HashMap<Channel, RefusalWindow>,
}

impl Core {
    /// Assembles the core over an open store.
    pub fn new(
        store: Store,
        secrets: SecretSet,
        config: Config,
        redactor: Redactor,
        services: Services,
    ) -> Core {
        let policy = SecurityPolicy {
            grants: crate::policy::grants::Grants::new(
                store.grants.clone(),
                config.policy.revoked_by_default.clone(),
            ),
            limiter: crate::policy::rate_limit::RateLimiter::new(config.rate_limits.clone()),
            approvals: crate::policy::approvals::Approvals::new(store.approvals.clone()),
            approval_timeout_secs: config.approvals.timeout_secs,
        };
        Core {
            audit: AuditLog::new(store.audit.clone(), store.meta.clone(), redactor.clone()),
            outbox: Outbox::new(store.outbox.clone()),
            replay: ReplayCache::new(store.replay.clone()),
            policy,
            secrets,
            config,
            redactor,
            services,
            store,
            data_dir: std::path::PathBuf::new(),
            refusals: HashMap::new(),
        }
    }

    /// Authenticates, parses, judges, runs and audits one envelope.
    pub async fn handle_envelope(&mut self, bytes: &[u8], inv: &Invocation) -> Reply {
        let envelope = match Envelope::parse(bytes) {
            Ok(e) => e,
            Err(e) => return self.refuse(inv, e, None),
        };
        let ts = match envelope.authenticate(&self.secrets, inv.now) {
            Ok(ts) => ts,
            Err(e) => return self.refuse(inv, e, Some(&envelope)),
        };
        // Remembered until the envelope could not pass the window anyway.
        let forget_after = ts + ChronoDuration::seconds(WINDOW_SECS + 1);
        match self.replay.insert_new(&envelope.sig, forget_after) {
            Ok(true) => {}
            Ok(false) => {
                let e = CommandError::new(
                    ErrorKind::Replayed,
                    "replayed: this envelope was already accepted; sign a new one",
                );
                return self.refuse(inv, e, Some(&envelope));
            }
            Err(e) => return Reply::Err(self.internal(e)),
        }
        let sig_prefix = &envelope.sig_hex()[..12];
        if let Err(e) = self.audit_event(
            "envelope.accepted",
            inv,
            json!({"cmd": envelope.cmd, "args": envelope.args, "ts": envelope.ts, "sig": sig_prefix}),
        ) {
            return Reply::Err(e);
        }
        let command = match Command::parse(&envelope.cmd, &envelope.args) {
            Ok(c) => c,
            Err(e) => {
                let _ = self.audit_event(
                    "command.invalid",
                    inv,
                    json!({"cmd": envelope.cmd, "error": e.message}),
                );
                return Reply::Err(e);
            }
        };
        self.judge_and_run(command, &envelope, inv).await.into()
    }

    async fn judge_and_run(
        &mut self,
        command: Command,
        envelope: &Envelope,
        inv: &Invocation,
    ) -> Result<Answer, CommandError> {
        let tool = command.tool();
        let decision = match self.policy.decide(tool, std::time::Instant::now()) {
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
                self.run_action(command, inv).await
            }
            Decision::NeedsApproval => {
                if let Err(e) = command.precheck(self) {
                    self.audit_event(
                        "command.invalid",
                        inv,
                        json!({"cmd": envelope.cmd, "error": e.message}),
                    )?;
                    return Err(e);
                }
                self.ask_owner(&command, &envelope.args, inv)
                    .map(Answer::Value)
            }
        }
    }

    /// Opens an approval for `command` with exactly `args`, queues the prompt for the owner,
    /// and returns the reply that says what will happen.
    pub fn ask_owner(
        &mut self,
        command: &Command,
        args: &serde_json::Map<String, Value>,
        inv: &Invocation,
    ) -> Result<Value, CommandError> {
        let summary = command.describe(self);
        let approval = self
            .policy
            .approvals
            .create(
                command.name(),
                args,
                &summary,
                inv.channel.as_str(),
                inv.now,
                self.policy.approval_timeout_secs,
            )
            .map_err(|e| self.internal(e))?;
        let code = approval.display_code();
        let prompt = format!(
            "Approval needed: {summary}. Reply `approve {code}` to go ahead or `deny {code}` to refuse. Expires {} (in {} s); unanswered means denied.",
            approval.deadline_rfc3339(),
            self.policy.approval_timeout_secs
        );
        let hide = self.hides_codes(inv);
        // With codes over Signal only, neither the reply nor the audit log (which `audit`
        // reads) may hold the code: it goes to the owner's phone and nowhere else.
        let audited_code = if hide {
            json!("[sent to the owner over Signal]")
        } else {
            json!(code)
        };
        self.audit_event(
            "policy.approval_required",
            inv,
            json!({"tool": command.tool().name, "code": audited_code, "action": command.name(), "args": args, "expires_at": approval.deadline_rfc3339()}),
        )?;
        self.notify(MessageKind::Prompt, &prompt)?;
        if hide {
            return Ok(json!({
                "status": "approval_required",
                "action": command.name(),
                "prompt": format!("Approval needed: {summary}. The code was sent to the owner over Signal; answer there."),
                "expires_at": approval.deadline_rfc3339(),
            }));
        }
        Ok(json!({
            "status": "approval_required",
            "code": code,
            "action": command.name(),
            "prompt": prompt,
            "expires_at": approval.deadline_rfc3339(),
        }))
    }

    /// True when approval codes must not be shown on this channel
    /// (`[approvals] codes_over_signal_only` and the command did not come over Signal).
    pub fn hides_codes(&self, inv: &Invocation) -> bool {
        self.config.approvals.codes_over_signal_only && inv.channel != Channel::Signal
    }

    /// Runs an allowed (or approved) command and audits its result.
    pub async fn run_action(
        &mut self,
        command: Command,
        inv: &Invocation,
    ) -> Result<Answer, CommandError> {
        let name = command.name();
        let result = command.execute(self, inv).await;
        match &result {
            Ok(v) => {
                // Read results can be large (audit entries); record their size, not their text.
                let detail = if command_is_read(name) {
                    json!({"cmd": name, "reply_bytes": v.json_len()})
                } else {
                    json!({"cmd": name, "reply": v.clone().into_value()})
                };
                self.audit_event("action.ok", inv, detail)?;
            }
            Err(e) => {
                self.audit_event(
                    "action.error",
                    inv,
                    json!({"cmd": name, "kind": e.kind.as_str(), "error": e.message}),
                )?;
            }
        }
        result
    }

    /// The pending approval for `code`, or the reason it cannot be settled. An approval
    /// whose deadline passed is expired here, so a late answer never counts.
    pub fn pending_approval(
        &mut self,
        code: &str,
        inv: &Invocation,
    ) -> Result<Approval, CommandError> {
        let approval = self
            .policy
            .approvals
            .get(code)
            .map_err(|e| self.internal(e))?
            .ok_or_else(|| {
                CommandError::new(ErrorKind::ApprovalInvalid, "no such approval code")
            })?;
        match approval.state {
            ApprovalState::Pending if approval.deadline > inv.now.timestamp() => Ok(approval),
            ApprovalState::Pending => {
                self.expire_one(&approval, inv.now)?;
                Err(CommandError::new(
                    ErrorKind::ApprovalInvalid,
                    "approval expired: the action was denied; send the command again to ask anew",
                ))
            }
            ApprovalState::Approved => Err(CommandError::new(
                ErrorKind::ApprovalInvalid,
                "approval code already used: a code works once",
            )),
            ApprovalState::Denied | ApprovalState::Expired => Err(CommandError::new(
                ErrorKind::ApprovalInvalid,
                "approval was denied; a denial is final",
            )),
        }
    }

    fn expire_one(&mut self, approval: &Approval, now: DateTime<Utc>) -> Result<(), CommandError> {
        let settled = self
            .policy
            .approvals
            .settle(&approval.code, ApprovalState::Expired, now, None)
            .map_err(|e| self.internal(e))?;
        if let Some(a) = settled {
            let inv = Invocation {
                channel: Channel::Internal,
                now,
            };
            self.audit_event(
                "approval.expired",
                &inv,
                json!({"code": a.display_code(), "action": a.cmd, "deadline": a.deadline_rfc3339()}),
            )?;
            self.notify(
                MessageKind::Alert,
                &format!(
                    "Approval {} expired unanswered, so it was denied: {} did not happen.",
                    a.display_code(),
                    a.summary
                ),
            )?;
        }
        Ok(())
    }

    /// Denies every pending approval whose deadline has passed.
    pub async fn expire_due(&mut self, now: DateTime<Utc>) {
        let due: Vec<Approval> = match self.policy.approvals.pending() {
            Ok(p) => p
                .into_iter()
                .filter(|a| a.deadline <= now.timestamp())
                .collect(),
            Err(e) => {
                tracing::error!(error = %e, "cannot read approvals");
                return;
            }
        };
        if due.is_empty() {
            return;
        }
        for approval in &due {
            if let Err(e) = self.expire_one(approval, now) {
                tracing::error!(error = %e, "cannot expire an approval");
            }
        }
        if let Err(e) = self.store.flush().await {
            tracing::error!(error = %e, "store flush failed after expiring approvals");
        }
    }

    fn next_deadline_in(&self) -> Duration {
        let soonest = match self.policy.approvals.pending() {
            Ok(p) => p.first().map(|a| a.deadline),
            Err(_) => None,
        };
        match soonest {
            Some(deadline) => {
                let secs = (deadline - Utc::now().timestamp()).max(0) as u64;
                // Wake at the deadline (plus a second, so `deadline <= now` holds).
                Duration::from_secs(secs + 1)
            }
            None => Duration::from_secs(3600),
        }
    }

    /// Prunes what may be forgotten: old replay-cache entries, audit entries past the
    /// retention, approvals settled long ago.
    pub fn housekeeping(&mut self, now: DateTime<Utc>) {
        if let Err(e) = self.replay.prune(now) {
            tracing::warn!(error = %e, "replay cache prune failed");
        }
        let days = self.config.audit.retention_days;
        if days > 0 {
            let cutoff = now - ChronoDuration::days(days as i64);
            match self.audit.prune_before(cutoff) {
                Ok(0) => {}
                Ok(n) => tracing::info!(removed = n, "audit entries past retention pruned"),
                Err(e) => tracing::warn!(error = %e, "audit prune failed"),
            }
            if let Err(e) = self.policy.approvals.prune_settled(cutoff) {
                tracing::warn!(error = %e, "approval prune failed");
            }
        }
    }

    /// Writes an audit entry; a failure refuses the command (fail secure).
    pub fn audit_event(
        &self,
        event: &str,
        inv: &Invocation,
        detail: Value,
    ) -> Result<(), CommandError> {
        self.audit
            .append(event, Some(inv.channel.as_str()), detail)
            .map(|_| ())
            .map_err(|e| self.internal(e))
    }

    /// Queues a message for the owner in the outbox.
    pub fn notify(&self, kind: MessageKind, body: &str) -> Result<(), CommandError> {
        self.queue(kind, body, None)
    }

    /// Queues `body` (redacted) for the owner; with `answered`, also forgets that record of
    /// an owner message (`take_in`) in the same transaction.
    fn queue(
        &self,
        kind: MessageKind,
        body: &str,
        answered: Option<[u8; 8]>,
    ) -> Result<(), CommandError> {
        let body = self.redactor.text(body);
        let id = self.store.next_id().map_err(|e| self.internal(e))?;
        match answered {
            Some(key) => {
                self.outbox
                    .push_removing(id, kind, &body, (&self.store.signal_inbox, &key))
            }
            None => self.outbox.push(id, kind, &body),
        }
        .map_err(|e| self.internal(e))?;
        Ok(())
    }

    /// Handles an event from the Signal gateway.
    pub async fn signal_event(&mut self, event: GatewayEvent) {
        let inv = Invocation::now(Channel::Signal);
        let owner = self.config.signal.owner.trim().to_string();
        match event {
            GatewayEvent::Received { sender, body, .. } => {
                if owner.is_empty() || sender != owner {
                    // Strangers get no reply and no action; the refusal audit is rate-limited.
                    let e = CommandError::new(
                        ErrorKind::NotGranted,
                        "message from someone other than the owner",
                    );
                    let _ = self.refuse(&inv, e, None);
                    return;
                }
                let taken = self.take_in(&body).await;
                let reply = self.owner_message(body.trim(), &inv).await;
                self.answer_owner(&reply, taken);
            }
            GatewayEvent::IdentityChanged { sender } => {
                if sender == owner {
                    let _ = self.store.meta.insert(IDENTITY_BLOCK_KEY, b"1".as_slice());
                    let _ = self.audit_event(
                        "signal.identity_changed",
                        &inv,
                        json!({"sender": sender}),
                    );
                    tracing::warn!(
                        "the owner's Signal safety number changed: commands from Signal are refused until you verify it and run `pane-agent trust`"
                    );
                }
            }
            GatewayEvent::Sent { id } => {
                if let Ok(id) = id.parse::<u64>() {
                    if let Ok(true) = self.outbox.delivered(id) {
                        let _ = self.audit_event("outbox.delivered", &inv, json!({"id": id}));
                    }
                }
            }
            GatewayEvent::SendFailed {
                id,
                error,
                retryable,
            } => {
                if let Ok(id) = id.parse::<u64>() {
                    let _ = self.outbox.record_attempt(id);
                    let _ = self.audit_event(
                        "outbox.send_failed",
                        &inv,
                        json!({"id": id, "error": crate::redact::truncate(&error, 200), "retryable": retryable}),
                    );
                }
            }
        }
    }

    /// Records an owner message before it is acted on, flushed, so that a crash in the middle
    /// leaves it to be answered at the next start ([`Core::answer_cut_off`]). Its key, or
    /// None when the store cannot record it (then it is handled as it comes, and a crash
    /// before its reply is queued leaves it unanswered).
    async fn take_in(&mut self, body: &str) -> Option<[u8; 8]> {
        let key = match self.store.next_id() {
            Ok(id) => id.to_be_bytes(),
            Err(e) => {
                tracing::error!(error = %e, "cannot record an owner message");
                return None;
            }
        };
        if let Err(e) = self.store.signal_inbox.insert(key, body.as_bytes()) {
            tracing::error!(error = %e, "cannot record an owner message");
            return None;
        }
        if let Err(e) = self.store.flush().await {
            tracing::error!(error = %e, "cannot record an owner message");
        }
        Some(key)
    }

    /// Queues the reply to an owner message and, in the same transaction, forgets the record
    /// of the message (`take_in`): after a crash there is either both the reply and no
    /// record, or the record to answer again.
    fn answer_owner(&self, reply: &str, taken: Option<[u8; 8]>) {
        if let Err(e) = self.queue(MessageKind::Reply, reply, taken) {
            tracing::error!(error = %e, "cannot queue a Signal reply");
        }
    }

    /// Answers the owner's Signal messages that a crash cut off: recorded by `take_in`,
    /// never answered. An envelope that was accepted gets a note saying so (it may have done
    /// its work, which the audit log shows); anything else is handled now, as if it had just
    /// arrived (an envelope then still has to be inside its time window).
    pub async fn answer_cut_off(&mut self) {
        let records: Vec<(sled::IVec, sled::IVec)> = self
            .store
            .signal_inbox
            .iter()
            .filter_map(Result::ok)
            .collect();
        for (key, body) in records {
            let Ok(key) = <[u8; 8]>::try_from(key.as_ref()) else {
                let _ = self.store.signal_inbox.remove(key);
                continue;
            };
            let body = String::from_utf8_lossy(&body).into_owned();
            let inv = Invocation::now(Channel::Signal);
            let accepted = Envelope::parse(body.trim().as_bytes())
                .ok()
                .filter(|env| self.replay.contains(&env.sig).unwrap_or(false));
            let reply = match accepted {
                Some(env) => {
                    let cmd = crate::redact::truncate(&env.cmd, 40);
                    let _ = self.audit_event("signal.cut_off", &inv, json!({"cmd": cmd}));
                    format!(
                        "Your `{cmd}` command was accepted, but the agent stopped before it answered. It may have done its work: `audit` shows what it did. Sign a new envelope to run it again."
                    )
                }
                None => self.owner_message(body.trim(), &inv).await,
            };
            self.answer_owner(&reply, Some(key));
        }
    }

    async fn owner_message(&mut self, body: &str, inv: &Invocation) -> String {
        if self
            .store
            .meta
            .get(IDENTITY_BLOCK_KEY)
            .ok()
            .flatten()
            .is_some()
        {
            let _ = self.audit_event(
                "signal.blocked",
                inv,
                json!({"reason": "safety number changed"}),
            );
            return "Commands over Signal are paused: your safety number changed. The operator must verify it and run `pane-agent trust` at the console.".into();
        }
        if body.starts_with('{') {
            let reply = self.handle_envelope(body.as_bytes(), inv).await;
            return self.redact_reply(reply).into_json_string();
        }
        let words: Vec<&str> = body.split_whitespace().collect();
        if let [verb, code @ ..] = words.as_slice() {
            let verb = verb.to_ascii_lowercase();
            if (verb == "approve" || verb == "deny") && !code.is_empty() {
                let mut args = serde_json::Map::new();
                args.insert("code".into(), Value::String(code.join("")));
                let _ = self.audit_event("signal.plain_approval", inv, json!({"verb": verb}));
                let reply: Reply = match Command::parse(&verb, &args) {
                    Ok(command) => {
                        let envelope = Envelope {
                            ts: inv.now.to_rfc3339(),
                            cmd: verb.clone(),
                            args,
                            sig: [0; 32],
                        };
                        self.judge_and_run(command, &envelope, inv).await.into()
                    }
                    Err(e) => Reply::Err(e),
                };
                return self.redact_reply(reply).into_json_string();
            }
        }
        "Send a signed command envelope ({\"ts\", \"cmd\", \"args\", \"sig\"}, made with `pane-agent sign` or docs/signer.html), or reply `approve CODE` / `deny CODE`.".into()
    }

    /// Runs a scheduled job and records when it ran.
    pub async fn run_job(&mut self, job: Job) -> Result<Value, CommandError> {
        let inv = Invocation::now(Channel::Internal);
        self.audit_event("schedule.run", &inv, json!({"job": job.name()}))?;
        let result = match job {
            Job::BreachSweep => self.sweep(&inv).await,
            Job::WeeklyDigest => self.digest(&inv),
            Job::SecretRotationReminder => {
                self.notify(
                    MessageKind::Alert,
                    "Reminder: rotate the command secret (quarterly at least). Make a new one, keep the old one in previous_secrets for a grace period, then remove it.",
                )?;
                Ok(json!({"status": "reminded"}))
            }
        };
        self.store
            .meta
            .insert(job.last_run_key(), inv.now.to_rfc3339().as_bytes())
            .map_err(|e| self.internal(e))?;
        result
    }

    fn digest(&mut self, inv: &Invocation) -> Result<Value, CommandError> {
        let since =
            (inv.now - ChronoDuration::days(7)).to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
        let incidents: Vec<Incident> = self
            .services
            .incidents
            .all()
            .map_err(|e| self.internal(e))?
            .into_iter()
            .filter(|i| i.last_seen >= since)
            .collect();
        let pending = self
            .policy
            .approvals
            .pending()
            .map_err(|e| self.internal(e))?;
        let expired: Vec<String> = self
            .services
            .contexts
            .all()
            .map_err(|e| self.internal(e))?
            .into_iter()
            .filter(|c| c.expired_at.as_deref().is_some_and(|t| t >= since.as_str()))
            .map(|c| c.name)
            .collect();
        let mut text = format!(
            "Weekly digest: {} incident(s), {} pending approval(s), {} context(s) expired this week.",
            incidents.len(),
            pending.len(),
            expired.len()
        );
        for i in &incidents {
            text.push_str(&format!("\n{}", crate::commands::check_incidents::line(i)));
        }
        for a in &pending {
            text.push_str(&format!("\npending {}: {}", a.display_code(), a.summary));
        }
        for name in &expired {
            text.push_str(&format!("\nexpired: {name}"));
        }
        self.notify(MessageKind::Alert, &text)?;
        Ok(
            json!({"incidents": incidents.len(), "pending_approvals": pending.len(), "expired": expired}),
        )
    }

    /// Sweeps every breach source, then alerts the owner once per new incident and queues
    /// the burn (or burns at once with `auto_burn`).
    pub async fn sweep(&mut self, inv: &Invocation) -> Result<Value, CommandError> {
        let report = self
            .services
            .breach
            .sweep()
            .await
            .map_err(|e| self.internal(e))?;
        for source in report.sources.iter().filter(|s| !s.ok) {
            self.audit_event(
                "breach.source_down",
                inv,
                json!({"source": source.source, "error": source.error}),
            )?;
        }
        // Everything not yet alerted, which includes what a crash left un-alerted.
        let pending = self
            .services
            .incidents
            .unalerted()
            .map_err(|e| self.internal(e))?;
        for incident in pending {
            self.raise_incident(incident, inv).await?;
        }
        serde_json::to_value(&report).map_err(|e| self.internal(e))
    }

    async fn raise_incident(
        &mut self,
        mut incident: Incident,
        inv: &Invocation,
    ) -> Result<(), CommandError> {
        self.audit_event(
            "breach.incident",
            inv,
            serde_json::to_value(&incident).unwrap_or_default(),
        )?;
        let mut alert = format!(
            "⚠ breach signal: {} ← {} ({} message(s), first {}; sample subject: \"{}\"). The site may have leaked or sold this alias.",
            incident.context, incident.sender_domain, incident.count, incident.first_seen, incident.sample_subject
        );
        let expire = Command::parse("expire", &json_args(&incident.context));
        let ctx_active = self
            .services
            .contexts
            .get(&incident.context)
            .ok()
            .flatten()
            .is_some_and(|c| c.state != crate::context::ContextState::Expired);
        if let (Ok(expire), true) = (expire, ctx_active) {
            if self.config.breach.auto_burn {
                let result = Box::pin(self.run_action(expire, inv)).await;
                alert.push_str(match result {
                    Ok(_) => " auto_burn is on: the context was expired.",
                    Err(_) => {
                        " auto_burn is on, but expiring the context failed; see the audit log."
                    }
                });
            } else {
                // One queued burn per context: a later incident points at the pending one.
                let pending = self
                    .policy
                    .approvals
                    .pending()
                    .map_err(|e| self.internal(e))?;
                let existing = pending
                    .iter()
                    .find(|a| {
                        a.cmd == "expire"
                            && a.args.get("context").and_then(Value::as_str)
                                == Some(&incident.context)
                    })
                    .map(|a| a.display_code());
                let code = match existing {
                    Some(code) => code,
                    None => {
                        let asked = self.ask_owner(&expire, &json_args(&incident.context), inv)?;
                        asked["code"].as_str().unwrap_or_default().to_string()
                    }
                };
                alert.push_str(&format!(
                    " A burn is queued: `approve {code}` expires the context."
                ));
                incident.burn_code = Some(code);
            }
        }
        let alert = self.redactor.text(&alert);
        let id = self.store.next_id().map_err(|e| self.internal(e))?;
        self.services
            .incidents
            .mark_alerted(&mut incident, &self.outbox, id, &alert)
            .map_err(|e| self.internal(e))
    }

    /// Audits a rotation when the current secret is not the one seen before (by fingerprint,
    /// never the secret). Returns true when it was a rotation.
    pub fn note_secret_fingerprint(&mut self, inv: &Invocation) -> Result<bool, CommandError> {
        let now = self.secrets.fingerprint();
        let before = self
            .store
            .meta
            .insert(SECRET_FINGERPRINT_KEY, now.as_bytes())
            .map_err(|e| self.internal(e))?;
        let before = before.map(|b| String::from_utf8_lossy(&b).into_owned());
        let rotated = before.as_deref().is_some_and(|b| b != now);
        if rotated {
            self.audit_event(
                "auth.rotated",
                inv,
                json!({"from": before, "to": now, "accepted_secrets": self.secrets.all().count()}),
            )?;
        }
        Ok(rotated)
    }

    /// Refuses a spend limit above `[cards] max_limit`.
    pub fn check_card_limit(&self, cents: u64) -> Result<(), CommandError> {
        if self.config.cards.provider == "privacy" && cents % 100 != 0 {
            return Err(CommandError::new(
                ErrorKind::InvalidArgs,
                format!(
                    "Privacy.com takes whole amounts only: {} is not one",
                    crate::context::format_amount(cents)
                ),
            ));
        }
        let max = self.config.cards.max_limit.saturating_mul(100);
        if cents > max {
            return Err(CommandError::new(
                ErrorKind::InvalidArgs,
                format!(
                    "limit {} is over the configured maximum of {} ([cards] max_limit)",
                    crate::context::format_amount(cents),
                    crate::context::format_amount(max)
                ),
            ));
        }
        Ok(())
    }

    /// Removes secrets from a reply before it leaves the process.
    pub fn redact_reply(&self, reply: Reply) -> Reply {
        match reply {
            Reply::Ok(mut v) => {
                self.redactor.json_in_place(&mut v);
                Reply::Ok(v)
            }
            Reply::Rendered(r) => Reply::Rendered(self.redactor.rendered(r)),
            Reply::Err(e) => Reply::Err(CommandError::new(e.kind, self.redactor.text(&e.message))),
        }
    }

    /// Logs an internal fault (redacted) and returns the generic reply for it.
    pub fn internal(&self, error: impl std::fmt::Display) -> CommandError {
        tracing::error!(error = %self.redactor.text(&error.to_string()), "internal error");
        CommandError::new(
            ErrorKind::Internal,
            "internal error; the agent's log has the details",
        )
    }

    fn refuse(
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

fn json_args(context: &str) -> serde_json::Map<String, Value> {
    let mut m = serde_json::Map::new();
    m.insert("context".into(), Value::String(context.to_string()));
    m
}

fn command_is_read(name: &str) -> bool {
    crate::policy::tools::find(name).is_some_and(|t| t.tier == crate::policy::tools::Tier::Read)
}
