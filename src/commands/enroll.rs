//! `enroll {url, alias?, card?: {limit}, identity?: "placeholder", note?, senders?,
//! merchants?}`: a new context with a disposable alias, a paused $0 card and a placeholder
//! identity.

use super::args::{opt, req, Kind};
use super::{invalid, validate_context_name, Args, Cmd, Fast, Run, Spec, Work};
use crate::policy::tools::Tier;
use crate::context::ContextView;
use crate::reply::{CommandError, Words};
use crate::words::lines::single;
use serde::Serialize;
use serde_json::Value;

/// What `enroll` asks for.
#[derive(Debug, Clone, PartialEq)]
pub struct EnrollRequest {
    /// The context's name.
    pub name: String,
    /// The site URL as given.
    pub site: String,
    /// Its host name.
    pub host: String,
    /// Its registrable domain.
    pub domain: String,
    /// The card's spend limit in cents, or None for no card.
    pub card_cents: Option<u64>,
    /// Make a placeholder identity.
    pub identity: bool,
    /// The owner's note.
    pub note: Option<String>,
    /// More sender domains that belong to the site.
    pub sender_domains: Vec<String>,
    /// More merchant descriptors that belong to the site (normalised), for the card
    /// canaries.
    pub merchant_descriptors: Vec<String>,
}

/// What `enroll` answers: the context's view, `status: "enrolled"`, and the last mile, the
/// steps only the owner can take (signing up at the site with the alias).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Enrolled {
    /// The context as enrolled.
    #[serde(flatten)]
    pub context: ContextView,
    /// `enrolled`.
    pub status: &'static str,
    /// What the owner does next, one step a line.
    pub last_mile: Vec<String>,
}

impl Words for Enrolled {
    /// The context's line, the placeholder identity to sign up with, and the last mile as
    /// one step a line.
    fn words(&self, cmd: &str) -> String {
        let mut out = format!(
            "✓ {}: {}\n{}",
            single(cmd),
            single(self.status),
            self.context.line()
        );
        if let Some(id) = &self.context.identity {
            out.push_str(&format!(
                "\nidentity: {} · born {}",
                single(&id.name),
                single(&id.date_of_birth)
            ));
            if let Some(address) = &id.address {
                out.push_str(&format!(" · address: {}", single(address)));
            }
        }
        for step in &self.last_mile {
            out.push_str("\n• ");
            out.push_str(&single(step));
        }
        out
    }
}

/// `enroll`
#[derive(Debug, Clone, PartialEq)]
pub struct Enroll {
    /// What to make.
    pub request: EnrollRequest,
}

impl Cmd for Enroll {
    const SPECS: &'static [Spec] = &[Spec::new(
        "enroll",
        Tier::Write,
        true,
        &[
            req("url", Kind::Url, "the site, such as https://www.notion.so"),
            opt(
                "alias",
                Kind::Context,
                "the context's name (default: after the site's domain)",
            ),
            opt(
                "card",
                Kind::Card,
                "{limit} for a card with that spend limit (default 0), false for none",
            ),
            opt(
                "identity",
                Kind::Choice(&["placeholder", "none"]),
                "a placeholder identity (default) or none",
            ),
            opt(
                "note",
                Kind::Text { max: 500 },
                "a note kept with the context",
            ),
            opt(
                "senders",
                Kind::Domains,
                "other domains that may mail the alias for this site",
            ),
            opt(
                "merchants",
                Kind::Descriptors,
                "other card descriptors that are this site's own charges",
            ),
        ],
        "make a context: alias, paused card, placeholder identity",
    )];

    /// Parses and checks the arguments.
    fn parse(_name: &str, args: &Args<'_>) -> Result<Enroll, CommandError> {
        let site = args.string("url")?;
        let url = url::Url::parse(&site)
            .ok()
            .filter(|u| matches!(u.scheme(), "http" | "https"))
            .ok_or_else(|| invalid("url must be an http(s) URL such as https://aa.com"))?;
        let host = url
            .host_str()
            .ok_or_else(|| invalid("url has no host"))?
            .trim_end_matches('.')
            .to_ascii_lowercase();
        let domain = psl::domain_str(&host)
            .ok_or_else(|| invalid(format!("{host} has no registrable domain")))?
            .to_string();
        let name = match args.opt_string("alias")? {
            Some(n) => n,
            None => domain.split('.').next().unwrap_or_default().to_string(),
        };
        validate_context_name(&name)?;
        let card_cents = match args.0.get("card") {
            None | Some(Value::Bool(true)) => Some(0),
            Some(Value::Bool(false)) => None,
            Some(Value::Object(card)) => {
                Args(card).only(&["limit"])?;
                Some(Args(card).opt_amount_cents("limit")?.unwrap_or(0))
            }
            Some(_) => return Err(invalid("card must be {\"limit\": N}, true or false")),
        };
        let identity = match args.opt_string("identity")?.as_deref() {
            None | Some("placeholder") => true,
            Some("none") => false,
            Some(_) => return Err(invalid("identity must be \"placeholder\" or \"none\"")),
        };
        let note = args.opt_string("note")?;
        if note.as_ref().is_some_and(|n| n.chars().count() > 500) {
            return Err(invalid("note is longer than 500 characters"));
        }
        let sender_domains = match args.0.get("senders") {
            None | Some(Value::Null) => Vec::new(),
            Some(Value::Array(items)) if items.len() <= 20 => items
                .iter()
                .map(|v| {
                    v.as_str()
                        .and_then(crate::breach::matching::registrable)
                        .ok_or_else(|| {
                            invalid(
                                "senders must be a list of domain names such as [\"mailgun.net\"]",
                            )
                        })
                })
                .collect::<Result<Vec<_>, _>>()?,
            Some(_) => return Err(invalid("senders must be a list of at most 20 domain names")),
        };
        let merchant_descriptors = match args.0.get("merchants") {
            None | Some(Value::Null) => Vec::new(),
            Some(Value::Array(items)) if items.len() <= 20 => items
                .iter()
                .map(|v| {
                    v.as_str()
                        .filter(|s| s.chars().count() <= 60)
                        .and_then(crate::breach::merchant::normalise)
                        .ok_or_else(|| {
                            invalid("merchants must be a list of card descriptors such as [\"NOTION LABS\"], each at most 60 characters")
                        })
                })
                .collect::<Result<Vec<_>, _>>()?,
            Some(_) => return Err(invalid("merchants must be a list of at most 20 card descriptors")),
        };
        Ok(Enroll {
            request: EnrollRequest {
                sender_domains,
                merchant_descriptors,
                name,
                site: url.to_string(),
                host,
                domain,
                card_cents,
                identity,
                note,
            },
        })
    }

    /// The job runner makes (or resumes making) the context.
    fn run(self, _fast: &Fast<'_>) -> Result<Run, CommandError> {
        Ok(Run::Work(Work::Enroll(self.request)))
    }
}
