//! Contexts: one per site, made of a disposable alias, a virtual card and a placeholder
//! identity, and the intents that make creating them safe to retry.
//!
//! Before the agent asks a provider to create anything it records an [`Intent`] whose marker
//! goes into the alias description or card memo. If the call is interrupted (a timeout, a
//! crash), the intent is still there and the marker finds what the provider made, so a
//! retried enroll never makes two aliases or two cards.

use crate::providers::CardState;
use crate::store::{decode, encode, Store, StoreError, Table, TableId};
use serde::{Deserialize, Serialize};
use std::sync::{Arc, Mutex, MutexGuard};

/// Where a context stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ContextState {
    /// Enrollment started and has not finished (a provider failed); `enroll` again resumes it.
    Enrolling,
    /// In use.
    Active,
    /// Burned: alias deleted, card closed; kept for the record.
    Expired,
}

/// The alias part of a context.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AliasRecord {
    /// Which provider holds it.
    pub provider: String,
    /// The provider's id.
    pub id: String,
    /// The address.
    pub email: String,
    /// Whether it forwards.
    pub active: bool,
    /// Deleted at the provider (after `expire`).
    pub deleted: bool,
    /// Mails forwarded, as of the last refresh (the breach monitor watches it move).
    #[serde(default)]
    pub forwarded: u64,
}

/// The card part of a context: never the number or CVV.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CardRecord {
    /// Which provider holds it.
    pub provider: String,
    /// The provider's token.
    pub token: String,
    /// Last four digits.
    pub last_four: String,
    /// Spend limit in cents.
    pub limit_cents: u64,
    /// Its state.
    pub state: CardState,
}

/// A placeholder identity: plausible, adult, and not the owner.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Identity {
    /// A made-up full name.
    pub name: String,
    /// A made-up adult date of birth (YYYY-MM-DD).
    pub date_of_birth: String,
    /// The owner's configured forwarding address (never the real one), if set.
    pub address: Option<String>,
}

/// One site's context.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Context {
    /// Its name (the `context` argument of commands).
    pub name: String,
    /// The site URL it was enrolled for.
    pub site: String,
    /// The site's registrable domain, which mail to the alias is expected from.
    pub domain: String,
    /// Where it stands.
    pub state: ContextState,
    /// When enrollment started (RFC 3339).
    pub created: String,
    /// The owner's note.
    pub note: Option<String>,
    /// The spend limit asked for at enrollment, in cents; None when no card was asked for.
    pub wants_card_cents: Option<u64>,
    /// The alias, once made.
    pub alias: Option<AliasRecord>,
    /// The card, once made.
    pub card: Option<CardRecord>,
    /// The placeholder identity, if asked for.
    pub identity: Option<Identity>,
    /// Breach incidents recorded against it.
    pub incidents: u64,
    /// More sender domains that belong to the site (its mail service, say).
    #[serde(default)]
    pub sender_domains: Vec<String>,
    /// More merchant descriptors that belong to the site (normalised: capital words), for
    /// the card canaries.
    #[serde(default)]
    pub merchant_descriptors: Vec<String>,
    /// When it was expired.
    pub expired_at: Option<String>,
}

impl Context {
    /// The context as replies show it: no tokens or ids beyond what the owner needs.
    pub fn view(&self) -> ContextView {
        ContextView {
            context: self.name.clone(),
            site: self.site.clone(),
            domain: self.domain.clone(),
            state: self.state,
            created: self.created.clone(),
            note: self.note.clone(),
            alias: self.alias.as_ref().map(|a| AliasView {
                email: a.email.clone(),
                active: a.active,
                deleted: a.deleted,
                provider: a.provider.clone(),
                forwarded: a.forwarded,
            }),
            card: self.card.as_ref().map(|c| CardView {
                last_four: c.last_four.clone(),
                limit: format_amount(c.limit_cents),
                state: c.state,
                provider: c.provider.clone(),
            }),
            identity: self.identity.clone(),
            incidents: self.incidents,
            sender_domains: self.sender_domains.clone(),
            merchant_descriptors: self.merchant_descriptors.clone(),
            expired_at: self.expired_at.clone(),
        }
    }
}

