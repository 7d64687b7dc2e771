//! The relay protocol has two copies of its message shapes on purpose: the core's
//! (`pane_agent::gateway::protocol`, which also reads lines of a gateway from before the
//! acknowledged relay) and the gateway's (`signal/src/protocol.rs`, strict: it is built on its
//! own, with its own lock and git dependencies, and refuses anything it does not know). This
//! test compiles the gateway's copy into the root crate's tests and holds the two to one
//! protocol: every line either side writes is read by the other as the same message. A change
//! to one copy that the other does not follow fails here, before any build of `signal/`.

#[path = "../signal/src/protocol.rs"]
#[allow(dead_code)]
mod gateway_side;

use pane_agent::gateway::protocol as core_side;
use serde_json::Value;

const OWNER: &str = "0b5c6a5e-2f6e-4a7b-9d35-6a1c1f1f2c3d";

fn json_of(line: &str) -> Value {
    serde_json::from_str(line.trim_end()).unwrap_or_else(|e| panic!("{e}: {line}"))
}

#[test]
fn both_sides_allow_the_same_line_length() {
    assert_eq!(core_side::MAX_LINE_BYTES, gateway_side::MAX_LINE_BYTES);
}

/// The refusal of a send under a used id is one error text on both sides: the core acts on
/// it (a new id, an alert) instead of retrying it as an ordinary failure.
#[test]
fn both_sides_name_an_id_conflict_alike() {
    assert_eq!(core_side::ID_CONFLICT, gateway_side::ID_CONFLICT);
    let line = gateway_side::encode_line(&gateway_side::GatewayEvent::SendFailed {
        id: "7.00000000000000ff".into(),
        error: gateway_side::ID_CONFLICT.into(),
        retryable: false,
    })
    .unwrap();
    assert_eq!(
        core_side::decode_line::<core_side::GatewayEvent>(&line).unwrap(),
        core_side::GatewayEvent::SendFailed {
            id: "7.00000000000000ff".into(),
            error: core_side::ID_CONFLICT.into(),
            retryable: false,
        }
    );
}

/// What the gateway writes, the core reads as the same message.
#[test]
fn every_gateway_event_reads_the_same_in_the_core() {
    use gateway_side::GatewayEvent as G;
    let events = [
        G::Received {
            id: gateway_side::message_id(OWNER, 2, 1_700_000_000_123),
            sender: OWNER.into(),
            device: 2,
            timestamp: 1_700_000_000_123,
            body: "{\"ts\":\"…\",\"cmd\":\"list\"} é ☃\nline two".into(),
            sealed: true,
            expire_timer: 604_800,
        },
        G::Reaction {
            id: gateway_side::message_id(OWNER, 1, 1_700_000_000_200),
            sender: OWNER.into(),
            emoji: "👍🏽".into(),
            target_timestamp: 1_700_000_000_150,
            remove: false,
        },
        G::IdentityChanged {
            sender: OWNER.into(),
        },
        G::Sent {
            id: "42".into(),
            timestamp: 1_700_000_000_300,
        },
        G::SendFailed {
            id: "43".into(),
            error: gateway_side::IDENTITY_CHANGED.into(),
            retryable: false,
        },
    ];
    for event in events {
        let line = gateway_side::encode_line(&event).unwrap();
        let read: core_side::GatewayEvent = core_side::decode_line(&line)
            .unwrap_or_else(|e| panic!("the core refused {line}: {e}"));
        let again = core_side::encode_line(&read).unwrap();
        assert_eq!(json_of(&again), json_of(&line), "{line}");
        // And the gateway reads its own line back unchanged.
        let own: gateway_side::GatewayEvent = gateway_side::decode_line(&line).unwrap();
        assert_eq!(own, event);
    }
    assert_eq!(
        gateway_side::message_id(OWNER, 2, 7),
        format!("{OWNER}.2.7"),
        "the id the docs define"
    );
}

/// What the core writes, the strict gateway reads as the same message.
#[test]
fn every_core_command_reads_the_same_in_the_gateway() {
    use core_side::CoreCommand as C;
    let commands = [
        C::Send {
            id: "17".into(),
            recipient: OWNER.into(),
            body: "2 contexts:\n• notion · n7x@alias.io · card 4242 paused".into(),
            timestamp: 1_700_000_000_400,
            expire_timer: Some(3600),
        },
        C::Send {
            id: "18".into(),
            recipient: OWNER.into(),
            body: "✗ status: context not found: nope".into(),
            timestamp: 1_700_000_000_401,
            expire_timer: None,
        },
        C::Ack {
            id: format!("{OWNER}.1.1700000000001"),
        },
    ];
    for command in commands {
        let line = core_side::encode_line(&command).unwrap();
        let read: gateway_side::CoreCommand = gateway_side::decode_line(&line)
            .unwrap_or_else(|e| panic!("the gateway refused {line}: {e}"));
        let again = gateway_side::encode_line(&read).unwrap();
        assert_eq!(json_of(&again), json_of(&line), "{line}");
    }
}

/// The core's leniency is one way only: lines of a gateway from before the acknowledged
/// relay (no `id`, no `expire_timer`, `sent` without a timestamp) are read by the core, and
/// the strict gateway would never write them.
#[test]
fn only_the_core_reads_lines_of_an_older_gateway() {
    let old = [
        r#"{"type":"received","sender":"a","device":1,"timestamp":5,"body":"x","sealed":false}"#,
        r#"{"type":"sent","id":"9"}"#,
    ];
    for line in old {
        assert!(
            core_side::decode_line::<core_side::GatewayEvent>(line).is_ok(),
            "{line}"
        );
        assert!(
            gateway_side::decode_line::<gateway_side::GatewayEvent>(line).is_err(),
            "{line}"
        );
    }
}
