use super::*;
use presage::libsignal_service::content::Metadata;
use presage::libsignal_service::protocol::DeviceId;
use presage::proto::data_message::Reaction;
use std::collections::HashMap;

const OWN: &str = "0b5c6a5e-2f6e-4a7b-9d35-6a1c1f1f2c3d";
const OTHER: &str = "5d1f7c2a-9b3e-4f60-8a21-3c4d5e6f7a8b";

fn aci(s: &str) -> Aci {
    Aci::parse_from_service_id_string(s).unwrap()
}

/// Attachments by file name: what the long-text fetch returns.
struct Attachments(HashMap<String, Result<Vec<u8>, String>>);

impl LongText for Attachments {
    async fn fetch(&self, pointer: &AttachmentPointer) -> Result<Vec<u8>, String> {
        let key = pointer.file_name.clone().unwrap_or_default();
        self.0
            .get(&key)
            .cloned()
            .unwrap_or_else(|| Err("no such attachment".into()))
    }
}

fn none() -> Attachments {
    Attachments(HashMap::new())
}

fn content(sender: &str, sealed: bool, body: ContentBody) -> Content {
    Content {
        metadata: Metadata {
            sender: aci(sender).into(),
            destination: aci(OWN).into(),
            sender_device: DeviceId::try_from(3u32).unwrap(),
            timestamp: 1_000,
            needs_receipt: false,
            unidentified_sender: sealed,
            was_plaintext: false,
            server_guid: None,
        },
        body,
    }
}

fn data(body: &str, timestamp: u64) -> DataMessage {
    DataMessage {
        body: Some(body.into()),
        timestamp: Some(timestamp),
        ..Default::default()
    }
}

fn note_to_self(destination: &str, message: DataMessage) -> ContentBody {
    ContentBody::SynchronizeMessage(SyncMessage {
        sent: Some(sync_message::Sent {
            destination_service_id: Some(destination.into()),
            timestamp: message.timestamp,
            message: Some(message),
            ..Default::default()
        }),
        ..Default::default()
    })
}

fn received(sender: &str, timestamp: u64, body: &str, sealed: bool, timer: u32) -> Mapped {
    Mapped::Event(GatewayEvent::Received {
        id: Some(format!("{sender}.3.{timestamp}")),
        sender: sender.into(),
        device: 3,
        timestamp,
        body: body.into(),
        sealed,
        expire_timer: timer,
    })
}

async fn map_one(c: Content, long: &Attachments) -> Mapped {
    map(&c, aci(OWN), long).await
}

#[tokio::test(flavor = "current_thread")]
async fn text_messages_become_received_with_a_stable_id() {
    let direct = content(OTHER, true, ContentBody::DataMessage(data("status", 1_500)));
    assert_eq!(
        map_one(direct.clone(), &none()).await,
        received(OTHER, 1_500, "status", true, 0)
    );
    // The same Signal message twice: the same id, so the core acts on it once.
    assert_eq!(
        map_one(direct.clone(), &none()).await,
        map_one(direct, &none()).await
    );
    // Note to Self: the account's own sync "sent" message to itself.
    let own = content(OWN, false, note_to_self(OWN, data("list", 2_000)));
    assert_eq!(
        map_one(own, &none()).await,
        received(OWN, 2_000, "list", false, 0)
    );
}

#[tokio::test(flavor = "current_thread")]
async fn the_disappearing_timer_is_carried() {
    let mut m = data("list", 7);
    m.expire_timer = Some(3_600);
    let c = content(OTHER, true, ContentBody::DataMessage(m.clone()));
    assert_eq!(
        map_one(c, &none()).await,
        received(OTHER, 7, "list", true, 3_600)
    );
    let own = content(OWN, false, note_to_self(OWN, m));
    assert_eq!(
        map_one(own, &none()).await,
        received(OWN, 7, "list", false, 3_600)
    );
}

#[tokio::test(flavor = "current_thread")]
async fn a_long_text_is_fetched_and_relayed_whole() {
    let whole = "x".repeat(5_000);
    let mut m = data(&whole[..2_000], 9);
    m.attachments = vec![AttachmentPointer {
        content_type: Some(LONG_TEXT_TYPE.into()),
        file_name: Some("long".into()),
        ..Default::default()
    }];
    let long = Attachments(HashMap::from([(
        "long".into(),
        Ok(whole.clone().into_bytes()),
    )]));
    let c = content(OTHER, true, ContentBody::DataMessage(m.clone()));
    assert_eq!(
        map_one(c.clone(), &long).await,
        received(OTHER, 9, &whole, true, 0)
    );
    // Without the attachment the inline prefix is never passed off as the whole text.
    let Mapped::Event(GatewayEvent::Received { body, .. }) = map_one(c, &none()).await else {
        panic!("not relayed");
    };
    assert!(
        body.starts_with(&whole[..2_000]) && body.ends_with("[cut: the rest could not be fetched]")
    );
    // Beyond the envelope limit: cut one byte over it, on a character boundary.
    let huge = "é".repeat(MAX_BODY_BYTES);
    let long = Attachments(HashMap::from([("long".into(), Ok(huge.into_bytes()))]));
    let Mapped::Event(GatewayEvent::Received { body, .. }) =
        map_one(content(OTHER, true, ContentBody::DataMessage(m)), &long).await
    else {
        panic!("not relayed");
    };
    assert!(body.len() <= MAX_BODY_BYTES && body.len() > MAX_ENVELOPE_BYTES - 2);
}

