//! `enroll {url, alias?, card?: {limit}, identity?: "placeholder", note?}`: a new context
//! with a disposable alias, a paused $0 card and a placeholder identity.

use super::{invalid, validate_context_name, Args};
use crate::actors::agent::Core;
use crate::actors::enroll::{EnrollMessage, EnrollRequest};
use crate::reply::CommandError;
use serde_json::Value;

/// `enroll`
#[derive(Debug, Clone, PartialEq)]
pub struct Enroll {
    /// What to make.
    pub request: EnrollRequest,
}

impl Enroll {
    /// Parses and checks the arguments.
    pub fn parse(args: &Args<'_>) -> Result<Enroll, CommandError> {
        args.only(&["url", "alias", "card", "identity", "note", "senders"])?;
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
        Ok(Enroll {
            request: EnrollRequest {
                sender_domains,
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

    /// Hands the request to the enrollment actor.
    pub async fn execute(self, core: &mut Core) -> Result<Value, CommandError> {
        if let Some(cents) = self.request.card_cents {
            core.check_card_limit(cents)?;
        }
        core.services
            .enroll
            .ask(|r| EnrollMessage::Enroll(self.request, r))
            .await
    }
}
