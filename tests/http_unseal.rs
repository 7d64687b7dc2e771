//! The loopback HTTP endpoint of a sealed installation (issue #23): `GET /healthz` says
//! `sealed` until the owner unseals, `POST /unseal` takes the passphrase (403 for a wrong one,
//! 429 for one too soon after it, 400 malformed, 413 too large, 409 on an installation that is
//! not sealed), and `POST /command` answers 503 `sealed` and changes nothing while sealed. The
//! passphrase is never in the daemon's log nor in any file of the data dir.

mod common;

use common::{Agent, PASSPHRASE};
use pane_agent::auth::{Envelope, Secret};
use serde_json::{json, Value};
use std::path::Path;
use std::time::Duration;

const WRONG: &str = "not the unseal passphrase at all";

/// An agent with the HTTP endpoint on a free loopback port (not started), and its base URL.
fn with_http(agent: &Agent) -> String {
    let port = common::free_port();
    agent.write_config(
        &pane_agent::config::TEMPLATE
            .replace("listen = \"\"", &format!("listen = \"127.0.0.1:{port}\"")),
    );
    format!("http://127.0.0.1:{port}")
}

async fn request(base: &str, method: &str, path: &str, body: Vec<u8>) -> (u16, Value) {
    let client = reqwest::Client::new();
    let url = format!("{base}{path}");
    let r = match method {
        "GET" => client.get(url),
        _ => client
            .post(url)
            .header("content-type", "application/json")
            .body(body),
    }
    .send()
    .await
    .unwrap();
    let status = r.status().as_u16();
    let text = r.text().await.unwrap();
    let json = serde_json::from_str(&text)
        .unwrap_or_else(|e| panic!("{method} {path}: {status} {text:?} is not JSON: {e}"));
    (status, json)
}

async fn healthz(base: &str) -> (u16, Value) {
    request(base, "GET", "/healthz", Vec::new()).await
}

async fn unseal(base: &str, passphrase: &str) -> (u16, Value) {
    let body = json!({ "passphrase": passphrase }).to_string().into_bytes();
    request(base, "POST", "/unseal", body).await
}

async fn command(base: &str, envelope: &Envelope) -> (u16, Value) {
    request(base, "POST", "/command", envelope.to_json().into_bytes()).await
}

