//! `cargo bench --bench stall`: the command path while the world is slow, for
//! docs/performance.md (release build, real sled store, the local addy.io and Privacy.com
//! servers of `tests/common/providers.rs` on loopback).
//!
//! - With every provider create stalled 20 s and 10 enrolls of 10 contexts in flight: p50 and
//!   p99 of `list`, `status`, `approve` (of a `grant`) and `lockdown` over the control socket.
//!   Target: p99 < 50 ms.
//! - Against providers that answer every request after 1 s: the wall time of 10 enrolls of 10
//!   contexts sent at once, against one enroll alone. Target: <= 1.5x.
//!
//! Figures are printed, not asserted.

#[path = "../tests/common/mod.rs"]
mod common;

use common::providers::{self, Fault, MockServer};
use common::Agent;
use serde_json::{json, Value};
use std::time::{Duration, Instant};

const ADDY_KEY: &str = "addy-bench-key-0001";
const PRIVACY_KEY: &str = "privacy-bench-key-0001";

fn agent(aliases: &MockServer, cards: &MockServer) -> Agent {
    let mut agent = Agent::init();
    for (k, v) in [
        ("ADDY_API_KEY", ADDY_KEY.to_string()),
        ("ADDY_BASE_URL", aliases.base.clone()),
        ("PRIVACY_API_KEY", PRIVACY_KEY.to_string()),
        ("PRIVACY_BASE_URL", cards.base.clone()),
        ("RUST_LOG", "warn".to_string()),
    ] {
        agent.env.push((k.into(), v));
    }
    agent.write_config(&common::unlimited_rates(pane_agent::config::TEMPLATE));
    agent.spawn();
    agent
}

fn enroll(agent: &Agent, name: &str) -> Value {
    agent.send(
        "enroll",
        json!({"url": format!("https://{name}.example"), "alias": name}),
    )
}

fn timed(agent: &Agent, cmd: &str, args: Value) -> (Duration, Value) {
    let env = agent.envelope(cmd, args);
    let t = Instant::now();
    let r = agent.raw(env.to_json().as_bytes());
    (t.elapsed(), r)
}

fn report(name: &str, mut times: Vec<Duration>) {
    times.sort();
    let p = |q: f64| times[((times.len() as f64 - 1.0) * q).round() as usize];
    println!(
        "  {name:<9} p50 {:>7.2} ms   p99 {:>7.2} ms   max {:>7.2} ms   ({} samples)",
        p(0.5).as_secs_f64() * 1e3,
        p(0.99).as_secs_f64() * 1e3,
        times.last().map_or(0.0, |d| d.as_secs_f64() * 1e3),
        times.len()
    );
}

fn stalled() {
    let aliases = providers::addy(ADDY_KEY);
    let cards = providers::privacy(PRIVACY_KEY);
    let a = agent(&aliases, &cards);
    assert!(enroll(&a, "ready").get("error").is_none());
    for _ in 0..10 {
        aliases.push_fault_for("POST", "/aliases", Fault::Delay(Duration::from_secs(20)));
    }
    std::thread::scope(|s| {
        let a = &a;
        // Their replies come after the client's read timeout; only their being in flight
        // matters here.
        let hanging: Vec<_> = (0..10)
            .map(|i| {
                s.spawn(move || {
                    std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                        enroll(a, &format!("stalled{i}"))
                    }))
                })
            })
            .collect();
        while aliases
            .requests()
            .iter()
            .filter(|r| r.starts_with("POST /api/v1/aliases"))
            .count()
            < 11
        {
            std::thread::sleep(Duration::from_millis(10));
        }
        let started = Instant::now();
        let mut list = Vec::new();
        let mut status = Vec::new();
        let mut approve = Vec::new();
        for _ in 0..200 {
            let (t, r) = timed(a, "list", json!({}));
            assert!(r["count"].is_u64(), "{r}");
            list.push(t);
            let (t, r) = timed(a, "status", json!({"context": "ready"}));
            assert_eq!(r["state"], "active", "{r}");
            status.push(t);
            let asked = a.send("grant", json!({"tool": "list"}));
            let (t, r) = timed(a, "approve", json!({"code": asked["code"]}));
            assert_eq!(r["status"], "approved", "{r}");
            approve.push(t);
        }
        let mut lockdown = Vec::new();
        for _ in 0..50 {
            let (t, r) = timed(a, "lockdown", json!({}));
            assert_eq!(r["status"], "locked_down", "{r}");
            lockdown.push(t);
        }
        let still_hanging = hanging.iter().filter(|h| !h.is_finished()).count();
        println!(
            "every create stalled 20 s, 10 enrolls of 10 contexts in flight ({still_hanging} still waiting after {:.1} s of measuring):",
            started.elapsed().as_secs_f64()
        );
        report("list", list);
        report("status", status);
        report("approve", approve);
        report("lockdown", lockdown);
        for h in hanging {
            let _ = h.join();
        }
    });
}

fn slow() {
    let aliases = providers::addy(ADDY_KEY);
    let cards = providers::privacy(PRIVACY_KEY);
    let a = agent(&aliases, &cards);
    aliases.set_latency(Some(Duration::from_secs(1)));
    cards.set_latency(Some(Duration::from_secs(1)));
    let t = Instant::now();
    assert!(enroll(&a, "alone").get("error").is_none());
    let one = t.elapsed();
    let t = Instant::now();
    std::thread::scope(|s| {
        let a = &a;
        let all: Vec<_> = (0..10)
            .map(|i| s.spawn(move || enroll(a, &format!("side{i}"))))
            .collect();
        for h in all {
            let r = h.join().expect("enroll thread");
            assert!(r.get("error").is_none(), "{r}");
        }
    });
    let ten = t.elapsed();
    println!("providers answering after 1 s:");
    println!(
        "  one enroll {:.2} s; 10 enrolls of 10 contexts at once {:.2} s: {:.2}x",
        one.as_secs_f64(),
        ten.as_secs_f64(),
        ten.as_secs_f64() / one.as_secs_f64()
    );
}

fn main() {
    println!("pane-agent stall benchmark (release build)");
    stalled();
    slow();
}
