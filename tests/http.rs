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
    assert_eq!(health, json!({"status": "ok"}));

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
