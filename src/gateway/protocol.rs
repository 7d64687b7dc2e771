//! The relay protocol between the Signal gateway (`pane-signal`) and the core, over
//! `<data-dir>/gateway.sock`: newline-delimited JSON, one object per line, the core
//! listening and the gateway connecting (and reconnecting). See `docs/gateway-protocol.md`.

use serde::{Deserialize, Serialize};

/// The longest line either side accepts, in bytes (a Signal message body is far shorter).
pub const MAX_LINE_BYTES: usize = 128 * 1024;

/// Gateway to core.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum GatewayEvent {
    /// A message arrived (or, in Note to Self mode, the owner's own sync "sent" message).
    Received {
        /// `<sender ACI>.<sender device>.<timestamp>`: the same for every delivery of one
        /// Signal message. The core acknowledges it (`ack`) once recorded and acts on an id
        /// once. (Absent from a gateway of before the acknowledged relay.)
        #[serde(default)]
        id: Option<String>,
        /// The sender's ACI (a UUID).
        sender: String,
        /// The sender's device id.
        device: u32,
        /// The message's timestamp, milliseconds since the epoch.
        timestamp: u64,
        /// The text.
        body: String,
        /// Delivered with sealed sender.
        sealed: bool,
        /// The disappearing-message timer the message carried, in seconds (0 = off).
        #[serde(default)]
        expire_timer: u32,
    },
    /// A reaction to a message: from the owner, 👍 on an approval prompt approves it and 👎
    /// denies it.
    Reaction {
        /// As for `received`.
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
    /// A contact's safety number changed.
    IdentityChanged {
        /// Whose.
        sender: String,
    },
    /// A send was delivered to Signal's servers.
    Sent {
        /// The send's id.
        id: String,
        /// The Signal timestamp it went out with (the one the core chose).
        #[serde(default)]
        timestamp: Option<u64>,
    },
    /// A send failed.
    SendFailed {
        /// The send's id.
        id: String,
        /// Why (no secrets: presage's error text).
        error: String,
        /// True when trying again may work (network); false when it cannot (unknown recipient).
        retryable: bool,
    },
}

/// Core to gateway.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum CoreCommand {
    /// Send a text message.
    Send {
        /// The outbox id; the gateway answers `sent` or `send_failed` with it, and never sends
        /// the same id twice.
        id: String,
        /// The recipient's ACI.
        recipient: String,
        /// The text.
        body: String,
        /// The Signal timestamp (ms), chosen when the message entered the outbox and the same
        /// on every retry, so a retry is the same message to every client.
        timestamp: u64,
        /// The owner's disappearing-message timer, in seconds.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        expire_timer: Option<u32>,
    },
    /// The core has recorded a `received` or `reaction`: the gateway may forget it.
    Ack {
        /// The id of that line.
        id: String,
    },
}

/// The error text of a `send_failed` for a send whose id the gateway's sent log holds for a
/// message with other content (`retryable: false`). The core does not take the message for
/// sent: it audits `outbox.id_conflict`, gives the message a new id and alerts the owner.
pub const ID_CONFLICT: &str = "id_conflict";

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
    fn shapes_match_the_documented_protocol() {
        let e: GatewayEvent = decode_line(
            r#"{"type":"received","sender":"0b5c6a5e-2f6e-4a7b-9d35-6a1c1f1f2c3d","device":1,"timestamp":1763805600000,"body":"hi","sealed":true}"#,
        )
        .unwrap();
        assert!(matches!(
            e,
            GatewayEvent::Received {
                device: 1,
                sealed: true,
                ..
            }
        ));
        // The acknowledged relay's shapes (pane-signal's, exactly).
        let e: GatewayEvent = decode_line(
            r#"{"type":"received","id":"a.2.7","sender":"a","device":2,"timestamp":7,"body":"list","sealed":true,"expire_timer":3600}"#,
        )
        .unwrap();
        assert!(matches!(
            e,
            GatewayEvent::Received {
                id: Some(_),
                expire_timer: 3600,
                ..
            }
        ));
        let r: GatewayEvent = decode_line(
            r#"{"type":"reaction","id":"a.1.9","sender":"a","emoji":"👍","target_timestamp":5,"remove":false}"#,
        )
        .unwrap();
        assert!(matches!(
            r,
            GatewayEvent::Reaction {
                target_timestamp: 5,
                ..
            }
        ));
        let s: GatewayEvent = decode_line(r#"{"type":"sent","id":"42","timestamp":9}"#).unwrap();
        assert_eq!(
            s,
            GatewayEvent::Sent {
                id: "42".into(),
                timestamp: Some(9)
            }
        );
        let c = CoreCommand::Send {
            id: "42".into(),
            recipient: "r".into(),
            body: "b".into(),
            timestamp: 9,
            expire_timer: Some(60),
        };
        assert_eq!(
            encode_line(&c).unwrap(),
            "{\"type\":\"send\",\"id\":\"42\",\"recipient\":\"r\",\"body\":\"b\",\"timestamp\":9,\"expire_timer\":60}\n"
        );
        assert_eq!(
            encode_line(&CoreCommand::Ack { id: "a.2.7".into() }).unwrap(),
            "{\"type\":\"ack\",\"id\":\"a.2.7\"}\n"
        );
        assert!(decode_line::<GatewayEvent>(r#"{"type":"received","sender":"x"}"#).is_err());
        assert!(decode_line::<GatewayEvent>(r#"{"type":"sent","id":"1","extra":1}"#).is_err());
        assert!(decode_line::<GatewayEvent>(&"x".repeat(MAX_LINE_BYTES + 1)).is_err());
    }
}
