//! Providers that keep their aliases and cards in memory, for running the gate and the
//! workers in process (`tests/in_process*.rs`) without a network, a server or a key.
//!
//! They are real providers: what is created is kept, and reads, updates and look-ups by
//! marker answer from it. Beside that, [`Controls`] let a test make the provider misbehave as
//! a real one can (the next call fails with a given [`ProviderError`]: a 429, a 5xx, a
//! timeout), hold every call until released (a provider that hangs, with no sleep anywhere),
//! and see the calls made and when. A user cannot configure them: they are built only from
//! the public API ([`MemoryAliases::new`], [`MemoryCards::new`]) and handed to
//! [`super::configured::AnyAlias::Memory`] / [`super::configured::AnyCard::Memory`].
//!
//! Like the HTTP client, each call first asks the job's attempt guard
//! ([`super::http::guarded`]): after a lockdown, a job's next call is not made. A call already
//! made (held, say) completes, as a request already sent does.

use super::card_activity::{TxnBatch, TxnCursor};
use super::{
    AliasInfo, AliasProvider, CardInfo, CardProvider, CardState, CardUpdate, NewAlias, NewCard,
    ProviderError, Transaction,
};
use std::collections::{BTreeMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use tokio::sync::watch;
use tokio::time::Instant;

/// The name both memory providers report.
const NAME: &str = "memory";

/// One call a memory provider received.
#[derive(Debug, Clone, PartialEq)]
pub struct Call {
    /// The trait method: `create`, `get`, `set_active`, `delete`, `list`, `find_by_marker`,
    /// `update`, `transactions`, `account_transactions`.
    pub op: &'static str,
    /// When it arrived, on tokio's clock (paused in tests that step time).
    pub at: Instant,
}

/// What a test controls in a memory provider. Clones of a provider share them.
#[derive(Debug)]
pub struct Controls {
    failures: Mutex<VecDeque<ProviderError>>,
    held: watch::Sender<bool>,
    calls: watch::Sender<Vec<Call>>,
    in_flight: watch::Sender<(usize, usize)>,
}

impl Default for Controls {
    fn default() -> Self {
        Controls {
            failures: Mutex::new(VecDeque::new()),
            held: watch::Sender::new(false),
            calls: watch::Sender::new(Vec::new()),
            in_flight: watch::Sender::new((0, 0)),
        }
    }
}

/// Counts a call in flight until it is dropped (completed, or abandoned at a deadline).
struct InFlight<'a>(&'a watch::Sender<(usize, usize)>);

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.0.send_modify(|(now, _)| *now = now.saturating_sub(1));
    }
}

impl Controls {
    /// The next call that is made fails with `error` (several queue up, one per call).
    pub fn fail_next(&self, error: ProviderError) {
        lock(&self.failures).push_back(error);
    }

    /// From now on every call waits, once counted, until [`Controls::release`].
    pub fn hold(&self) {
        self.held.send_replace(true);
    }

    /// Lets every held call, and every later one, go on.
    pub fn release(&self) {
        self.held.send_replace(false);
    }

    /// Every call made so far, in order.
    pub fn calls(&self) -> Vec<Call> {
        self.calls.borrow().clone()
    }

    /// How many calls of `op` were made so far.
    pub fn count(&self, op: &str) -> usize {
        self.calls.borrow().iter().filter(|c| c.op == op).count()
    }

    /// Returns once `n` calls of `op` have been made (at once if they have): the event a test
    /// waits for instead of sleeping.
    pub async fn wait_for(&self, op: &str, n: usize) {
        let mut seen = self.calls.subscribe();
        // The sender lives as long as `self`, so the wait can only end by the condition.
        let _ = seen
            .wait_for(|calls| calls.iter().filter(|c| c.op == op).count() >= n)
            .await;
    }

    /// The most calls that were in flight at once since the last reset.
    pub fn max_in_flight(&self) -> usize {
        self.in_flight.borrow().1
    }

