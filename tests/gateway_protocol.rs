//! The relay protocol (`docs/gateway-protocol.md`) has one copy of its message shapes, in the
//! `pane-protocol` crate (`protocol/`), used by the core (here, through
//! `pane_agent::gateway::protocol`) and by the gateway (`signal/`). What this test keeps:
//! every message either side writes reads back as the same message, the lines carry the
//! documented fields, and the core still reads the lines of a gateway from before the
//! acknowledged relay. (It replaces `tests/protocol_copies.rs`, which held two copies in
//! step.)

use pane_agent::gateway::protocol::{
    decode_line, encode_line, message_id, CoreCommand, GatewayEvent, Passphrase, IDENTITY_CHANGED,
    ID_CONFLICT, MAX_ENVELOPE_BYTES, MAX_LINE_BYTES, SOCKET_FILE,
};
use serde_json::Value;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};

const OWNER: &str = "0b5c6a5e-2f6e-4a7b-9d35-6a1c1f1f2c3d";

fn json_of(line: &str) -> Value {
    serde_json::from_str(line.trim_end()).unwrap_or_else(|e| panic!("{e}: {line}"))
}

/// The keys of a line's object, sorted.
fn keys_of(line: &str) -> Vec<String> {
    let mut keys: Vec<String> = json_of(line)
        .as_object()
        .unwrap_or_else(|| panic!("not an object: {line}"))
        .keys()
        .cloned()
        .collect();
    keys.sort();
    keys
}

/// Every event as the gateway writes it: every field present.
fn gateway_events() -> Vec<GatewayEvent> {
    vec![
        GatewayEvent::Received {
            id: Some(message_id(OWNER, 2, 1_700_000_000_123)),
            sender: OWNER.into(),
            device: 2,
            timestamp: 1_700_000_000_123,
            body: "{\"ts\":\"…\",\"cmd\":\"list\"} é ☃\nline two".into(),
            sealed: true,
            expire_timer: 604_800,
        },
        GatewayEvent::Reaction {
            id: message_id(OWNER, 1, 1_700_000_000_200),
            sender: OWNER.into(),
            emoji: "👍🏽".into(),
            target_timestamp: 1_700_000_000_150,
            remove: false,
        },
        GatewayEvent::IdentityChanged {
            sender: OWNER.into(),
        },
        GatewayEvent::Sent {
            id: "42".into(),
            timestamp: Some(1_700_000_000_300),
        },
        GatewayEvent::SendFailed {
            id: "43".into(),
            error: IDENTITY_CHANGED.into(),
            retryable: false,
        },
    ]
}

#[test]
fn the_limits_and_the_socket_are_the_documented_ones() {
    assert_eq!(MAX_LINE_BYTES, 128 * 1024);
    assert_eq!(SOCKET_FILE, "gateway.sock");
    // The core's envelope limit is the one the gateway cuts long texts at.
    assert_eq!(pane_agent::auth::MAX_ENVELOPE_BYTES, MAX_ENVELOPE_BYTES);
    assert!(decode_line::<GatewayEvent>(&"x".repeat(MAX_LINE_BYTES + 1)).is_err());
}

/// What the gateway writes reads back as the same message, one line each, with exactly the
/// documented fields.
#[test]
fn every_gateway_event_round_trips() {
    let documented: [&[&str]; 5] = [
        &[
            "body",
            "device",
            "expire_timer",
            "id",
            "sealed",
            "sender",
            "timestamp",
            "type",
        ],
        &[
            "emoji",
            "id",
            "remove",
            "sender",
            "target_timestamp",
            "type",
        ],
        &["sender", "type"],
        &["id", "timestamp", "type"],
        &["error", "id", "retryable", "type"],
    ];
    for (event, fields) in gateway_events().into_iter().zip(documented) {
        let line = encode_line(&event).unwrap();
        assert_eq!(line.find('\n'), Some(line.len() - 1), "one line: {line:?}");
        assert_eq!(keys_of(&line), fields, "{line}");
        let read: GatewayEvent =
            decode_line(&line).unwrap_or_else(|e| panic!("refused {line}: {e}"));
        assert_eq!(read, event);
        assert_eq!(json_of(&encode_line(&read).unwrap()), json_of(&line));
    }
    assert_eq!(
        message_id(OWNER, 2, 7),
        format!("{OWNER}.2.7"),
        "the id the docs define"
    );
}

