//! `pane-agent demo`: the quick start. Makes a throwaway data dir, starts a real agent on
//! the embedded defaults, sends it signed commands over the control socket (including one
//! that needs the owner's approval), prints each exchange, and stops it.

use super::init::init;
use super::run::Daemon;
use crate::auth::{Envelope, SecretSet};
use crate::channels::client::deliver;
use chrono::Utc;
use serde_json::{json, Map, Value};

/// Runs the demonstration, printing to stdout.
pub async fn demo() -> anyhow::Result<()> {
    let mut suffix = [0u8; 6];
    getrandom::fill(&mut suffix).map_err(|e| anyhow::anyhow!("no randomness: {e}"))?;
    let data_dir = std::env::temp_dir().join(format!("pane-demo-{}", hex::encode(suffix)));
    for line in init(&data_dir)? {
        println!("init: {line}");
    }
    let daemon = Daemon::start(&data_dir, None).await?;
    println!("agent listening on {}\n", daemon.socket.display());
    let secrets = SecretSet::load(&data_dir, &[])?;
    let socket = daemon.socket.clone();
    let exchange = |cmd: &'static str, args: Value| {
        let secrets = &secrets;
        let socket = &socket;
        async move {
            let args: Map<String, Value> = args.as_object().cloned().unwrap_or_default();
            let env = Envelope::sign(&secrets.current, Utc::now(), cmd, args);
            println!("→ {}", env.to_json());
            let reply = deliver(socket, env.to_json().as_bytes()).await?;
            println!("← {}\n", serde_json::to_string_pretty(&reply)?);
            anyhow::Ok(reply)
        }
    };
    exchange("list", json!({})).await?;
    exchange("status", json!({"context": "notion"})).await?;
    exchange("revoke", json!({"tool": "status"})).await?;
    let asked = exchange("grant", json!({"tool": "status"})).await?;
    if let Some(code) = asked.get("code").and_then(Value::as_str) {
        exchange("approve", json!({"code": code})).await?;
    }
    exchange("audit", json!({"limit": 3, "verify": true})).await?;
    daemon.shutdown().await?;
    std::fs::remove_dir_all(&data_dir)?;
    println!("demo finished; its data dir was removed");
    Ok(())
}
