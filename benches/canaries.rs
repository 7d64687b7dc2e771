//! `cargo bench --bench canaries`: the card canaries' figures for docs/performance.md.
//!
//! 1,000 contexts, each with a card at the local Privacy.com (or Lithic) server and one older
//! charge by its site; then sweeps with 0 and with 50 new transactions: provider requests per
//! sweep (the target: 1 and at most 2 at Privacy.com's page size of 50) and the sweep's time,
//! end to end through the binary (the card provider is the only source).

#[path = "../tests/common/mod.rs"]
mod common;

use common::providers::{self, MockServer};
use common::Agent;
use serde_json::{json, Value};
use std::time::{Duration, Instant};

const CARDS: usize = 1000;

fn at(ago_secs: i64) -> String {
    (chrono::Utc::now() - chrono::Duration::seconds(ago_secs))
        .format("%Y-%m-%dT%H:%M:%SZ")
        .to_string()
}

fn sweep(agent: &Agent) -> (Value, Duration) {
    let t = Instant::now();
    let r = agent.send("sweep", json!({}));
    let took = t.elapsed();
    assert!(r.get("error").is_none(), "{r}");
    (r, took)
}

fn cards_source(r: &Value) -> &Value {
    r["sources"]
        .as_array()
        .and_then(|s| s.iter().find(|s| s["source"] == "cards"))
        .unwrap_or(&Value::Null)
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn figures(name: &str, lithic: bool) {
    let aliases = providers::addy("bench-key");
    let cards: MockServer = if lithic {
        providers::lithic("bench-key")
    } else {
        providers::privacy("bench-key")
    };
    let mut agent = Agent::init();
    for (k, v) in [
        ("ADDY_API_KEY", "bench-key".to_string()),
        ("ADDY_BASE_URL", aliases.base.clone()),
        ("PRIVACY_API_KEY", "bench-key".to_string()),
        ("PRIVACY_BASE_URL", cards.base.clone()),
        ("LITHIC_API_KEY", "bench-key".to_string()),
        ("LITHIC_BASE_URL", cards.base.clone()),
    ] {
        agent.env.push((k.into(), v));
    }
    let mut config = common::unlimited_rates(pane_agent::config::TEMPLATE)
        .replace("breach_sweep = \"0 0 * * * *\"", "breach_sweep = \"\"");
    if lithic {
        config = config.replace("provider = \"privacy\"", "provider = \"lithic\"");
    }
    agent.write_config(&config);
    agent.spawn();
    let t = Instant::now();
    for i in 0..CARDS {
        let r = agent.send(
            "enroll",
            json!({"url": format!("https://shop{i}.com"), "identity": "none"}),
        );
        assert_eq!(r["status"], "enrolled", "{r}");
    }
    let enrolled = t.elapsed();
    let tokens: Vec<String> = cards
        .cards()
        .iter()
        .map(|c| c["token"].as_str().unwrap_or_default().to_string())
        .collect();
    // One older charge by its own site on every card, a second apart, an hour ago and before.
    for (i, token) in tokens.iter().enumerate() {
        let when = at(3600 + (CARDS - i) as i64);
        cards.add_card_transaction(
            token,
            500,
            &format!("SHOP{i} EXAMPLE"),
            "APPROVED",
            Some(&when),
        );
    }
    let (first, first_time) = sweep(&agent);
    println!(
        "{name}: {CARDS} contexts enrolled in {:.1} s; first sweep (no cursor, {} transactions): {} requests, {:.1} ms",
        enrolled.as_secs_f64(),
        cards_source(&first)["fetched"],
        cards_source(&first)["requests"],
        first_time.as_secs_f64() * 1e3
    );
    let mut quiet = Vec::new();
    let mut quiet_requests = Vec::new();
    for _ in 0..9 {
        let before = cards.transaction_requests();
        let (r, took) = sweep(&agent);
        quiet.push(took);
        quiet_requests.push(cards.transaction_requests() - before);
        assert!(r["new_incidents"].as_array().is_some_and(|a| a.is_empty()));
    }
    let mut busy = Vec::new();
    let mut busy_requests = Vec::new();
    for round in 0..5 {
        // 50 new charges, each by its card's site, a second apart, each round after the one
        // before (and all after the older charges).
        for k in 0..50 {
            let i = (round * 50 + k) % CARDS;
            let ago = (5 - round as i64) * 60 + (50 - k as i64);
            cards.add_card_transaction(
                &tokens[i],
                700,
                &format!("SHOP{i} EXAMPLE"),
                "APPROVED",
                Some(&at(ago)),
            );
        }
        let before = cards.transaction_requests();
        let (r, took) = sweep(&agent);
        busy.push(took);
        busy_requests.push(cards.transaction_requests() - before);
        assert!(
            r["new_incidents"].as_array().is_some_and(|a| a.is_empty()),
            "{r}"
        );
        let read = cards_source(&r)["fetched"].as_u64().unwrap_or(0);
        assert!(read >= 50, "every new transaction is read: {r}");
    }
    println!(
        "{name}: sweep over {CARDS} cards, 0 new transactions: requests per sweep {:?}, median {:.1} ms",
        quiet_requests,
        median(quiet).as_secs_f64() * 1e3
    );
    println!(
        "{name}: sweep over {CARDS} cards, 50 new transactions: requests per sweep {:?}, median {:.1} ms",
        busy_requests,
        median(busy).as_secs_f64() * 1e3
    );
}

fn main() {
    println!(
        "pane-agent card canary benchmark (release build, local provider servers on loopback)"
    );
    figures("Privacy.com (page size 50)", false);
    figures("Lithic (page size 100)", true);
}
