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
    },
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
        let c = CoreCommand::Send {
            id: "42".into(),
            recipient: "r".into(),
            body: "b".into(),
        };
        assert_eq!(
            encode_line(&c).unwrap(),
            "{\"type\":\"send\",\"id\":\"42\",\"recipient\":\"r\",\"body\":\"b\"}\n"
        );
        assert!(decode_line::<GatewayEvent>(r#"{"type":"received","sender":"x"}"#).is_err());
        assert!(decode_line::<GatewayEvent>(r#"{"type":"sent","id":"1","extra":1}"#).is_err());
        assert!(decode_line::<GatewayEvent>(&"x".repeat(MAX_LINE_BYTES + 1)).is_err());
    }
}
