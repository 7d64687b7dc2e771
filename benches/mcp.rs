//! `cargo bench --bench mcp`: a `status` tool call's round trip through the MCP server
//! (`pane-agent mcp` on stdio, JSON-RPC lines as any MCP client sends them) against the same
//! command signed and sent straight to the control socket, interleaved, on one daemon.
//!
//! Both paths end in the same daemon, the same gate and the same `status` of one enrolled
//! context (on the local addy.io and Privacy.com servers); the MCP path adds the JSON-RPC
//! framing, the server's signing with the MCP key, its own socket connection, and the
//! wrapping of the reply in `untrusted`. Every reply is checked; the bench exits non-zero if
//! one was wrong.

#[path = "../tests/common/mod.rs"]
mod common;

use common::{providers, Agent};
use pane_agent::auth::{Envelope, Secret};
use serde_json::{json, Map, Value};
use std::io::{BufRead, BufReader, Write};
use std::process::{ChildStdin, ChildStdout, Command, Stdio};
use std::time::{Duration, Instant};

const OWNER: &str = "0b5c6a5e-2f6e-4a7b-9d35-6a1c1f1f2c3d";
const WARM_UP: usize = 100;
const ROUND_TRIPS: usize = 2000;

/// `pane-agent mcp` as a child, spoken to in JSON-RPC lines.
struct Mcp {
    stdin: ChildStdin,
    stdout: BufReader<ChildStdout>,
    next_id: u64,
}

impl Mcp {
    fn request(&mut self, method: &str, params: Value) -> Value {
        self.next_id += 1;
        let msg = json!({"jsonrpc": "2.0", "id": self.next_id, "method": method, "params": params});
        writeln!(self.stdin, "{msg}").expect("write to the MCP server");
        let mut line = String::new();
        self.stdout
            .read_line(&mut line)
            .expect("read from the MCP server");
        let reply: Value = serde_json::from_str(&line).expect("a JSON-RPC line");
        assert_eq!(reply["id"], self.next_id, "{reply}");
        reply
    }

    fn notify(&mut self, method: &str) {
        writeln!(
            self.stdin,
            "{}",
            json!({"jsonrpc": "2.0", "method": method})
        )
        .expect("write");
    }
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

fn main() {
    let aliases = providers::addy("bench-addy-key");
    let cards = providers::privacy("bench-privacy-key");
    let mut agent = Agent::init();
    agent.env.extend(aliases.env());
    agent.env.extend(cards.env());
    agent.env.push(("RUST_LOG".into(), "warn".into()));
    // An owner (the MCP key works only with approvals on the phone), and every limit, the
    // MCP key's own too, out of the way of 4,200 commands.
    let config = common::unlimited_rates(pane_agent::config::TEMPLATE)
        .replace("owner = \"\"", &format!("owner = \"{OWNER}\""))
        .replace(
            "read = { max = 60, window_secs = 60 }",
            "read = { max = 1000000, window_secs = 1 }",
        )
        .replace(
            "envelopes = { max = 120, window_secs = 60 }",
            "envelopes = { max = 1000000, window_secs = 1 }",
        );
    agent.write_config(&config);
    assert!(agent.cli(&["mcp-key"]).status.success(), "mcp-key");
    agent.spawn();
    let enrolled = agent.send("enroll", json!({"url": "https://www.notion.so"}));
    assert_eq!(enrolled["context"], "notion", "{enrolled}");

    let mut child = Command::new(common::bin())
        .args(["mcp", "--data-dir"])
        .arg(&agent.dir)
        .env("RUST_LOG", "warn")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("pane-agent mcp");
    let mut mcp = Mcp {
        stdin: child.stdin.take().expect("stdin"),
        stdout: BufReader::new(child.stdout.take().expect("stdout")),
        next_id: 0,
    };
    let init = mcp.request(
        "initialize",
        json!({"protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "bench", "version": "0"}}),
    );
    assert!(
        init["result"]["capabilities"]["tools"].is_object(),
        "{init}"
    );
    mcp.notify("notifications/initialized");

    let secret: Secret = agent.secret();
    let mut args = Map::new();
    args.insert("context".into(), json!("notion"));
    let mut wrong = 0usize;
    let mut over_mcp = Vec::with_capacity(ROUND_TRIPS);
    let mut over_socket = Vec::with_capacity(ROUND_TRIPS);
    for i in 0..WARM_UP + ROUND_TRIPS {
        let t = Instant::now();
        let r = mcp.request(
            "tools/call",
            json!({"name": "status", "arguments": {"context": "notion"}}),
        );
        let d_mcp = t.elapsed();
        if r["result"]["structuredContent"]["untrusted"]["context"] != "notion" {
            wrong += 1;
            eprintln!("WRONG over MCP: {r}");
        }
        let t = Instant::now();
        let env = Envelope::sign(&secret, chrono::Utc::now(), "status", args.clone());
        let r = agent.raw(env.to_json().as_bytes());
        let d_socket = t.elapsed();
        if r["context"] != "notion" {
            wrong += 1;
            eprintln!("WRONG over the socket: {r}");
        }
        if i >= WARM_UP {
            over_mcp.push(d_mcp);
            over_socket.push(d_socket);
        }
    }
    drop(mcp);
    let _ = child.wait();
    over_mcp.sort();
    over_socket.sort();

    println!(
        "pane-agent MCP benchmark ({ROUND_TRIPS} interleaved round trips each, release build)"
    );
    for (what, times) in [
        (
            "`status` tool call through `pane-agent mcp` (stdio JSON-RPC)",
            &over_mcp,
        ),
        (
            "signed `status` straight to the control socket",
            &over_socket,
        ),
    ] {
        println!(
            "{what}: p50 {:.3} ms, p99 {:.3} ms, max {:.3} ms",
            ms(percentile(times, 0.50)),
            ms(percentile(times, 0.99)),
            ms(*times.last().expect("times"))
        );
    }
    println!(
        "MCP overhead at p50: {:.3} ms ({:.2}x)",
        ms(percentile(&over_mcp, 0.5)) - ms(percentile(&over_socket, 0.5)),
        percentile(&over_mcp, 0.5).as_secs_f64() / percentile(&over_socket, 0.5).as_secs_f64()
    );
    if wrong > 0 {
        eprintln!("{wrong} wrong replies");
        std::process::exit(1);
    }
}