/// The command secret, as `signer-qr` hands it to the phone (only an unsealed agent answers).
fn command_secret(agent: &Agent) -> Secret {
    let r = agent.raw(br#"{"local": "command_secret"}"#);
    Secret::new(r["secret"].as_str().unwrap_or_else(|| panic!("{r}")))
}

fn sign(secret: &Secret, cmd: &str, args: Value) -> Envelope {
    let args = args.as_object().cloned().unwrap_or_default();
    Envelope::sign(secret, chrono::Utc::now(), cmd, args)
}

/// Every file under `dir` that holds `needle`.
fn files_holding(dir: &Path, needle: &str) -> Vec<String> {
    let mut found = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(path) = stack.pop() {
        if path.is_dir() {
            stack.extend(std::fs::read_dir(&path).unwrap().map(|e| e.unwrap().path()));
        } else if let Ok(bytes) = std::fs::read(&path) {
            if bytes.windows(needle.len()).any(|w| w == needle.as_bytes()) {
                found.push(path.display().to_string());
            }
        }
    }
    found
}

#[tokio::test(flavor = "multi_thread")]
async fn a_sealed_agent_answers_only_an_unseal_over_http() {
    let mut agent = Agent::init_sealed();
    let base = with_http(&agent);
    agent.spawn();

    assert_eq!(healthz(&base).await, (503, json!({"status": "sealed"})));
    // Whatever comes to /command while sealed is not even read.
    let (status, reply) = request(&base, "POST", "/command", b"{".to_vec()).await;
    assert_eq!(
        (status, reply["kind"].as_str()),
        (503, Some("sealed")),
        "{reply}"
    );

    // Bodies that are not an unseal request are refused without counting as an attempt.
    for body in [
        &b"{"[..],
        b"",
        b"passphrase",
        br#"{"passphrase": 42}"#,
        br#"{"pass": "correct horse"}"#,
        br#"{"passphrase": "x", "also": 1}"#,
    ] {
        let (status, reply) = request(&base, "POST", "/unseal", body.to_vec()).await;
        assert_eq!(
            (status, reply["kind"].as_str()),
            (400, Some("malformed")),
            "{:?}: {reply}",
            String::from_utf8_lossy(body)
        );
    }
    // 4096 bytes is read (and is no JSON); one more is too large.
    let (status, reply) = request(&base, "POST", "/unseal", vec![b' '; 4096]).await;
    assert_eq!((status, reply["kind"].as_str()), (400, Some("malformed")));
    let mut big = format!("{{\"passphrase\": \"{PASSPHRASE}");
    big.push_str(&"x".repeat(4097 - big.len() - 2));
    big.push_str("\"}");
    assert_eq!(big.len(), 4097);
    let (status, reply) = request(&base, "POST", "/unseal", big.into_bytes()).await;
    assert_eq!(
        (status, reply["kind"].as_str()),
        (413, Some("too_large")),
        "{reply}"
    );
    assert_eq!(healthz(&base).await.0, 503);

    // A wrong passphrase: 403 and a delay; the right one at once is too soon, and not tried.
    let (status, reply) = unseal(&base, WRONG).await;
    assert_eq!(status, 403, "{reply}");
    assert_eq!(reply["kind"], "wrong_passphrase", "{reply}");
    assert_eq!(reply["retry_after_secs"], 1, "{reply}");
    assert!(reply["error"]
        .as_str()
        .unwrap()
        .contains("wrong passphrase"));
    assert_eq!(healthz(&base).await, (503, json!({"status": "sealed"})));
    let (status, reply) = unseal(&base, PASSPHRASE).await;
    assert_eq!(status, 429, "{reply}");
    assert_eq!(reply["kind"], "rate_limited", "{reply}");
    // Less than the 1 s delay is left: rounded up to 1.
    let wait = reply["retry_after_secs"].as_u64().unwrap();
    assert_eq!(wait, 1, "{reply}");
    assert_eq!(healthz(&base).await, (503, json!({"status": "sealed"})));

    // After the delay, the right passphrase: unsealed, and the wrong one is told.
    tokio::time::sleep(Duration::from_secs(wait) + Duration::from_millis(100)).await;
    let (status, reply) = unseal(&base, PASSPHRASE).await;
    assert_eq!(status, 200, "{reply}");
    assert_eq!(reply["status"], "unsealed", "{reply}");
    assert_eq!(reply["failed_attempts"], 1, "{reply}");
    assert!(reply["imported"].is_array(), "{reply}");
    assert_eq!(
        healthz(&base).await,
        (200, json!({"status": "ok", "signal": "not_configured"}))
    );
    let (status, reply) = unseal(&base, PASSPHRASE).await;
    assert_eq!(
        (status, reply["status"].as_str()),
        (200, Some("already_unsealed")),
        "{reply}"
    );

    // The owner seals it again (`seal`, signed as the phone signs)...
    let secret = command_secret(&agent);
    let (status, reply) = command(&base, &sign(&secret, "seal", json!({}))).await;
    assert_eq!(
        (status, reply["status"].as_str()),
        (200, Some("sealing")),
        "{reply}"
    );
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while healthz(&base).await.0 != 503 {
        assert!(std::time::Instant::now() < deadline, "never sealed");
        // The poll interval of this bounded wait for the seal.
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // ...and while it is sealed, a valid envelope gets 503 and does nothing: no lockdown, no
    // audit entry, not even a mark in the replay cache.
    let lockdown = sign(&secret, "lockdown", json!({}));
    let (status, reply) = command(&base, &lockdown).await;
    assert_eq!(
        (status, reply["kind"].as_str()),
        (503, Some("sealed")),
        "{reply}"
    );
    let probe = sign(&secret, "status", json!({"context": "notion"}));
    let (status, reply) = command(&base, &probe).await;
    assert_eq!(
        (status, reply["kind"].as_str()),
        (503, Some("sealed")),
        "{reply}"
    );
    assert!(
        reply["error"].as_str().unwrap().contains("unseal"),
        "{reply}"
    );

    let (status, reply) = unseal(&base, PASSPHRASE).await;
    assert_eq!(
        (status, reply["status"].as_str()),
        (200, Some("unsealed")),
        "{reply}"
    );
    assert_eq!(reply["failed_attempts"], 0, "{reply}");
    let (status, reply) = command(&base, &probe).await;
    assert_eq!(
        (status, reply["error"].as_str()),
        (404, Some("context not found: notion")),
        "the envelope sent while sealed was never seen: {reply}"
    );
    let audit = agent.raw(
        sign(&secret, "audit", json!({"limit": 1000}))
            .to_json()
            .as_bytes(),
    );
    let entries = audit["entries"]
        .as_array()
        .unwrap_or_else(|| panic!("{audit}"));
    assert!(
        !entries.iter().any(|e| e.to_string().contains("lockdown")),
        "the lockdown sent while sealed reached the audit: {entries:?}"
    );
    let unsealed: Vec<&Value> = entries
        .iter()
        .filter(|e| e["event"] == "seal.unsealed")
        .collect();
    assert_eq!(unsealed.len(), 2, "{entries:?}");
    assert_eq!(unsealed[0]["detail"]["failed_attempts"], 1, "{entries:?}");
    assert_eq!(unsealed[1]["detail"]["failed_attempts"], 0, "{entries:?}");
    let (status, reply) = command(&base, &sign(&secret, "list", json!({}))).await;
    assert_eq!((status, reply["count"].clone()), (200, json!(0)), "{reply}");

    // Neither passphrase is in the log (at debug level) or in any file of the data dir.
    agent.stop();
    let logs = agent.logs();
    assert!(logs.contains("wrong passphrase"), "the log is read: {logs}");
    for secret_text in [PASSPHRASE, WRONG] {
        assert!(!logs.contains(secret_text), "{secret_text:?} in the log");
        let files = files_holding(&agent.dir, secret_text);
        assert!(files.is_empty(), "{secret_text:?} in {files:?}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn an_installation_in_clear_has_nothing_to_unseal() {
    let mut agent = Agent::init();
    let base = with_http(&agent);
    agent.spawn();
    assert_eq!(
        healthz(&base).await,
        (200, json!({"status": "ok", "signal": "not_configured"}))
    );
    let (status, reply) = unseal(&base, PASSPHRASE).await;
    assert_eq!(status, 409, "{reply}");
    assert_eq!(reply["kind"], "not_sealed", "{reply}");
    assert_eq!(
        healthz(&base).await,
        (200, json!({"status": "ok", "signal": "not_configured"}))
    );
    let (status, reply) = command(&base, &agent.envelope("list", json!({}))).await;
    assert_eq!((status, reply["count"].clone()), (200, json!(0)), "{reply}");
    agent.stop();
    assert!(
        !agent.logs().contains(PASSPHRASE),
        "the passphrase is in the log"
    );
}
