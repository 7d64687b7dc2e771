//! `status {context}`: one context in full.

use super::args::CONTEXT;
use super::{Args, Cmd, Fast, Run, Spec};
use crate::context::{Context, ContextView};
use crate::words::lines::single;
use crate::policy::tools::Tier;
use crate::reply::{internal, CommandError, ErrorKind, Words};
use serde::{Serialize, Serializer};

/// `status {context}`
#[derive(Debug, Clone, PartialEq)]
pub struct Status {
    /// The context's name.
    pub context: String,
}

/// What `status` answers: the context's view (`Context::view`).
#[derive(Debug, Clone, PartialEq)]
pub struct StatusOutput(pub Context);

impl Serialize for StatusOutput {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.0.view().serialize(s)
    }
}

impl Words for StatusOutput {
    /// The context's name and state, then its parts as labelled lines.
    fn words(&self, _cmd: &str) -> String {
        let view = serde_json::to_value(self.0.view()).unwrap_or_default();
        crate::words::contexts::status(&view)
    }
}

/// What the alias and card commands answer (`alias.create`, `alias.activate`,
/// `alias.deactivate`, `card.pause`, `card.fund`, `card.close`): the context as the change
/// left it, the same view `status` shows, so a client reads one shape for a context.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(transparent)]
pub struct ContextChanged(pub ContextView);

impl Words for ContextChanged {
    /// The context's line as the change left it: `✓ card.pause: notion · n7x@alias.io ·
    /// card 4242 paused`.
    fn words(&self, cmd: &str) -> String {
        format!("✓ {}: {}", single(cmd), self.0.line())
    }
}

impl Cmd for Status {
    const SPECS: &'static [Spec] = &[Spec::new(
        "status",
        Tier::Read,
        true,
        &[CONTEXT],
        "show one context",
    )];

    fn parse(_name: &str, args: &Args<'_>) -> Result<Status, CommandError> {
        Ok(Status {
            context: args.context()?,
        })
    }

    /// The context, or `context not found: NAME`.
    fn run(self, fast: &Fast<'_>) -> Result<Run, CommandError> {
        match fast.contexts.get(&self.context).map_err(internal)? {
            Some(ctx) => Run::done(StatusOutput(ctx)),
            None => Err(CommandError::new(
                ErrorKind::NotFound,
                format!("context not found: {}", self.context),
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::commands::enroll::Enrolled;
    use crate::commands::expire::Expired;
    use crate::context::{AliasRecord, CardRecord, ContextState, Identity};
    use crate::providers::CardState;
    use serde_json::json;

    fn notion() -> Context {
        Context {
            name: "notion".into(),
            site: "https://www.notion.so".into(),
            domain: "notion.so".into(),
            state: ContextState::Active,
            created: "2026-11-01T00:00:00Z".into(),
            note: None,
            wants_card_cents: Some(0),
            alias: Some(AliasRecord {
                provider: "addy".into(),
                id: "alias-id".into(),
                email: "n7x@alias.io".into(),
                active: true,
                deleted: false,
                forwarded: 3,
            }),
            card: Some(CardRecord {
                provider: "privacy".into(),
                token: "card-token".into(),
                last_four: "4242".into(),
                limit_cents: 1250,
                state: CardState::Paused,
            }),
            identity: Some(Identity {
                name: "Jo Doe".into(),
                date_of_birth: "1990-01-02".into(),
                address: None,
            }),
            incidents: 1,
            sender_domains: vec!["mail.notion.so".into()],
            merchant_descriptors: vec![],
            expired_at: None,
        }
    }

    /// The view clients read: these keys, and never the provider's id or token.
    #[test]
    fn a_context_shows_as_its_view() {
        let view = json!({
            "context": "notion", "site": "https://www.notion.so", "domain": "notion.so",
            "state": "active", "created": "2026-11-01T00:00:00Z", "note": null,
            "alias": {"email": "n7x@alias.io", "active": true, "deleted": false, "provider": "addy", "forwarded": 3},
            "card": {"last_four": "4242", "limit": "12.50", "state": "PAUSED", "provider": "privacy"},
            "identity": {"name": "Jo Doe", "date_of_birth": "1990-01-02", "address": null},
            "incidents": 1, "sender_domains": ["mail.notion.so"], "merchant_descriptors": [],
            "expired_at": null,
        });
        let changed = ContextChanged(notion().view());
        assert_eq!(crate::reply::Output::json(&changed), view);
        assert_eq!(
            Words::words(&changed, "card.pause"),
            "✓ card.pause: notion · n7x@alias.io · card 4242 PAUSED · 1 incident"
        );
        let mut enrolled = view.clone();
        enrolled["status"] = json!("enrolled");
        enrolled["last_mile"] = json!(["Sign up.", "Call."]);
        let out = Enrolled {
            context: notion().view(),
            status: "enrolled",
            last_mile: vec!["Sign up.".into(), "Call.".into()],
        };
        assert_eq!(crate::reply::Output::json(&out), enrolled);
        assert_eq!(
            Words::words(&out, "enroll"),
            "✓ enroll: enrolled\nnotion · n7x@alias.io · card 4242 PAUSED · 1 incident\nidentity: Jo Doe · born 1990-01-02\n• Sign up.\n• Call."
        );
        let mut expired = view;
        expired["status"] = json!("expired");
        let out = Expired {
            context: notion().view(),
            status: "expired",
        };
        assert_eq!(crate::reply::Output::json(&out), expired);
    }
}
