//! Hostile inputs, table-driven, through every channel (control socket, HTTP, Signal
//! gateway): each gets a clear error of the right kind (or silence, for strangers on
//! Signal), changes nothing, and leaves nothing in the logs that should not be there.

mod common;

use chrono::{Duration as ChronoDuration, Utc};
use common::Agent;
use pane_agent::auth::{Envelope, Secret};
use pane_agent::gateway::protocol::{decode_line, encode_line, CoreCommand, GatewayEvent};
use serde_json::{json, Map, Value};
use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::UnixStream;
use std::time::{Duration, Instant};

const OWNER: &str = "0b5c6a5e-2f6e-4a7b-9d35-6a1c1f1f2c3d";
const STRANGER: &str = "9f0e1d2c-3b4a-4596-8877-665544332211";

fn obj(v: Value) -> Map<String, Value> {
    v.as_object().cloned().unwrap()
}

/// Signs `cmd` with `args` as JSON text, then lets `edit` change the envelope's text.
fn signed(secret: &Secret, cmd: &str, args: Value, edit: impl Fn(String) -> String) -> Vec<u8> {
    edit(Envelope::sign(secret, Utc::now(), cmd, obj(args)).to_json()).into_bytes()
}

/// The table: (name, bytes, expected error kind). Built fresh for each channel, so that
/// time-sensitive entries are current.
fn table(secret: &Secret) -> Vec<(String, Vec<u8>, &'static str)> {
    let s = secret;
    let id = |x: String| x;
    let wrong = Secret::new(&"w".repeat(64));
    let mut t: Vec<(String, Vec<u8>, &'static str)> = vec![
        ("empty".into(), vec![], "malformed"),
        ("whitespace".into(), b"   \n\t ".to_vec(), "malformed"),
        ("not json".into(), b"lockdown".to_vec(), "malformed"),
        ("json array".into(), b"[]".to_vec(), "malformed"),
        ("json string".into(), b"\"lockdown\"".to_vec(), "malformed"),
        ("json null".into(), b"null".to_vec(), "malformed"),
        (
            "nul byte".into(),
            b"{\"ts\":\"x\0\",\"cmd\":\"list\",\"args\":{},\"sig\":\"00\"}".to_vec(),
            "malformed",
        ),
        (
            "invalid utf-8".into(),
            vec![b'{', 0xc3, 0x28, b'}'],
            "malformed",
        ),
        (
            "overlong utf-8".into(),
            vec![b'"', 0xc0, 0xaf, b'"'],
            "malformed",
        ),
        (
            "truncated".into(),
            b"{\"ts\":\"2026-11-22T10:00:00Z\",\"cmd\":".to_vec(),
            "malformed",
        ),
        ("oversized".into(), vec![b' '; 64 * 1024 + 1], "too_large"),
        (
            "oversized args".into(),
            signed(s, "status", json!({"context": "x".repeat(70_000)}), id),
            "too_large",
        ),
        (
            "deep nesting".into(),
            format!("{}{}", "[".repeat(5000), "]".repeat(5000)).into_bytes(),
            "malformed",
        ),
        (
            "deep args".into(),
            format!(
                "{{\"ts\":\"x\",\"cmd\":\"list\",\"args\":{{\"a\":{}1{}}},\"sig\":\"00\"}}",
                "[".repeat(200),
                "]".repeat(200)
            )
            .into_bytes(),
            "malformed",
        ),
        (
            "huge integer".into(),
            signed(s, "audit", json!({}), |e| {
                e.replace(
                    "\"args\":{}",
                    "\"args\":{\"limit\":123456789012345678901234567890}",
                )
            }),
            "malformed",
        ),
        (
            "negative huge".into(),
            signed(s, "audit", json!({}), |e| {
                e.replace("\"args\":{}", "\"args\":{\"limit\":-99999999999999999999}")
            }),
            "malformed",
        ),
        (
            "float overflow".into(),
            signed(s, "audit", json!({}), |e| {
                e.replace("\"args\":{}", "\"args\":{\"limit\":1e400}")
            }),
            "malformed",
        ),
        (
            "duplicate key".into(),
            signed(s, "list", json!({}), |e| {
                e.replacen(
                    "\"cmd\":\"list\"",
                    "\"cmd\":\"list\",\"cmd\":\"lockdown\"",
                    1,
                )
            }),
            "malformed",
        ),
        (
            "duplicate arg".into(),
            signed(s, "status", json!({"context": "a"}), |e| {
                e.replace(
                    "{\"context\":\"a\"}",
                    "{\"context\":\"a\",\"context\":\"b\"}",
                )
            }),
            "malformed",
        ),
        (
            "unknown field".into(),
            signed(s, "list", json!({}), |e| {
                e.replacen('{', "{\"extra\":1,", 1)
            }),
            "malformed",
        ),
        (
            "args not object".into(),
            signed(s, "list", json!({}), |e| {
                e.replace("\"args\":{}", "\"args\":[]")
            }),
            "malformed",
        ),
        (
            "cmd not string".into(),
            signed(s, "list", json!({}), |e| {
                e.replace("\"cmd\":\"list\"", "\"cmd\":7")
            }),
            "malformed",
        ),
        (
            "sig too short".into(),
            signed(s, "list", json!({}), |e| {
                e.replace("\"sig\":\"", "\"sig\":\"00")
                    .chars()
                    .take(40)
                    .collect::<String>()
                    + "\"}"
            }),
            "malformed",
        ),
        (
            "sig not hex".into(),
            signed(s, "list", json!({}), |e| {
                let i = e.find("\"sig\":\"").unwrap() + 7;
                format!("{}zz{}", &e[..i], &e[i + 2..])
            }),
            "malformed",
        ),
        (
            "ts garbage".into(),
            signed(s, "list", json!({}), |e| {
                let v: Value = serde_json::from_str(&e).unwrap();
                e.replace(v["ts"].as_str().unwrap(), "yesterday")
            }),
            "malformed",
        ),
        (
            "stale".into(),
            Envelope::sign(
                s,
                Utc::now() - ChronoDuration::seconds(400),
                "lockdown",
                Map::new(),
            )
            .to_json()
            .into_bytes(),
            "expired",
        ),
        (
            "far future".into(),
            Envelope::sign(
                s,
                Utc::now() + ChronoDuration::days(365),
                "lockdown",
                Map::new(),
            )
            .to_json()
            .into_bytes(),
            "expired",
        ),
        (
            "just future".into(),
            Envelope::sign(
                s,
                Utc::now() + ChronoDuration::seconds(305),
                "lockdown",
                Map::new(),
            )
            .to_json()
            .into_bytes(),
            "expired",
        ),
        (
            "wrong key".into(),
            Envelope::sign(&wrong, Utc::now(), "lockdown", Map::new())
                .to_json()
                .into_bytes(),
            "bad_signature",
        ),
        (
            "tampered cmd".into(),
            signed(s, "list", json!({}), |e| {
                e.replace("\"cmd\":\"list\"", "\"cmd\":\"lockdown\"")
            }),
            "bad_signature",
        ),
        (
            "tampered args".into(),
            signed(s, "revoke", json!({"tool": "list"}), |e| {
                e.replace("\"list\"", "\"audit\"")
            }),
            "bad_signature",
        ),
        (
            "tampered ts".into(),
            signed(s, "list", json!({}), |e| {
                let v: Value = serde_json::from_str(&e).unwrap();
                let ts = v["ts"].as_str().unwrap().to_string();
                e.replace(&ts, &ts.replace('Z', "+00:00"))
            }),
            "bad_signature",
        ),
        (
            "zero sig".into(),
            signed(s, "list", json!({}), |e| {
                let v: Value = serde_json::from_str(&e).unwrap();
                e.replace(v["sig"].as_str().unwrap(), &"0".repeat(64))
            }),
            "bad_signature",
        ),
        (
            "unknown command".into(),
            signed(s, "rm -rf", json!({}), id),
            "unknown_command",
        ),
        (
            "command injection".into(),
            signed(s, "list; lockdown", json!({}), id),
            "unknown_command",
        ),
        (
            "header injection in context".into(),
            signed(s, "status", json!({"context": "a\r\nX-Evil: 1"}), id),
            "invalid_args",
        ),
        (
            "confusable context".into(),
            signed(s, "status", json!({"context": "nоtion"}), id),
            "invalid_args",
        ),
        (
            "uppercase context".into(),
            signed(s, "status", json!({"context": "Notion"}), id),
            "invalid_args",
        ),
        (
            "path in context".into(),
            signed(s, "status", json!({"context": "../../etc/passwd"}), id),
            "invalid_args",
        ),
        (
            "nul in context".into(),
            signed(s, "status", json!({"context": "a\u{0}b"}), id),
            "invalid_args",
        ),
        (
            "bidi in context".into(),
            signed(s, "status", json!({"context": "a\u{202e}b"}), id),
            "invalid_args",
        ),
        (
            "number as context".into(),
            signed(s, "status", json!({"context": 5}), id),
            "invalid_args",
        ),
        (
            "negative limit".into(),
            signed(s, "audit", json!({"limit": -1}), id),
            "invalid_args",
        ),
        (
            "limit out of range".into(),
            signed(s, "audit", json!({"limit": 1_000_000}), id),
            "invalid_args",
        ),
        (
            "bad amount".into(),
            signed(s, "card.fund", json!({"context": "x", "limit": "1e9"}), id),
            "invalid_args",
        ),
        (
            "amount with 3 decimals".into(),
            signed(
                s,
                "card.fund",
                json!({"context": "x", "limit": "1.005"}),
                id,
            ),
            "invalid_args",
        ),
        (
            "unexpected argument".into(),
            signed(s, "lockdown", json!({"now": true}), id),
            "invalid_args",
        ),
        (
            "approval code for nothing".into(),
            signed(s, "approve", json!({"code": "ABCDE-FGHJK"}), id),
            "approval_invalid",
        ),
        (
            "approval code malformed".into(),
            signed(s, "approve", json!({"code": "0OIL1-0OIL1"}), id),
            "invalid_args",
        ),
        (
            "deny code for nothing".into(),
            signed(s, "deny", json!({"code": "ZZZZZ-ZZZZZ"}), id),
            "approval_invalid",
        ),
        (
            "grant a control".into(),
            signed(s, "grant", json!({"tool": "approve"}), id),
            "invalid_args",
        ),
        (
            "grant unknown tool".into(),
            signed(s, "grant", json!({"tool": "root"}), id),
            "not_found",
        ),
    ];
    // A replay of the first envelope that is accepted.
    let first = Envelope::sign(s, Utc::now(), "help", Map::new())
        .to_json()
        .into_bytes();
    t.push(("accepted once".into(), first.clone(), "ok"));
    t.push(("replayed".into(), first, "replayed"));
    t
}

