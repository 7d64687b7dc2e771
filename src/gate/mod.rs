//! The gate: the one place every envelope goes through, from every channel, and the one
//! serial owner of the command path's state.
//!
//! [`GateHandle`] is the cloneable front (an `mpsc::Sender`); [`Gate`] owns the state and
//! handles one message at a time, so authentication, the replay cache, rate limits, grants,
//! approvals and the audit order need no locks. It awaits nothing but the store's flush:
//! slow work (provider calls, sweeps) is handed to the workers ([`crate::workers`]) with a
//! ticket, and its result comes back as an event into the same `select!` loop, which audits
//! it and answers whoever waits (a socket or HTTP caller, or the owner through the outbox).
//! So `lockdown`, `approve`, `deny`, `list` and `status` answer in milliseconds whatever a
//! provider, a mailbox or the network is doing.

mod admission;
mod approvals;
mod budget;
mod incidents;
mod jobs;
mod link;
mod lockdown;
mod owner;
mod record;
mod refusals;
mod requests;
mod resume;
mod rollback;
mod scheduled;
mod sealing;
mod secrets;
mod upkeep;

pub use link::{LinkEvent, STATE_FILE as LINK_STATE_FILE};
pub use sealing::SealSwitch;

use crate::audit::AuditLog;
use crate::auth::replay::ReplayCache;
use crate::auth::SecretSet;
use crate::breach::incidents::Incidents;
use crate::config::Config;
use crate::context::Contexts;
use crate::origin::{Channel, Invocation};
use crate::outbox::Outbox;
use crate::policy::rate_limit::RateLimiter;
use crate::policy::SecurityPolicy;
use crate::redact::Redactor;
use crate::reply::{CommandError, ErrorKind, Reply};
use crate::schedule::Job;
use crate::store::Store;
use crate::workers::breach::BreachHandle;
use crate::workers::jobs::JobsHandle;
use crate::workers::ticket::LockdownSwitch;
use chrono::{DateTime, Utc};
use futures_util::StreamExt;
use serde_json::Value;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;

/// Messages the gate handles.
#[derive(Debug)]
enum GateMessage {
    /// An envelope's raw bytes, to authenticate and carry out.
    Envelope {
        bytes: Vec<u8>,
        channel: Channel,
        /// When the channel received it: the time window is judged against this.
        received: DateTime<Utc>,
        reply: oneshot::Sender<Reply>,
    },
    /// A scheduled job is due; told when it is done.
    Job {
        job: Job,
        reply: oneshot::Sender<Reply>,
    },
    /// The owner's input from the Signal channel; told (true) once it is recorded.
    Owner {
        input: OwnerInput,
        reply: oneshot::Sender<bool>,
    },
    /// A channel refused something before it was an envelope (too large, unreadable); the
    /// gate audits it like any other refusal and hands the reply back.
    Refused {
        error: CommandError,
        channel: Channel,
        reply: oneshot::Sender<Reply>,
    },
    /// Are you there? (The watchdog.)
    Ping(oneshot::Sender<()>),
    /// Something a channel saw that belongs in the audit log (and, with `alert`, in front of
    /// the owner).
    Notice {
        channel: Channel,
        event: &'static str,
        detail: serde_json::Value,
        alert: Option<String>,
        reply: oneshot::Sender<()>,
    },
    /// What the Signal channel saw of the link; told once it is recorded.
    Link {
        event: LinkEvent,
        reply: oneshot::Sender<()>,
    },
    /// The link's report, for `/healthz`.
    LinkReport(oneshot::Sender<Option<crate::health::LinkReport>>),
}

/// The cloneable handle every channel holds.
#[derive(Clone, Debug)]
pub struct GateHandle {
    sender: mpsc::Sender<GateMessage>,
}

impl GateHandle {
    /// Starts the gate; returns its handle and its task.
    pub fn start(gate: Gate) -> (GateHandle, JoinHandle<()>) {
        let (sender, receiver) = mpsc::channel(1024);
        let task = tokio::spawn(gate.run(receiver));
        (GateHandle { sender }, task)
    }

