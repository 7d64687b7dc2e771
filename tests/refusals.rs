//! Bad envelopes get a clear error naming the kind, and change nothing: tampered, expired,
//! future, replayed, wrong-key, oversized, malformed, unknown command.

mod common;

use chrono::{Duration, Utc};
use common::{assert_error, Agent};
use pane_agent::auth::{Envelope, Secret};
use serde_json::{json, Map, Value};

/// What a refused envelope must not have touched: grants, approvals, the outbox-visible
/// state, and the audit beyond its own `envelope.refused` entries.
fn snapshot(agent: &Agent) -> (Value, Value, Value) {
    let help = agent.send("help", json!({}));
    let approvals = agent.send("approvals", json!({}));
    let list = agent.send("list", json!({}));
    (
        help["commands"].clone(),
        approvals["pending"].clone(),
        list["contexts"].clone(),
    )
}

fn args(v: Value) -> Map<String, Value> {
    v.as_object().cloned().unwrap()
}

#[test]
fn every_bad_envelope_is_refused_with_its_kind_and_nothing_changes() {
    let agent = Agent::start();
    let secret = agent.secret();
    let before = snapshot(&agent);
    let events_before = agent.audit_events().len();

    let now = Utc::now();
    let good = Envelope::sign(&secret, now, "revoke", args(json!({"tool": "list"})));

    let mut tampered: Value = serde_json::from_str(&good.to_json()).unwrap();
    tampered["args"]["tool"] = json!("status");
    let expired = Envelope::sign(
        &secret,
        now - Duration::seconds(301),
        "lockdown",
        Map::new(),
    );
    let future = Envelope::sign(
        &secret,
        now + Duration::seconds(302),
        "lockdown",
        Map::new(),
    );
    let wrong_key = Envelope::sign(&Secret::new(&"0".repeat(64)), now, "lockdown", Map::new());
    let oversized = {
        let big = "x".repeat(70 * 1024);
        Envelope::sign(&secret, now, "status", args(json!({"context": big}))).to_json()
    };
    let mut bad_sig_hex: Value = serde_json::from_str(&good.to_json()).unwrap();
    bad_sig_hex["sig"] = json!("zz");

    let cases: Vec<(&str, Vec<u8>, &str)> = vec![
        ("tampered args", tampered.to_string().into_bytes(), "bad_signature"),
        ("expired", expired.to_json().into_bytes(), "expired"),
        ("future", future.to_json().into_bytes(), "expired"),
        ("wrong key", wrong_key.to_json().into_bytes(), "bad_signature"),
        ("oversized", oversized.into_bytes(), "too_large"),
        ("not json", b"lockdown please".to_vec(), "malformed"),
        ("not utf-8", vec![0xff, 0xfe, b'{', b'}'], "malformed"),
        ("array", b"[1,2]".to_vec(), "malformed"),
        ("empty", Vec::new(), "malformed"),
        ("missing sig", br#"{"ts":"2026-11-22T10:00:00Z","cmd":"lockdown","args":{}}"#.to_vec(), "malformed"),
        ("sig not hex", bad_sig_hex.to_string().into_bytes(), "malformed"),
        ("bad ts", br#"{"ts":"yesterday","cmd":"lockdown","args":{},"sig":"00000000000000000000000000000000000000000000000000000000000000000"}"#.to_vec(), "malformed"),
        ("duplicate key", format!(r#"{{"ts":"{}","cmd":"lockdown","cmd":"list","args":{{}},"sig":"{}"}}"#, good.ts, good.sig_hex()).into_bytes(), "malformed"),
        ("args not object", format!(r#"{{"ts":"{}","cmd":"lockdown","args":[1],"sig":"{}"}}"#, good.ts, good.sig_hex()).into_bytes(), "malformed"),
        ("huge integer", format!(r#"{{"ts":"{}","cmd":"audit","args":{{"limit":99999999999999999999999}},"sig":"{}"}}"#, good.ts, good.sig_hex()).into_bytes(), "malformed"),
    ];
    for (name, bytes, kind) in &cases {
        let reply = agent.raw(bytes);
        assert_eq!(reply["kind"].as_str(), Some(*kind), "{name}: {reply}");
    }

    assert_eq!(snapshot(&agent), before, "a refused envelope changed state");
    let events = agent.audit_events();
    let added: Vec<&String> = events[events_before..]
        .iter()
        .filter(|e| {
            !matches!(
                e.as_str(),
                "envelope.refused" | "envelope.accepted" | "policy.allow" | "action.ok"
            )
        })
        .collect();
    assert!(added.is_empty(), "unexpected audit events: {added:?}");
    let refused = events[events_before..]
        .iter()
        .filter(|e| *e == "envelope.refused")
        .count();
    assert_eq!(
        refused,
        cases.len(),
        "every refusal is audited with its reason"
    );
    // The untampered original still works: nothing above consumed its signature.
    assert_eq!(agent.raw(good.to_json().as_bytes())["status"], "revoked");
}

#[test]
fn replay_is_refused_and_unknown_commands_are_named() {
    let agent = Agent::start();
    let env = agent.envelope("revoke", json!({"tool": "audit"}));
    assert_eq!(agent.raw(env.to_json().as_bytes())["status"], "revoked");
    let again = agent.raw(env.to_json().as_bytes());
    assert_error(&again, "replayed");
    assert!(again["error"].as_str().unwrap().contains("replayed"));
    // Reformatted (whitespace, key order, upper-case hex) is still the same signature.
    let v: Value = serde_json::from_str(&env.to_json()).unwrap();
    let reformatted = format!(
        "{{ \"sig\": \"{}\",\n \"args\": {},  \"cmd\": \"revoke\", \"ts\": \"{}\" }}",
        v["sig"].as_str().unwrap().to_uppercase(),
        v["args"],
        v["ts"].as_str().unwrap()
    );
    assert_error(&agent.raw(reformatted.as_bytes()), "replayed");

    let unknown = agent.send("launch-missiles", json!({}));
    assert_error(&unknown, "unknown_command");
    assert!(unknown["error"]
        .as_str()
        .unwrap()
        .starts_with("unknown command: launch-missiles"));
    assert_error(&agent.send("status", json!({})), "invalid_args");
    assert_error(
        &agent.send("status", json!({"context": "x", "extra": 1})),
        "invalid_args",
    );
    assert_eq!(
        agent.send("status", json!({"context": "nowhere"})),
        json!({"error": "context not found: nowhere", "kind": "not_found"})
    );
}

#[test]
fn previous_secrets_are_accepted_for_rotation() {
    let mut agent = Agent::init();
    let old = "o".repeat(64);
    let older = "q".repeat(40);
    agent
        .env
        .push(("AGENT_SECRET_PREVIOUS".into(), old.clone()));
    let template = pane_agent::config::TEMPLATE.replace(
        "previous_secrets = []",
        &format!("previous_secrets = [\"{older}\"]"),
    );
    agent.write_config(&template);
    agent.spawn();
    for secret in [old.as_str(), older.as_str()] {
        let env = Envelope::sign(&Secret::new(secret), Utc::now(), "list", Map::new());
        let reply = agent.raw(env.to_json().as_bytes());
        assert!(reply.get("error").is_none(), "{reply}");
    }
    let env = Envelope::sign(
        &Secret::new(&"n".repeat(64)),
        Utc::now(),
        "list",
        Map::new(),
    );
    assert_error(&agent.raw(env.to_json().as_bytes()), "bad_signature");
}