/// State that no hostile input may change.
fn state(agent: &Agent) -> Value {
    json!({
        "grants": agent.send("help", json!({}))["commands"].as_array().unwrap().iter().map(|c| c["granted"].clone()).collect::<Vec<_>>(),
        "approvals": agent.send("approvals", json!({}))["count"],
        "contexts": agent.send("list", json!({}))["count"],
    })
}

fn kind_of(reply: &Value) -> &str {
    if reply.get("error").is_some() {
        reply["kind"].as_str().unwrap_or("?")
    } else {
        "ok"
    }
}

fn agent() -> (Agent, String) {
    let mut agent = Agent::init();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    agent.write_config(
        &pane_agent::config::TEMPLATE
            .replace("listen = \"\"", &format!("listen = \"127.0.0.1:{port}\""))
            .replace("owner = \"\"", &format!("owner = \"{OWNER}\""))
            .replace(
                "read = { max = 120, window_secs = 60 }",
                "read = { max = 10000, window_secs = 60 }",
            ),
    );
    agent.spawn();
    (agent, format!("http://127.0.0.1:{port}/command"))
}

fn check_nothing_leaked(agent: &mut Agent) {
    let secret = agent.secret().as_text();
    agent.stop();
    let logs = agent.logs();
    for i in 0..secret.len() - 16 {
        assert!(
            !logs.contains(&secret[i..i + 16]),
            "the secret reached the log"
        );
    }
    assert!(
        !logs.contains("X-Evil"),
        "header text from an input reached the log"
    );
}

