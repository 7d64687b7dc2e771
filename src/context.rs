//! Contexts: one per site, made of a disposable alias, a virtual card and a placeholder
//! identity, and the intents that make creating them safe to retry.
//!
//! Before the agent asks a provider to create anything it records an [`Intent`] whose marker
//! goes into the alias description or card memo. If the call is interrupted (a timeout, a
//! crash), the intent is still there and the marker finds what the provider made, so a
//! retried enroll never makes two aliases or two cards.

use crate::providers::CardState;
use crate::reply::Rendered;
use crate::store::{decode, encode, Store, StoreError, Table, TableId};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::ops::Bound;
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
    pub fn view(&self) -> Value {
        json!({
            "context": self.name,
            "site": self.site,
            "domain": self.domain,
            "state": self.state,
            "created": self.created,
            "note": self.note,
            "alias": self.alias.as_ref().map(|a| json!({
                "email": a.email, "active": a.active, "deleted": a.deleted, "provider": a.provider,
                "forwarded": a.forwarded,
            })),
            "card": self.card.as_ref().map(|c| json!({
                "last_four": c.last_four, "limit": format_amount(c.limit_cents), "state": c.state, "provider": c.provider,
            })),
            "identity": self.identity,
            "incidents": self.incidents,
            "sender_domains": self.sender_domains,
            "merchant_descriptors": self.merchant_descriptors,
            "expired_at": self.expired_at,
        })
    }
}

/// Formats cents as an amount: 1250 -> "12.50".
pub fn format_amount(cents: u64) -> String {
    format!("{}.{:02}", cents / 100, cents % 100)
}

/// Every context's view ([`Context::view`]) rendered as JSON text, kept in step with the
/// `contexts` tree. It belongs to the [`Store`], so every [`Contexts`] made from one store
/// (the agent's, the enrollment actor's, the breach monitor's) shares it, and every write
/// goes through [`Contexts::put`], which updates it under the same lock. Filled on the first
/// `list`; a view is re-rendered only when its context changes. Contexts are never deleted
/// (an expired one stays, for the record), so there is no removal to mirror. Memory: one
/// view's text (about 330 bytes) per context.
#[derive(Clone, Default)]
pub struct ViewCache(Arc<Mutex<Option<BTreeMap<String, Rendered>>>>);

impl ViewCache {
    fn lock(&self) -> MutexGuard<'_, Option<BTreeMap<String, Rendered>>> {
        match self.0.lock() {
            Ok(guard) => guard,
            Err(poisoned) => {
                // A panic while it was held may have left it half updated: start again from
                // the tree.
                self.0.clear_poison();
                let mut guard = poisoned.into_inner();
                *guard = None;
                guard
            }
        }
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

/// The contexts and intents trees, and the store's rendered views.
#[derive(Clone)]
pub struct Contexts {
    contexts: Table,
    intents: Table,
    views: ViewCache,
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
    /// Uses the store's `contexts` and `intents` trees, with a view cache of its own. Make
    /// one per store and hand out clones: the clones share the cache, so every writer keeps
    /// every reader's views current.
    pub fn new(store: &Store) -> Contexts {
        Contexts {
            contexts: store.table(TableId::Contexts),
            intents: store.table(TableId::Intents),
            views: ViewCache::default(),
        }
    }

    /// The context called `name`.
    pub fn get(&self, name: &str) -> Result<Option<Context>, StoreError> {
        self.contexts
            .get(name.as_bytes())?
            .map(|b| decode(&b))
            .transpose()
    }

    /// Writes a context, and its rendered view when the views are loaded. The lock is held
    /// across both, so two workers writing the same context leave the view of the one that
    /// wrote last. The incident count is the breach monitor's ([`Contexts::add_incident`]):
    /// a write keeps the stored count, so an enroll that read the context before a slow
    /// provider call cannot undo an incident counted meanwhile.
    pub fn put(&self, ctx: &Context) -> Result<(), StoreError> {
        let mut views = self.views.lock();
        let mut ctx = ctx.clone();
        if let Some(stored) = self.contexts.get(ctx.name.as_bytes())? {
            let stored: Context = decode(&stored)?;
            ctx.incidents = stored.incidents;
        }
        self.write(&mut views, &ctx)
    }

    /// Counts one more incident against `name` (nothing when there is no such context).
    pub fn add_incident(&self, name: &str) -> Result<(), StoreError> {
        let mut views = self.views.lock();
        let Some(stored) = self.contexts.get(name.as_bytes())? else {
            return Ok(());
        };
        let mut ctx: Context = decode(&stored)?;
        ctx.incidents += 1;
        self.write(&mut views, &ctx)
    }

    fn write(
        &self,
        views: &mut MutexGuard<'_, Option<BTreeMap<String, Rendered>>>,
        ctx: &Context,
    ) -> Result<(), StoreError> {
        let encoded = encode(ctx)?;
        if let Err(e) = self.contexts.insert(ctx.name.as_bytes(), encoded) {
            // Whether it was written is unknown: read the tree again next time.
            **views = None;
            return Err(e);
        }
        if let Some(map) = views.as_mut() {
            map.insert(ctx.name.clone(), Rendered::from_value(&ctx.view()));
        }
        Ok(())
    }

    /// Every context, by name.
    pub fn all(&self) -> Result<Vec<Context>, StoreError> {
        self.contexts.iter().map(|r| decode(&r?.1)).collect()
    }

    /// Every context's view as one JSON array, by name, and how many there are: the same
    /// text as serialising `all()`'s views, from views rendered once per change. With
    /// `after`, only the contexts whose names sort after it.
    pub fn rendered_views(&self, after: Option<&str>) -> Result<(Rendered, usize), StoreError> {
        let mut views = self.views.lock();
        let map = match views.take() {
            Some(map) => views.insert(map),
            None => {
                let mut map = BTreeMap::new();
                for entry in self.contexts.iter() {
                    let ctx: Context = decode(&entry?.1)?;
                    map.insert(ctx.name.clone(), Rendered::from_value(&ctx.view()));
                }
                views.insert(map)
            }
        };
        let shown: Vec<&Rendered> = match after {
            Some(after) => map
                .range::<str, _>((Bound::Excluded(after), Bound::Unbounded))
                .map(|(_, v)| v)
                .collect(),
            None => map.values().collect(),
        };
        let count = shown.len();
        Ok((Rendered::array(shown), count))
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