    async fn ask<T>(&self, make: impl FnOnce(oneshot::Sender<T>) -> GateMessage) -> Option<T> {
        let (reply, answer) = oneshot::channel();
        self.sender.send(make(reply)).await.ok()?;
        answer.await.ok()
    }

    /// Submits an envelope received now and waits for the answer (which, for slow work,
    /// comes when the worker is done; the gate goes on meanwhile).
    pub async fn submit(&self, bytes: Vec<u8>, channel: Channel) -> Reply {
        let received = Utc::now();
        self.ask(|reply| GateMessage::Envelope {
            bytes,
            channel,
            received,
            reply,
        })
        .await
        .unwrap_or_else(unavailable)
    }

    /// Runs a scheduled job and waits for it.
    pub async fn run_job(&self, job: Job) -> Reply {
        self.ask(|reply| GateMessage::Job { job, reply })
            .await
            .unwrap_or_else(unavailable)
    }

    /// Hands the owner's input to the gate; returns true once it is recorded (on disk: the
    /// gateway may forget it), whether or not the work it started is done.
    pub async fn owner(&self, input: OwnerInput) -> bool {
        self.ask(|reply| GateMessage::Owner { input, reply })
            .await
            .unwrap_or(false)
    }

    /// Reports a refusal made by a channel itself, so that it is audited too.
    pub async fn refused(&self, error: CommandError, channel: Channel) -> Reply {
        let fallback = Reply::Err(error.clone());
        self.ask(|reply| GateMessage::Refused {
            error,
            channel,
            reply,
        })
        .await
        .unwrap_or(fallback)
    }

    /// Audits what a channel saw (`event`, `detail`), and alerts the owner with `alert`.
    pub async fn notice(
        &self,
        event: &'static str,
        detail: serde_json::Value,
        alert: Option<String>,
    ) {
        self.ask(|reply| GateMessage::Notice {
            channel: Channel::Signal,
            event,
            detail,
            alert,
            reply,
        })
        .await;
    }

    /// Audits what the daemon itself saw (an unseal), on the `internal` channel, and alerts
    /// the owner with `alert`.
    pub async fn notice_internal(
        &self,
        event: &'static str,
        detail: serde_json::Value,
        alert: Option<String>,
    ) {
        self.ask(|reply| GateMessage::Notice {
            channel: Channel::Internal,
            event,
            detail,
            alert,
            reply,
        })
        .await;
    }

    /// Hands the gate what the Signal channel saw of the link; returns once it is recorded.
    pub async fn link(&self, event: LinkEvent) {
        self.ask(|reply| GateMessage::Link { event, reply }).await;
    }

    /// The link's report now (None when the gate is gone or its records do not read).
    pub async fn link_report(&self) -> Option<crate::health::LinkReport> {
        self.ask(GateMessage::LinkReport).await.flatten()
    }

    /// True when the gate answers (the watchdog's liveness check).
    pub async fn ping(&self) -> bool {
        self.ask(GateMessage::Ping).await.is_some()
    }
}

fn unavailable() -> Reply {
    Reply::Err(CommandError::new(
        ErrorKind::Unavailable,
        "the agent is shutting down; try again shortly",
    ))
}

/// Counts what the Signal channel dropped without the gate: messages and reactions from
/// strangers, and the owner's reactions that meant nothing (another emoji, not on a prompt,
/// over the limit, a blocked identity). The gate writes the counts to the audit log every
/// minute and at shutdown, so a flood leaves a trace without filling the store.
#[derive(Clone, Debug, Default)]
pub struct SignalTally {
    strangers: Arc<AtomicU64>,
    reactions_ignored: Arc<AtomicU64>,
}

impl SignalTally {
    /// One more stranger dropped.
    pub fn stranger(&self) {
        self.strangers.fetch_add(1, Ordering::Relaxed);
    }

