//! The context lifecycle's steps, run by the enrollment worker ([`super::enroll`]) one job
//! at a time per context.
//!
//! They make a context's alias (through the alias manager), its card (through the card
//! manager) and its placeholder identity, changes them on the owner's commands, and burns them
//! on `expire`. Every create is preceded by an intent flushed to disk, so an interrupted or
//! retried enroll finds what the provider already made instead of making it twice
//! ([`crate::context`]).

use super::alias::AliasHandle;
use super::card::CardHandle;
use super::changes::describe_update;
use super::jobs::ContextLocks;
use super::ticket::Ticket;
use crate::commands::enroll::EnrollRequest;
use crate::context::{
    format_amount, AliasRecord, CardRecord, Context, ContextState, Contexts, Intent, IntentKind,
};
use crate::providers::{CardState, CardUpdate, NewAlias, NewCard};
use crate::reply::{CommandError, ErrorKind};
use crate::store::{Store, StoreError};
use chrono::{SecondsFormat, Utc};
use serde_json::{json, Value};

/// What the steps work with; shared by every job of the enrollment worker.
pub(super) struct Lifecycle {
    pub(super) store: Store,
    pub(super) contexts: Contexts,
    pub(super) aliases: AliasHandle,
    pub(super) cards: CardHandle,
    pub(super) forwarding_address: String,
    /// When this run started: an intent opened before it was left by a run that died, whose
    /// last request may still land at the provider ([`LANDING_WINDOW`]).
    pub(super) started: chrono::DateTime<Utc>,
}

/// How long after a run died a create it had already sent may still land at the provider (the
/// request was in the provider's hands, or in the socket's buffers, when the process was
/// killed). An intent from that run whose marker is not found yet is not taken as "nothing was
/// made" until it is this old: closing it sooner would lose the marker, and the create that
/// lands later would be an orphan, or a twin of the one made next.
const LANDING_WINDOW: std::time::Duration = std::time::Duration::from_secs(30);

pub(super) fn store_err(e: StoreError) -> CommandError {
    tracing::error!(error = %e, "store error in enrollment");
    CommandError::new(
        ErrorKind::Internal,
        "internal error; the agent's log has the details",
    )
}

fn not_found(name: &str) -> CommandError {
    CommandError::new(ErrorKind::NotFound, format!("context not found: {name}"))
}

fn conflict(msg: String) -> CommandError {
    CommandError::new(ErrorKind::Conflict, msg)
}

/// Now, to the millisecond: when an intent was opened, compared with when the run started.
pub(super) fn now_precise() -> String {
    Utc::now().to_rfc3339_opts(SecondsFormat::Millis, true)
}

pub(super) fn now() -> String {
    Utc::now().to_rfc3339_opts(SecondsFormat::Secs, true)
}

fn new_marker() -> Result<String, CommandError> {
    let mut b = [0u8; 8];
    getrandom::fill(&mut b)
        .map_err(|e| CommandError::new(ErrorKind::Internal, format!("no randomness: {e}")))?;
    Ok(format!("pane:{}", hex::encode(b)))
}

impl Lifecycle {
    fn get(&self, name: &str) -> Result<Context, CommandError> {
        self.contexts
            .get(name)
            .map_err(store_err)?
            .ok_or_else(|| not_found(name))
    }

    fn get_active(&self, name: &str) -> Result<Context, CommandError> {
        let ctx = self.get(name)?;
        match ctx.state {
            ContextState::Active => Ok(ctx),
            ContextState::Expired => Err(conflict(format!("context {name} is expired"))),
            ContextState::Enrolling => Err(conflict(format!(
                "context {name} is still enrolling; send enroll again to finish it"
            ))),
        }
    }

    /// For an intent left by a run that died less than [`LANDING_WINDOW`] ago: how long until
    /// it is that old. None for an intent of this run (its outcome is known, or was looked up
    /// right after it) and for an old one.
    fn still_landing(&self, intent: &Intent) -> Option<std::time::Duration> {
        let created = chrono::DateTime::parse_from_rfc3339(&intent.created)
            .ok()?
            .with_timezone(&Utc);
        if created >= self.started {
            return None;
        }
        let age = (Utc::now() - created).to_std().unwrap_or_default();
        LANDING_WINDOW.checked_sub(age).filter(|w| !w.is_zero())
    }

    async fn save(&self, ctx: &Context) -> Result<(), CommandError> {
        self.contexts.put(ctx).map_err(store_err)?;
        self.store.flush().await.map_err(store_err)
    }

