//! Placeholder enrollment and the context lifecycle: the one owner of contexts.
//!
//! It makes a context's alias (through the alias manager), its card (through the card
//! manager) and its placeholder identity, changes them on the owner's commands, and burns them
//! on `expire`. Every create is preceded by an intent flushed to disk, so an interrupted or
//! retried enroll finds what the provider already made instead of making it twice
//! ([`crate::context`]).

use super::alias::AliasHandle;
use super::card::CardHandle;
use crate::context::{
    format_amount, AliasRecord, CardRecord, Context, ContextState, Contexts, Intent, IntentKind,
};
use crate::providers::{CardState, CardUpdate, NewAlias, NewCard};
use crate::reply::{CommandError, ErrorKind};
use crate::store::{Store, StoreError};
use chrono::{SecondsFormat, Utc};
use serde_json::{json, Value};
use tokio::sync::{mpsc, oneshot};

/// What `enroll` asks for.
#[derive(Debug, Clone, PartialEq)]
pub struct EnrollRequest {
    /// The context's name.
    pub name: String,
    /// The site URL as given.
    pub site: String,
    /// Its host name.
    pub host: String,
    /// Its registrable domain.
    pub domain: String,
    /// The card's spend limit in cents, or None for no card.
    pub card_cents: Option<u64>,
    /// Make a placeholder identity.
    pub identity: bool,
    /// The owner's note.
    pub note: Option<String>,
    /// More sender domains that belong to the site.
    pub sender_domains: Vec<String>,
}

type Reply = oneshot::Sender<Result<Value, CommandError>>;

/// What the enrollment actor can be asked.
#[derive(Debug)]
pub enum EnrollMessage {
    /// Enroll (or resume enrolling) a context.
    Enroll(EnrollRequest, Reply),
    /// Make an alias for a context that has none.
    CreateAlias(String, Reply),
    /// Turn a context's alias on or off.
    SetAliasActive(String, bool, Reply),
    /// Pause a context's card.
    PauseCard(String, Reply),
    /// Set a card's limit and open it.
    FundCard(String, u64, Reply),
    /// Close a card for good.
    CloseCard(String, Reply),
    /// A context's card transactions.
    Transactions(String, Reply),
    /// Burn a context: alias deactivated and deleted, card closed, context kept as expired.
    Expire(String, Reply),
    /// Settle intents left by an interrupted run.
    Reconcile(Reply),
    /// Read every alias from the provider and update the contexts' alias state.
    Refresh(Reply),
}

/// The handle.
#[derive(Clone, Debug)]
pub struct EnrollHandle {
    sender: mpsc::Sender<EnrollMessage>,
}

struct Enrollment {
    store: Store,
    contexts: Contexts,
    aliases: AliasHandle,
    cards: CardHandle,
    forwarding_address: String,
    receiver: mpsc::Receiver<EnrollMessage>,
}

impl EnrollHandle {
    /// Starts the actor.
    pub fn start(
        store: Store,
        aliases: AliasHandle,
        cards: CardHandle,
        forwarding_address: String,
    ) -> EnrollHandle {
        let (sender, receiver) = mpsc::channel(64);
        let contexts = Contexts::new(&store);
        let actor = Enrollment {
            store,
            contexts,
            aliases,
            cards,
            forwarding_address,
            receiver,
        };
        tokio::spawn(actor.run());
        EnrollHandle { sender }
    }

    /// Sends a message and waits for its answer.
    pub async fn ask(
        &self,
        make: impl FnOnce(Reply) -> EnrollMessage,
    ) -> Result<Value, CommandError> {
        let (reply, rx) = oneshot::channel();
        let stopped = || CommandError::new(ErrorKind::Unavailable, "the enrollment actor stopped");
        self.sender.send(make(reply)).await.map_err(|_| stopped())?;
        rx.await.map_err(|_| stopped())?
    }
}