    /// One more reaction of the owner's ignored.
    pub fn reaction_ignored(&self) {
        self.reactions_ignored.fetch_add(1, Ordering::Relaxed);
    }

    /// The strangers and ignored reactions since the last call.
    fn take(&self) -> (u64, u64) {
        (
            self.strangers.swap(0, Ordering::Relaxed),
            self.reactions_ignored.swap(0, Ordering::Relaxed),
        )
    }
}

/// What the Signal channel hands the gate: only the owner's input, after the channel checked
/// who sent it and that their identity is confirmed.
#[derive(Debug)]
pub enum OwnerInput {
    /// A message the owner typed: a signed envelope, or `approve CODE` / `deny CODE`.
    Message {
        /// Its Signal id (None from a gateway older than ids): acted on once.
        id: Option<String>,
        /// What they wrote.
        body: String,
    },
    /// A 👍 (`approve`) or 👎 on the prompt of the approval `code`.
    Reaction {
        /// Its Signal id: acted on once.
        id: String,
        /// 👍 or not.
        approve: bool,
        /// The approval the prompt asked about.
        code: crate::policy::approvals::ApprovalCode,
    },
}

/// The subsystems the gate hands work to and the records it shares with them.
pub struct Subsystems {
    /// The contexts (read directly for list, status and prompts; written by enrollment).
    pub contexts: Contexts,
    /// Breach incidents.
    pub incidents: Incidents,
    /// The job runner: every slow command runs there.
    pub runner: JobsHandle,
    /// The breach monitor.
    pub breach: BreachHandle,
    /// The mail reader (`inbox`, `mail`).
    pub mail: crate::workers::mail::MailHandle,
    /// The outbox (the gateway channel reads it too).
    pub outbox: Outbox,
    /// Tripped by `lockdown`; checked by every worker.
    pub lockdown: LockdownSwitch,
    /// What the Signal channel dropped, counted.
    pub tally: SignalTally,
    /// The Signal link's records, thresholds and mailbox.
    pub link: crate::health::Link,
    /// The second way to warn, when `[alerts] fallback_url` is set.
    pub fallback: Option<crate::workers::alerts::FallbackHandle>,
}

/// The gate's state: a thin loop over admission (credentials, replay cache, envelope
/// budget), the policy (every rule), and execution (the workers and the jobs in flight),
/// with the records the commands read and the audit log every step writes.
pub struct Gate {
    admission: admission::Admission,
    policy: SecurityPolicy,
    execution: jobs::Execution,
    rollback: rollback::Rollback,
    budget: budget::Budget,
    refusals: refusals::Refusals,
    store: Store,
    audit: AuditLog,
    outbox: Outbox,
    contexts: Contexts,
    incidents: Incidents,
    config: Config,
    redactor: Redactor,
    tally: SignalTally,
    data_dir: PathBuf,
    link: crate::health::Link,
    fallback: Option<crate::workers::alerts::FallbackHandle>,
    /// When a threshold of the link's is crossed next (ms).
    link_wake: Option<u64>,
    /// The systemd status line last written.
    link_status: Option<String>,
    /// What `link.state` holds.
    link_published: Option<String>,
}

