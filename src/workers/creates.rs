//! Creating a context's alias and card, each behind an intent flushed before the call: an
//! interrupted or retried create finds what the provider already made (by the intent's
//! marker in the alias description or card memo) instead of making it twice.

use super::lifecycle::{now_precise, store_err, Lifecycle};
use super::ticket::Ticket;
use crate::context::{AliasRecord, CardRecord, Context, Intent, IntentKind};
use crate::providers::{NewAlias, NewCard};
use crate::reply::{CommandError, ErrorKind};

fn new_marker() -> Result<String, CommandError> {
    let mut b = [0u8; 8];
    getrandom::fill(&mut b)
        .map_err(|e| CommandError::new(ErrorKind::Internal, format!("no randomness: {e}")))?;
    Ok(format!("pane:{}", hex::encode(b)))
}

impl Lifecycle {
    pub(super) async fn ensure_alias(
        &self,
        ctx: &mut Context,
        host: &str,
        t: &Ticket,
    ) -> Result<(), CommandError> {
        if ctx.alias.as_ref().is_some_and(|a| !a.deleted) {
            return Ok(());
        }
        if let Some(intent) = self
            .contexts
            .intent(&ctx.name, IntentKind::Alias)
            .map_err(store_err)?
        {
            if let Some(found) = self.aliases.find(&intent.marker).await? {
                return self.attach_alias(ctx, found).await;
            }
            if let Some(wait) = self.still_landing(&intent) {
                tokio::time::sleep(wait).await;
                if let Some(found) = self.aliases.find(&intent.marker).await? {
                    return self.attach_alias(ctx, found).await;
                }
            }
        }
        let marker = new_marker()?;
        let intent = Intent {
            context: ctx.name.clone(),
            kind: IntentKind::Alias,
            marker: marker.clone(),
            created: now_precise(),
        };
        self.contexts.open_intent(&intent).map_err(store_err)?;
        self.store.flush().await.map_err(store_err)?;
        let new = NewAlias {
            description: format!("pane {} ({marker})", ctx.name),
            hostname: host.to_string(),
        };
        match self.aliases.create(new, t).await {
            Ok(alias) => self.attach_alias(ctx, alias).await,
            Err(e) if e.outcome_unknown() => {
                // It may exist: look once; otherwise the intent stays for the next try.
                match self.aliases.find(&marker).await {
                    Ok(Some(alias)) => self.attach_alias(ctx, alias).await,
                    _ => Err(e.into()),
                }
            }
            Err(e) => {
                self.contexts
                    .close_intent(&ctx.name, IntentKind::Alias)
                    .map_err(store_err)?;
                Err(e.into())
            }
        }
    }

    pub(super) async fn attach_alias(
        &self,
        ctx: &mut Context,
        alias: crate::providers::AliasInfo,
    ) -> Result<(), CommandError> {
        ctx.alias = Some(AliasRecord {
            provider: self.alias_provider_name(),
            id: alias.id,
            email: alias.email,
            active: alias.active,
            deleted: false,
            forwarded: alias.forwarded,
        });
        self.contexts.put(ctx).map_err(store_err)?;
        self.contexts
            .close_intent(&ctx.name, IntentKind::Alias)
            .map_err(store_err)?;
        self.store.flush().await.map_err(store_err)
    }

    fn alias_provider_name(&self) -> String {
        self.aliases.provider_name().to_string()
    }

    pub(super) async fn ensure_card(
        &self,
        ctx: &mut Context,
        t: &Ticket,
    ) -> Result<(), CommandError> {
        if ctx.card.is_some() {
            return Ok(());
        }
        if let Some(intent) = self
            .contexts
            .intent(&ctx.name, IntentKind::Card)
            .map_err(store_err)?
        {
            if let Some(found) = self.cards.find(&intent.marker).await? {
                return self.attach_card(ctx, found).await;
            }
            if let Some(wait) = self.still_landing(&intent) {
                tokio::time::sleep(wait).await;
                if let Some(found) = self.cards.find(&intent.marker).await? {
                    return self.attach_card(ctx, found).await;
                }
            }
        }
        let marker = new_marker()?;
        let intent = Intent {
            context: ctx.name.clone(),
            kind: IntentKind::Card,
            marker: marker.clone(),
            created: now_precise(),
        };
        self.contexts.open_intent(&intent).map_err(store_err)?;
        self.store.flush().await.map_err(store_err)?;
        let new = NewCard {
            memo: format!("pane {} {marker}", ctx.name),
            spend_limit_cents: ctx.wants_card_cents.unwrap_or(0),
        };
        match self.cards.create(new, t).await {
            Ok(card) => self.attach_card(ctx, card).await,
            Err(e) if e.outcome_unknown() => match self.cards.find(&marker).await {
                Ok(Some(card)) => self.attach_card(ctx, card).await,
                _ => Err(e.into()),
            },
            Err(e) => {
                self.contexts
                    .close_intent(&ctx.name, IntentKind::Card)
                    .map_err(store_err)?;
                Err(e.into())
            }
        }
    }

    pub(super) async fn attach_card(
        &self,
        ctx: &mut Context,
        card: crate::providers::CardInfo,
    ) -> Result<(), CommandError> {
        ctx.card = Some(CardRecord {
            provider: self.cards.provider_name().to_string(),
            token: card.token,
            last_four: card.last_four,
            limit_cents: card.spend_limit,
            state: card.state,
        });
        self.contexts.put(ctx).map_err(store_err)?;
        self.contexts
            .close_intent(&ctx.name, IntentKind::Card)
            .map_err(store_err)?;
        self.store.flush().await.map_err(store_err)
    }
}
