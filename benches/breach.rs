//! `cargo bench --bench breach`: the breach monitor's figures for docs/performance.md.
//!
//! - first sweep of a 10,000-message mailbox on a real Dovecot (time, the agent's peak RSS)
//!   and a second sweep (messages fetched: 0);
//! - provider requests for one sweep over 1,000 SimpleLogin aliases of which 10 received mail.

#[path = "../tests/common/mod.rs"]
mod common;

use common::dovecot::{message, Dovecot};
use common::{providers, Agent};
use serde_json::json;
use std::time::Instant;

fn status_kib(pid: u32, field: &str) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find(|l| l.starts_with(field))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

fn imap_figures() {
    let imap = Dovecot::start();
    let aliases = providers::addy("bench-key");
    let cards = providers::privacy("bench-key");
    let mut agent = Agent::init();
    common::use_local_services(&mut agent, &aliases, &cards, &imap);
    agent.write_config(
        &imap
            .configure(pane_agent::config::TEMPLATE)
            .replace("idle = true", "idle = false")
            .replace("breach_sweep = \"0 0 * * * *\"", "breach_sweep = \"\""),
    );
    agent.spawn();
    let mut emails = Vec::new();
    for i in 0..20 {
        let r = agent.send(
            "enroll",
            json!({"url": format!("https://site{i}.example.com"), "card": false}),
        );
        emails.push(r["alias"]["email"].as_str().unwrap_or_default().to_string());
    }
    let messages: Vec<String> = (0..10_000)
        .map(|i| {
            let alias = &emails[i % emails.len()];
            let sender = if i % 100 == 0 {
                format!("list{}@broker{}.example", i, i % 7)
            } else {
                format!("news@mail.site{}.example.com", i % emails.len())
            };
            message(
                &[
                    ("From", "\"Forwarded\" <noreply@anonaddy.me>"),
                    ("To", alias),
                    ("X-AnonAddy-Original-Sender", &sender),
                    ("Subject", &format!("Message {i}")),
                    ("Message-ID", &format!("<m{i}@bench>")),
                ],
                "body",
            )
        })
        .collect();
    imap.append_many(&messages);
    let pid = agent.child.as_ref().map(|c| c.id()).unwrap_or(0);
    let rss_before = status_kib(pid, "VmRSS:");
    let t = Instant::now();
    let first = agent.send("sweep", json!({}));
    let first_time = t.elapsed();
    let hwm = status_kib(pid, "VmHWM:");
    let t = Instant::now();
    let second = agent.send("sweep", json!({}));
    let second_time = t.elapsed();
    println!(
        "IMAP, first sweep of 10,000 messages: {:.2} s, fetched {}, new incidents {}; agent RSS {:.1} MB before, peak {:.1} MB",
        first_time.as_secs_f64(),
        first["sources"][0]["fetched"],
        first["new_incidents"].as_array().map(|a| a.len()).unwrap_or(0),
        rss_before as f64 / 1024.0,
        hwm as f64 / 1024.0
    );
    println!(
        "IMAP, second sweep: {:.1} ms, fetched {}",
        second_time.as_secs_f64() * 1e3,
        second["sources"][0]["fetched"]
    );
}

fn simplelogin_figures() {
    let aliases = providers::simplelogin("bench-key");
    let cards = providers::lithic("bench-key");
    let mut agent = Agent::init();
    for (k, v) in [
        ("SIMPLELOGIN_API_KEY", "bench-key".to_string()),
        ("SIMPLELOGIN_BASE_URL", aliases.base.clone()),
        ("LITHIC_API_KEY", "bench-key".to_string()),
        ("LITHIC_BASE_URL", cards.base.clone()),
    ] {
        agent.env.push((k.into(), v));
    }
    agent.write_config(
        &pane_agent::config::TEMPLATE
            .replace("provider = \"addy\"", "provider = \"simplelogin\"")
            .replace("provider = \"privacy\"", "provider = \"lithic\"")
            .replace(
                "write = { max = 30, window_secs = 60 }",
                "write = { max = 100000, window_secs = 1 }",
            )
            .replace("breach_sweep = \"0 0 * * * *\"", "breach_sweep = \"\""),
    );
    agent.spawn();
    let mut emails = Vec::new();
    for i in 0..1000 {
        let r = agent.send("enroll", json!({"url": format!("https://s{i}.example.org"), "alias": format!("s{i}"), "card": false, "identity": "none"}));
        emails.push(r["alias"]["email"].as_str().unwrap_or_default().to_string());
    }
    agent.send("sweep", json!({}));
    for email in emails.iter().take(10) {
        aliases.add_activity(email, "forward", "x@leak.example");
    }
    aliases.clear_requests();
    let r = agent.send("sweep", json!({}));
    let requests = aliases.request_count();
    let activity = aliases
        .requests()
        .iter()
        .filter(|r| r.contains("/activities"))
        .count();
    println!(
        "SimpleLogin, sweep of 1,000 aliases with 10 changed: {requests} requests ({} list pages + {activity} activity reads), {} new incidents",
        requests - activity,
        r["new_incidents"].as_array().map(|a| a.len()).unwrap_or(0)
    );
}

fn main() {
    println!("pane-agent breach benchmark (release build, real Dovecot and local provider servers on loopback)");
    imap_figures();
    simplelogin_figures();
}