impl Gate {
    /// Assembles the gate over an open store.
    pub fn new(
        store: Store,
        secrets: SecretSet,
        config: Config,
        redactor: Redactor,
        subsystems: Subsystems,
        data_dir: PathBuf,
    ) -> Gate {
        let policy = SecurityPolicy {
            grants: crate::policy::grants::Grants::new(
                &store,
                config.policy.revoked_by_default.clone(),
            ),
            limiter: RateLimiter::new(config.rate_limits.clone())
                .with_mcp(config.mcp.rate_limits.clone()),
            approvals: crate::policy::approvals::Approvals::new(&store),
            approval_timeout_secs: config.approvals.timeout_secs,
            mcp_scope: config.mcp.tools.clone(),
        };
        let admission = admission::Admission::new(
            secrets,
            ReplayCache::new(&store),
            RateLimiter::new(config.rate_limits.clone()),
            phone_only(&config),
        );
        Gate {
            admission,
            policy,
            execution: jobs::Execution::new(
                subsystems.runner,
                subsystems.breach,
                subsystems.mail,
                subsystems.lockdown,
            ),
            rollback: rollback::Rollback::new(&data_dir),
            budget: budget::Budget::default(),
            refusals: refusals::Refusals::default(),
            audit: AuditLog::new(&store, redactor.clone()),
            outbox: subsystems.outbox,
            config,
            redactor,
            contexts: subsystems.contexts,
            incidents: subsystems.incidents,
            tally: subsystems.tally,
            link: subsystems.link,
            fallback: subsystems.fallback,
            link_wake: None,
            link_status: None,
            link_published: None,
            store,
            data_dir,
        }
    }

    /// The switch `seal` pulls, on a sealed installation (without one, `seal` answers that
    /// there is nothing to seal).
    pub fn with_seal_switch(mut self, switch: Option<SealSwitch>) -> Gate {
        self.execution.seal = switch;
        self
    }

    /// Accepts envelopes signed with `key` (the MCP key) on the control socket, as the `mcp`
    /// channel. Replies and the audit log never show it (it joins the redactor).
    pub fn with_mcp_key(mut self, key: Option<crate::auth::Secret>) -> Gate {
        if let Some(k) = &key {
            self.redactor = self.redactor.with_more([k.as_text()]);
            self.audit.set_redactor(self.redactor.clone());
        }
        self.admission
            .set_mcp_key(key.map(crate::auth::mcp_key::as_set));
        self
    }

    async fn run(mut self, mut receiver: mpsc::Receiver<GateMessage>) {
        self.start_up().await;
        let mut housekeeping = tokio::time::interval(Duration::from_secs(3600));
        housekeeping.tick().await;
        let mut minute = tokio::time::interval(Duration::from_secs(60));
        minute.tick().await;
        loop {
            let next_deadline = self.next_deadline_in();
            let link_wake = self.link_wake_in();
            tokio::select! {
                msg = receiver.recv() => match msg {
                    Some(msg) => self.handle(msg).await,
                    None => break,
                },
                Some((id, result)) = self.execution.running.next(), if !self.execution.running.is_empty() => {
                    self.job_done(id, result).await;
                }
                _ = tokio::time::sleep(next_deadline) => {
                    self.expire_due(Utc::now()).await;
                }
                _ = tokio::time::sleep(link_wake) => self.check_link().await,
                _ = minute.tick() => {
                    self.write_tallies().await;
                    self.check_store_budget();
                }
                _ = housekeeping.tick() => self.housekeeping(Utc::now()),
            }
        }
        self.stop().await;
    }

    async fn handle(&mut self, msg: GateMessage) {
        match msg {
            GateMessage::Envelope {
                bytes,
                channel,
                received,
                reply,
            } => {
                let inv = Invocation {
                    channel,
                    now: received,
                };
                self.handle_envelope(&bytes, &inv, jobs::Waiter::caller(reply))
                    .await;
            }
            GateMessage::Refused {
                error,
                channel,
                reply,
            } => {
                let answer = self.refuse(&Invocation::now(channel), error, None);
                self.deliver(jobs::Waiter::caller(reply), answer).await;
            }
            GateMessage::Job { job, reply } => {
                self.run_scheduled(job, jobs::Waiter::caller(reply)).await
            }
            GateMessage::Owner { input, reply } => {
                let recorded = self.owner_input(input).await;
                let _ = reply.send(recorded);
            }
            GateMessage::Ping(reply) => {
                let _ = reply.send(());
            }
            GateMessage::Link { event, reply } => {
                self.link_event(event).await;
                let _ = reply.send(());
            }
            GateMessage::LinkReport(reply) => {
                let _ = reply.send(self.link_report());
            }
            GateMessage::Notice {
                channel,
                event,
                detail,
                alert,
                reply,
            } => {
                let inv = Invocation::now(channel);
                if let Err(e) = self.audit_event(event, &inv, detail) {
                    tracing::error!(error = %e, event, "cannot audit a channel's notice");
                }
                if let Some(text) = alert {
                    if let Err(e) = self.notify(crate::outbox::MessageKind::Alert, &text) {
                        tracing::error!(error = %e, "cannot queue an alert");
                    }
                }
                if let Err(e) = self.store.flush().await {
                    tracing::error!(error = %e, "store flush failed after a notice");
                }
                let _ = reply.send(());
            }
        }
    }

