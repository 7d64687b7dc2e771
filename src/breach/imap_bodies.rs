//! Bodies fetched on demand, for `inbox` and `mail`: over a session of the same IMAP source
//! the breach monitor reads (same server, credentials, TLS roots), with `BODY.PEEK`, so a
//! message read through the agent stays unread in every other client, and with a byte cap,
//! so a 20 MB attachment is never downloaded: its name, type and size come from the server's
//! `BODYSTRUCTURE`.

use super::imap::{failed, ImapError, ImapSource, Session};
use async_imap::imap_proto::{BodyStructure, ContentEncoding};
use futures_util::StreamExt;
use std::time::Duration;

/// How long one fetch may take.
const FETCH_TIMEOUT: Duration = Duration::from_secs(60);

/// A part of a message that is not its text, as the server describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Part {
    /// Its file name, as the sender wrote it (untrusted).
    pub name: Option<String>,
    /// Its MIME type, lowercase.
    pub content_type: String,
    /// Its size once decoded, in bytes (estimated for base64).
    pub size: u64,
}

/// One message's first bytes, with what the server says of the whole.
#[derive(Debug, Clone)]
pub struct Body {
    /// Its UID.
    pub uid: u32,
    /// The message, cut at the cap.
    pub raw: Vec<u8>,
    /// Its full size in bytes.
    pub size: u32,
    /// Its attachments.
    pub parts: Vec<Part>,
}

/// An open, logged-in session with the mailbox selected.
pub struct MailSession {
    session: Session,
    uid_validity: u32,
}

impl std::fmt::Debug for MailSession {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "MailSession(uidvalidity {})", self.uid_validity)
    }
}

impl ImapSource {
    /// Opens a session for fetching bodies.
    pub async fn session(&self) -> Result<MailSession, ImapError> {
        let (session, mailbox) = tokio::time::timeout(FETCH_TIMEOUT, self.open())
            .await
            .map_err(|_| failed("connect", "timed out"))??;
        let uid_validity = mailbox
            .uid_validity
            .ok_or_else(|| failed("select", "the server sent no UIDVALIDITY"))?;
        Ok(MailSession {
            session,
            uid_validity,
        })
    }
}

impl MailSession {
    /// The mailbox's UIDVALIDITY when the session selected it.
    pub fn uid_validity(&self) -> u32 {
        self.uid_validity
    }

    /// The first `cap` bytes of each message in `uids`, without marking any of them read.
    /// A UID the server no longer has is simply absent from the result.
    pub async fn bodies(&mut self, uids: &[u32], cap: u32) -> Result<Vec<Body>, ImapError> {
        if uids.is_empty() {
            return Ok(Vec::new());
        }
        tokio::time::timeout(FETCH_TIMEOUT, self.bodies_inner(uids, cap))
            .await
            .map_err(|_| failed("fetch", "timed out"))?
    }

    async fn bodies_inner(&mut self, uids: &[u32], cap: u32) -> Result<Vec<Body>, ImapError> {
        let set = uids
            .iter()
            .map(u32::to_string)
            .collect::<Vec<_>>()
            .join(",");
        let query = format!("(UID RFC822.SIZE BODYSTRUCTURE BODY.PEEK[]<0.{cap}>)");
        let mut fetches = self
            .session
            .uid_fetch(set, query)
            .await
            .map_err(|e| failed("fetch", e))?;
        let mut out = Vec::new();
        while let Some(item) = fetches.next().await {
            let fetch = item.map_err(|e| failed("fetch", e))?;
            let Some(uid) = fetch.uid.filter(|u| uids.contains(u)) else {
                continue;
            };
            let mut parts = Vec::new();
            if let Some(structure) = fetch.bodystructure() {
                attachments(structure, &mut parts);
            }
            out.push(Body {
                uid,
                raw: fetch.body().unwrap_or_default().to_vec(),
                size: fetch.size.unwrap_or(0),
                parts,
            });
        }
        Ok(out)
    }

    /// Logs out (best effort).
    pub async fn close(mut self) {
        let _ = tokio::time::timeout(Duration::from_secs(5), self.session.logout()).await;
    }
}

/// The attachments in `part`: every leaf part that is not inline text (the message's own
/// text is text/plain or text/html without a file name).
fn attachments(part: &BodyStructure<'_>, out: &mut Vec<Part>) {
    match part {
        BodyStructure::Multipart { bodies, .. } => {
            for b in bodies {
                attachments(b, out);
            }
        }
        BodyStructure::Basic { common, other, .. }
        | BodyStructure::Text { common, other, .. }
        | BodyStructure::Message { common, other, .. } => {
            let name = common
                .disposition
                .as_ref()
                .and_then(|d| param(&d.params, "filename"))
                .or_else(|| param(&common.ty.params, "name"));
            let is_attachment_disposition = common
                .disposition
                .as_ref()
                .is_some_and(|d| d.ty.eq_ignore_ascii_case("attachment"));
            let ty = format!("{}/{}", common.ty.ty, common.ty.subtype).to_ascii_lowercase();
            let inline_text = matches!(part, BodyStructure::Text { .. })
                && name.is_none()
                && !is_attachment_disposition;
            if inline_text {
                return;
            }
            let size = match other.transfer_encoding {
                // Base64 lines of 76 characters and CRLF carry 57 bytes.
                ContentEncoding::Base64 => u64::from(other.octets) * 57 / 78,
                _ => u64::from(other.octets),
            };
            out.push(Part {
                name,
                content_type: ty,
                size,
            });
        }
    }
}

/// The value of `key` among a part's parameters.
fn param(params: &async_imap::imap_proto::BodyParams<'_>, key: &str) -> Option<String> {
    params.as_ref().and_then(|ps| {
        ps.iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(key))
            .map(|(_, v)| v.to_string())
    })
}
