//! A test gateway: the relay protocol of `docs/gateway-protocol.md` over the agent's real
//! `gateway.sock`, standing in for `pane-signal`.
#![allow(dead_code)]

use super::Agent;
use pane_agent::gateway::protocol::{decode_line, encode_line, CoreCommand, GatewayEvent};
use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::UnixStream;
use std::time::{Duration, Instant};

/// A test gateway: the protocol over the real socket.
pub struct Gateway {
    writer: UnixStream,
    reader: BufReader<UnixStream>,
    owner: String,
    /// Sends read but not yet handed out by `reply`.
    queued: std::collections::VecDeque<(String, String, String)>,
}

impl Gateway {
    /// Connects to `agent`'s gateway socket; `owner` is the ACI replies must go to.
    pub fn connect(agent: &Agent, owner: &str) -> Gateway {
        let s = UnixStream::connect(agent.dir.join("gateway.sock")).unwrap();
        s.set_read_timeout(Some(Duration::from_millis(200)))
            .unwrap();
        Gateway {
            reader: BufReader::new(s.try_clone().unwrap()),
            writer: s,
            owner: owner.to_string(),
            queued: Default::default(),
        }
    }

    /// Writes bytes as they are (a burst of lines, a broken line).
    pub fn write_raw(&mut self, bytes: &[u8]) {
        self.writer.write_all(bytes).unwrap();
    }

    /// Writes one event line.
    pub fn event(&mut self, e: &GatewayEvent) {
        self.writer
            .write_all(encode_line(e).unwrap().as_bytes())
            .unwrap();
    }

    /// The owner (or anyone) sent `body`.
    pub fn received(&mut self, sender: &str, body: &str) {
        self.event(&GatewayEvent::Received {
            sender: sender.into(),
            device: 1,
            timestamp: 1,
            body: body.into(),
            sealed: true,
        });
    }

    /// Every send that arrives within `wait`.
    pub fn sends(&mut self, wait: Duration) -> Vec<(String, String, String)> {
        let deadline = Instant::now() + wait;
        let mut out: Vec<_> = self.queued.drain(..).collect();
        while Instant::now() < deadline {
            let mut line = String::new();
            match self.reader.read_line(&mut line) {
                Ok(0) => break,
                Ok(_) => {
                    let CoreCommand::Send {
                        id,
                        recipient,
                        body,
                    } = decode_line(&line).unwrap();
                    out.push((id, recipient, body));
                }
                Err(_) => {}
            }
        }
        out
    }

    /// Waits for the next send (sends that came together are taken one by one, in order),
    /// acknowledges it, and returns its body.
    pub fn reply(&mut self) -> String {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if self.queued.is_empty() {
                let sends = self.sends(Duration::from_millis(300));
                self.queued.extend(sends);
            }
            if let Some((id, recipient, body)) = self.queued.pop_front() {
                assert_eq!(recipient, self.owner);
                self.event(&GatewayEvent::Sent { id });
                return body;
            }
            assert!(Instant::now() < deadline, "no reply came");
        }
    }
}
