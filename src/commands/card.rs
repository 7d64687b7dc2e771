//! `card.pause {context}` [write], `card.fund {context, limit}` [external],
//! `card.close {context}` [external; closing is final].

use super::Work;
use super::{invalid, Args};
use crate::config::{CardProviderKind, CardsConfig};
use crate::context::{format_amount, Contexts};
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

impl CardCommand {
    /// Parses `{context}`, or `{context, limit}` for fund.
    pub fn parse(args: &Args<'_>, fund: bool, close: bool) -> Result<CardCommand, CommandError> {
        let action = if fund {
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
        } else {
            if close {
                CardAction::Close
            } else {
                CardAction::Pause
            }
        };
        Ok(CardCommand {
            context: args.context()?,
            action,
        })
    }

    /// The approval prompt's words.
    pub fn describe(&self, contexts: &Contexts) -> String {
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

    /// The work it hands to the enrollment worker.
    pub fn work(self) -> Work {
        Work::Card(self.context, self.action)
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
