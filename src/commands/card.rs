//! `card.pause {context}` [write], `card.fund {context, limit}` [external],
//! `card.close {context}` [external; closing is final].

use super::args::{req, Kind, CONTEXT};
use super::{invalid, live_context, Args, Cmd, Fast, Run, Spec, Work};
use crate::config::{CardProviderKind, CardsConfig};
use crate::context::{format_amount, Contexts};
use crate::policy::tools::Tier;
use crate::reply::{CommandError, ErrorKind};

/// What to do with a context's card.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CardAction {
    /// Stop charges.
    Pause,
    /// Set the spend limit (cents) and open it.
    Fund(u64),
    /// Close it for good.
    Close,
}

/// `card.pause`, `card.fund` or `card.close`.
#[derive(Debug, Clone, PartialEq)]
pub struct CardCommand {
    /// The context.
    pub context: String,
    /// The action.
    pub action: CardAction,
}

impl Cmd for CardCommand {
    const SPECS: &'static [Spec] = &[
        Spec::new(
            "card.pause",
            Tier::Write,
            true,
            &[CONTEXT],
            "pause the card",
        ),
        Spec::new(
            "card.fund",
            Tier::External,
            true,
            &[
                CONTEXT,
                req(
                    "limit",
                    Kind::Amount,
                    "the spend limit, such as 25 or 25.50",
                ),
            ],
            "set the card's limit and open it (needs approval)",
        ),
        Spec::new(
            "card.close",
            Tier::External,
            true,
            &[CONTEXT],
            "close the card for good (needs approval)",
        ),
    ];

    /// Parses `{context}`, or `{context, limit}` for fund.
    fn parse(name: &str, args: &Args<'_>) -> Result<CardCommand, CommandError> {
        let action = if name == "card.fund" {
            let cents = args
                .opt_amount_cents("limit")?
                .ok_or_else(|| invalid("missing argument limit (an amount such as 25 or 25.50)"))?;
            if cents == 0 {
                // At Lithic a limit of 0 means no limit at all.
                return Err(invalid(
                    "limit must be more than 0; use card.pause to stop charges",
                ));
            }
            CardAction::Fund(cents)
        } else if name == "card.close" {
            CardAction::Close
        } else {
            CardAction::Pause
        };
        Ok(CardCommand {
            context: args.context()?,
            action,
        })
    }

    fn spec(&self) -> &'static Spec {
        &Self::SPECS[match self.action {
            CardAction::Pause => 0,
            CardAction::Fund(_) => 1,
            CardAction::Close => 2,
        }]
    }

    /// The approval prompt's words.
    fn describe(&self, contexts: &Contexts) -> String {
        let card = contexts
            .get(&self.context)
            .ok()
            .flatten()
            .and_then(|c| c.card)
            .map(|c| format!("the card ending {}", c.last_four))
            .unwrap_or_else(|| "the card".into());
        match self.action {
            CardAction::Fund(cents) => format!(
                "fund {card} of context {} with a spend limit of {} and open it for charges",
                self.context,
                format_amount(cents)
            ),
            CardAction::Close => format!(
                "close {card} of context {} for good (closing is final)",
                self.context
            ),
            CardAction::Pause => format!("pause {card} of context {}", self.context),
        }
    }

    /// The job runner asks the card provider.
    fn run(self, _fast: &Fast<'_>) -> Result<Run, CommandError> {
        Ok(Run::Work(Work::Card(self.context, self.action)))
    }

    /// The context must be live, with a card that is not closed, and a limit within
    /// `[cards] max_limit`.
    fn precheck(&self, contexts: &Contexts, cards: &CardsConfig) -> Result<(), CommandError> {
        let ctx = live_context(contexts, &self.context)?;
        let conflict = |m: String| Err(CommandError::new(ErrorKind::Conflict, m));
        match &ctx.card {
            None => return conflict(format!("context {} has no card", self.context)),
            Some(card) if card.state == crate::providers::CardState::Closed => {
                return conflict(format!(
                    "the card of {} is closed; closing is final",
                    self.context
                ))
            }
            Some(_) => {}
        }
        if let CardAction::Fund(cents) = self.action {
            check_limit(cents, cards)?;
        }
        Ok(())
    }
}

/// Refuses a spend limit above `[cards] max_limit`, or one Privacy.com cannot take.
pub fn check_limit(cents: u64, config: &CardsConfig) -> Result<(), CommandError> {
    if config.provider == CardProviderKind::Privacy && !cents.is_multiple_of(100) {
        return Err(CommandError::new(
            ErrorKind::InvalidArgs,
            format!(
                "Privacy.com takes whole amounts only: {} is not one",
                format_amount(cents)
            ),
        ));
    }
    let max = config.max_limit.saturating_mul(100);
    if cents > max {
        return Err(CommandError::new(
            ErrorKind::InvalidArgs,
            format!(
                "limit {} is over the configured maximum of {} ([cards] max_limit)",
                format_amount(cents),
                format_amount(max)
            ),
        ));
    }
    Ok(())
}
