//! Card canaries: every context's card is paused, at $0 and merchant-locked until the owner
//! funds it, and only the site was ever given its number. Each sweep reads the account's new
//! transactions, declined authorisation attempts included, in one account-wide read through
//! the card manager ([`crate::providers::card_activity`]: one cursor for the account, kept
//! in the store), and records:
//!
//! - `card.attempt`: a declined attempt on a card that is paused, at $0 or closed (by the
//!   provider's decline reason, or by the card's standing in the context);
//! - `card.merchant`: any other charge or attempt by a merchant whose descriptor is not the
//!   site ([`crate::breach::merchant`]) nor one the owner accepted for the context.
//!
//! An approved charge by the site on a card the owner funded is not an incident. A
//! transaction on a card no context holds is counted as unmatched.

use super::{BreachMonitor, SourceReport, SweepReport};
use crate::breach::incidents::{CardDetail, CardStanding, Finding, IncidentKind};
use crate::breach::merchant::{is_site, normalise};
use crate::context::Context;
use crate::providers::card_activity::TxnCursor;
use crate::providers::{CardState, CardTransaction};
use crate::store::records::{Family, Json};
use crate::store::StoreError;
use std::collections::HashMap;

/// The account-wide transaction cursor, per card provider (by its name in lower case).
const CURSOR: Family<Json<TxnCursor>> = Family::new("breach.cards.cursor.");

/// What `t` on the card of `ctx` is, if it is a leak signal.
pub(super) fn classify(t: &CardTransaction, ctx: &Context) -> Option<Finding> {
    let card = ctx.card.as_ref()?;
    let result = t.result.to_ascii_uppercase();
    let approved = result == "APPROVED";
    // A Lithic "$0" card has a limit of one cent (0 means no limit there).
    let recorded = match card.state {
        CardState::Paused => CardStanding::Paused,
        CardState::Closed => CardStanding::Closed,
        _ if card.limit_cents <= 1 => CardStanding::Unfunded,
        _ => CardStanding::Open,
    };
    let standing = match result.as_str() {
        "CARD_PAUSED" => CardStanding::Paused,
        "CARD_CLOSED" => CardStanding::Closed,
        _ => recorded,
    };
    let kind = if !approved && standing != CardStanding::Open {
        IncidentKind::CardAttempt
    } else if !is_site(&t.merchant, &ctx.domain, &ctx.merchant_descriptors) {
        IncidentKind::CardMerchant
    } else {
        return None;
    };
    Some(Finding {
        kind,
        subject: normalise(&t.merchant).unwrap_or_else(|| "UNKNOWN MERCHANT".into()),
        fingerprint: t.token.clone(),
        sample_subject: String::new(),
        sample_sender: t.merchant.clone(),
        card: Some(CardDetail {
            merchant: t.merchant.clone(),
            amount_cents: t.amount,
            result: t.result.clone(),
            last_four: card.last_four.clone(),
            standing,
            site_domain: ctx.domain.clone(),
        }),
        auth: None,
    })
}

impl BreachMonitor {
    /// The card provider's new transactions, as the module says.
    pub(super) async fn sweep_cards(&mut self, report: &mut SweepReport) -> Result<(), StoreError> {
        let provider = self.cards.provider_name();
        let key = CURSOR.key(provider.to_ascii_lowercase());
        let cursor = self.store.records().get(&key)?;
        let batch = match self.cards.account_transactions(cursor.clone()).await {
            Ok(b) => b,
            Err(e) => {
                tracing::warn!(error = %e, "card provider unavailable; its cursor stays where it was");
                report
                    .sources
                    .push(SourceReport::down("cards", e.to_string()));
                return Ok(());
            }
        };
        let by_card: HashMap<String, Context> = self
            .contexts
            .all()?
            .into_iter()
            .filter_map(|c| Some((c.card.as_ref()?.token.clone(), c)))
            .collect();
        for t in &batch.items {
            let Some(ctx) = by_card.get(&t.card_token) else {
                report.unmatched += 1;
                continue;
            };
            match classify(t, ctx) {
                Some(found) => self.record(&ctx.name, &found, "cards", report)?,
                None => report.expected += 1,
            }
        }
        // The cursor moves only after everything it covers is recorded.
        if let Some(next) = TxnCursor::after(cursor.as_ref(), &batch.items) {
            self.store.records().set(&key, &next)?;
        }
        self.store.flush().await?;
        report.sources.push(SourceReport {
            requests: Some(batch.requests),
            ..SourceReport::read("cards", batch.items.len(), Vec::new())
        });
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::context::{CardRecord, ContextState};

    fn ctx(state: CardState, limit_cents: u64) -> Context {
        Context {
            name: "notion".into(),
            site: "https://www.notion.so/".into(),
            domain: "notion.so".into(),
            state: ContextState::Active,
            created: String::new(),
            note: None,
            wants_card_cents: Some(0),
            alias: None,
            card: Some(CardRecord {
                provider: "Privacy.com".into(),
                token: "card-1".into(),
                last_four: "4242".into(),
                limit_cents,
                state,
            }),
            identity: None,
            incidents: 0,
            sender_domains: Vec::new(),
            merchant_descriptors: vec!["NOTION LABS".into()],
            expired_at: None,
        }
    }

    fn txn(result: &str, merchant: &str) -> CardTransaction {
        CardTransaction {
            token: "t-1".into(),
            card_token: "card-1".into(),
            created: "2026-12-01T10:00:00Z".into(),
            amount: 1200,
            result: result.into(),
            status: "DECLINED".into(),
            merchant: merchant.into(),
        }
    }

    #[test]
    fn attempts_merchants_and_the_site() {
        let paused = ctx(CardState::Paused, 0);
        let f = classify(&txn("CARD_PAUSED", "SHADYSHOP LLC"), &paused).unwrap();
        assert_eq!(f.kind, IncidentKind::CardAttempt);
        assert_eq!(f.subject, "SHADYSHOP LLC");
        // The site itself trying a paused card is an attempt too: nobody should charge it.
        let f = classify(&txn("CARD_PAUSED", "NOTION.SO"), &paused).unwrap();
        assert_eq!(f.kind, IncidentKind::CardAttempt);
        let open = ctx(CardState::Open, 2500);
        assert_eq!(classify(&txn("APPROVED", "NOTION.SO"), &open), None);
        assert_eq!(classify(&txn("APPROVED", "NOTION LABS INC"), &open), None);
        let f = classify(&txn("APPROVED", "SHADYSHOP LLC"), &open).unwrap();
        assert_eq!(f.kind, IncidentKind::CardMerchant);
        let f = classify(&txn("UNAUTHORIZED_MERCHANT", "SHADYSHOP LLC"), &open).unwrap();
        assert_eq!(f.kind, IncidentKind::CardMerchant);
        // An approved charge on a card paused since (fund, pay, pause) is not an attempt.
        assert_eq!(classify(&txn("APPROVED", "NOTION.SO"), &paused), None);
        let unfunded = ctx(CardState::Open, 0);
        let f = classify(&txn("USER_TRANSACTION_LIMIT", "NOTION.SO"), &unfunded).unwrap();
        assert_eq!(f.kind, IncidentKind::CardAttempt);
        assert_eq!(f.card.unwrap().standing, CardStanding::Unfunded);
    }
}
