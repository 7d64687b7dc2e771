//! `cargo bench --bench providers`: provider traffic and enroll latency against local
//! servers that follow the providers' documented shapes (the ones the tests use).
//!
//! - requests per `list refresh:=true` over 1,000 aliases (addy.io: pages of 100, so 10;
//!   SimpleLogin serves fixed pages of 20, so 50);
//! - enroll latency (alias + card + identity, every step flushed), p50 / p99 over 100 enrolls.

#[path = "../tests/common/mod.rs"]
mod common;

use common::providers;
use common::Agent;
use serde_json::json;
use std::time::{Duration, Instant};

fn agent_on(
    aliases: &providers::MockServer,
    cards: &providers::MockServer,
    simplelogin: bool,
) -> Agent {
    let mut agent = Agent::init();
    let (alias_env, card_env) = if simplelogin {
        (
            ("SIMPLELOGIN_API_KEY", "SIMPLELOGIN_BASE_URL"),
            ("LITHIC_API_KEY", "LITHIC_BASE_URL"),
        )
    } else {
        (
            ("ADDY_API_KEY", "ADDY_BASE_URL"),
            ("PRIVACY_API_KEY", "PRIVACY_BASE_URL"),
        )
    };
    agent.env.push((alias_env.0.into(), "bench-key".into()));
    agent.env.push((alias_env.1.into(), aliases.base.clone()));
    agent.env.push((card_env.0.into(), "bench-key".into()));
    agent.env.push((card_env.1.into(), cards.base.clone()));
    let mut config = common::unlimited_rates(pane_agent::config::TEMPLATE);
    if simplelogin {
        config = config
            .replace("provider = \"addy\"", "provider = \"simplelogin\"")
            .replace("provider = \"privacy\"", "provider = \"lithic\"");
    }
    agent.write_config(&config);
    agent.spawn();
    agent
}

fn refresh_requests(simplelogin: bool) -> (u64, usize) {
    let (aliases, cards) = if simplelogin {
        (
            providers::simplelogin("bench-key"),
            providers::lithic("bench-key"),
        )
    } else {
        (
            providers::addy("bench-key"),
            providers::privacy("bench-key"),
        )
    };
    aliases.seed_aliases(1000);
    let agent = agent_on(&aliases, &cards, simplelogin);
    aliases.clear_requests();
    let r = agent.send("list", json!({"refresh": true}));
    assert_eq!(r["refresh"]["provider_aliases"], 1000, "{r}");
    (
        r["refresh"]["provider_requests"].as_u64().unwrap_or(0),
        aliases.request_count(),
    )
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

fn main() {
    let (addy_reported, addy_seen) = refresh_requests(false);
    let (sl_reported, sl_seen) = refresh_requests(true);

    let aliases = providers::addy("bench-key");
    let cards = providers::privacy("bench-key");
    let agent = agent_on(&aliases, &cards, false);
    let mut times = Vec::new();
    for i in 0..100 {
        let t = Instant::now();
        let r = agent.send(
            "enroll",
            json!({"url": format!("https://site{i}.example.com"), "alias": format!("site-{i}")}),
        );
        times.push(t.elapsed());
        assert_eq!(r["status"], "enrolled", "{r}");
    }
    times.sort();

    println!("pane-agent provider benchmark (local servers on loopback, release build)");
    println!("list refresh of 1,000 aliases, addy.io: {addy_seen} requests (agent counted {addy_reported})");
    println!("list refresh of 1,000 aliases, SimpleLogin: {sl_seen} requests (agent counted {sl_reported})");
    println!(
        "enroll (alias + card + identity), 100 enrolls: p50 {:.2} ms, p99 {:.2} ms",
        percentile(&times, 0.5).as_secs_f64() * 1e3,
        percentile(&times, 0.99).as_secs_f64() * 1e3
    );
}