/// A context as every reply shows it (`status`, `list`, and what the alias, card, enroll
/// and expire jobs answer): the record without the provider's ids and tokens, which a reply
/// has no use for and the audit log should not hold.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ContextView {
    /// Its name.
    pub context: String,
    /// The site URL it was enrolled for.
    pub site: String,
    /// The site's registrable domain.
    pub domain: String,
    /// Where it stands.
    pub state: ContextState,
    /// When enrollment started (RFC 3339).
    pub created: String,
    /// The owner's note.
    pub note: Option<String>,
    /// Its alias, once made.
    pub alias: Option<AliasView>,
    /// Its card, once made.
    pub card: Option<CardView>,
    /// The placeholder identity, if asked for.
    pub identity: Option<Identity>,
    /// Breach incidents recorded against it.
    pub incidents: u64,
    /// More sender domains that belong to the site.
    pub sender_domains: Vec<String>,
    /// More merchant descriptors that belong to the site.
    pub merchant_descriptors: Vec<String>,
    /// When it was expired.
    pub expired_at: Option<String>,
}

/// A context's alias as replies show it: no provider id.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AliasView {
    /// The address.
    pub email: String,
    /// Whether it forwards.
    pub active: bool,
    /// Deleted at the provider.
    pub deleted: bool,
    /// Which provider holds it.
    pub provider: String,
    /// Mails forwarded, as of the last refresh.
    pub forwarded: u64,
}

/// A context's card as replies show it: no token, the limit as an amount (`12.50`).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CardView {
    /// Last four digits.
    pub last_four: String,
    /// The spend limit, as an amount.
    pub limit: String,
    /// Its state.
    pub state: CardState,
    /// Which provider holds it.
    pub provider: String,
}

impl ContextView {
    /// Its one line, as `list` shows it: `notion · n7x@alias.io · card 4242 paused`.
    pub fn line(&self) -> String {
        let state = name_of(&self.state);
        let card_state = self.card.as_ref().map(|c| name_of(&c.state));
        crate::words::contexts::ContextLine {
            name: &self.context,
            state: &state,
            alias: self
                .alias
                .as_ref()
                .map(|a| (a.email.as_str(), a.deleted, a.active)),
            card: self.card.as_ref().map(|c| {
                (
                    c.last_four.as_str(),
                    card_state.as_deref().unwrap_or_default(),
                )
            }),
            incidents: self.incidents,
        }
        .text()
    }
}

/// A serialisable enum's name (`"active"`, `"PAUSED"`), as the views show it.
pub fn name_of(value: &impl Serialize) -> String {
    match serde_json::to_value(value) {
        Ok(serde_json::Value::String(s)) => s,
        _ => String::new(),
    }
}

/// Formats cents as an amount: 1250 -> "12.50".
pub fn format_amount(cents: u64) -> String {
    format!("{}.{:02}", cents / 100, cents % 100)
}

/// Held across every read-modify-write of a context ([`Contexts::put`],
/// [`Contexts::add_incident`]), so an incident counted meanwhile is never written over. It
/// belongs to the [`Store`]'s contexts: every [`Contexts`] cloned from one shares it.
#[derive(Clone, Default)]
struct WriteLock(Arc<Mutex<()>>);

impl WriteLock {
    fn lock(&self) -> MutexGuard<'_, ()> {
        // Nothing is guarded but the order of writes: a panic while it was held leaves
        // nothing half done here.
        self.0
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// What an intent is about to do at the provider.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum IntentKind {
    /// Create an alias.
    Alias,
    /// Create a card.
    Card,
    /// Change the context's alias (forwarding on or off, delete). Reconciled by reading the
    /// alias back from the provider.
    AliasChange,
    /// Change the context's card (fund, pause, close). Reconciled by reading the card back
    /// from the provider, so a crash in the middle of a fund never leaves the record saying
    /// "paused at $0" while the provider has it open.
    CardChange,
}

