//! The relay protocol between the Signal gateway (`pane-signal`) and the core, over
//! `<data-dir>/gateway.sock` ([`SOCKET_FILE`]): newline-delimited JSON, one object per line
//! of at most [`MAX_LINE_BYTES`], the core listening and the gateway connecting (and
//! reconnecting). See `docs/gateway-protocol.md`.
//!
//! One copy of the shapes serves both sides. Unknown types and fields are refused by both.
//! What the gateway writes is always complete (`received` with its `id` and `expire_timer`,
//! `sent` with its `timestamp`); the fields a gateway from before the acknowledged relay did
//! not write are optional when read, so the core still reads that gateway's lines. The
//! gateway reads only [`CoreCommand`]s, which have no such leniency.
//!
//! On a sealed installation the core also hands the gateway the Signal store's passphrase
//! (`store_key`, the first line of every connection) and takes it back (`seal`). The
//! passphrase travels as a [`Passphrase`]: never printed, wiped from memory when dropped.

pub use crate::health::{Challenge, GatewayBuild, LinkHealth, Registration};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use zeroize::Zeroizing;

/// The socket's file name in the data dir: the core listens on it, the gateway connects.
pub const SOCKET_FILE: &str = "gateway.sock";

/// The longest line either side accepts, in bytes (a Signal message body is far shorter).
pub const MAX_LINE_BYTES: usize = 128 * 1024;

/// The largest envelope the core accepts on any channel, in bytes. The gateway needs it too:
/// it relays a body of up to one byte more (a long text cut there), so the core answers that
/// it is too large rather than reading half of it.
pub const MAX_ENVELOPE_BYTES: usize = 64 * 1024;

/// Gateway to core.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum GatewayEvent {
    /// A text message (in Note to Self mode, the owner's own sync "sent" message).
    Received {
        /// `<sender ACI>.<sender device>.<timestamp>` ([`message_id`]): the same for every
        /// delivery of one Signal message. The core acknowledges it (`ack`) once recorded and
        /// acts on an id once. The gateway always writes it; optional only so that the core
        /// reads lines of a gateway from before the acknowledged relay, which had none.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        id: Option<String>,
        /// The sender's ACI (a UUID).
        sender: String,
        /// The sender's device id.
        device: u32,
        /// The message's timestamp, milliseconds since the epoch.
        timestamp: u64,
        /// The whole text (a long text's attachment, fetched).
        body: String,
        /// Delivered with sealed sender.
        sealed: bool,
        /// The disappearing-message timer the message carried, in seconds (0 = off; also
        /// what a line of an older gateway, which had no such field, reads as).
        #[serde(default)]
        expire_timer: u32,
    },
    /// A reaction to a message: from the owner, 👍 on an approval prompt approves it and 👎
    /// denies it.
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
        /// The Signal timestamp it went out with (the one the core chose). The gateway always
        /// writes it; optional only for lines of a gateway from before stable sends.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        timestamp: Option<u64>,
    },
    /// A send failed.
    SendFailed {
        /// The send's id.
        id: String,
        /// Why (no secrets): presage's error text, [`IDENTITY_CHANGED`] or [`ID_CONFLICT`].
        error: String,
        /// True when trying again may work (network); false when it cannot (unknown recipient).
        retryable: bool,
    },
    /// The link to Signal as the gateway sees it: written when the core connects and
    /// whenever any of it changes, so that a link that died is known, never silent.
    Health(Box<LinkHealth>),
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
        /// on every retry, so a retry is the same message to every client. Required: a send
        /// without it could not be sent exactly once.
        timestamp: u64,
        /// The owner's disappearing-message timer to send it with, in seconds.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        expire_timer: Option<u32>,
    },
    /// The core has recorded a `received` or `reaction`: the gateway may forget it.
    Ack {
        /// The id of that line.
        id: String,
    },
    /// A sealed installation, unsealed now: the Signal store's passphrase, which lives only
    /// in the core's sealed store. The core writes it as the first line of every connection;
    /// a gateway without a passphrase of its own waits for it before it opens its store or
    /// relays anything.
    StoreKey {
        /// The SQLCipher passphrase of the gateway's presage store (and the root of the keys
        /// that seal its journal, sent-id log and identity record).
        passphrase: Passphrase,
    },
    /// The owner solved the captcha of a `proof_required` challenge: the gateway submits it
    /// to Signal and sends what waited.
    SubmitChallenge {
        /// The challenge's token (from the `health` line).
        token: String,
        /// The captcha's answer (`signalcaptcha://...` without its scheme, as signal-cli takes it).
        captcha: String,
    },
    /// The core is sealing or stopping: the gateway closes its store, forgets every key it
    /// holds and waits for the next `store_key`. It does not exit (the owner may unseal
    /// again). A struct variant with no fields, not a unit one: serde would let a unit
    /// variant of a tagged enum carry unknown fields.
    Seal {},
}