fn store_err(e: StoreError) -> CommandError {
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

fn now() -> String {
    Utc::now().to_rfc3339_opts(SecondsFormat::Secs, true)
}

fn new_marker() -> Result<String, CommandError> {
    let mut b = [0u8; 8];
    getrandom::fill(&mut b)
        .map_err(|e| CommandError::new(ErrorKind::Internal, format!("no randomness: {e}")))?;
    Ok(format!("pane:{}", hex::encode(b)))
}

impl Enrollment {
    async fn run(mut self) {
        while let Some(msg) = self.receiver.recv().await {
            match msg {
                EnrollMessage::Enroll(req, r) => {
                    let _ = r.send(self.enroll(req).await);
                }
                EnrollMessage::CreateAlias(name, r) => {
                    let _ = r.send(self.create_alias(&name).await);
                }
                EnrollMessage::SetAliasActive(name, on, r) => {
                    let _ = r.send(self.set_alias_active(&name, on).await);
                }
                EnrollMessage::PauseCard(name, r) => {
                    let update = CardUpdate {
                        state: Some(CardState::Paused),
                        spend_limit_cents: None,
                    };
                    let _ = r.send(self.update_card(&name, update).await);
                }
                EnrollMessage::FundCard(name, cents, r) => {
                    let update = CardUpdate {
                        state: Some(CardState::Open),
                        spend_limit_cents: Some(cents),
                    };
                    let _ = r.send(self.update_card(&name, update).await);
                }
                EnrollMessage::CloseCard(name, r) => {
                    let update = CardUpdate {
                        state: Some(CardState::Closed),
                        spend_limit_cents: None,
                    };
                    let _ = r.send(self.update_card(&name, update).await);
                }
                EnrollMessage::Transactions(name, r) => {
                    let _ = r.send(self.transactions(&name).await);
                }
                EnrollMessage::Expire(name, r) => {
                    let _ = r.send(self.expire(&name).await);
                }
                EnrollMessage::Reconcile(r) => {
                    let _ = r.send(self.reconcile().await);
                }
                EnrollMessage::Refresh(r) => {
                    let _ = r.send(self.refresh().await);
                }
            }
        }
    }

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

    async fn save(&self, ctx: &Context) -> Result<(), CommandError> {
        self.contexts.put(ctx).map_err(store_err)?;
        self.store.flush().await.map_err(store_err)
    }

    async fn enroll(&mut self, req: EnrollRequest) -> Result<Value, CommandError> {
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
                identity: req.identity.then(|| crate::identity::placeholder(&self.forwarding_address)),
                incidents: 0,
                sender_domains: req.sender_domains.clone(),
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
        self.ensure_alias(&mut ctx, &req.host)
            .await
            .map_err(|e| incomplete(e, "alias"))?;
        if ctx.wants_card_cents.is_some() {
            self.ensure_card(&mut ctx)
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

    async fn ensure_alias(&mut self, ctx: &mut Context, host: &str) -> Result<(), CommandError> {
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
        }
        let marker = new_marker()?;
        let intent = Intent {
            context: ctx.name.clone(),
            kind: IntentKind::Alias,
            marker: marker.clone(),
            created: now(),
        };
        self.contexts.open_intent(&intent).map_err(store_err)?;
        self.store.flush().await.map_err(store_err)?;
        let new = NewAlias {
            description: format!("pane {} ({marker})", ctx.name),
            hostname: host.to_string(),
        };
        match self.aliases.create(new).await {
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
        &mut self,
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

    async fn ensure_card(&mut self, ctx: &mut Context) -> Result<(), CommandError> {
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
        }
        let marker = new_marker()?;
        let intent = Intent {
            context: ctx.name.clone(),
            kind: IntentKind::Card,
            marker: marker.clone(),
            created: now(),
        };
        self.contexts.open_intent(&intent).map_err(store_err)?;
        self.store.flush().await.map_err(store_err)?;
        let new = NewCard {
            memo: format!("pane {} {marker}", ctx.name),
            spend_limit_cents: ctx.wants_card_cents.unwrap_or(0),
        };
        match self.cards.create(new).await {
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
        &mut self,
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

    async fn create_alias(&mut self, name: &str) -> Result<Value, CommandError> {
        let mut ctx = self.get_active(name)?;
        if ctx.alias.as_ref().is_some_and(|a| !a.deleted) {
            return Err(conflict(format!("context {name} already has an alias")));
        }
        let host = ctx.domain.clone();
        self.ensure_alias(&mut ctx, &host).await?;
        Ok(ctx.view())
    }

    async fn set_alias_active(&mut self, name: &str, active: bool) -> Result<Value, CommandError> {
        let mut ctx = self.get_active(name)?;
        let Some(alias) = ctx.alias.as_mut().filter(|a| !a.deleted) else {
            return Err(conflict(format!("context {name} has no alias")));
        };
        self.aliases.set_active(&alias.id, active).await?;
        alias.active = active;
        self.save(&ctx).await?;
        Ok(ctx.view())
    }

    async fn update_card(&mut self, name: &str, update: CardUpdate) -> Result<Value, CommandError> {
        let mut ctx = self.get_active(name)?;
        let Some(card) = ctx.card.as_mut() else {
            return Err(conflict(format!("context {name} has no card")));
        };
        if card.state == CardState::Closed {
            return Err(conflict(format!(
                "the card of {name} is closed; closing is final"
            )));
        }
        let info = self.cards.update(&card.token, update).await?;
        card.state = info.state;
        card.limit_cents = info.spend_limit;
        card.last_four = info.last_four;
        self.save(&ctx).await?;
        Ok(ctx.view())
    }

    async fn transactions(&mut self, name: &str) -> Result<Value, CommandError> {
        let ctx = self.get(name)?;
        let Some(card) = ctx.card.as_ref() else {
            return Err(conflict(format!("context {name} has no card")));
        };
        let txs = self.cards.transactions(&card.token).await?;
        Ok(
            json!({"context": name, "card": card.last_four, "count": txs.len(), "transactions": txs}),
        )
    }

    async fn expire(&mut self, name: &str) -> Result<Value, CommandError> {
        let mut ctx = self.get(name)?;
        if ctx.state == ContextState::Expired {
            return Err(conflict(format!("context {name} is already expired")));
        }
        // Each step is saved as it completes, so a failure part-way resumes on the next expire.
        if let Some(alias) = ctx.alias.clone().filter(|a| !a.deleted) {
            if alias.active {
                self.aliases.set_active(&alias.id, false).await?;
                if let Some(a) = ctx.alias.as_mut() {
                    a.active = false;
                }
                self.save(&ctx).await?;
            }
            self.aliases.delete(&alias.id).await?;
            if let Some(a) = ctx.alias.as_mut() {
                a.deleted = true;
            }
            self.save(&ctx).await?;
        }
        if let Some(card) = ctx.card.clone().filter(|c| c.state != CardState::Closed) {
            let update = CardUpdate {
                state: Some(CardState::Closed),
                spend_limit_cents: None,
            };
            let info = self.cards.update(&card.token, update).await?;
            if let Some(c) = ctx.card.as_mut() {
                c.state = info.state;
            }
            self.save(&ctx).await?;
        }
        ctx.state = ContextState::Expired;
        ctx.expired_at = Some(now());
        self.save(&ctx).await?;
        let mut view = ctx.view();
        view["status"] = json!("expired");
        Ok(view)
    }

    async fn refresh(&mut self) -> Result<Value, CommandError> {
        let (aliases, requests) = self.aliases.list().await?;
        let by_id: std::collections::HashMap<&str, &crate::providers::AliasInfo> =
            aliases.iter().map(|a| (a.id.as_str(), a)).collect();
        let mut changed = 0;
        for mut ctx in self.contexts.all().map_err(store_err)? {
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

    async fn reconcile(&mut self) -> Result<Value, CommandError> {
        let mut settled = Vec::new();
        let mut pending = Vec::new();
        for intent in self.contexts.open_intents().map_err(store_err)? {
            let Some(mut ctx) = self.contexts.get(&intent.context).map_err(store_err)? else {
                self.contexts
                    .close_intent(&intent.context, intent.kind)
                    .map_err(store_err)?;
                continue;
            };
            let found = match intent.kind {
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
                Ok(true) => settled
                    .push(json!({"context": intent.context, "kind": intent.kind, "found": true})),
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
        self.store.flush().await.map_err(store_err)?;
        Ok(json!({"settled": settled, "pending": pending}))
    }
}
