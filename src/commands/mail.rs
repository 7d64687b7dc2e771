//! `mail {id, page?}`: one message delivered to one of the owner's aliases, as plain text,
//! a page that fits one Signal message at a time.
//!
//! The text part, or the HTML part turned into text; its links listed with their domains (a
//! link elsewhere than the site marked); attachments named with type and size, never opened;
//! images counted, never loaded. The body is fetched unread when asked and dropped after.
//! Only mail the breach monitor matched to a context can be read: an id of any other message
//! in the mailbox is not found.

use super::args::{opt, req, Kind};
use super::{Args, Cmd, Fast, Run, Spec, Work};
use crate::inbox::extract::Link;
use crate::inbox::index::MailHeader;
use crate::inbox::render::Attachment;
use crate::policy::tools::Tier;
use crate::reply::{CommandError, Words};
use crate::words::lines::{multi, single};
use serde::Serialize;

/// The most bytes of body text on one page: with the header and the footer, a page stays
/// within one Signal message (2,000 bytes).
pub const PAGE_BYTES: usize = 1_400;

/// `mail {id, page?}`
#[derive(Debug, Clone, PartialEq)]
pub struct Mail {
    /// The message's id, as `inbox` shows it.
    pub id: u32,
    /// Which page (from 1).
    pub page: usize,
}

/// What `mail` answers: one page of the message's text, with what the whole message holds.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct MailOutput {
    /// Its id, time, sender, subject and incident.
    #[serde(flatten)]
    pub header: MailHeader,
    /// The context whose alias it was sent to.
    pub context: String,
    /// This page.
    pub page: usize,
    /// How many pages.
    pub pages: usize,
    /// This page of the text (escaped; the last pages list the links and attachments).
    pub text: String,
    /// One-time codes found in it.
    pub codes: Vec<String>,
    /// Booking references found in it.
    pub references: Vec<String>,
    /// Every link, with its domain; `foreign` when it is not the site's.
    pub links: Vec<Link>,
    /// Attachments, named, never opened.
    pub attachments: Vec<Attachment>,
    /// Images in the HTML, counted, never loaded.
    pub images: usize,
    /// The message's size in bytes.
    pub size: u32,
    /// True when the message was larger than what was fetched (the text may be cut).
    pub truncated: bool,
}

/// A message's whole text as the pages show it: the body, then its links, attachments and
/// images.
pub fn document(body: &str, links: &[Link], attachments: &[Attachment], images: usize) -> String {
    let mut doc = body.to_string();
    if !links.is_empty() {
        doc.push_str("\n\nLinks (not opened):");
        for link in links {
            let warn = if link.foreign {
                "⚠ not the site's: "
            } else {
                ""
            };
            doc.push_str(&format!(
                "\n• {warn}{} [{}] {}",
                link.domain,
                link.kind.as_str(),
                link.url
            ));
        }
    }
    if !attachments.is_empty() {
        doc.push_str("\n\nAttachments (not opened):");
        for a in attachments {
            doc.push_str(&format!(
                "\n• {} ({}, {})",
                a.name,
                a.content_type,
                human_size(a.size)
            ));
        }
    }
    if images > 0 {
        doc.push_str(&format!("\n\n{images} image(s), not loaded."));
    }
    doc
}

/// `text` cut to at most `max` bytes (`…` included) between two characters.
fn cut_bytes(text: &str, max: usize) -> String {
    if text.len() <= max {
        return text.to_string();
    }
    let mut at = max.saturating_sub('…'.len_utf8());
    while !text.is_char_boundary(at) {
        at -= 1;
    }
    format!("{}…", &text[..at])
}

/// `1.2 MB`, `3 KB`, `12 bytes`.
pub fn human_size(bytes: u64) -> String {
    match bytes {
        b if b >= 1_000_000 => format!("{:.1} MB", b as f64 / 1_000_000.0),
        b if b >= 1_000 => format!("{} KB", b / 1_000),
        b => format!("{b} bytes"),
    }
}

