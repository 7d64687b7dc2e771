//! The context lifecycle's steps, run by the job runner ([`super::jobs`]) one job at a time
//! per context: what they share ([`Lifecycle`]), and the steps of the owner's commands.
//!
//! They enroll a context (its alias through the alias manager, its card through the card
//! manager, its placeholder identity), change its alias and card on the owner's commands, and
//! burn them on `expire`; each answers the command's typed output. The creates behind an
//! intent are in [`super::creates`], the changes behind one in [`super::changes`], and
//! reading the providers back (refresh, reconciliation) in [`super::reconcile`].

use super::alias::AliasHandle;
use super::card::CardHandle;
use super::changes::describe_update;
use super::ticket::Ticket;
use crate::commands::enroll::{EnrollRequest, Enrolled};
use crate::commands::expire::Expired;
use crate::commands::status::ContextChanged;
use crate::commands::transactions::TransactionsOutput;
use crate::context::{format_amount, Context, ContextState, Contexts, Intent, IntentKind};
use crate::providers::{CardState, CardUpdate};
use crate::reply::{CommandError, ErrorKind};
use crate::store::{Store, StoreError};
use chrono::{SecondsFormat, Utc};

/// What the steps work with; shared by every job of the enrollment worker.
pub(super) struct Lifecycle {
    pub(super) store: Store,
    pub(super) contexts: Contexts,
    pub(super) aliases: AliasHandle,
    pub(super) cards: CardHandle,
    pub(super) forwarding_address: String,
    /// The way out; `expire` moves its circuits on.
    pub(super) egress: crate::egress::Egress,
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
    pub(super) fn still_landing(&self, intent: &Intent) -> Option<std::time::Duration> {
        let created = chrono::DateTime::parse_from_rfc3339(&intent.created)
            .ok()?
            .with_timezone(&Utc);
        if created >= self.started {
            return None;
        }
        let age = (Utc::now() - created).to_std().unwrap_or_default();
        LANDING_WINDOW.checked_sub(age).filter(|w| !w.is_zero())
    }

    pub(super) async fn save(&self, ctx: &Context) -> Result<(), CommandError> {
        self.contexts.put(ctx).map_err(store_err)?;
        self.store.flush().await.map_err(store_err)
    }

    pub(super) async fn enroll(
        &self,
        req: EnrollRequest,
        t: &Ticket,
    ) -> Result<Enrolled, CommandError> {
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
        Ok(Enrolled {
            context: ctx.view(),
            status: "enrolled",
            last_mile,
        })
    }

    pub(super) async fn create_alias(
        &self,
        name: &str,
        t: &Ticket,
    ) -> Result<ContextChanged, CommandError> {
        let mut ctx = self.get_active(name)?;
        if ctx.alias.as_ref().is_some_and(|a| !a.deleted) {
            return Err(conflict(format!("context {name} already has an alias")));
        }
        let host = ctx.domain.clone();
        self.ensure_alias(&mut ctx, &host, t).await?;
        Ok(ContextChanged(ctx.view()))
    }

    pub(super) async fn set_alias_active(
        &self,
        name: &str,
        active: bool,
        t: &Ticket,
    ) -> Result<ContextChanged, CommandError> {
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
        Ok(ContextChanged(ctx.view()))
    }

    pub(super) async fn update_card(
        &self,
        name: &str,
        update: CardUpdate,
        t: &Ticket,
    ) -> Result<ContextChanged, CommandError> {
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
        Ok(ContextChanged(ctx.view()))
    }

    pub(super) async fn transactions(
        &self,
        name: &str,
    ) -> Result<TransactionsOutput, CommandError> {
        let ctx = self.get(name)?;
        let Some(card) = ctx.card.as_ref() else {
            return Err(conflict(format!("context {name} has no card")));
        };
        let txs = self.cards.transactions(&card.token).await?;
        Ok(TransactionsOutput {
            context: name.to_string(),
            card: card.last_four.clone(),
            count: txs.len(),
            transactions: txs,
        })
    }

    pub(super) async fn expire(&self, name: &str, t: &Ticket) -> Result<Expired, CommandError> {
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
        // What comes after this context shares no Tor circuit with what came before it.
        self.egress.renew().map_err(store_err)?;
        Ok(Expired {
            context: ctx.view(),
            status: "expired",
        })
    }
}