/// A create or change that was started; removed once its result is recorded in the context.
/// For a create, `marker` is the text put into the description or memo; for a change, what
/// was asked (for the log and the audit trail).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Intent {
    /// The context it is for.
    pub context: String,
    /// What it creates.
    pub kind: IntentKind,
    /// The text put into the description or memo, unique to this intent.
    pub marker: String,
    /// When it was recorded.
    pub created: String,
}

/// The contexts and intents trees.
#[derive(Clone)]
pub struct Contexts {
    contexts: Table,
    intents: Table,
    writing: WriteLock,
}

fn intent_key(context: &str, kind: IntentKind) -> Vec<u8> {
    let kind = match kind {
        IntentKind::Alias => "alias",
        IntentKind::Card => "card",
        IntentKind::AliasChange => "alias_change",
        IntentKind::CardChange => "card_change",
    };
    format!("{context}\u{0}{kind}").into_bytes()
}

impl Contexts {
    /// Uses the store's `contexts` and `intents` trees, with a write lock of its own. Make
    /// one per store and hand out clones: the clones share the lock.
    pub fn new(store: &Store) -> Contexts {
        Contexts {
            contexts: store.table(TableId::Contexts),
            intents: store.table(TableId::Intents),
            writing: WriteLock::default(),
        }
    }

    /// The context called `name`.
    pub fn get(&self, name: &str) -> Result<Option<Context>, StoreError> {
        self.contexts
            .get(name.as_bytes())?
            .map(|b| decode(&b))
            .transpose()
    }

    /// Writes a context. The incident count is the breach monitor's ([`Contexts::add_incident`]):
    /// a write keeps the stored count, so an enroll that read the context before a slow
    /// provider call cannot undo an incident counted meanwhile.
    pub fn put(&self, ctx: &Context) -> Result<(), StoreError> {
        let _writing = self.writing.lock();
        let mut ctx = ctx.clone();
        if let Some(stored) = self.contexts.get(ctx.name.as_bytes())? {
            let stored: Context = decode(&stored)?;
            ctx.incidents = stored.incidents;
        }
        self.write(&ctx)
    }

    /// Counts one more incident against `name` (nothing when there is no such context).
    pub fn add_incident(&self, name: &str) -> Result<(), StoreError> {
        let _writing = self.writing.lock();
        let Some(stored) = self.contexts.get(name.as_bytes())? else {
            return Ok(());
        };
        let mut ctx: Context = decode(&stored)?;
        ctx.incidents += 1;
        self.write(&ctx)
    }

    fn write(&self, ctx: &Context) -> Result<(), StoreError> {
        self.contexts.insert(ctx.name.as_bytes(), encode(ctx)?)?;
        Ok(())
    }

    /// Every context, by name.
    pub fn all(&self) -> Result<Vec<Context>, StoreError> {
        self.contexts.iter().map(|r| decode(&r?.1)).collect()
    }

    /// The intent for `context` and `kind`, if one is open.
    pub fn intent(&self, context: &str, kind: IntentKind) -> Result<Option<Intent>, StoreError> {
        self.intents
            .get(intent_key(context, kind))?
            .map(|b| decode(&b))
            .transpose()
    }

    /// Records an intent.
    pub fn open_intent(&self, intent: &Intent) -> Result<(), StoreError> {
        self.intents
            .insert(intent_key(&intent.context, intent.kind), encode(intent)?)?;
        Ok(())
    }

    /// Removes an intent.
    pub fn close_intent(&self, context: &str, kind: IntentKind) -> Result<(), StoreError> {
        self.intents.remove(intent_key(context, kind))?;
        Ok(())
    }

    /// Every open intent.
    pub fn open_intents(&self) -> Result<Vec<Intent>, StoreError> {
        self.intents.iter().map(|r| decode(&r?.1)).collect()
    }
}
