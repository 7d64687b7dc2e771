//! Bringing the records in line with the providers: `list {refresh}` reads every alias
//! back, and reconciliation (at start) settles the intents an interrupted run left.

use super::jobs::ContextLocks;
use super::lifecycle::{store_err, Lifecycle};
use crate::commands::list::RefreshReport;
use crate::context::{Intent, IntentKind};
use crate::reply::{CommandError, Words};
use serde::Serialize;

/// What reconciliation (at start) answers: the intents it settled and those it could not.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Reconciled {
    /// The intents settled: what the provider made was found and recorded, or nothing was
    /// made and the intent closed.
    pub settled: Vec<Settled>,
    /// The intents left open, for the next start: the provider could not be read.
    pub pending: Vec<Unsettled>,
}

/// An intent reconciliation settled.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Settled {
    /// The context.
    pub context: String,
    /// What the intent was about to do.
    pub kind: IntentKind,
    /// True when what it made was found at the provider; false when nothing was made.
    pub found: bool,
}

/// An intent reconciliation could not settle, and why.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Unsettled {
    /// The context.
    pub context: String,
    /// What the intent was about to do.
    pub kind: IntentKind,
    /// Why it is still open (the provider's error).
    pub error: String,
}

impl Words for Reconciled {
    /// Labelled lines: it runs at start and answers the log, not the phone.
    fn words(&self, cmd: &str) -> String {
        crate::words::fields_of(cmd, self)
    }
}

impl Lifecycle {
    /// Reads every alias from the provider, then updates each context under its own lock,
    /// so a job running on a context is never overwritten by the refresh or the other way.
    pub(super) async fn refresh(
        &self,
        locks: &ContextLocks,
    ) -> Result<RefreshReport, CommandError> {
        let (aliases, requests) = self.aliases.list().await?;
        let by_id: std::collections::HashMap<&str, &crate::providers::AliasInfo> =
            aliases.iter().map(|a| (a.id.as_str(), a)).collect();
        let mut changed = 0;
        let names: Vec<String> = self
            .contexts
            .all()
            .map_err(store_err)?
            .into_iter()
            .map(|c| c.name)
            .collect();
        for name in names {
            let _serial = locks.lock(&name).await;
            let Some(mut ctx) = self.contexts.get(&name).map_err(store_err)? else {
                continue;
            };
            let Some(record) = ctx.alias.as_mut().filter(|a| !a.deleted) else {
                continue;
            };
            if let Some(info) = by_id.get(record.id.as_str()) {
                if record.active != info.active || record.forwarded != info.forwarded {
                    record.active = info.active;
                    record.forwarded = info.forwarded;
                    self.contexts.put(&ctx).map_err(store_err)?;
                    changed += 1;
                }
            }
        }
        self.store.flush().await.map_err(store_err)?;
        Ok(RefreshReport {
            provider_aliases: aliases.len(),
            provider_requests: requests,
            contexts_updated: changed,
        })
    }

    /// Settles intents left by an interrupted run, each under its context's lock.
    pub(super) async fn reconcile(&self, locks: &ContextLocks) -> Result<Reconciled, CommandError> {
        let mut settled = Vec::new();
        let mut pending = Vec::new();
        let mut todo = self.contexts.open_intents().map_err(store_err)?;
        // Intents of the run that died whose create is not found yet are looked at again once
        // the landing window has passed (no context lock is held while waiting).
        let mut later: Vec<Intent> = Vec::new();
        loop {
            for intent in todo {
                let _serial = locks.lock(&intent.context).await;
                if self
                    .contexts
                    .intent(&intent.context, intent.kind)
                    .map_err(store_err)?
                    .is_none()
                {
                    // Settled by the job that held the lock before us.
                    continue;
                }
                let Some(mut ctx) = self.contexts.get(&intent.context).map_err(store_err)? else {
                    self.contexts
                        .close_intent(&intent.context, intent.kind)
                        .map_err(store_err)?;
                    continue;
                };
                let found = match intent.kind {
                    IntentKind::AliasChange | IntentKind::CardChange => self
                        .settle_change(&mut ctx, intent.kind)
                        .await
                        .map(|_| true),
                    IntentKind::Alias => match self.aliases.find(&intent.marker).await {
                        Ok(Some(a)) => self.attach_alias(&mut ctx, a).await.map(|_| true),
                        Ok(None) => Ok(false),
                        Err(e) => Err(CommandError::from(e)),
                    },
                    IntentKind::Card => match self.cards.find(&intent.marker).await {
                        Ok(Some(c)) => self.attach_card(&mut ctx, c).await.map(|_| true),
                        Ok(None) => Ok(false),
                        Err(e) => Err(CommandError::from(e)),
                    },
                };
                match found {
                    Ok(true) => settled.push(Settled {
                        context: intent.context,
                        kind: intent.kind,
                        found: true,
                    }),
                    Ok(false) if self.still_landing(&intent).is_some() => later.push(intent),
                    Ok(false) => {
                        // Nothing was made: the next enroll creates it afresh.
                        self.contexts
                            .close_intent(&intent.context, intent.kind)
                            .map_err(store_err)?;
                        settled.push(Settled {
                            context: intent.context,
                            kind: intent.kind,
                            found: false,
                        });
                    }
                    Err(e) => pending.push(Unsettled {
                        context: intent.context,
                        kind: intent.kind,
                        error: e.message,
                    }),
                }
            }
            if later.is_empty() {
                break;
            }
            let wait = later
                .iter()
                .filter_map(|i| self.still_landing(i))
                .max()
                .unwrap_or_default();
            tracing::info!(
                intents = later.len(),
                wait_secs = wait.as_secs(),
                "creates of the run that died are not found yet; looking again when they can no longer land"
            );
            self.store.flush().await.map_err(store_err)?;
            tokio::time::sleep(wait).await;
            todo = std::mem::take(&mut later);
        }
        self.store.flush().await.map_err(store_err)?;
        Ok(Reconciled { settled, pending })
    }
}
