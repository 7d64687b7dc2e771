//! How the gate carries out an allowed command: fast ones at once, from its own records;
//! slow ones as a job on a worker, whose result comes back into the gate's loop. Either way
//! the result is audited in order and goes to whoever waits for it.

use super::Gate;
use crate::commands::{Command, Fast, GateAction, Run, Work};
use crate::origin::Invocation;
use crate::outbox::MessageKind;
use crate::reply::{CommandError, ErrorKind, Output, Reply};
use crate::store::signal::SignalState;
use crate::workers::breach::{BreachHandle, SweepReport};
use crate::workers::jobs::JobResult;
use crate::workers::jobs::JobsHandle;
use crate::workers::mail::MailHandle;
use crate::workers::ticket::LockdownSwitch;
use crate::workers::ticket::Ticket;
use futures_util::stream::FuturesUnordered;
use serde_json::{json, Value};
use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::time::Duration;
use tokio::sync::oneshot;

/// What carries out allowed commands beside the gate: the job runner and the breach
/// monitor, the lockdown switch every ticket checks, and the jobs in flight, whose results
/// come back into the gate's loop.
pub(super) struct Execution {
    pub(super) runner: JobsHandle,
    pub(super) breach: BreachHandle,
    pub(super) mail: MailHandle,
    pub(super) lockdown: LockdownSwitch,
    /// To the keeper of the seal, on a sealed installation.
    pub(super) seal: Option<super::SealSwitch>,
    pub(super) running: FuturesUnordered<JobFuture>,
    pub(super) pending: HashMap<u64, PendingJob>,
}

impl Execution {
    /// Execution over these workers, with no job in flight.
    pub(super) fn new(
        runner: JobsHandle,
        breach: BreachHandle,
        mail: MailHandle,
        lockdown: LockdownSwitch,
    ) -> Execution {
        Execution {
            runner,
            breach,
            mail,
            lockdown,
            seal: None,
            running: FuturesUnordered::new(),
            pending: HashMap::new(),
        }
    }
}

/// A job's result as it comes back to the gate, with the job's id.
pub(super) type JobFuture = Pin<Box<dyn Future<Output = (u64, Finished)> + Send>>;

/// What a finished job hands back.
#[derive(Debug)]
pub(super) enum Finished {
    /// A command's output (the job runner's work, or a fast command's).
    Output(JobResult),
    /// A breach sweep's report, which the gate reads before answering.
    Sweep(Result<SweepReport, CommandError>),
}

/// Who waits for a result.
#[derive(Debug)]
pub(super) enum Waiter {
    /// A socket or HTTP caller (or a timer), on its own task. `cmd` names the command once
    /// it is known, for the reply's words (which HTTP gives when asked for text).
    Caller {
        tx: oneshot::Sender<Reply>,
        cmd: Option<&'static str>,
    },
    /// The owner on Signal: the reply goes through the outbox, in words
    /// ([`crate::words`]), and, in the same transaction, the record of their message
    /// (`taken`) is forgotten. `cmd` names the command once it is known, for the words.
    Owner {
        taken: Option<[u8; 8]>,
        cmd: Option<&'static str>,
    },
    /// Nobody (start-up work, an automatic burn): the audit log has it.
    Nobody,
}

impl Waiter {
    /// A caller on its own task, answered through `tx`.
    pub(super) fn caller(tx: oneshot::Sender<Reply>) -> Waiter {
        Waiter::Caller { tx, cmd: None }
    }

    /// The owner, for their message recorded as `taken`.
    pub(super) fn owner(taken: Option<[u8; 8]>) -> Waiter {
        Waiter::Owner { taken, cmd: None }
    }

    /// The same waiter, knowing that the envelope carried `cmd` (the first name given
    /// stays: an `approve` is answered as one, whatever action it runs).
    pub(super) fn naming(self, name: &'static str) -> Waiter {
        match self {
            Waiter::Owner { taken, cmd: None } => Waiter::Owner {
                taken,
                cmd: Some(name),
            },
            Waiter::Caller { tx, cmd: None } => Waiter::Caller {
                tx,
                cmd: Some(name),
            },
            other => other,
        }
    }
}

