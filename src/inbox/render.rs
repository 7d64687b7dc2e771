//! One fetched message as plain text a phone can show: its text part, or its HTML part turned
//! into text ([`super::html`]), escaped like every other outside text ([`crate::text`]), with
//! its links and attachments named. Nothing is fetched, loaded or opened here: the message is
//! bytes in, text out, and the bytes are dropped by the caller.

use super::html::{self, Anchor};
use mail_parser::{MessageParser, MimeHeaders, PartType};
use serde::Serialize;

/// An attachment, named, never opened.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Attachment {
    /// Its file name (escaped), or `(unnamed)`.
    pub name: String,
    /// Its MIME type (`application/pdf`).
    pub content_type: String,
    /// Its size in bytes, decoded (estimated from the encoded size for base64).
    pub size: u64,
}

/// A message as text.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Rendered {
    /// The subject (escaped, one line).
    pub subject: String,
    /// The body as text (escaped, lines kept).
    pub text: String,
    /// True when the text came from the HTML part (there was no plain text part).
    pub from_html: bool,
    /// The links of the HTML part, as written.
    pub anchors: Vec<Anchor>,
    /// Images in the HTML part, counted, never loaded.
    pub images: usize,
    /// The attachments.
    pub attachments: Vec<Attachment>,
}

/// The longest body text kept, in characters: the rest of a longer one is cut.
pub const MAX_TEXT_CHARS: usize = 200_000;

/// Renders `raw`, a message as the server sent it (perhaps cut off at the fetch's cap).
pub fn render(raw: &[u8]) -> Rendered {
    let Some(msg) = MessageParser::default().parse(raw) else {
        return Rendered::default();
    };
    let subject =
        crate::text::escape_cut(msg.subject().unwrap_or(""), crate::text::Lines::Single, 200);
    let plain = msg.text_bodies().find_map(|p| match &p.body {
        PartType::Text(t) if !t.trim().is_empty() => Some(t.to_string()),
        _ => None,
    });
    let html = msg.html_bodies().find_map(|p| match &p.body {
        PartType::Html(h) => Some(html::to_text(h)),
        _ => None,
    });
    let (text, from_html) = match (&plain, &html) {
        (Some(p), _) => (p.clone(), false),
        (None, Some(h)) => (h.text.clone(), true),
        (None, None) => (String::new(), false),
    };
    let (anchors, images) = html.map(|h| (h.anchors, h.images)).unwrap_or_default();
    let attachments = msg
        .attachments()
        .filter(|p| !matches!(p.body, PartType::Multipart(_)))
        .map(|p| Attachment {
            name: name_of(p.attachment_name()),
            content_type: p
                .content_type()
                .map(|c| match c.subtype() {
                    Some(sub) => format!("{}/{}", c.ctype(), sub),
                    None => c.ctype().to_string(),
                })
                .map(|t| crate::text::escape_cut(&t, crate::text::Lines::Single, 60))
                .unwrap_or_else(|| "application/octet-stream".into()),
            size: p.len() as u64,
        })
        .collect();
    Rendered {
        subject,
        text: clean(&text),
        from_html,
        anchors,
        images,
        attachments,
    }
}

/// An attachment's name as shown: escaped, at most 80 characters.
pub fn name_of(name: Option<&str>) -> String {
    match name {
        Some(n) if !n.trim().is_empty() => {
            crate::text::escape_cut(n.trim(), crate::text::Lines::Single, 80)
        }
        _ => "(unnamed)".into(),
    }
}

/// Body text made safe and compact: line endings normalised, tabs as spaces, trailing space
/// and runs of empty lines dropped, layout characters escaped, cut to [`MAX_TEXT_CHARS`].
fn clean(text: &str) -> String {
    let mut out = String::with_capacity(text.len().min(MAX_TEXT_CHARS));
    let mut empty_run = 0;
    for line in text.split('\n') {
        let line = line
            .trim_end_matches(['\r', ' ', '\t'])
            .replace('\t', "    ");
        if line.is_empty() {
            empty_run += 1;
            if empty_run > 1 || out.is_empty() {
                continue;
            }
        } else {
            empty_run = 0;
        }
        out.push_str(&line);
        out.push('\n');
    }
    let trimmed = out.trim_end();
    crate::text::escape_cut(trimmed, crate::text::Lines::Multi, MAX_TEXT_CHARS)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn html_only_and_attachments() {
        let raw = b"From: a@notion.so\r\nSubject: =?utf-8?b?Q29uZmlybQ==?=\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\nContent-Type: text/html; charset=iso-8859-1\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n<p>Caf=E9 <a href=3D\"https://notion.so/x\">go</a></p><img src=3D\"https://t.example/p.gif\">\r\n--b\r\nContent-Type: application/pdf; name=\"ticket.pdf\"\r\nContent-Disposition: attachment; filename=\"ticket.pdf\"\r\nContent-Transfer-Encoding: base64\r\n\r\nJVBERi0xLjQK\r\n--b--\r\n";
        let r = render(raw);
        assert_eq!(r.subject, "Confirm");
        assert_eq!(r.text, "Café go");
        assert!(r.from_html);
        assert_eq!(r.images, 1);
        assert_eq!(r.anchors[0].href, "https://notion.so/x");
        assert_eq!(r.attachments.len(), 1);
        assert_eq!(r.attachments[0].name, "ticket.pdf");
        assert_eq!(r.attachments[0].content_type, "application/pdf");
        assert_eq!(r.attachments[0].size, 9);
    }

    #[test]
    fn text_is_escaped_and_compacted() {
        let raw = b"Subject: x\r\n\r\nline one\t\r\n\r\n\r\n\r\nline\xe2\x80\xae two\r\n";
        let r = render(raw);
        assert_eq!(r.text, "line one\n\nline\\u{202e} two");
        assert!(render(b"").text.is_empty());
    }
}
