//! Contexts: one per site, made of a disposable alias, a virtual card and a placeholder
//! identity, and the intents that make creating them safe to retry.
//!
//! Before the agent asks a provider to create anything it records an [`Intent`] whose marker
//! goes into the alias description or card memo. If the call is interrupted (a timeout, a
//! crash), the intent is still there and the marker finds what the provider made, so a
//! retried enroll never makes two aliases or two cards.

use crate::providers::CardState;
use crate::store::{decode, encode, StoreError};
use serde::{Deserialize, Serialize};

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
    /// When it was expired.
    pub expired_at: Option<String>,
}

/// What an intent is about to create.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum IntentKind {
    /// An alias.
    Alias,
    /// A card.
    Card,
}

/// A create that was started; removed once its result is recorded in the context.
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
    contexts: sled::Tree,
    intents: sled::Tree,
}

fn intent_key(context: &str, kind: IntentKind) -> Vec<u8> {
    let kind = match kind {
        IntentKind::Alias => "alias",
        IntentKind::Card => "card",
    };
    format!("{context}\u{0}{kind}").into_bytes()
}

impl Contexts {
    /// Uses the store's `contexts` and `intents` trees.
    pub fn new(contexts: sled::Tree, intents: sled::Tree) -> Contexts {
        Contexts { contexts, intents }
    }

    /// The context called `name`.
    pub fn get(&self, name: &str) -> Result<Option<Context>, StoreError> {
        self.contexts
            .get(name.as_bytes())?
            .map(|b| decode(&b))
            .transpose()
    }

    /// Writes a context.
    pub fn put(&self, ctx: &Context) -> Result<(), StoreError> {
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