/// What the core writes reads back as the same message; `expire_timer` only when set.
#[test]
fn every_core_command_round_trips() {
    let commands = [
        CoreCommand::Send {
            id: "17.00000000000000ff".into(),
            recipient: OWNER.into(),
            body: "2 contexts:\n• notion · n7x@alias.io · card 4242 paused".into(),
            timestamp: 1_700_000_000_400,
            expire_timer: Some(3600),
        },
        CoreCommand::Send {
            id: "18".into(),
            recipient: OWNER.into(),
            body: "✗ status: context not found: nope".into(),
            timestamp: 1_700_000_000_401,
            expire_timer: None,
        },
        CoreCommand::Ack {
            id: format!("{OWNER}.1.1700000000001"),
        },
        CoreCommand::StoreKey {
            passphrase: Passphrase::new("9f86d081884c7d65".into()),
        },
        CoreCommand::Seal {},
    ];
    for command in commands {
        let line = encode_line(&command).unwrap();
        assert_eq!(line.find('\n'), Some(line.len() - 1), "one line: {line:?}");
        let read: CoreCommand =
            decode_line(&line).unwrap_or_else(|e| panic!("refused {line}: {e}"));
        assert_eq!(read, command);
        assert_eq!(json_of(&encode_line(&read).unwrap()), json_of(&line));
    }
    let no_timer = encode_line(&CoreCommand::Send {
        id: "1".into(),
        recipient: OWNER.into(),
        body: "b".into(),
        timestamp: 9,
        expire_timer: None,
    })
    .unwrap();
    assert!(!keys_of(&no_timer).contains(&"expire_timer".to_string()));
}

/// The refusal of a send under a used id is one error text, read by the core as what it
/// acts on (a new id, an alert) rather than as an ordinary failure to retry.
#[test]
fn an_id_conflict_reads_as_one() {
    assert_eq!(ID_CONFLICT, "id_conflict");
    let line = r#"{"type":"send_failed","id":"7.00000000000000ff","error":"id_conflict","retryable":false}"#;
    assert_eq!(
        decode_line::<GatewayEvent>(line).unwrap(),
        GatewayEvent::SendFailed {
            id: "7.00000000000000ff".into(),
            error: ID_CONFLICT.into(),
            retryable: false,
        }
    );
}

/// Lines of a gateway from before the acknowledged relay (`received` with no `id` and no
/// `expire_timer`, `sent` without a timestamp) are still read, and write back as they were.
#[test]
fn the_core_reads_lines_of_an_older_gateway() {
    let received = format!(
        r#"{{"type":"received","sender":"{OWNER}","device":1,"timestamp":5,"body":"x","sealed":false}}"#
    );
    assert_eq!(
        decode_line::<GatewayEvent>(&received).unwrap(),
        GatewayEvent::Received {
            id: None,
            sender: OWNER.into(),
            device: 1,
            timestamp: 5,
            body: "x".into(),
            sealed: false,
            expire_timer: 0,
        }
    );
    let sent = r#"{"type":"sent","id":"9"}"#;
    let read: GatewayEvent = decode_line(sent).unwrap();
    assert_eq!(
        read,
        GatewayEvent::Sent {
            id: "9".into(),
            timestamp: None,
        }
    );
    assert_eq!(encode_line(&read).unwrap(), format!("{sent}\n"));
    // Leniency is for fields that older gateways left out, not for anything unknown.
    for line in [
        r#"{"type":"sent","id":"9","extra":1}"#,
        r#"{"type":"received","sender":"a"}"#,
        r#"{"type":"delivered","id":"9"}"#,
    ] {
        assert!(decode_line::<GatewayEvent>(line).is_err(), "{line}");
    }
}

