//! Changes at the provider (fund, pause, close, forwarding on or off, delete), each behind
//! an intent flushed before the call, like creates: when the outcome is unknown (a timeout, a
//! 5xx after the provider acted, a lockdown between retries, a crash), the alias or card is
//! read back from the provider and the record takes what the provider says, so the card
//! record never says "paused at $0" for a card that is open.

use super::lifecycle::{now_precise, store_err, Lifecycle};
use crate::context::{format_amount, Context, Intent, IntentKind};
use crate::providers::CardUpdate;
use crate::reply::CommandError;

/// A card change in words, for its intent.
pub(super) fn describe_update(update: &CardUpdate) -> String {
    format!(
        "card state={:?} limit={}",
        update.state,
        update
            .spend_limit_cents
            .map(format_amount)
            .unwrap_or_else(|| "unchanged".into())
    )
}

impl Lifecycle {
    /// Records, flushed, that a change is about to be asked of the provider for context
    /// `name`: if the agent dies before the answer is recorded, or the answer never comes,
    /// the intent is there to read the truth back from the provider ([`Lifecycle::settle_change`]).
    pub(super) async fn begin_change(
        &self,
        name: &str,
        kind: IntentKind,
        what: String,
    ) -> Result<(), CommandError> {
        if self
            .contexts
            .intent(name, kind)
            .map_err(store_err)?
            .is_some()
        {
            // One left by an earlier run: settle it first, so the record is right before
            // anything else is decided from it.
            if let Some(mut ctx) = self.contexts.get(name).map_err(store_err)? {
                self.settle_change(&mut ctx, kind).await?;
            }
        }
        let intent = Intent {
            context: name.to_string(),
            kind,
            marker: what,
            created: now_precise(),
        };
        self.contexts.open_intent(&intent).map_err(store_err)?;
        self.store.flush().await.map_err(store_err)
    }

    /// The change was made: the context as changed and the intent's end, flushed together.
    pub(super) async fn finish_change(
        &self,
        ctx: &Context,
        kind: IntentKind,
    ) -> Result<(), CommandError> {
        self.contexts.put(ctx).map_err(store_err)?;
        self.contexts
            .close_intent(&ctx.name, kind)
            .map_err(store_err)?;
        self.store.flush().await.map_err(store_err)
    }

    /// The change failed (or its outcome is unknown: a timeout, a lockdown between retries):
    /// the record is brought to what the provider says now, and the intent closed; when the
    /// provider cannot be read either, the intent stays for the next start. The original
    /// error is what the caller reports.
    pub(super) async fn change_failed(
        &self,
        ctx: &mut Context,
        kind: IntentKind,
        error: crate::providers::ProviderError,
    ) -> CommandError {
        if let Err(e) = self.settle_change(ctx, kind).await {
            tracing::warn!(context = %ctx.name, error = %e.message, "a change's outcome is unknown; it is reconciled at the next start");
        }
        error.into()
    }

    /// Reads the alias or card of `ctx` back from the provider, records what it says, and
    /// closes the change intent.
    pub(super) async fn settle_change(
        &self,
        ctx: &mut Context,
        kind: IntentKind,
    ) -> Result<(), CommandError> {
        match kind {
            IntentKind::CardChange => {
                if let Some(card) = ctx.card.as_mut() {
                    let info = self.cards.get(&card.token).await?;
                    card.state = info.state;
                    card.limit_cents = info.spend_limit;
                    card.last_four = info.last_four;
                }
            }
            IntentKind::AliasChange => {
                if let Some(alias) = ctx.alias.as_mut().filter(|a| !a.deleted) {
                    match self.aliases.get(&alias.id).await {
                        Ok(info) => alias.active = info.active,
                        Err(crate::providers::ProviderError::Rejected { status: 404, .. }) => {
                            alias.active = false;
                            alias.deleted = true;
                        }
                        Err(e) => return Err(e.into()),
                    }
                }
            }
            IntentKind::Alias | IntentKind::Card => return Ok(()),
        }
        self.finish_change(ctx, kind).await
    }
}
