//! `cargo bench --bench core`: the agent core's figures for docs/performance.md.
//!
//! - signed-command round trip over the control socket (p50 / p99), against the release
//!   binary with its real sled store (every reply is flushed to disk before it is sent);
//! - envelope verifications per second (parse + HMAC + window), in process;
//! - start-to-ready time of `pane-agent run` (process start until the socket answers);
//! - idle RSS of the daemon after it has served the round trips.
//!
//! Targets: p99 < 2 ms, start < 150 ms, idle RSS < 20 MB. Figures are printed, not asserted.

use chrono::Utc;
use pane_agent::auth::{Envelope, Secret, SecretSet};
use serde_json::{json, Map};
use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const SECRET: &str = "b3c1e0f0d9a8b7c6d5e4f30211203f4e5d6c7b8a99887766554433221100ffee";
const ROUND_TRIPS: usize = 2000;

fn start(dir: &Path) -> (Child, Duration) {
    let t = Instant::now();
    let child = Command::new(env!("CARGO_BIN_EXE_pane-agent"))
        .args(["run", "--data-dir"])
        .arg(dir)
        .env("AGENT_SECRET", SECRET)
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn pane-agent");
    let mut child = child;
    let sock = dir.join("agent.sock");
    loop {
        if UnixStream::connect(&sock).is_ok() {
            return (child, t.elapsed());
        }
        if t.elapsed() > Duration::from_secs(20) {
            let _ = child.kill();
            let _ = child.wait();
            panic!("agent did not start");
        }
        std::thread::sleep(Duration::from_micros(200));
    }
}

fn stop(mut child: Child) {
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    let _ = child.wait();
}

fn round_trip(sock: &Path, bytes: &[u8]) -> Duration {
    let t = Instant::now();
    let mut s = UnixStream::connect(sock).expect("connect");
    s.write_all(bytes).expect("write");
    s.shutdown(std::net::Shutdown::Write).expect("shutdown");
    let mut out = Vec::new();
    s.read_to_end(&mut out).expect("read");
    let elapsed = t.elapsed();
    assert!(
        !out.windows(8).any(|w| w == b"\"error\""),
        "error reply: {}",
        String::from_utf8_lossy(&out)
    );
    elapsed
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i]
}

fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find(|l| l.starts_with("VmRSS:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

fn main() {
    // cargo bench passes --bench; any other argument filters nothing here.
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path().join("pane");
    let init = Command::new(env!("CARGO_BIN_EXE_pane-agent"))
        .args(["init", "--data-dir"])
        .arg(&dir)
        .env("AGENT_SECRET", SECRET)
        .output()
        .expect("init");
    assert!(init.status.success());
    // The benchmark sends far more than the default per-tool limits allow.
    let config = pane_agent::config::TEMPLATE
        .replace(
            "read = { max = 120, window_secs = 60 }",
            "read = { max = 1000000, window_secs = 1 }",
        )
        .replace(
            "envelopes = { max = 600, window_secs = 60 }",
            "envelopes = { max = 1000000, window_secs = 1 }",
        );
    std::fs::write(dir.join("pane.toml"), config).expect("config");

    // Start-to-ready, median of 10 cold starts of the daemon process.
    let mut starts = Vec::new();
    for _ in 0..10 {
        let (child, ready) = start(&dir);
        starts.push(ready);
        stop(child);
    }
    starts.sort();

    let (child, _) = start(&dir);
    let sock = dir.join("agent.sock");
    let secret = Secret::new(SECRET);
    let envelopes: Vec<String> = (0..ROUND_TRIPS + 100)
        .map(|i| {
            // Distinct timestamps keep every envelope fresh for the replay cache.
            let ts = Utc::now() + chrono::Duration::milliseconds(i as i64);
            Envelope::sign(&secret, ts, "list", Map::new()).to_json()
        })
        .collect();
    for e in &envelopes[..100] {
        round_trip(&sock, e.as_bytes());
    }
    let mut times: Vec<Duration> = envelopes[100..]
        .iter()
        .map(|e| round_trip(&sock, e.as_bytes()))
        .collect();
    times.sort();
    std::thread::sleep(Duration::from_secs(1));
    let rss = rss_kib(child.id());
    stop(child);

    // Envelope verifications per second, in process.
    let secrets = SecretSet {
        current: Secret::new(SECRET),
        previous: vec![],
    };
    let mut args = Map::new();
    args.insert("context".into(), json!("notion"));
    let now = Utc::now();
    let text = Envelope::sign(&secrets.current, now, "status", args).to_json();
    let n = 200_000;
    let t = Instant::now();
    for _ in 0..n {
        let env = Envelope::parse(std::hint::black_box(text.as_bytes())).expect("parse");
        env.authenticate(&secrets, now).expect("verify");
    }
    let per_sec = n as f64 / t.elapsed().as_secs_f64();

    println!("pane-agent core benchmark ({ROUND_TRIPS} round trips, release build)");
    println!(
        "round trip over the control socket: p50 {:.3} ms, p99 {:.3} ms, max {:.3} ms",
        percentile(&times, 0.50).as_secs_f64() * 1e3,
        percentile(&times, 0.99).as_secs_f64() * 1e3,
        times.last().map(|d| d.as_secs_f64() * 1e3).unwrap_or(0.0)
    );
    println!("envelope verifications: {per_sec:.0} per second (parse + HMAC + window)");
    println!(
        "start to ready: median {:.1} ms, max {:.1} ms (10 starts)",
        percentile(&starts, 0.5).as_secs_f64() * 1e3,
        starts.last().map(|d| d.as_secs_f64() * 1e3).unwrap_or(0.0)
    );
    println!(
        "idle RSS after the round trips: {:.1} MB",
        rss as f64 / 1024.0
    );
}
