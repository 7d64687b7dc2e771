//! `cargo bench --bench signal`: how long the owner waits for a reply when 10,000 messages
//! from strangers arrive in one burst just before the owner's command (relay protocol on
//! `gateway.sock`, release build, real sled store).

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
    agent.write_config(
        &pane_agent::config::TEMPLATE.replace("owner = \"\"", &format!("owner = \"{OWNER}\"")),
    );
    agent.spawn();
    let mut writer = UnixStream::connect(agent.dir.join("gateway.sock")).expect("gateway socket");
    let mut reader = BufReader::new(writer.try_clone().expect("clone"));
    reader
        .get_mut()
        .set_read_timeout(Some(Duration::from_secs(60)))
        .expect("timeout");
    let received = |sender: &str, body: String, i: u64| {
        encode_line(&GatewayEvent::Received {
            sender: sender.into(),
            device: 1,
            timestamp: i,
            body,
            sealed: false,
        })
        .expect("encode")
    };
    let mut burst = String::new();
    for i in 0..10_000 {
        burst.push_str(&received(
            "9f0e1d2c-3b4a-4596-8877-665544332211",
            "approve ABCDE-FGHJK".into(),
            i,
        ));
    }
    let owner = received(OWNER, agent.envelope("list", json!({})).to_json(), 10_001);
    let t = Instant::now();
    writer.write_all(burst.as_bytes()).expect("burst");
    let burst_written = t.elapsed();
    writer.write_all(owner.as_bytes()).expect("owner");
    let mut line = String::new();
    reader.read_line(&mut line).expect("reply");
    let answered = t.elapsed();
    let CoreCommand::Send { body, .. } = decode_line(&line).expect("a send");
    assert!(body.contains("\"count\""), "{body}");
    let refused = agent
        .audit()
        .iter()
        .filter(|e| e["event"] == "envelope.refused")
        .count();
    println!("pane-agent Signal flood benchmark (release build)");
    println!(
        "10,000 stranger messages then one owner command: burst written in {:.0} ms, owner answered {:.0} ms after the burst began ({:.0} ms after the command)",
        burst_written.as_secs_f64() * 1e3,
        answered.as_secs_f64() * 1e3,
        (answered - burst_written).as_secs_f64() * 1e3
    );
    println!("audit entries written for the flood: {refused} (the rest counted in a summary)");
}
