//! The job runner: the one owner of contexts, and the worker that runs every job the gate
//! hands over (enroll, alias and card commands, expire, transactions, refresh, reconciliation).
//!
//! The gate hands it [`Work`] with a [`Ticket`] and gets a receiver back at once; it never
//! waits here. Each context has its own serial queue (a fair lock taken in arrival order),
//! so the intent protocol and every read-modify-write of a context stay race-free and two
//! operations on one context never overlap, while different contexts run side by side.

use super::alias::AliasHandle;
use super::card::CardHandle;
use super::lifecycle::Lifecycle;
use super::ticket::Ticket;
use crate::commands::card::CardAction;
use crate::commands::list::ListOutput;
use crate::commands::Work;
use crate::context::Contexts;
use crate::providers::{CardState, CardUpdate};
use crate::reply::{CommandError, ErrorKind, Output};
use crate::store::Store;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use tokio::sync::{oneshot, OwnedMutexGuard};

/// What a job's receiver gets: the command's output.
pub type JobResult = Result<Box<dyn Output>, CommandError>;

/// One serial queue per context: a fair async lock each, made on first use and dropped when
/// nobody holds or waits for it.
#[derive(Clone, Default, Debug)]
pub struct ContextLocks(Arc<Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>>);

impl ContextLocks {
    /// Waits for `context`'s turn; the guard is its place at the head of the queue.
    pub async fn lock(&self, context: &str) -> OwnedMutexGuard<()> {
        let lock = {
            let mut map = self.0.lock().unwrap_or_else(|p| p.into_inner());
            if map.len() > 256 {
                map.retain(|_, l| Arc::strong_count(l) > 1);
            }
            map.entry(context.to_string()).or_default().clone()
        };
        lock.lock_owned().await
    }
}

/// The handle the gate holds.
#[derive(Clone)]
pub struct JobsHandle {
    steps: Arc<Lifecycle>,
    locks: ContextLocks,
}

impl std::fmt::Debug for JobsHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("JobsHandle")
    }
}

impl JobsHandle {
    /// The worker over the shared `contexts`, making aliases and cards through their
    /// managers.
    pub fn start(
        store: Store,
        contexts: Contexts,
        aliases: AliasHandle,
        cards: CardHandle,
        forwarding_address: String,
        egress: crate::egress::Egress,
    ) -> JobsHandle {
        JobsHandle {
            steps: Arc::new(Lifecycle {
                store,
                contexts,
                aliases,
                cards,
                forwarding_address,
                egress,
                started: chrono::Utc::now(),
            }),
            locks: ContextLocks::default(),
        }
    }

    /// Starts `work` beside the caller and returns where its result will come. A job queued
    /// behind others on its context starts only if no lockdown came since it was
    /// authorised; it ends at its ticket's deadline at the latest.
    pub fn submit(&self, work: Work, ticket: Ticket) -> oneshot::Receiver<JobResult> {
        let (reply, rx) = oneshot::channel();
        let steps = self.steps.clone();
        let locks = self.locks.clone();
        tokio::spawn(async move {
            let run = async {
                let _serial = match work.context() {
                    Some(name) => Some(locks.lock(name).await),
                    None => None,
                };
                ticket.check().map_err(|_| {
                    CommandError::new(
                        ErrorKind::LockedDown,
                        "cancelled: a lockdown came while this job waited its turn; nothing was done",
                    )
                })?;
                run(&steps, &locks, work, &ticket).await
            };
            let _ = reply.send(ticket.within_deadline(run).await);
        });
        rx
    }
}

/// Runs `work`: each step answers its command's typed output.
async fn run(steps: &Lifecycle, locks: &ContextLocks, work: Work, ticket: &Ticket) -> JobResult {
    fn boxed(output: impl Output + 'static) -> Box<dyn Output> {
        Box::new(output)
    }
    match work {
        Work::Enroll(req) => steps.enroll(req, ticket).await.map(boxed),
        Work::CreateAlias(name) => steps.create_alias(&name, ticket).await.map(boxed),
        Work::SetAliasActive(name, on) => {
            steps.set_alias_active(&name, on, ticket).await.map(boxed)
        }
        Work::Card(name, action) => {
            let update = match action {
                CardAction::Pause => CardUpdate {
                    state: Some(CardState::Paused),
                    spend_limit_cents: None,
                },
                CardAction::Fund(cents) => CardUpdate {
                    state: Some(CardState::Open),
                    spend_limit_cents: Some(cents),
                },
                CardAction::Close => CardUpdate {
                    state: Some(CardState::Closed),
                    spend_limit_cents: None,
                },
            };
            steps.update_card(&name, update, ticket).await.map(boxed)
        }
        Work::Transactions(name) => steps.transactions(&name).await.map(boxed),
        Work::Expire(name) => steps.expire(&name, ticket).await.map(boxed),
        Work::Reconcile => steps.reconcile(locks).await.map(boxed),
        Work::Refresh { after } => {
            let report = steps.refresh(locks).await?;
            ListOutput::of(&steps.contexts, after.as_deref(), Some(report)).map(boxed)
        }
        Work::Sweep | Work::Inbox(_) | Work::Mail(_) => Err(CommandError::new(
            ErrorKind::Internal,
            "sweeps and mail are the breach monitor's and the mail reader's work, not enrollment's",
        )),
    }
}