#[tokio::test(flavor = "current_thread")]
async fn a_body_that_escapes_long_still_fits_on_one_line() {
    use pane_protocol::messages::{encode_line, MAX_LINE_BYTES};
    // Quotes and control characters grow when escaped: 64 KiB of them is over 128 KiB.
    for ch in ["\"", "\u{1}"] {
        let c = content(
            OTHER,
            true,
            ContentBody::DataMessage(data(&ch.repeat(MAX_BODY_BYTES), 3)),
        );
        let Mapped::Event(event) = map_one(c, &none()).await else {
            panic!("not relayed");
        };
        let line = encode_line(&event).unwrap();
        assert!(line.len() <= MAX_LINE_BYTES, "{} bytes", line.len());
        assert!(
            line.len() > MAX_LINE_BYTES - 2048,
            "cut no more than needed"
        );
    }
}

#[tokio::test(flavor = "current_thread")]
async fn reactions_become_reaction_lines() {
    let reaction = |remove| DataMessage {
        reaction: Some(Reaction {
            emoji: Some("👍".into()),
            remove: Some(remove),
            target_author_aci: Some(OWN.into()),
            target_sent_timestamp: Some(42),
            ..Default::default()
        }),
        timestamp: Some(50),
        ..Default::default()
    };
    let c = content(OTHER, true, ContentBody::DataMessage(reaction(false)));
    let expected = |sender: &str, remove| {
        Mapped::Event(GatewayEvent::Reaction {
            id: format!("{sender}.3.50"),
            sender: sender.into(),
            emoji: "👍".into(),
            target_timestamp: 42,
            remove,
        })
    };
    assert_eq!(map_one(c, &none()).await, expected(OTHER, false));
    let c = content(OTHER, true, ContentBody::DataMessage(reaction(true)));
    assert_eq!(map_one(c, &none()).await, expected(OTHER, true));
    // Note to Self: reacting to the agent's prompt in one's own chat.
    let own = content(OWN, false, note_to_self(OWN, reaction(false)));
    assert_eq!(map_one(own, &none()).await, expected(OWN, false));
}

#[tokio::test(flavor = "current_thread")]
async fn ignores_what_is_not_a_command() {
    // The owner talking to someone else from their phone.
    let to_other = content(OWN, false, note_to_self(OTHER, data("hi", 1)));
    assert_eq!(map_one(to_other, &none()).await, Mapped::Ignored);
    // Someone else's sync message claiming to be to us.
    let forged = content(OTHER, false, note_to_self(OWN, data("expire", 1)));
    assert_eq!(map_one(forged, &none()).await, Mapped::Ignored);
    // A group message.
    let mut group = data("list", 1);
    group.group_v2 = Some(Default::default());
    let group = content(OTHER, true, ContentBody::DataMessage(group));
    assert_eq!(map_one(group, &none()).await, Mapped::Ignored);
    // No body (a timer update, a profile key update...).
    let empty = content(
        OTHER,
        true,
        ContentBody::DataMessage(DataMessage::default()),
    );
    assert_eq!(map_one(empty, &none()).await, Mapped::Ignored);
}

#[test]
fn sends_carry_the_cores_timestamp_and_timer() {
    let out = Outgoing {
        recipient: OWN.into(),
        body: "✓ approved".into(),
        timestamp: 1_763_805_600_123,
        expire_timer: Some(604_800),
    };
    let m = outgoing(&out);
    assert_eq!(m.timestamp, Some(1_763_805_600_123));
    assert_eq!(m.expire_timer, Some(604_800));
    assert_eq!(m.body.as_deref(), Some("✓ approved"));
    let off = outgoing(&Outgoing {
        expire_timer: Some(0),
        ..out.clone()
    });
    // Off is sent as off: presage would otherwise put back its own record of the timer.
    assert_eq!(off.expire_timer, Some(0));
    assert_eq!(
        outgoing(&Outgoing {
            expire_timer: None,
            ..out
        })
        .expire_timer,
        None
    );
}
