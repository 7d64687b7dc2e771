//! The card mocks' declined attempts and charges at chosen times, for the card canaries.
//!
//! Shapes as in the Privacy.com and Lithic modules: the transaction object of
//! privacy-com.readme.io/docs/transactions (Privacy.com embeds the card) and of lithic-python
//! `types/transaction.py` (Lithic gives `card_token`). `result` is `APPROVED` or the decline
//! reason (`CARD_PAUSED`, `CARD_CLOSED`, `UNAUTHORIZED_MERCHANT`, `USER_TRANSACTION_LIMIT`,
//! per the Privacy.com docs and Privacy's decline help page "Card was paused at time of
//! transaction"); a declined one has `status` `DECLINED`, nothing settled
//! (`settled_amount` 0). `created` decides where it sits in the newest-first lists and what
//! `begin` lets through.

use super::cards::{CardBook, Txn};
use super::MockServer;
use serde_json::{json, Value};

impl MockServer {
    /// Records an authorisation of `amount` cents at `descriptor` on a card with the
    /// provider's `result`, created at `created` (RFC 3339; None: now). Returns its token.
    pub fn add_card_transaction(
        &self,
        card_token: &str,
        amount: i64,
        descriptor: &str,
        result: &str,
        created: Option<&str>,
    ) -> String {
        self.provider.add_card_transaction(Charge {
            card_token,
            amount,
            descriptor,
            result,
            created,
        })
    }

    /// How many `GET .../transactions` requests the mock has answered.
    pub fn transaction_requests(&self) -> usize {
        self.requests()
            .iter()
            .filter(|r| r.starts_with("GET ") && r.contains("/transactions"))
            .count()
    }
}

/// What [`MockServer::add_card_transaction`] records.
pub(crate) struct Charge<'a> {
    pub card_token: &'a str,
    pub amount: i64,
    pub descriptor: &'a str,
    pub result: &'a str,
    pub created: Option<&'a str>,
}

impl CardBook {
    /// Keeps `value` (the charge as a transaction in the issuer's shape) with the charge's
    /// `result` and `created`, in the order of `created`, as the provider would have recorded
    /// it. Returns its token.
    pub(super) fn insert_dated(&mut self, c: Charge<'_>, mut value: Value) -> String {
        let Charge {
            card_token,
            result,
            created,
            ..
        } = c;
        value["result"] = json!(result);
        if result != "APPROVED" {
            value["status"] = json!("DECLINED");
            value["settled_amount"] = json!(0);
            value["authorization_code"] = Value::Null;
        }
        if let Some(at) = created {
            value["created"] = json!(at);
            if value.get("updated").is_some() {
                value["updated"] = json!(at);
            }
        }
        let token = value["token"].as_str().unwrap_or_default().to_string();
        let at = value["created"].as_str().unwrap_or_default().to_string();
        let i = self
            .transactions
            .iter()
            .position(|t| t.value["created"].as_str().unwrap_or_default() > at.as_str())
            .unwrap_or(self.transactions.len());
        self.transactions.insert(
            i,
            Txn {
                card_token: card_token.to_string(),
                value,
            },
        );
        token
    }
}
