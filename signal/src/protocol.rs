//! The gateway's side of the relay protocol (`docs/gateway-protocol.md`): one JSON object
//! per line over `<data-dir>/gateway.sock`, at most [`MAX_LINE_BYTES`].
//!
//! The gateway keeps its own copy of the message shapes: it is built on its own (its own
//! lock, git dependencies) and must speak exactly the documented lines whatever revision of
//! the core it runs beside. Unknown types and fields are refused, as the core refuses them.

use serde::{Deserialize, Serialize};

/// The longest line either side accepts, in bytes.
pub const MAX_LINE_BYTES: usize = 128 * 1024;

/// Gateway to core.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum GatewayEvent {
    /// A text message (in Note to Self mode, the owner's own sync "sent" message).
    Received {
        /// `<sender ACI>.<sender device>.<timestamp>`: the same for every delivery of one
        /// Signal message, so the core can tell a re-sent line from a new message.
        id: String,
        /// The sender's ACI.
        sender: String,
        /// The sender's device id.
        device: u32,
        /// The message's timestamp (ms).
        timestamp: u64,
        /// The whole text (a long text's attachment, fetched).
        body: String,
        /// Delivered with sealed sender.
        sealed: bool,
        /// The disappearing-message timer the message carried, in seconds (0 = off).
        expire_timer: u32,
    },
    /// A reaction to a message.
    Reaction {
        /// As for `received`: the reaction message's sender, device and timestamp.
        id: String,
        /// The reacting ACI.
        sender: String,
        /// The emoji.
        emoji: String,
        /// The timestamp of the message reacted to (ms).
        target_timestamp: u64,
        /// True when the reaction is taken back.
        remove: bool,
    },
    /// A contact's identity key (safety number) changed.
    IdentityChanged {
        /// Whose.
        sender: String,
    },
    /// A send reached Signal's servers.
    Sent {
        /// The send's id.
        id: String,
        /// The Signal timestamp it went out with (the one the core chose).
        timestamp: u64,
    },
    /// A send failed.
    SendFailed {
        /// The send's id.
        id: String,
        /// Why: presage's error text, or `identity_changed`.
        error: String,
        /// True when trying again may work.
        retryable: bool,
    },
}

/// Core to gateway.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum CoreCommand {
    /// Send a text message.
    Send {
        /// The outbox id.
        id: String,
        /// The recipient's ACI.
        recipient: String,
        /// The text.
        body: String,
        /// The Signal timestamp (ms), chosen by the core and the same on every retry.
        timestamp: u64,
        /// The disappearing-message timer to send it with, in seconds.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        expire_timer: Option<u32>,
    },
    /// The core has recorded a `received` or `reaction`: the gateway may forget it.
    Ack {
        /// The id of that line.
        id: String,
    },
}

/// The error text of a send refused because the recipient's identity key changed.
pub const IDENTITY_CHANGED: &str = "identity_changed";

/// The error text of a send refused because the sent log holds its id for a message with
/// other content (`retryable: false`): the core must not take it for sent; it sends the
/// message again under a new id and tells the owner. Answering `sent` would drop it silently.
pub const ID_CONFLICT: &str = "id_conflict";

/// `<sender ACI>.<sender device>.<timestamp>`.
pub fn message_id(sender: &str, device: u32, timestamp: u64) -> String {
    format!("{sender}.{device}.{timestamp}")
}

/// Encodes one message as a line (with its newline).
pub fn encode_line<T: Serialize>(msg: &T) -> Result<String, serde_json::Error> {
    let mut line = serde_json::to_string(msg)?;
    line.push('\n');
    Ok(line)
}

/// Decodes one line, refusing over-long lines and anything not in the protocol.
pub fn decode_line<T: for<'de> Deserialize<'de>>(line: &str) -> Result<T, String> {
    if line.len() > MAX_LINE_BYTES {
        return Err(format!("line over {MAX_LINE_BYTES} bytes"));
    }
    serde_json::from_str(line.trim_end()).map_err(|e| format!("not a protocol message: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_are_the_documented_shapes() {
        let r = GatewayEvent::Received {
            id: message_id("a", 2, 7),
            sender: "a".into(),
            device: 2,
            timestamp: 7,
            body: "list".into(),
            sealed: true,
            expire_timer: 3600,
        };
        assert_eq!(
            encode_line(&r).unwrap(),
            "{\"type\":\"received\",\"id\":\"a.2.7\",\"sender\":\"a\",\"device\":2,\"timestamp\":7,\
             \"body\":\"list\",\"sealed\":true,\"expire_timer\":3600}\n"
        );
        let reaction = GatewayEvent::Reaction {
            id: "a.1.9".into(),
            sender: "a".into(),
            emoji: "👍".into(),
            target_timestamp: 5,
            remove: false,
        };
        assert_eq!(
            encode_line(&reaction).unwrap(),
            "{\"type\":\"reaction\",\"id\":\"a.1.9\",\"sender\":\"a\",\"emoji\":\"👍\",\
             \"target_timestamp\":5,\"remove\":false}\n"
        );
        let sent = GatewayEvent::Sent {
            id: "42".into(),
            timestamp: 9,
        };
        assert_eq!(
            encode_line(&sent).unwrap(),
            "{\"type\":\"sent\",\"id\":\"42\",\"timestamp\":9}\n"
        );
        let send: CoreCommand = decode_line(
            r#"{"type":"send","id":"42","recipient":"r","body":"b","timestamp":9,"expire_timer":60}"#,
        )
        .unwrap();
        assert_eq!(
            send,
            CoreCommand::Send {
                id: "42".into(),
                recipient: "r".into(),
                body: "b".into(),
                timestamp: 9,
                expire_timer: Some(60),
            }
        );
        let no_timer: CoreCommand =
            decode_line(r#"{"type":"send","id":"1","recipient":"r","body":"b","timestamp":9}"#)
                .unwrap();
        assert!(matches!(
            no_timer,
            CoreCommand::Send {
                expire_timer: None,
                ..
            }
        ));
        let ack: CoreCommand = decode_line(r#"{"type":"ack","id":"a.2.7"}"#).unwrap();
        assert_eq!(ack, CoreCommand::Ack { id: "a.2.7".into() });
    }

    #[test]
    fn refuses_what_is_not_in_the_protocol() {
        // A send without its timestamp (the old shape) cannot be sent exactly once.
        assert!(decode_line::<CoreCommand>(
            r#"{"type":"send","id":"1","recipient":"r","body":"b"}"#
        )
        .is_err());
        assert!(decode_line::<CoreCommand>(r#"{"type":"ack","id":"1","extra":1}"#).is_err());
        assert!(decode_line::<CoreCommand>(r#"{"type":"nope"}"#).is_err());
        assert!(decode_line::<CoreCommand>(&"x".repeat(MAX_LINE_BYTES + 1)).is_err());
    }
}