/// A passphrase on the wire: `Debug` prints `<redacted>`, and the text is wiped from memory
/// when the value is dropped, so neither a log line nor a freed buffer holds it. It reads
/// and writes as a plain JSON string.
#[derive(Clone, PartialEq, Eq)]
pub struct Passphrase(Zeroizing<String>);

impl Passphrase {
    /// Wraps `text` (taken, not copied).
    pub fn new(text: String) -> Passphrase {
        Passphrase(Zeroizing::new(text))
    }

    /// The passphrase itself, for the one place that uses it (opening the store).
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Passphrase {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("<redacted>")
    }
}

impl Serialize for Passphrase {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for Passphrase {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Passphrase, D::Error> {
        String::deserialize(d).map(Passphrase::new)
    }
}

/// The error text of a `send_failed` for a send refused because the recipient's identity
/// key changed (the gateway holds sends to that contact until the core has read the
/// `identity_changed` line).
pub const IDENTITY_CHANGED: &str = "identity_changed";

/// The error text of a `send_failed` for a send whose id the gateway's sent log holds for a
/// message with other content (`retryable: false`). The core does not take the message for
/// sent: it audits `outbox.id_conflict`, gives the message a new id and alerts the owner.
/// Answering `sent` would drop it silently.
pub const ID_CONFLICT: &str = "id_conflict";

/// The id of a `received` or `reaction` line: `<sender ACI>.<sender device>.<timestamp>`,
/// the same for every delivery of one Signal message.
pub fn message_id(sender: &str, device: u32, timestamp: u64) -> String {
    format!("{sender}.{device}.{timestamp}")
}

/// Encodes one message as a line (with its newline).
pub fn encode_line<T: Serialize>(msg: &T) -> Result<String, serde_json::Error> {
    let mut line = serde_json::to_string(msg)?;
    line.push('\n');
    Ok(line)
}

/// Encodes a `store_key` line (with its newline) into a buffer that is wiped when dropped.
/// The passphrase is borrowed, not copied, and the buffer is reserved whole before serde
/// writes to it, so it never grows: a growing `Vec` would leave a freed copy of the
/// passphrase behind each time it moved. (The line is [`CoreCommand::StoreKey`]'s.)
pub fn encode_store_key(passphrase: &str) -> Result<Zeroizing<Vec<u8>>, serde_json::Error> {
    #[derive(Serialize)]
    #[serde(tag = "type", rename = "store_key")]
    struct StoreKeyLine<'a> {
        passphrase: &'a str,
    }
    // JSON escapes a byte as at most six (`\u00XX`); the rest of the line is 37 bytes.
    let mut line = Zeroizing::new(Vec::with_capacity(passphrase.len() * 6 + 64));
    serde_json::to_writer(&mut *line, &StoreKeyLine { passphrase })?;
    line.push(b'\n');
    Ok(line)
}

/// Why a line was refused. Either side logs it and skips the line; neither is fatal.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    /// The line is longer than [`MAX_LINE_BYTES`].
    #[error("line over {MAX_LINE_BYTES} bytes")]
    TooLong,
    /// Not JSON, or an unknown type, an unknown field or a missing one (serde's text).
    #[error("not a protocol message: {0}")]
    NotInProtocol(String),
}

