//! `inbox {context, limit?, after?}`: the newest mail delivered to a context's alias, newest
//! first, each with the codes, references and links a person needs from it.
//!
//! The headers come from what the breach monitor indexed; the bodies of the page are fetched
//! (unread, capped) by the mail reader, searched, and dropped. On the phone it is one short
//! line per message, paged with `after` like `list`.

use super::args::{opt, Kind, CONTEXT};
use super::{Args, Cmd, Fast, Run, Spec, Work};
use crate::inbox::extract::Link;
use crate::inbox::index::MailHeader;
use crate::policy::tools::Tier;
use crate::reply::{CommandError, Words};
use crate::words::lines::single;
use crate::words::SIGNAL_TEXT_LIMIT;
use serde::Serialize;

/// How many messages a page has when `limit` is not given.
pub const DEFAULT_LIMIT: u64 = 10;

/// `inbox {context, limit?, after?}`
#[derive(Debug, Clone, PartialEq)]
pub struct Inbox {
    /// The context whose alias's mail to show.
    pub context: String,
    /// At most this many messages.
    pub limit: u64,
    /// Only the messages older than this id (the next page).
    pub after: Option<u32>,
}

/// One message in the inbox.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct InboxItem {
    /// Its id (the one `mail` takes), time, sender, subject and incident.
    #[serde(flatten)]
    pub header: MailHeader,
    /// One-time codes found in it.
    pub codes: Vec<String>,
    /// Booking references found in it.
    pub references: Vec<String>,
    /// Its confirm, sign-in and reset links.
    pub links: Vec<Link>,
    /// How many of all its links point somewhere other than the site (or its senders).
    pub foreign_links: usize,
}

/// What `inbox` answers.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct InboxOutput {
    /// The context.
    pub context: String,
    /// Its site's domain.
    pub site: String,
    /// Messages on this page.
    pub count: usize,
    /// The page, newest first.
    pub messages: Vec<InboxItem>,
    /// Older messages left after this page.
    pub more: usize,
    /// Why the bodies could not be read, when they could not (headers are shown anyway).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bodies_unavailable: Option<String>,
}

impl InboxItem {
    /// `#4821 14:02 notion.so · Confirm your email · code 483920 · ⚠ link to evil.example`
    fn line(&self, today: &str) -> String {
        let when = match chrono::DateTime::parse_from_rfc3339(&self.header.at) {
            Ok(t) => {
                let t = t.with_timezone(&chrono::Utc);
                if t.format("%Y-%m-%d").to_string() == today {
                    t.format("%H:%M").to_string()
                } else {
                    t.format("%b %d").to_string()
                }
            }
            Err(_) => "?".to_string(),
        };
        let mut line = format!("#{} {when} {}", self.header.id, single(&self.header.sender_domain));
        if let Some(incident) = &self.header.incident {
            line.push_str(&format!(" ⚠ unexpected sender ({})", single(incident)));
        }
        let subject: String = self.header.subject.chars().take(60).collect();
        let cut = if subject.len() < self.header.subject.len() { "…" } else { "" };
        line.push_str(&format!(" · {}{cut}", single(&subject)));
        for code in &self.codes {
            line.push_str(&format!(" · code {}", single(code)));
        }
        for reference in &self.references {
            line.push_str(&format!(" · ref {}", single(reference)));
        }
        for link in self.links.iter().take(2) {
            let warn = if link.foreign { "⚠ " } else { "" };
            if link.url.len() <= 160 {
                line.push_str(&format!(
                    " · {warn}{} {}",
                    link.kind.as_str().replace('_', "-"),
                    single(&link.url)
                ));
            } else {
                line.push_str(&format!(
                    " · {warn}{} link on {} (mail {})",
                    link.kind.as_str().replace('_', "-"),
                    single(&link.domain),
                    self.header.id
                ));
            }
        }
        let foreign_actions = self.links.iter().filter(|l| l.foreign).count();
        if self.foreign_links > foreign_actions {
            line.push_str(&format!(
                " · ⚠ {} link(s) to other sites",
                self.foreign_links - foreign_actions
            ));
        }
        line
    }
}

impl Words for InboxOutput {
    /// A headline, one line per message (as many as fit one Signal message), and how to get
    /// the next page.
    fn words(&self, cmd: &str) -> String {
        let mut out = format!(
            "✓ {}: {} ({}), {} message(s)",
            single(cmd),
            single(&self.context),
            single(&self.site),
            self.count
        );
        if let Some(why) = &self.bodies_unavailable {
            out.push_str(&format!("\n(bodies not read: {})", single(why)));
        }
        let today = chrono::Utc::now().format("%Y-%m-%d").to_string();
        let mut shown = 0;
        for item in &self.messages {
            let line = item.line(&today);
            // Room for the footer.
            if out.len() + 1 + line.len() > SIGNAL_TEXT_LIMIT - 160 {
                break;
            }
            out.push('\n');
            out.push_str(&line);
            shown += 1;
        }
        let left = self.more + (self.messages.len() - shown);
        if let Some(last) = self.messages.get(shown.wrapping_sub(1)).filter(|_| shown > 0) {
            if left > 0 {
                out.push_str(&format!(
                    "\n… {left} more: send `inbox` with {{\"context\": \"{}\", \"after\": {}}} for older mail; `mail` with {{\"id\": N}} to read one.",
                    single(&self.context),
                    last.header.id
                ));
            } else {
                out.push_str("\nRead one with `mail` {\"id\": N}.");
            }
        }
        out
    }
}

impl Cmd for Inbox {
    const SPECS: &'static [Spec] = &[Spec::new(
        "inbox",
        Tier::Read,
        true,
        &[
            CONTEXT,
            opt(
                "limit",
                Kind::Count { min: 1, max: 50 },
                "at most this many messages (10 when left out)",
            ),
            opt(
                "after",
                Kind::Count {
                    min: 1,
                    max: u32::MAX as u64,
                },
                "only mail older than this message id (the next page)",
            ),
        ],
        "the newest mail to the context's alias, with its codes and links",
    )];

    fn parse(_name: &str, args: &Args<'_>) -> Result<Inbox, CommandError> {
        let limit = args.opt_u64("limit")?.unwrap_or(DEFAULT_LIMIT);
        if !(1..=50).contains(&limit) {
            return Err(super::invalid("limit must be between 1 and 50"));
        }
        let after = match args.opt_u64("after")? {
            None => None,
            Some(a) => Some(
                u32::try_from(a)
                    .ok()
                    .filter(|a| *a > 0)
                    .ok_or_else(|| super::invalid("after must be a message id"))?,
            ),
        };
        Ok(Inbox {
            context: args.context()?,
            limit,
            after,
        })
    }

    /// The mail reader fetches the page's bodies.
    fn run(self, fast: &Fast<'_>) -> Result<Run, CommandError> {
        super::existing_context(fast.contexts, &self.context)?;
        Ok(Run::Work(Work::Inbox(self)))
    }
}