impl Words for MailOutput {
    /// The sender, subject and date, then this page of the text, then how to read the next.
    fn words(&self, cmd: &str) -> String {
        let subject = cut_bytes(&single(&self.header.subject), 200);
        let from = cut_bytes(&single(&self.header.from), 120);
        let mut out = format!(
            "✉ {} #{} · {} · {}",
            single(cmd),
            self.header.id,
            single(&self.context),
            single(&self.header.at)
        );
        out.push_str(&format!("\nFrom: {from}"));
        if let Some(incident) = &self.header.incident {
            out.push_str(&format!(" ⚠ unexpected sender ({})", single(incident)));
        }
        out.push_str(&format!("\nSubject: {subject}"));
        if self.pages > 1 {
            out.push_str(&format!(" [page {}/{}]", self.page, self.pages));
        }
        out.push_str("\n\n");
        out.push_str(&multi(&self.text));
        if self.page < self.pages {
            out.push_str(&format!(
                "\n… more: send `mail` with {{\"id\": {}, \"page\": {}}}",
                self.header.id,
                self.page + 1
            ));
        }
        out
    }
}

impl Cmd for Mail {
    const SPECS: &'static [Spec] = &[Spec::new(
        "mail",
        Tier::Read,
        true,
        &[
            req(
                "id",
                Kind::Count {
                    min: 1,
                    max: u32::MAX as u64,
                },
                "the message's id, as inbox shows it",
            ),
            opt(
                "page",
                Kind::Count { min: 1, max: 1000 },
                "which page of a long message (1 when left out)",
            ),
        ],
        "one message to an alias as plain text (nothing in it opened or loaded)",
    )];

    fn parse(_name: &str, args: &Args<'_>) -> Result<Mail, CommandError> {
        let id = args
            .opt_u64("id")?
            .and_then(|i| u32::try_from(i).ok())
            .filter(|i| *i > 0)
            .ok_or_else(|| super::invalid("id must be a message id, as inbox shows it"))?;
        let page = args.opt_u64("page")?.unwrap_or(1);
        if !(1..=1000).contains(&page) {
            return Err(super::invalid("page must be between 1 and 1000"));
        }
        Ok(Mail {
            id,
            page: page as usize,
        })
    }

    /// The mail reader fetches it.
    fn run(self, _fast: &Fast<'_>) -> Result<Run, CommandError> {
        Ok(Run::Work(Work::Mail(self)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::inbox::extract::LinkKind;

    #[test]
    fn every_page_fits_one_signal_message() {
        let body = "é".repeat(5_000);
        let links = vec![Link {
            url: format!("https://evil.example/{}", "x".repeat(390)),
            domain: "evil.example".into(),
            kind: LinkKind::Confirm,
            foreign: true,
        }];
        let doc = document(&body, &links, &[], 3);
        let pages = crate::inbox::pages::split(&doc, PAGE_BYTES);
        for (i, text) in pages.iter().enumerate() {
            let out = MailOutput {
                header: MailHeader {
                    id: 4_294_967_295,
                    at: "2026-12-07T14:02:00Z".into(),
                    from: "\u{202e}".repeat(200),
                    sender_domain: "evil.example".into(),
                    subject: "\u{200b}".repeat(300),
                    incident: Some("i-0123456789".into()),
                },
                context: "a".repeat(63),
                page: i + 1,
                pages: pages.len(),
                text: text.clone(),
                codes: vec![],
                references: vec![],
                links: links.clone(),
                attachments: vec![],
                images: 3,
                size: 0,
                truncated: false,
            };
            let words = out.words("mail");
            assert!(words.len() <= crate::words::SIGNAL_TEXT_LIMIT, "{}", words.len());
        }
        assert!(pages.last().unwrap().contains("⚠ not the site's: evil.example"));
        assert_eq!(human_size(20_971_520), "21.0 MB");
    }
}
