//! `cargo bench --bench egress`: what `[network] proxy` costs an `enroll`, the proxy's own
//! share only (not Tor's): the same enrolls against the same local addy.io and Privacy.com
//! servers, once direct and once through the SOCKS5 server of the tests on loopback
//! (`tests/common/socks.rs`: user name authentication, names from its table, outgoing from
//! 127.0.0.2), alternated so that both see the same machine. p50 / p99 over 200 each.

#[path = "../tests/common/mod.rs"]
mod common;

use common::providers;
use common::socks::SocksServer;
use common::Agent;
use serde_json::json;
use std::net::{IpAddr, Ipv4Addr};
use std::time::{Duration, Instant};

const ROUNDS: usize = 200;

fn onion(tag: &str) -> String {
    format!("{tag}{}.onion", "a".repeat(56 - tag.len()))
}

fn agent(bases: (String, String), proxy: Option<&SocksServer>) -> Agent {
    let mut agent = Agent::init();
    for (k, v) in [
        ("ADDY_API_KEY", "bench-key".to_string()),
        ("ADDY_BASE_URL", bases.0),
        ("PRIVACY_API_KEY", "bench-key".to_string()),
        ("PRIVACY_BASE_URL", bases.1),
    ] {
        agent.env.push((k.into(), v));
    }
    let mut config = common::unlimited_rates(pane_agent::config::TEMPLATE);
    if let Some(socks) = proxy {
        config = config.replace("proxy = \"\"", &format!("proxy = \"{}\"", socks.url()));
    }
    agent.write_config(&config);
    agent.spawn();
    agent
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

fn enroll(agent: &Agent, i: usize) -> Duration {
    let t = Instant::now();
    let r = agent.send(
        "enroll",
        json!({"url": format!("https://site{i}.example.com"), "alias": format!("site-{i}")}),
    );
    let took = t.elapsed();
    assert_eq!(r["status"], "enrolled", "{r}");
    took
}

fn main() {
    let aliases = providers::addy("bench-key");
    let cards = providers::privacy("bench-key");
    let lo = IpAddr::V4(Ipv4Addr::LOCALHOST);
    let socks = SocksServer::start(&[(&onion("addy"), lo), (&onion("privacy"), lo)]);
    let direct = agent((aliases.base.clone(), cards.base.clone()), None);
    let proxied = agent(
        (
            aliases.base_at(&onion("addy")),
            cards.base_at(&onion("privacy")),
        ),
        Some(&socks),
    );
    let (mut d, mut p) = (Vec::new(), Vec::new());
    for i in 0..ROUNDS {
        d.push(enroll(&direct, i));
        p.push(enroll(&proxied, i));
    }
    d.sort();
    p.sort();
    let tunnels = socks.connects().len();
    println!(
        "pane-agent egress benchmark (local servers and SOCKS5 proxy on loopback, release build)"
    );
    println!(
        "enroll direct, {ROUNDS} enrolls: p50 {:.2} ms, p99 {:.2} ms",
        ms(percentile(&d, 0.5)),
        ms(percentile(&d, 0.99))
    );
    println!(
        "enroll through the proxy, {ROUNDS} enrolls: p50 {:.2} ms, p99 {:.2} ms ({tunnels} SOCKS connections)",
        ms(percentile(&p, 0.5)),
        ms(percentile(&p, 0.99))
    );
}