/// What the gate does with a result besides auditing it.
#[derive(Debug)]
pub(super) enum After {
    /// Nothing more.
    Action,
    /// The action of an approval: its result is recorded with the approval.
    Approved {
        code: crate::policy::approvals::ApprovalCode,
    },
    /// A sweep: sources that were down are audited, new incidents alerted.
    Sweep,
    /// A burn the breach monitor started with `auto_burn`: the owner is told how it went.
    AutoBurn { context: String },
    /// A pause of a card a stranger charged, started with `[breach] auto_pause`: the owner
    /// is told how it went, and the incident records where the card stands.
    AutoPause { context: String, incident: String },
}

/// A job the gate waits for.
#[derive(Debug)]
pub(super) struct PendingJob {
    cmd: &'static str,
    inv: Invocation,
    after: After,
    waiter: Waiter,
    /// The lockdown generation when the job was authorised (set by `start_job`).
    generation: u64,
}

impl PendingJob {
    /// A job for `cmd`, judged as `inv`.
    pub(super) fn new(
        cmd: &'static str,
        inv: &Invocation,
        after: After,
        waiter: Waiter,
    ) -> PendingJob {
        PendingJob {
            cmd,
            inv: inv.clone(),
            after,
            waiter,
            generation: 0,
        }
    }
}

impl Gate {
    /// Runs an allowed (or approved) command: fast commands now, slow ones as a job.
    pub(super) async fn execute(
        &mut self,
        command: Command,
        inv: &Invocation,
        after: After,
        waiter: Waiter,
    ) {
        let job = PendingJob::new(command.name(), inv, after, waiter);
        let result = match self.run_command(command, inv) {
            Ok(Run::Work(work)) => return self.start_job(work, job),
            Ok(Run::Done(output)) => Ok(output),
            Ok(Run::Gate(action)) => self.gate_action(action, inv),
            Err(e) => Err(e),
        };
        self.finish(None, job, Finished::Output(result)).await;
    }

    /// Runs `command` over the records the gate lends it.
    fn run_command(&self, command: Command, inv: &Invocation) -> Result<Run, CommandError> {
        let code_shown = |a: &crate::policy::approvals::Approval| {
            self.code_in_clear(&a.code, super::approvals::ShownTo::Asker, inv)
        };
        let records = self.store.records();
        let signal = SignalState::new(&self.store);
        let fast = Fast {
            inv,
            contexts: &self.contexts,
            incidents: &self.incidents,
            grants: &self.policy.grants,
            approvals: &self.policy.approvals,
            audit: &self.audit,
            records: &records,
            signal: &signal,
            link: &self.link,
            code_shown: &code_shown,
        };
        command.run(&fast)
    }

    /// Carries out what only the gate can do.
    fn gate_action(
        &mut self,
        action: GateAction,
        inv: &Invocation,
    ) -> Result<Box<dyn Output>, CommandError> {
        Ok(match action {
            GateAction::Lockdown => Box::new(self.lockdown(inv)?),
            GateAction::Unlock => Box::new(self.unlock(inv)?),
            GateAction::ReloadSecrets => Box::new(self.reload_secrets(inv)?),
            GateAction::Seal => Box::new(self.seal(inv)?),
        })
    }