    /// Removes secrets from a reply before it leaves the process: its JSON, redacted once.
    fn redact_reply(&self, reply: Reply) -> Reply {
        match reply {
            Reply::Ok(out) => {
                let mut v = out.json();
                self.redactor.json_in_place(&mut v);
                Reply::ok(crate::words::Fields(v))
            }
            Reply::Err(e) => Reply::Err(CommandError::new(e.kind, self.redactor.text(&e.message))),
        }
    }

    /// A reply for a caller on the socket or HTTP, redacted: its JSON as
    /// [`Gate::redact_reply`] makes it, with its words (for HTTP's `Accept: text/plain`) by
    /// the rule of [`Gate::redacted_words`], made only if a caller asks for them.
    fn redact_for_caller(&self, cmd: Option<&'static str>, reply: Reply) -> Reply {
        match reply {
            Reply::Ok(output) => {
                let original = output.json();
                let json = self.redactor.json(&original);
                Reply::ok(CallerReply {
                    clean: json == original,
                    json,
                    output,
                    cmd,
                    redactor: self.redactor.clone(),
                })
            }
            err => self.redact_reply(err),
        }
    }

    /// A reply in words for the owner, redacted: the output's own words when redacting its
    /// JSON finds nothing (the words are made of the same strings), else words made from the
    /// redacted JSON; and the final text once more, since words put strings side by side that
    /// the JSON keeps apart.
    fn redacted_words(&self, cmd: Option<&'static str>, reply: Reply) -> String {
        let reply = match reply {
            Reply::Ok(out) => {
                let json = out.json();
                let redacted = self.redactor.json(&json);
                if redacted == json {
                    Reply::Ok(out)
                } else {
                    Reply::ok(crate::words::Fields(redacted))
                }
            }
            err => self.redact_reply(err),
        };
        self.redactor.text(&crate::words::reply(cmd, &reply))
    }

    /// Logs an internal fault (redacted) and returns the generic reply for it.
    fn internal(&self, error: impl std::fmt::Display) -> CommandError {
        crate::reply::internal(self.redactor.text(&error.to_string()))
    }
}

/// A caller's reply: the redacted JSON every caller gets, and the typed output it came from,
/// worded on demand exactly as the owner's phone would get it.
#[derive(Debug)]
struct CallerReply {
    json: Value,
    /// True when redacting the JSON found nothing: the typed words may be used.
    clean: bool,
    output: Box<dyn crate::reply::Output>,
    cmd: Option<&'static str>,
    redactor: Redactor,
}

impl crate::reply::Output for CallerReply {
    fn json(&self) -> Value {
        self.json.clone()
    }

    /// The words the phone gets for this reply (the command named at the gate, not `cmd`).
    fn words(&self, cmd: &str) -> String {
        let cmd = self.cmd.unwrap_or(cmd);
        let text = if self.clean {
            self.output.words(cmd)
        } else {
            crate::words::fields(cmd, &self.json)
        };
        self.redactor.text(&text)
    }
}

/// True when approval codes go to the owner's phone only: `[approvals]
/// codes_over_signal_only` (the default) with an owner configured.
fn phone_only(config: &Config) -> bool {
    config.approvals.codes_over_signal_only && !config.signal.owner.trim().is_empty()
}
