//! The store's size budget (`[audit] store_budget_mb`): measured every 64 accepted
//! envelopes and every minute; the owner is alerted at 90 %, and past the budget only what
//! keeps the owner in control is carried out (the policy reads [`Budget::over`]).

use super::Gate;
use crate::origin::{Channel, Invocation};
use crate::outbox::MessageKind;
use crate::store::records::{Flag, Key};
use serde_json::json;

/// Set while the owner has been told the store nears its budget.
const BUDGET_ALERTED: Key<Flag> = Key::new("store.budget_alerted");

/// Envelopes accepted between two measures of the store.
const MEASURE_EVERY: u32 = 64;

/// Whether the store is over its budget, and when to measure it again.
#[derive(Debug, Default)]
pub(super) struct Budget {
    over: bool,
    since_measured: u32,
}

impl Budget {
    /// True while the store is over `[audit] store_budget_mb`.
    pub(super) fn over(&self) -> bool {
        self.over
    }

    /// One more envelope accepted.
    pub(super) fn count_envelope(&mut self) {
        self.since_measured += 1;
    }

    /// True when enough envelopes came to measure again.
    pub(super) fn due(&self) -> bool {
        self.since_measured >= MEASURE_EVERY
    }
}

impl Gate {
    /// Measures the store against `[audit] store_budget_mb`: the owner is alerted at 90 %,
    /// and past the budget only what keeps the owner in control is carried out.
    pub(super) fn check_store_budget(&mut self) {
        self.budget.since_measured = 0;
        let Ok(size) = self.store.size_on_disk() else {
            return;
        };
        let budget = self.config.audit.store_budget_mb.saturating_mul(1 << 20);
        self.budget.over = size > budget;
        let alerted = self
            .store
            .records()
            .contains(&BUDGET_ALERTED)
            .unwrap_or(false);
        if size.saturating_mul(10) >= budget.saturating_mul(9) {
            if !alerted {
                let inv = Invocation::now(Channel::Internal);
                let _ = self.audit_event(
                    "store.budget",
                    &inv,
                    json!({"bytes": size, "budget": budget}),
                );
                let _ = self.notify(
                    MessageKind::Alert,
                    &format!(
                        "The agent's store is at {} MiB of its {} MiB budget ([audit] store_budget_mb). Past it, only reads, lockdown, approve/deny, revoke and unlock are carried out.",
                        size >> 20,
                        budget >> 20
                    ),
                );
                let _ = self.store.records().set(&BUDGET_ALERTED, &());
            }
        } else if alerted && size.saturating_mul(10) < budget.saturating_mul(8) {
            let _ = self.store.records().remove(&BUDGET_ALERTED);
        }
    }
}