    /// Hands `work` to its worker with a fresh ticket; audited as started.
    pub(super) fn start_job(&mut self, work: Work, mut job: PendingJob) {
        if work == Work::Sweep && matches!(job.after, After::Action) {
            // Whoever asked for it, a sweep's incidents are alerted.
            job.after = After::Sweep;
        }
        job.generation = self.execution.lockdown.generation();
        let id = match self.store.next_id() {
            Ok(id) => id,
            Err(e) => {
                let error = self.internal(e);
                self.fail_now(job, error);
                return;
            }
        };
        if let Err(e) =
            self.audit_event("job.started", &job.inv, json!({"job": id, "cmd": job.cmd}))
        {
            self.fail_now(job, e);
            return;
        }
        let deadline = Duration::from_secs(self.config.jobs.deadline_secs);
        let future: JobFuture = match work {
            Work::Sweep => {
                let rx = self.execution.breach.sweep();
                Box::pin(async move {
                    let result = match tokio::time::timeout(deadline, rx).await {
                        Ok(Ok(Ok(report))) => Ok(report),
                        Ok(Ok(Err(e))) => Err(crate::reply::internal(e)),
                        Ok(Err(_)) => Err(stopped()),
                        Err(_) => Err(CommandError::new(
                            ErrorKind::DeadlineExceeded,
                            format!("deadline passed: the sweep did not finish within {} s ([jobs] deadline_secs); the next sweep reads what it did not", deadline.as_secs()),
                        )),
                    };
                    (id, Finished::Sweep(result))
                })
            }
            Work::Inbox(query) => {
                let rx = self.execution.mail.inbox(query);
                Box::pin(async move { (id, Finished::Output(mail_result(rx, deadline).await)) })
            }
            Work::Mail(query) => {
                let rx = self.execution.mail.mail(query);
                Box::pin(async move { (id, Finished::Output(mail_result(rx, deadline).await)) })
            }
            work => {
                let ticket = Ticket::new(id, &self.execution.lockdown, deadline);
                let rx = self.execution.runner.submit(work, ticket);
                Box::pin(async move {
                    let result = rx.await.unwrap_or_else(|_| Err(stopped()));
                    (id, Finished::Output(result))
                })
            }
        };
        self.execution.pending.insert(id, job);
        self.execution.running.push(future);
    }

    /// A job that could not even start: its waiter gets the error (a caller at once).
    fn fail_now(&mut self, job: PendingJob, error: CommandError) {
        match job.waiter {
            Waiter::Caller { tx, .. } => {
                let _ = tx.send(Reply::Err(error));
            }
            Waiter::Owner { taken, cmd } => {
                let text = crate::words::reply(cmd, &Reply::Err(error));
                self.answer_owner(&text, taken);
            }
            Waiter::Nobody => {}
        }
    }

    /// A worker finished job `id`.
    pub(super) async fn job_done(&mut self, id: u64, result: Finished) {
        match self.execution.pending.remove(&id) {
            Some(job) => self.finish(Some(id), job, result).await,
            None => tracing::warn!(job = id, "a job finished that nobody waits for"),
        }
    }

    /// Audits a result, does what comes after it, and answers the waiter.
    async fn finish(&mut self, id: Option<u64>, job: PendingJob, result: Finished) {
        let PendingJob {
            cmd,
            inv,
            after,
            waiter,
            generation,
        } = job;
        let mut result = match result {
            Finished::Output(result) => result,
            Finished::Sweep(Ok(report)) => self.after_sweep(report, &inv, generation).await,
            Finished::Sweep(Err(e)) => Err(e),
        };
        if let Err(e) = self.audit_result(cmd, id, &inv, &result) {
            result = Err(e);
        }
        let reply: Reply = match after {
            After::Approved { code } => self.approval_result(&code, result),
            After::AutoBurn { context } => {
                let text = match &result {
                    Ok(_) => format!("auto_burn: the context {context} was expired."),
                    Err(e) => format!(
                        "auto_burn: expiring the context {context} failed ({}); see the audit log.",
                        e.message
                    ),
                };
                if let Err(e) = self.notify(MessageKind::Alert, &text) {
                    tracing::error!(error = %e, "cannot queue the auto_burn result");
                }
                result.into()
            }
            After::AutoPause { context, incident } => {
                self.after_auto_pause(&context, &incident, &result);
                result.into()
            }
            After::Action | After::Sweep => result.into(),
        };
        if matches!(waiter, Waiter::Nobody) {
            // Nobody waits (start-up reconciliation, an automatic burn): the operator's log
            // says how it went, redacted like everything else.
            let text = self.redactor.text(&reply.to_json_string());
            tracing::info!(cmd, result = %text, "background job finished");
        }
        self.deliver(waiter, reply).await;
    }

