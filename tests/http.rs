//! The loopback HTTP endpoint for a Tor onion service: POST /command and GET /healthz.

mod common;

use common::Agent;
use serde_json::{json, Value};

fn with_http() -> (Agent, String) {
    let mut agent = Agent::init();
    let port = common::free_port();
    agent.write_config(
        &pane_agent::config::TEMPLATE
            .replace("listen = \"\"", &format!("listen = \"127.0.0.1:{port}\"")),
    );
    agent.spawn();
    (agent, format!("http://127.0.0.1:{port}"))
}

async fn post(base: &str, body: Vec<u8>) -> (u16, Value) {
    let r = reqwest::Client::new()
        .post(format!("{base}/command"))
        .header("content-type", "application/json")
        .body(body)
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    (status, r.json().await.unwrap())
}

#[tokio::test(flavor = "multi_thread")]
async fn commands_over_http_with_status_codes() {
    let (agent, base) = with_http();
    let health: Value = reqwest::get(format!("{base}/healthz"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(health, json!({"status": "ok", "signal": "not_configured"}));

    let (status, reply) = post(
        &base,
        agent.envelope("list", json!({})).to_json().into_bytes(),
    )
    .await;
    assert_eq!((status, reply["count"].clone()), (200, json!(0)));

    let env = agent
        .envelope("status", json!({"context": "notion"}))
        .to_json();
    let (status, reply) = post(&base, env.clone().into_bytes()).await;
    assert_eq!(status, 404);
    assert_eq!(reply["error"], "context not found: notion");
    let (status, reply) = post(&base, env.into_bytes()).await;
    assert_eq!((status, reply["kind"].as_str()), (409, Some("replayed")));

    let (status, reply) = post(
        &base,
        agent
            .envelope("grant", json!({"tool": "list"}))
            .to_json()
            .into_bytes(),
    )
    .await;
    assert_eq!(
        (status, reply["status"].as_str()),
        (202, Some("approval_required"))
    );

    let mut bad: Value =
        serde_json::from_str(&agent.envelope("list", json!({})).to_json()).unwrap();
    bad["cmd"] = json!("lockdown");
    let (status, reply) = post(&base, bad.to_string().into_bytes()).await;
    assert_eq!(
        (status, reply["kind"].as_str()),
        (401, Some("bad_signature"))
    );

    let (status, reply) = post(&base, b"{".to_vec()).await;
    assert_eq!((status, reply["kind"].as_str()), (400, Some("malformed")));

    let (status, reply) = post(&base, vec![b' '; 64 * 1024 + 1]).await;
    assert_eq!((status, reply["kind"].as_str()), (413, Some("too_large")));

    let r = reqwest::get(format!("{base}/admin")).await.unwrap();
    assert_eq!(r.status().as_u16(), 404);

    let events = agent.audit_events();
    assert!(
        events.iter().filter(|e| *e == "envelope.refused").count() >= 4,
        "{events:?}"
    );
    let http_entries = agent
        .audit()
        .iter()
        .filter(|e| e["channel"] == "http")
        .count();
    assert!(http_entries > 0, "entries name the http channel");
}

#[test]
fn http_listens_on_loopback_only() {
    let agent = Agent::init();
    agent.write_config(
        &pane_agent::config::TEMPLATE.replace("listen = \"\"", "listen = \"0.0.0.0:8080\""),
    );
    let out = agent.cli(&["run"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("loopback"));
}

/// `POST /command` with `Accept: text/plain`: the reply in the words the owner's phone gets
/// on Signal for the same command (the same text, byte for byte, with the same status code);
/// JSON stays the default.
#[tokio::test(flavor = "multi_thread")]
async fn the_reply_in_the_phones_words_when_asked_for_text() {
    const OWNER: &str = "7a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d";
    let mut agent = Agent::init();
    let port = common::free_port();
    agent.write_config(
        &pane_agent::config::TEMPLATE
            .replace("listen = \"\"", &format!("listen = \"127.0.0.1:{port}\""))
            .replace("owner = \"\"", &format!("owner = \"{OWNER}\"")),
    );
    agent.spawn();
    let base = format!("http://127.0.0.1:{port}");
    let mut gw = common::gateway::Gateway::connect(&agent, OWNER);
    let client = reqwest::Client::new();
    let ask = |body: String, accept: Option<&'static str>| {
        let mut request = client.post(format!("{base}/command")).body(body);
        if let Some(accept) = accept {
            request = request.header("accept", accept);
        }
        async move {
            let r = request.send().await.unwrap();
            let status = r.status().as_u16();
            let kind = r.headers()["content-type"].to_str().unwrap().to_string();
            (status, kind, r.text().await.unwrap())
        }
    };
    let tampered = |env: String| {
        let at = env.find("\"sig\":\"").unwrap() + 7;
        let flipped = if &env[at..at + 1] == "0" { "1" } else { "0" };
        format!("{}{flipped}{}", &env[..at], &env[at + 1..])
    };
    let cases: Vec<(&str, Value, bool, u16)> = vec![
        ("list", json!({}), false, 200),
        ("help", json!({}), false, 200),
        ("status", json!({"context": "nope"}), false, 404),
        ("revoke", json!({"tool": "transactions"}), false, 200),
        ("frobnicate", json!({}), false, 400),
        ("list", json!({}), true, 401),
    ];
    for (cmd, args, tamper, want_status) in cases {
        let mut over_http = agent.envelope(cmd, args.clone()).to_json();
        // Another millisecond: another envelope (the same one twice is a replay).
        std::thread::sleep(std::time::Duration::from_millis(3));
        let mut over_signal = agent.envelope(cmd, args).to_json();
        if tamper {
            over_http = tampered(over_http);
            over_signal = tampered(over_signal);
        }
        let (status, kind, text) = ask(over_http, Some("text/plain")).await;
        assert_eq!(status, want_status, "{cmd}: {text}");
        assert!(kind.starts_with("text/plain"), "{cmd}: {kind}");
        assert!(
            serde_json::from_str::<Value>(&text).is_err(),
            "{cmd}: JSON: {text}"
        );
        gw.received(OWNER, &over_signal);
        assert_eq!(text, gw.reply(), "{cmd}");
    }
    // An approval asked over HTTP: 202, and the words say to answer the prompt, which went to
    // the phone with the code (never in the reply).
    let env = agent
        .envelope("grant", json!({"tool": "transactions"}))
        .to_json();
    let (status, _, text) = ask(env, Some("text/plain")).await;
    assert_eq!(status, 202, "{text}");
    assert!(
        text.starts_with("⏳ grant: waiting for your approval: answer the prompt just sent"),
        "{text}"
    );
    let prompt = gw.reply();
    let code = common::gateway::code_in(&prompt);
    assert!(!text.contains(&code), "{text}");
    // JSON stays the default: no Accept, anything, or JSON preferred.
    for accept in [
        None,
        Some("*/*"),
        Some("application/json, text/plain;q=0.5"),
        Some("text/plain;q=0"),
    ] {
        let env = agent.envelope("list", json!({})).to_json();
        let (status, kind, text) = ask(env, accept).await;
        assert_eq!(status, 200);
        assert_eq!(kind, "application/json", "{accept:?}");
        let reply: Value = serde_json::from_str(&text).unwrap();
        assert_eq!(reply["count"], 0, "{accept:?}");
    }
    // Text preferred over JSON by its quality.
    let env = agent.envelope("list", json!({})).to_json();
    let (_, kind, text) = ask(env, Some("application/json;q=0.4, text/plain")).await;
    assert!(kind.starts_with("text/plain"), "{kind}");
    assert_eq!(text, common::gateway::NO_CONTEXTS);
    // Both at once, for the signer page: the words and the JSON of one reply.
    let env = agent
        .envelope("status", json!({"context": "nope"}))
        .to_json();
    let both_type = pane_agent::channels::http::REPLY_AND_WORDS;
    let (status, kind, text) = ask(env, Some(both_type)).await;
    assert_eq!((status, kind.as_str()), (404, both_type));
    let both: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(both["words"], "✗ status: context not found: nope", "{both}");
    assert_eq!(both["reply"]["kind"], "not_found", "{both}");
}