    /// Starts counting [`Controls::max_in_flight`] afresh.
    pub fn reset_max_in_flight(&self) {
        self.in_flight.send_modify(|(now, max)| *max = *now);
    }

    /// What every call goes through before the provider acts: the job's attempt guard, the
    /// record of the call, the hold, and a queued failure.
    async fn enter(&self, op: &'static str) -> Result<(), ProviderError> {
        if !super::http::attempt_allowed() {
            return Err(ProviderError::LockedDown { provider: NAME });
        }
        self.in_flight.send_modify(|(now, max)| {
            *now += 1;
            *max = (*max).max(*now);
        });
        let _counted = InFlight(&self.in_flight);
        self.calls.send_modify(|calls| {
            calls.push(Call {
                op,
                at: Instant::now(),
            })
        });
        let mut held = self.held.subscribe();
        // The sender lives as long as `self`, so the wait can only end by the release.
        let _ = held.wait_for(|held| !*held).await;
        match lock(&self.failures).pop_front() {
            Some(error) => Err(error),
            None => Ok(()),
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

fn not_found(what: &str) -> ProviderError {
    ProviderError::Rejected {
        provider: NAME,
        status: 404,
        message: format!("no such {what}"),
    }
}

/// An alias provider that keeps its aliases in memory. Clones share the aliases and the
/// controls, so a test keeps one clone and hands the other to the agent.
#[derive(Debug, Clone, Default)]
pub struct MemoryAliases {
    controls: Arc<Controls>,
    aliases: Arc<Mutex<BTreeMap<u64, AliasInfo>>>,
    /// Aliases made so far: the next id (an id is never given twice, a deleted one included).
    made: Arc<AtomicU64>,
}

impl MemoryAliases {
    /// An alias provider with no aliases, no failures queued and nothing held.
    pub fn new() -> MemoryAliases {
        MemoryAliases::default()
    }

    /// What the test controls.
    pub fn controls(&self) -> &Controls {
        &self.controls
    }

    /// Every alias it has now.
    pub fn aliases(&self) -> Vec<AliasInfo> {
        lock(&self.aliases).values().cloned().collect()
    }

    fn with<T>(
        &self,
        id: &str,
        change: impl FnOnce(&mut BTreeMap<u64, AliasInfo>, u64) -> T,
    ) -> Result<T, ProviderError> {
        let mut aliases = lock(&self.aliases);
        match id.parse::<u64>() {
            Ok(n) if aliases.contains_key(&n) => Ok(change(&mut aliases, n)),
            _ => Err(not_found("alias")),
        }
    }
}

impl AliasProvider for MemoryAliases {
    fn name(&self) -> &'static str {
        NAME
    }

    async fn create(&self, new: &NewAlias) -> Result<AliasInfo, ProviderError> {
        self.controls.enter("create").await?;
        let n = self.made.fetch_add(1, Ordering::SeqCst) + 1;
        let alias = AliasInfo {
            id: n.to_string(),
            email: format!("alias{n}@memory.example"),
            active: true,
            description: Some(new.description.clone()),
            forwarded: 0,
            blocked: 0,
        };
        lock(&self.aliases).insert(n, alias.clone());
        Ok(alias)
    }

    async fn get(&self, id: &str) -> Result<AliasInfo, ProviderError> {
        self.controls.enter("get").await?;
        self.with(id, |aliases, n| aliases[&n].clone())
    }

    async fn set_active(&self, id: &str, active: bool) -> Result<(), ProviderError> {
        self.controls.enter("set_active").await?;
        self.with(id, |aliases, n| {
            if let Some(alias) = aliases.get_mut(&n) {
                alias.active = active;
            }
        })
    }

    async fn delete(&self, id: &str) -> Result<(), ProviderError> {
        self.controls.enter("delete").await?;
        self.with(id, |aliases, n| {
            aliases.remove(&n);
        })
    }

    async fn list(&self) -> Result<(Vec<AliasInfo>, u32), ProviderError> {
        self.controls.enter("list").await?;
        Ok((self.aliases(), 1))
    }

    async fn find_by_marker(&self, marker: &str) -> Result<Option<AliasInfo>, ProviderError> {
        self.controls.enter("find_by_marker").await?;
        Ok(lock(&self.aliases)
            .values()
            .find(|a| a.description.as_deref().is_some_and(|d| d.contains(marker)))
            .cloned())
    }
}

/// A card provider that keeps its cards in memory. Cards are made paused, as the agent asks;
/// a closed card refuses every change, as a real provider does. Nobody shops with them, so
/// they have no transactions. Clones share the cards and the controls.
#[derive(Debug, Clone, Default)]
pub struct MemoryCards {
    controls: Arc<Controls>,
    cards: Arc<Mutex<BTreeMap<String, CardInfo>>>,
}

impl MemoryCards {
    /// A card provider with no cards, no failures queued and nothing held.
    pub fn new() -> MemoryCards {
        MemoryCards::default()
    }

    /// What the test controls.
    pub fn controls(&self) -> &Controls {
        &self.controls
    }

    /// Every card it has now.
    pub fn cards(&self) -> Vec<CardInfo> {
        lock(&self.cards).values().cloned().collect()
    }
}

impl CardProvider for MemoryCards {
    fn name(&self) -> &'static str {
        NAME
    }

    async fn create(&self, new: &NewCard) -> Result<CardInfo, ProviderError> {
        self.controls.enter("create").await?;
        let mut cards = lock(&self.cards);
        let n = cards.len() + 1;
        let card = CardInfo {
            token: format!("card-{n:06}"),
            last_four: format!("{:04}", n % 10_000),
            memo: new.memo.clone(),
            spend_limit: new.spend_limit_cents,
            spend_limit_duration: "FOREVER".into(),
            state: CardState::Paused,
        };
        cards.insert(card.token.clone(), card.clone());
        Ok(card)
    }

    async fn update(&self, token: &str, update: &CardUpdate) -> Result<CardInfo, ProviderError> {
        self.controls.enter("update").await?;
        let mut cards = lock(&self.cards);
        let card = cards.get_mut(token).ok_or_else(|| not_found("card"))?;
        if card.state == CardState::Closed {
            return Err(ProviderError::Rejected {
                provider: NAME,
                status: 400,
                message: "the card is closed".into(),
            });
        }
        if let Some(state) = update.state {
            card.state = state;
        }
        if let Some(limit) = update.spend_limit_cents {
            card.spend_limit = limit;
        }
        Ok(card.clone())
    }

    async fn get(&self, token: &str) -> Result<CardInfo, ProviderError> {
        self.controls.enter("get").await?;
        lock(&self.cards)
            .get(token)
            .cloned()
            .ok_or_else(|| not_found("card"))
    }

    async fn list(&self) -> Result<(Vec<CardInfo>, u32), ProviderError> {
        self.controls.enter("list").await?;
        Ok((self.cards(), 1))
    }

    async fn find_by_marker(&self, marker: &str) -> Result<Option<CardInfo>, ProviderError> {
        self.controls.enter("find_by_marker").await?;
        Ok(lock(&self.cards)
            .values()
            .find(|c| c.memo.contains(marker))
            .cloned())
    }

    async fn transactions(&self, token: &str) -> Result<Vec<Transaction>, ProviderError> {
        self.controls.enter("transactions").await?;
        if lock(&self.cards).contains_key(token) {
            Ok(Vec::new())
        } else {
            Err(not_found("card"))
        }
    }

    async fn account_transactions(
        &self,
        _cursor: Option<&TxnCursor>,
    ) -> Result<TxnBatch, ProviderError> {
        self.controls.enter("account_transactions").await?;
        Ok(TxnBatch {
            items: Vec::new(),
            requests: 1,
        })
    }
}