    pub(super) async fn enroll(
        &self,
        req: EnrollRequest,
        t: &Ticket,
    ) -> Result<Value, CommandError> {
        let mut ctx = match self.contexts.get(&req.name).map_err(store_err)? {
            Some(c) if c.state == ContextState::Enrolling && c.site == req.site => c,
            Some(c) if c.state == ContextState::Enrolling => {
                return Err(conflict(format!(
                    "context {} is being enrolled for {}; finish that first or choose another alias name",
                    c.name, c.site
                )))
            }
            Some(c) => {
                return Err(conflict(format!(
                    "context {} already exists ({:?}); choose another name with alias=...",
                    c.name, c.state
                )))
            }
            None => Context {
                name: req.name.clone(),
                site: req.site.clone(),
                domain: req.domain.clone(),
                state: ContextState::Enrolling,
                created: now(),
                note: req.note.clone(),
                wants_card_cents: req.card_cents,
                alias: None,
                card: None,
                identity: req.identity.then(|| crate::persona::placeholder(&self.forwarding_address)),
                incidents: 0,
                sender_domains: req.sender_domains.clone(),
                merchant_descriptors: req.merchant_descriptors.clone(),
                expired_at: None,
            },
        };
        self.save(&ctx).await?;
        let incomplete = |e: CommandError, what: &str| {
            CommandError::new(
                e.kind,
                format!(
                    "{e}. Enrollment of {} is incomplete ({what} not made); send the same enroll again to resume: nothing is made twice",
                    req.name
                ),
            )
        };
        self.ensure_alias(&mut ctx, &req.host, t)
            .await
            .map_err(|e| incomplete(e, "alias"))?;
        if ctx.wants_card_cents.is_some() {
            self.ensure_card(&mut ctx, t)
                .await
                .map_err(|e| incomplete(e, "card"))?;
        }
        ctx.state = ContextState::Active;
        self.save(&ctx).await?;
        let mut last_mile = vec![format!(
            "Sign up at {} with {} and the placeholder details; never your real name, email or address.",
            ctx.site,
            ctx.alias.as_ref().map(|a| a.email.as_str()).unwrap_or("the alias")
        )];
        last_mile.push("When a real name is required, call the site and give it by phone.".into());
        if ctx.card.is_some() {
            last_mile.push(format!(
                "The card is paused at {}; fund it with card.fund (needs your approval) for the exact amount when you pay.",
                format_amount(ctx.card.as_ref().map(|c| c.limit_cents).unwrap_or(0))
            ));
        }
        let mut view = ctx.view();
        view["status"] = json!("enrolled");
        view["last_mile"] = json!(last_mile);
        Ok(view)
    }