#[test]
fn hostile_inputs_on_the_control_socket() {
    let (mut agent, _) = agent();
    let before = state(&agent);
    let rows = table(&agent.secret());
    assert!(rows.len() >= 40);
    for (name, bytes, want) in &rows {
        let reply = agent.raw(bytes);
        assert_eq!(kind_of(&reply), *want, "{name}: {reply}");
    }
    assert_eq!(state(&agent), before);
    check_nothing_leaked(&mut agent);
}

#[tokio::test(flavor = "multi_thread")]
async fn hostile_inputs_over_http() {
    let (mut agent, url) = agent();
    let before = state(&agent);
    let client = reqwest::Client::new();
    for (name, bytes, want) in table(&agent.secret()) {
        let r = client.post(&url).body(bytes).send().await.unwrap();
        let status = r.status().as_u16();
        let reply: Value = r
            .json()
            .await
            .unwrap_or_else(|e| panic!("{name}: not JSON: {e}"));
        assert_eq!(kind_of(&reply), want, "{name}: {reply}");
        assert_eq!(status >= 400, want != "ok", "{name}: status {status}");
    }
    assert_eq!(state(&agent), before);
    check_nothing_leaked(&mut agent);
}

/// Writes `body` as received from the stranger, then from the owner.
fn send_from_both(writer: &mut UnixStream, body: &str) {
    for sender in [STRANGER, OWNER] {
        let e = GatewayEvent::Received {
            id: None,
            sender: sender.into(),
            device: 1,
            timestamp: 1,
            body: body.to_string(),
            sealed: true,
            expire_timer: 0,
        };
        writer
            .write_all(encode_line(&e).unwrap().as_bytes())
            .unwrap();
    }
}