/// Decodes one line, refusing over-long lines and anything not in the protocol.
pub fn decode_line<T: for<'de> Deserialize<'de>>(line: &str) -> Result<T, DecodeError> {
    if line.len() > MAX_LINE_BYTES {
        return Err(DecodeError::TooLong);
    }
    serde_json::from_str(line.trim_end()).map_err(|e| DecodeError::NotInProtocol(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What the gateway writes is exactly the documented lines, every field present.
    #[test]
    fn the_gateway_writes_the_documented_lines() {
        let r = GatewayEvent::Received {
            id: Some(message_id("a", 2, 7)),
            sender: "a".into(),
            device: 2,
            timestamp: 7,
            body: "list".into(),
            sealed: true,
            expire_timer: 0,
        };
        assert_eq!(
            encode_line(&r).unwrap(),
            "{\"type\":\"received\",\"id\":\"a.2.7\",\"sender\":\"a\",\"device\":2,\"timestamp\":7,\
             \"body\":\"list\",\"sealed\":true,\"expire_timer\":0}\n"
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
            timestamp: Some(9),
        };
        assert_eq!(
            encode_line(&sent).unwrap(),
            "{\"type\":\"sent\",\"id\":\"42\",\"timestamp\":9}\n"
        );
    }

    /// What the core writes is exactly the documented lines; `expire_timer` only when set.
    #[test]
    fn the_core_writes_the_documented_lines() {
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
        assert_eq!(
            encode_line(&CoreCommand::Ack { id: "a.2.7".into() }).unwrap(),
            "{\"type\":\"ack\",\"id\":\"a.2.7\"}\n"
        );
        assert_eq!(
            encode_line(&CoreCommand::Seal {}).unwrap(),
            "{\"type\":\"seal\"}\n"
        );
        let key = Passphrase::new("0123abcd".into());
        let line = encode_store_key(key.expose()).unwrap();
        assert_eq!(
            std::str::from_utf8(&line).unwrap(),
            "{\"type\":\"store_key\",\"passphrase\":\"0123abcd\"}\n"
        );
        assert_eq!(
            decode_line::<CoreCommand>(std::str::from_utf8(&line).unwrap()).unwrap(),
            CoreCommand::StoreKey { passphrase: key }
        );
    }

    /// Neither `Debug` of the line nor of the passphrase shows it, however it is printed.
    #[test]
    fn a_store_key_never_prints_its_passphrase() {
        let secret = "s3cret-passphrase-7f1e";
        let cmd: CoreCommand = decode_line(&format!(
            r#"{{"type":"store_key","passphrase":"{secret}"}}"#
        ))
        .unwrap();
        for shown in [format!("{cmd:?}"), format!("{cmd:#?}")] {
            assert!(!shown.contains(secret), "{shown}");
            assert!(shown.contains("<redacted>"), "{shown}");
        }
        let CoreCommand::StoreKey { passphrase } = cmd else {
            panic!("not a store_key");
        };
        assert_eq!(passphrase.expose(), secret);
        assert_eq!(format!("{passphrase:?}"), "<redacted>");
        // A line that escapes every character still fits the buffer reserved for it.
        let escaped = Passphrase::new("\u{1}".repeat(40));
        let line = encode_store_key(escaped.expose()).unwrap();
        assert_eq!(line.capacity(), 40 * 6 + 64, "the buffer never grew");
        assert_eq!(
            decode_line::<CoreCommand>(std::str::from_utf8(&line).unwrap()).unwrap(),
            CoreCommand::StoreKey {
                passphrase: escaped
            }
        );
    }

    /// A line of a gateway from before the acknowledged relay (no `id`, no `expire_timer`)
    /// still reads, and writes back as it was.
    #[test]
    fn an_older_gateways_received_line_reads() {
        let old = r#"{"type":"received","sender":"0b5c6a5e-2f6e-4a7b-9d35-6a1c1f1f2c3d","device":1,"timestamp":1763805600000,"body":"hi","sealed":true}"#;
        let e: GatewayEvent = decode_line(old).unwrap();
        assert!(matches!(
            e,
            GatewayEvent::Received {
                id: None,
                device: 1,
                sealed: true,
                expire_timer: 0,
                ..
            }
        ));
        let s: GatewayEvent = decode_line(r#"{"type":"sent","id":"9"}"#).unwrap();
        assert_eq!(
            encode_line(&s).unwrap(),
            "{\"type\":\"sent\",\"id\":\"9\"}\n"
        );
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
        assert!(decode_line::<CoreCommand>(r#"{"type":"store_key"}"#).is_err());
        assert!(decode_line::<CoreCommand>(r#"{"type":"seal","now":true}"#).is_err());
        assert!(decode_line::<GatewayEvent>(r#"{"type":"received","sender":"x"}"#).is_err());
        assert!(decode_line::<GatewayEvent>(r#"{"type":"sent","id":"1","extra":1}"#).is_err());
        // A reaction has always had its id.
        assert!(decode_line::<GatewayEvent>(
            r#"{"type":"reaction","sender":"a","emoji":"x","target_timestamp":5,"remove":false}"#
        )
        .is_err());
        assert_eq!(
            decode_line::<CoreCommand>(&"x".repeat(MAX_LINE_BYTES + 1)),
            Err(DecodeError::TooLong)
        );
        assert_eq!(
            DecodeError::TooLong.to_string(),
            format!("line over {MAX_LINE_BYTES} bytes")
        );
    }
}
