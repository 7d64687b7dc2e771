//! What of a Signal message reaches the core, and how the core's sends become Signal
//! messages. Kept apart from presage's manager (the long-text attachment is fetched through
//! [`LongText`]) so it is tested on its own.
//!
//! - A direct data message with text becomes `received`; a long text (Signal sends the first
//!   2,000 bytes inline and the whole text as a `text/x-signal-plain` attachment) is fetched
//!   and relayed whole, cut at [`MAX_BODY_BYTES`] (more than an envelope may hold, so the
//!   core answers that it is too large rather than reading half of it).
//! - A reaction becomes `reaction`.
//! - In Note to Self mode, the account's own sync "sent" message to itself is handled the
//!   same way.
//! - Group messages, receipts, typing, calls, stories and the rest are ignored.

use crate::relay::Outgoing;
use pane_protocol::messages::{message_id, GatewayEvent, MAX_ENVELOPE_BYTES, MAX_LINE_BYTES};
use presage::libsignal_service::content::{Content, ContentBody};
use presage::libsignal_service::protocol::{Aci, ServiceId};
use presage::proto::{sync_message, AttachmentPointer, DataMessage, SyncMessage};
use std::future::Future;

/// The content type of Signal's long-text attachment.
pub const LONG_TEXT_TYPE: &str = "text/x-signal-plain";
/// The longest body relayed: one byte over the envelope limit.
pub const MAX_BODY_BYTES: usize = MAX_ENVELOPE_BYTES + 1;
/// The most a body may take on the line, escaped: the rest of a `received` line (ids, ACI,
/// numbers) fits in the difference.
const MAX_BODY_ON_LINE: usize = MAX_LINE_BYTES - 1024;

/// Fetches an attachment (presage's manager; a table in the tests).
pub trait LongText {
    /// The attachment's plaintext.
    fn fetch(&self, pointer: &AttachmentPointer) -> impl Future<Output = Result<Vec<u8>, String>>;
}

/// The outcome of mapping one message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Mapped {
    /// A line for the core.
    Event(GatewayEvent),
    /// Not for the core.
    Ignored,
}

/// Maps one decrypted message (`own` is the linked account's ACI).
pub async fn map(content: &Content, own: Aci, long: &impl LongText) -> Mapped {
    let meta = &content.metadata;
    let ServiceId::Aci(sender) = meta.sender else {
        return Mapped::Ignored;
    };
    let (message, timestamp) = match &content.body {
        // A direct message (group messages are not commands: replies go to one person).
        ContentBody::DataMessage(m @ DataMessage { group_v2: None, .. }) => {
            (m, m.timestamp.unwrap_or(meta.timestamp))
        }
        // Note to Self: the owner's own message, synced from their phone.
        ContentBody::SynchronizeMessage(SyncMessage {
            sent:
                Some(
                    sent @ sync_message::Sent {
                        message: Some(m @ DataMessage { group_v2: None, .. }),
                        ..
                    },
                ),
            ..
        }) if sender == own && is_to(sent, own) => {
            (m, sent.timestamp.or(m.timestamp).unwrap_or(meta.timestamp))
        }
        _ => return Mapped::Ignored,
    };
    let sender_id = sender.service_id_string();
    let device = u32::from(meta.sender_device);
    let id = message_id(&sender_id, device, timestamp);
    if let Some(r) = &message.reaction {
        let (Some(emoji), Some(target)) = (&r.emoji, r.target_sent_timestamp) else {
            return Mapped::Ignored;
        };
        return Mapped::Event(GatewayEvent::Reaction {
            id,
            sender: sender_id,
            emoji: emoji.clone(),
            target_timestamp: target,
            remove: r.remove.unwrap_or(false),
        });
    }
    let Some(body) = body(message, long).await else {
        return Mapped::Ignored;
    };
    Mapped::Event(GatewayEvent::Received {
        id: Some(id),
        sender: sender_id,
        device,
        timestamp,
        body,
        sealed: meta.unidentified_sender,
        expire_timer: message.expire_timer.unwrap_or(0),
    })
}

/// The message's whole text: the long-text attachment when there is one, else the body.
async fn body(message: &DataMessage, long: &impl LongText) -> Option<String> {
    let attachment = message
        .attachments
        .iter()
        .find(|a| a.content_type.as_deref() == Some(LONG_TEXT_TYPE));
    let text = match attachment {
        Some(pointer) => match long.fetch(pointer).await {
            Ok(bytes) => Some(String::from_utf8_lossy(&bytes).into_owned()),
            Err(e) => {
                // The inline part is a prefix: relaying it would act on half a command.
                tracing::warn!(error = %e, "cannot fetch a long text; relaying the inline part marked as cut");
                message
                    .body
                    .as_ref()
                    .map(|b| format!("{b}\n[cut: the rest could not be fetched]"))
            }
        },
        None => message.body.clone(),
    }?;
    if text.is_empty() {
        return None;
    }
    Some(fit(text))
}

/// `text` cut to [`MAX_BODY_BYTES`], and further if escaping it would not fit on a line (a
/// quote takes two bytes there, a control character six): a line over the limit would be
/// refused by the core and stay in the journal for ever.
fn fit(text: String) -> String {
    let mut text = cut(text, MAX_BODY_BYTES);
    loop {
        let on_line = serde_json::to_string(&text).map_or(usize::MAX, |j| j.len());
        if on_line <= MAX_BODY_ON_LINE {
            return text;
        }
        // Each byte of text takes at most six on the line: cutting a sixth of the excess
        // at least, and one byte at the very least, ends the loop.
        let excess = (on_line - MAX_BODY_ON_LINE).div_ceil(6).max(1);
        let keep = text.len().saturating_sub(excess);
        text = cut(text, keep);
    }
}

/// `text` cut to at most `max` bytes, on a character boundary.
fn cut(mut text: String, max: usize) -> String {
    if text.len() > max {
        let mut end = max;
        while !text.is_char_boundary(end) {
            end -= 1;
        }
        text.truncate(end);
    }
    text
}

fn is_to(sent: &sync_message::Sent, own: Aci) -> bool {
    let by_string = sent
        .destination_service_id
        .as_deref()
        .and_then(ServiceId::parse_from_service_id_string);
    let by_binary = sent
        .destination_service_id_binary
        .as_deref()
        .and_then(ServiceId::parse_from_service_id_binary);
    by_string.or(by_binary) == Some(ServiceId::Aci(own))
}

/// The data message for a send: its text, the core's timestamp, and the core's timer as it
/// is, 0 (off) included. Only without one (the owner has not written yet) does presage keep
/// the conversation's timer as it stands: presage's own record can lag the owner (each send
/// with a timer raises its version above the owner's next change) and takes any decrypted
/// message's timer, a blocked identity's too.
pub fn outgoing(out: &Outgoing) -> DataMessage {
    DataMessage {
        body: Some(out.body.clone()),
        timestamp: Some(out.timestamp),
        expire_timer: out.expire_timer,
        ..Default::default()
    }
}

/// A word for the log.
pub fn kind(event: &GatewayEvent) -> &'static str {
    match event {
        GatewayEvent::Received { .. } => "text",
        GatewayEvent::Reaction { .. } => "reaction",
        _ => "other",
    }
}

#[cfg(test)]
#[path = "mapping_tests.rs"]
mod tests;