/// The next message the core sends on the gateway socket, acknowledged as sent; panics
/// after 10 s (`what` names what was waited for).
fn next_reply(reader: &mut BufReader<UnixStream>, writer: &mut UnixStream, what: &str) -> String {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).is_ok() && !line.is_empty() {
            let CoreCommand::Send { id, body, .. } = decode_line(&line).unwrap() else {
                continue;
            };
            writer
                .write_all(
                    encode_line(&GatewayEvent::Sent {
                        id,
                        timestamp: None,
                    })
                    .unwrap()
                    .as_bytes(),
                )
                .unwrap();
            return body;
        }
        assert!(Instant::now() < deadline, "{what}: no reply");
    }
}

#[test]
fn hostile_inputs_over_signal() {
    let (mut agent, _) = agent();
    let before = state(&agent);
    let s = UnixStream::connect(agent.dir.join("gateway.sock")).unwrap();
    s.set_read_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    let mut writer = s.try_clone().unwrap();
    let mut reader = BufReader::new(s);
    let mut checked = 0;
    // Signal carries text: the envelope-shaped rows (other text gets the short help).
    for (name, bytes, want) in table(&agent.secret()) {
        let Ok(body) = String::from_utf8(bytes) else {
            continue;
        };
        if !body.starts_with('{') || body.len() > 60_000 {
            continue;
        }
        send_from_both(&mut writer, &body);
        // Exactly one reply: the owner's. The stranger's copy gets nothing.
        let reply = next_reply(&mut reader, &mut writer, &name);
        // Signal replies are words: an error is `✗ <what>: <why>`, never JSON (the socket
        // and HTTP rows above check the error's kind).
        assert!(
            serde_json::from_str::<Value>(&reply).is_err(),
            "{name}: JSON on Signal: {reply}"
        );
        let refused = reply.starts_with("✗ ") && reply.contains(": ");
        assert_eq!(refused, want != "ok", "{name}: {reply}");
        checked += 1;
    }
    assert!(checked >= 40, "{checked} rows went through Signal");
    // No extra reply: a plain-text marker, sent as each row was (the stranger's copy, then
    // the owner's), is answered after every reply queued before it, so the next reply is the
    // marker's note on how to sign.
    send_from_both(&mut writer, "marker");
    let reply = next_reply(&mut reader, &mut writer, "the marker");
    assert!(
        reply.contains("Send a signed command envelope"),
        "an extra reply: {reply}"
    );
    assert_eq!(state(&agent), before);
    check_nothing_leaked(&mut agent);
}