    async fn ensure_alias(
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

    async fn attach_alias(
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

    async fn ensure_card(&self, ctx: &mut Context, t: &Ticket) -> Result<(), CommandError> {
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

    async fn attach_card(
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

    pub(super) async fn create_alias(&self, name: &str, t: &Ticket) -> Result<Value, CommandError> {
        let mut ctx = self.get_active(name)?;
        if ctx.alias.as_ref().is_some_and(|a| !a.deleted) {
            return Err(conflict(format!("context {name} already has an alias")));
        }
        let host = ctx.domain.clone();
        self.ensure_alias(&mut ctx, &host, t).await?;
        Ok(ctx.view())
    }

    pub(super) async fn set_alias_active(
        &self,
        name: &str,
        active: bool,
        t: &Ticket,
    ) -> Result<Value, CommandError> {
        let mut ctx = self.get_active(name)?;
        let Some(alias) = ctx.alias.as_mut().filter(|a| !a.deleted) else {
            return Err(conflict(format!("context {name} has no alias")));
        };
        let id = alias.id.clone();
        self.begin_change(
            name,
            IntentKind::AliasChange,
            format!("alias active={active}"),
        )
        .await?;
        let changed = self.aliases.set_active(&id, active, t).await;
        if let Err(e) = changed {
            return Err(self
                .change_failed(&mut ctx, IntentKind::AliasChange, e)
                .await);
        }
        if let Some(alias) = ctx.alias.as_mut() {
            alias.active = active;
        }
        self.finish_change(&ctx, IntentKind::AliasChange).await?;
        Ok(ctx.view())
    }

    pub(super) async fn update_card(
        &self,
        name: &str,
        update: CardUpdate,
        t: &Ticket,
    ) -> Result<Value, CommandError> {
        let mut ctx = self.get_active(name)?;
        let Some(card) = ctx.card.as_mut() else {
            return Err(conflict(format!("context {name} has no card")));
        };
        if card.state == CardState::Closed {
            return Err(conflict(format!(
                "the card of {name} is closed; closing is final"
            )));
        }
        let token = card.token.clone();
        self.begin_change(name, IntentKind::CardChange, describe_update(&update))
            .await?;
        let info = match self.cards.update(&token, update, t).await {
            Ok(info) => info,
            Err(e) => {
                return Err(self
                    .change_failed(&mut ctx, IntentKind::CardChange, e)
                    .await)
            }
        };
        if let Some(card) = ctx.card.as_mut() {
            card.state = info.state;
            card.limit_cents = info.spend_limit;
            card.last_four = info.last_four;
        }
        self.finish_change(&ctx, IntentKind::CardChange).await?;
        Ok(ctx.view())
    }

    pub(super) async fn transactions(&self, name: &str) -> Result<Value, CommandError> {
        let ctx = self.get(name)?;
        let Some(card) = ctx.card.as_ref() else {
            return Err(conflict(format!("context {name} has no card")));
        };
        let txs = self.cards.transactions(&card.token).await?;
        Ok(
            json!({"context": name, "card": card.last_four, "count": txs.len(), "transactions": txs}),
        )
    }

    pub(super) async fn expire(&self, name: &str, t: &Ticket) -> Result<Value, CommandError> {
        let mut ctx = self.get(name)?;
        if ctx.state == ContextState::Expired {
            return Err(conflict(format!("context {name} is already expired")));
        }
        // Each step is saved as it completes, so a failure part-way resumes on the next expire.
        // Each provider change has its intent, so a crash between the call and the save is
        // reconciled against the provider at the next start.
        if let Some(alias) = ctx.alias.clone().filter(|a| !a.deleted) {
            if alias.active {
                self.begin_change(name, IntentKind::AliasChange, "alias active=false".into())
                    .await?;
                if let Err(e) = self.aliases.set_active(&alias.id, false, t).await {
                    return Err(self
                        .change_failed(&mut ctx, IntentKind::AliasChange, e)
                        .await);
                }
                if let Some(a) = ctx.alias.as_mut() {
                    a.active = false;
                }
                self.finish_change(&ctx, IntentKind::AliasChange).await?;
            }
            self.begin_change(name, IntentKind::AliasChange, "alias delete".into())
                .await?;
            if let Err(e) = self.aliases.delete(&alias.id, t).await {
                return Err(self
                    .change_failed(&mut ctx, IntentKind::AliasChange, e)
                    .await);
            }
            if let Some(a) = ctx.alias.as_mut() {
                a.deleted = true;
            }
            self.finish_change(&ctx, IntentKind::AliasChange).await?;
        }
        if let Some(card) = ctx.card.clone().filter(|c| c.state != CardState::Closed) {
            let update = CardUpdate {
                state: Some(CardState::Closed),
                spend_limit_cents: None,
            };
            self.begin_change(name, IntentKind::CardChange, describe_update(&update))
                .await?;
            let info = match self.cards.update(&card.token, update, t).await {
                Ok(info) => info,
                Err(e) => {
                    return Err(self
                        .change_failed(&mut ctx, IntentKind::CardChange, e)
                        .await)
                }
            };
            if let Some(c) = ctx.card.as_mut() {
                c.state = info.state;
            }
            self.finish_change(&ctx, IntentKind::CardChange).await?;
        }
        ctx.state = ContextState::Expired;
        ctx.expired_at = Some(now());
        self.save(&ctx).await?;
        let mut view = ctx.view();
        view["status"] = json!("expired");
        Ok(view)
    }

    /// Reads every alias from the provider, then updates each context under its own lock,
    /// so a job running on a context is never overwritten by the refresh or the other way.
    pub(super) async fn refresh(&self, locks: &ContextLocks) -> Result<Value, CommandError> {
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
        Ok(
            json!({"provider_aliases": aliases.len(), "provider_requests": requests, "contexts_updated": changed}),
        )
    }

    /// Settles intents left by an interrupted run, each under its context's lock.
    pub(super) async fn reconcile(&self, locks: &ContextLocks) -> Result<Value, CommandError> {
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
                    Ok(true) => settled.push(
                        json!({"context": intent.context, "kind": intent.kind, "found": true}),
                    ),
                    Ok(false) if self.still_landing(&intent).is_some() => later.push(intent),
                    Ok(false) => {
                        // Nothing was made: the next enroll creates it afresh.
                        self.contexts
                            .close_intent(&intent.context, intent.kind)
                            .map_err(store_err)?;
                        settled.push(
                            json!({"context": intent.context, "kind": intent.kind, "found": false}),
                        );
                    }
                    Err(e) => pending.push(
                        json!({"context": intent.context, "kind": intent.kind, "error": e.message}),
                    ),
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
        Ok(json!({"settled": settled, "pending": pending}))
    }
}