/// A sealed installation: the core writes `store_key` before anything else on the gateway's
/// connection, serves it as usual, and when the shutdown trigger fires (the core sealing or
/// stopping) writes `seal` before it closes. Unsealed (`store_key: None`), neither line is
/// ever written. Driven against the core's own `GatewaySocket` over a real socket.
#[tokio::test]
async fn a_sealed_core_hands_over_the_store_key_first_and_seals_on_shutdown() {
    use pane_agent::assembly::{Assembly, Providers};
    use pane_agent::auth::{Secret, SecretSet};
    use pane_agent::channels::signal::{bind, GatewaySocket};
    use pane_agent::providers::configured::{AnyAlias, AnyCard};
    use pane_agent::providers::memory::{MemoryAliases, MemoryCards};
    use pane_agent::redact::Redactor;
    use pane_agent::shutdown::Trigger;
    use pane_agent::store::Store;

    const KEY: &str = "5e884898da28047151d0e56f8dc6292773603d0d6aabbdd62a11ef721d1542d8";
    let dir = tempfile::tempdir().unwrap();
    let core = Assembly {
        store: Store::open(&dir.path().join("store")).unwrap(),
        config: Default::default(),
        secrets: SecretSet {
            current: Secret::new("gateway-protocol-test-secret-0123456789"),
            previous: Vec::new(),
        },
        redactor: Redactor::new(Vec::new()),
        mcp_key: None,
        seal: None,
        data_dir: dir.path().to_path_buf(),
        providers: Providers::only(
            AnyAlias::Memory(MemoryAliases::new()),
            AnyCard::Memory(MemoryCards::new()),
        ),
    }
    .start();
    for sealed in [true, false] {
        let path = dir.path().join(SOCKET_FILE);
        let socket = GatewaySocket {
            listener: bind(&path).unwrap(),
            path: path.clone(),
            gate: core.gate.clone(),
            outbox: core.outbox.clone(),
            owner: Some(OWNER.into()),
            tally: core.tally.clone(),
            signal: core.signal.clone(),
            mailbox: core.mailbox.clone(),
            store_key: sealed.then(|| Arc::new(zeroize::Zeroizing::new(KEY.to_string()))),
        };
        let trigger = Trigger::new();
        let (done, mut finished) = tokio::sync::mpsc::channel(1);
        let served = tokio::spawn(socket.run(trigger.clone(), done));
        let (reader, mut writer) = tokio::net::UnixStream::connect(&path)
            .await
            .unwrap()
            .into_split();
        let mut lines = BufReader::new(reader).lines();
        if sealed {
            let first = next_line(&mut lines).await.expect("a first line");
            assert_eq!(
                decode_line::<CoreCommand>(&first).unwrap(),
                CoreCommand::StoreKey {
                    passphrase: Passphrase::new(KEY.into())
                },
                "the store key comes first"
            );
        }
        // Then the connection is served as ever: a stranger's message is acknowledged.
        let stranger = GatewayEvent::Received {
            id: Some(message_id("stranger", 1, 5)),
            sender: "stranger".into(),
            device: 1,
            timestamp: 5,
            body: "hello".into(),
            sealed: false,
            expire_timer: 0,
        };
        writer
            .write_all(encode_line(&stranger).unwrap().as_bytes())
            .await
            .unwrap();
        let ack = next_line(&mut lines).await.expect("an ack");
        assert_eq!(
            decode_line::<CoreCommand>(&ack).unwrap(),
            CoreCommand::Ack {
                id: message_id("stranger", 1, 5)
            }
        );
        // The core seals (or stops): `seal`, then the end of the stream.
        trigger.fire();
        let mut rest = Vec::new();
        while let Some(line) = next_line(&mut lines).await {
            rest.push(decode_line::<CoreCommand>(&line).unwrap());
        }
        let expected = if sealed {
            vec![CoreCommand::Seal {}]
        } else {
            Vec::new()
        };
        assert_eq!(rest, expected, "sealed: {sealed}");
        served.await.unwrap();
        assert!(finished.recv().await.is_none(), "every connection ended");
    }
    drop(core.stop().await);
}

/// The core's next line to the test gateway (None at the end of the stream), within 5 s.
async fn next_line(
    lines: &mut tokio::io::Lines<BufReader<tokio::net::unix::OwnedReadHalf>>,
) -> Option<String> {
    tokio::time::timeout(Duration::from_secs(5), lines.next_line())
        .await
        .expect("a line within 5 s")
        .unwrap()
}
