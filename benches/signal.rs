//! `cargo bench --bench signal`: how long the owner waits for a reply over `gateway.sock`
//! (the relay protocol, release build, real sled store), quiet and right after 10,000
//! messages from strangers arrive in one burst.

#[path = "../tests/common/mod.rs"]
mod common;

use common::Agent;
use pane_agent::gateway::protocol::{decode_line, encode_line, CoreCommand, GatewayEvent};
use serde_json::json;
use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::UnixStream;
use std::time::{Duration, Instant};

const OWNER: &str = "0b5c6a5e-2f6e-4a7b-9d35-6a1c1f1f2c3d";

fn main() {
    let mut agent = Agent::init();
    agent.write_config(&common::unlimited_rates(
        &pane_agent::config::TEMPLATE.replace("owner = \"\"", &format!("owner = \"{OWNER}\"")),
    ));
    agent.spawn();
    let mut writer = UnixStream::connect(agent.dir.join("gateway.sock")).expect("gateway socket");
    let mut reader = BufReader::new(writer.try_clone().expect("clone"));
    reader
        .get_mut()
        .set_read_timeout(Some(Duration::from_secs(60)))
        .expect("timeout");
    let received = |sender: &str, body: String, i: u64| {
        encode_line(&GatewayEvent::Received {
            id: None,
            expire_timer: 0,
            sender: sender.into(),
            device: 1,
            timestamp: i,
            body,
            sealed: false,
        })
        .expect("encode")
    };
    let ask = |writer: &mut UnixStream, reader: &mut BufReader<UnixStream>, i: u64| -> Duration {
        let line = received(OWNER, agent.envelope("list", json!({})).to_json(), i);
        let t = Instant::now();
        writer.write_all(line.as_bytes()).expect("owner");
        let mut reply = String::new();
        reader.read_line(&mut reply).expect("reply");
        let took = t.elapsed();
        let Ok(CoreCommand::Send { id, body, .. }) = decode_line(&reply) else {
            panic!("not a send: {reply}");
        };
        assert!(
            body.contains("contexts") || body.starts_with("No contexts"),
            "{body}"
        );
        let sent = encode_line(&GatewayEvent::Sent {
            id,
            timestamp: None,
        })
        .expect("encode");
        writer.write_all(sent.as_bytes()).expect("sent");
        // A new envelope needs a new millisecond.
        std::thread::sleep(Duration::from_millis(2));
        took
    };
    let p50 = |mut v: Vec<Duration>| {
        v.sort();
        v[v.len() / 2].as_secs_f64() * 1e3
    };
    let quiet: Vec<Duration> = (0..200)
        .map(|i| ask(&mut writer, &mut reader, 20_000 + i))
        .collect();

    let mut burst = String::new();
    for i in 0..10_000 {
        burst.push_str(&received(
            "9f0e1d2c-3b4a-4596-8877-665544332211",
            "approve ABCDE-FGHJK".into(),
            i,
        ));
    }
    let t = Instant::now();
    writer.write_all(burst.as_bytes()).expect("burst");
    let burst_written = t.elapsed();
    let first = ask(&mut writer, &mut reader, 10_001);
    let after: Vec<Duration> = (0..50)
        .map(|i| ask(&mut writer, &mut reader, 30_000 + i))
        .collect();
    let refused = agent
        .audit()
        .iter()
        .filter(|e| e["event"] == "envelope.refused" || e["event"] == "signal.strangers_dropped")
        .count();
    let quiet_p50 = p50(quiet);
    let after_p50 = p50(after);
    println!("pane-agent Signal reply benchmark (release build)");
    println!("owner's list through gateway.sock, no flood: p50 {quiet_p50:.2} ms (200 commands)");
    println!(
        "10,000 stranger messages in one burst (written in {:.0} ms): the owner's next command answered in {:.2} ms; the 50 after it p50 {after_p50:.2} ms ({:.2}x the quiet p50)",
        burst_written.as_secs_f64() * 1e3,
        first.as_secs_f64() * 1e3,
        after_p50 / quiet_p50
    );
    println!("audit entries written for the flood so far: {refused} (strangers are counted and written once a minute)");
}