    fn audit_result(
        &mut self,
        cmd: &'static str,
        id: Option<u64>,
        inv: &Invocation,
        result: &JobResult,
    ) -> Result<(), CommandError> {
        match result {
            Ok(v) => {
                // Read results can be large (audit entries); record their size, not their text.
                let reply = v.json();
                let detail = if command_is_read(cmd) {
                    json!({"cmd": cmd, "job": id, "reply_bytes": reply.to_string().len()})
                } else {
                    json!({"cmd": cmd, "job": id, "reply": reply})
                };
                self.audit_event("action.ok", inv, detail)
            }
            Err(e) => self.audit_event(
                "action.error",
                inv,
                json!({"cmd": cmd, "job": id, "kind": e.kind.as_str(), "error": e.message}),
            ),
        }
    }

    /// Flushes, redacts and hands `reply` to its waiter: nothing is acknowledged before it
    /// is on disk.
    pub(super) async fn deliver(&mut self, waiter: Waiter, reply: Reply) {
        match waiter {
            Waiter::Caller { tx, cmd } => {
                let answer = match self.store.flush().await {
                    Ok(()) => {
                        self.sync_high_water();
                        self.redact_for_caller(cmd, reply)
                    }
                    Err(e) => Reply::Err(self.internal(e)),
                };
                let _ = tx.send(answer);
            }
            Waiter::Owner { taken, cmd } => {
                let text = self.redacted_words(cmd, reply);
                self.answer_owner(&text, taken);
                match self.store.flush().await {
                    Ok(()) => self.sync_high_water(),
                    Err(e) => {
                        tracing::error!(error = %self.redactor.text(&e.to_string()), "store flush failed after a Signal reply")
                    }
                }
            }
            Waiter::Nobody => match self.store.flush().await {
                Ok(()) => self.sync_high_water(),
                Err(e) => {
                    tracing::error!(error = %self.redactor.text(&e.to_string()), "store flush failed")
                }
            },
        }
    }

    /// True when approval codes go to the owner's phone only: `[approvals]
    /// codes_over_signal_only` (the default) with an owner configured.
    pub(super) fn phone_only(&self) -> bool {
        super::phone_only(&self.config)
    }

    /// Gives the jobs still running a moment to finish, then stops; what they left half
    /// done is reconciled at the next start.
    pub(super) async fn drain_jobs(&mut self, within: Duration) {
        let until = tokio::time::Instant::now() + within;
        while !self.execution.running.is_empty() {
            match tokio::time::timeout_at(
                until,
                futures_util::StreamExt::next(&mut self.execution.running),
            )
            .await
            {
                Ok(Some((id, result))) => self.job_done(id, result).await,
                Ok(None) | Err(_) => break,
            }
        }
        for (id, job) in std::mem::take(&mut self.execution.pending) {
            tracing::info!(job = id, cmd = job.cmd, "job left unfinished at shutdown");
            let _ = self.audit_event(
                "job.abandoned",
                &job.inv,
                json!({"job": id, "cmd": job.cmd, "reason": "shutdown"}),
            );
        }
    }
}

/// What the mail reader answered, within the job deadline.
async fn mail_result<T: Output + 'static>(
    rx: oneshot::Receiver<Result<T, CommandError>>,
    deadline: Duration,
) -> JobResult {
    match tokio::time::timeout(deadline, rx).await {
        Ok(Ok(Ok(output))) => Ok(Box::new(output)),
        Ok(Ok(Err(e))) => Err(e),
        Ok(Err(_)) => Err(stopped()),
        Err(_) => Err(CommandError::new(
            ErrorKind::DeadlineExceeded,
            format!(
                "deadline passed: the mailbox did not answer within {} s ([jobs] deadline_secs)",
                deadline.as_secs()
            ),
        )),
    }
}

fn stopped() -> CommandError {
    CommandError::new(ErrorKind::Unavailable, "the worker stopped")
}

fn command_is_read(name: &str) -> bool {
    crate::commands::find(name).is_some_and(|s| s.tool.tier == crate::policy::tools::Tier::Read)
}

/// `{"context": name}`.
pub(super) fn context_args(context: &str) -> serde_json::Map<String, Value> {
    let mut m = serde_json::Map::new();
    m.insert("context".into(), Value::String(context.to_string()));
    m
}
