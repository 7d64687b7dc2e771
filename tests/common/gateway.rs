//! A test gateway: the relay protocol of `docs/gateway-protocol.md` over the agent's real
//! `gateway.sock`, standing in for `pane-signal`, on the wire `pane-agent demo`'s phone uses
//! (`pane_agent::sim::phone::Wire`).
#![allow(dead_code)]

use super::Agent;
use pane_agent::gateway::protocol::{CoreCommand, GatewayEvent, LinkHealth, ID_CONFLICT};
use pane_agent::gateway::sent_log::{content_digest, Seen, SentLog};
use pane_agent::sim::phone::Wire;
use std::time::{Duration, Instant};

/// A test gateway: the protocol over the real socket.
pub struct Gateway {
    wire: Wire,
    owner: String,
    /// Sends read but not yet handed out by `reply`.
    queued: std::collections::VecDeque<(String, String, String)>,
    /// Every `ack` the core wrote, in order.
    pub acks: Vec<String>,
    /// The id of the send `reply` returned last.
    pub last_id: Option<String>,
    /// Every send's id, Signal timestamp and disappearing timer, in order.
    pub sent_meta: Vec<(String, u64, Option<u32>)>,
    /// With a sent log, `reply` acts as pane-signal does: an id in the log is answered
    /// `sent` at once (the same message) or refused as `id_conflict` (another message), and
    /// neither reaches the phone.
    sent_log: Option<SentLog>,
    /// Sends the sent log answered `sent` without sending them to the phone: (id, body).
    pub not_delivered: Vec<(String, String)>,
    /// Sends refused as `id_conflict`: (id, body).
    pub refused: Vec<(String, String)>,
    /// The `store_key` and `seal` lines the core wrote (a sealed installation), in order:
    /// the passphrase itself for `store_key`, `None` for `seal`.
    pub keying: Vec<Option<String>>,
    /// The `submit_challenge` lines the core wrote: (token, captcha).
    pub challenges: Vec<(String, String)>,
}

impl Gateway {
    /// Connects to `agent`'s gateway socket; `owner` is the ACI replies must go to.
    pub fn connect(agent: &Agent, owner: &str) -> Gateway {
        Gateway {
            wire: Wire::connect(&agent.dir.join("gateway.sock")).unwrap(),
            owner: owner.to_string(),
            queued: Default::default(),
            acks: Vec::new(),
            last_id: None,
            sent_meta: Vec::new(),
            sent_log: None,
            not_delivered: Vec::new(),
            refused: Vec::new(),
            keying: Vec::new(),
            challenges: Vec::new(),
        }
    }

    /// Keeps pane-signal's sent log at `path` (opened again on every connect, as the gateway
    /// keeps it across reconnects): `reply` then returns only what reaches the phone.
    pub fn with_sent_log(mut self, path: &std::path::Path) -> Gateway {
        self.sent_log = Some(SentLog::open(path).unwrap());
        self
    }

    /// Writes bytes as they are (a burst of lines, a broken line).
    pub fn write_raw(&mut self, bytes: &[u8]) {
        self.wire.write_raw(bytes).unwrap();
    }

    /// Writes one event line.
    pub fn event(&mut self, e: &GatewayEvent) {
        self.wire.event(e).unwrap();
    }

    /// Reports the link's health as pane-signal does.
    pub fn health(&mut self, health: LinkHealth) {
        self.event(&GatewayEvent::Health(Box::new(health)));
    }

    /// The owner (or anyone) sent `body`.
    pub fn received(&mut self, sender: &str, body: &str) {
        self.event(&GatewayEvent::Received {
            id: None,
            sender: sender.into(),
            device: 1,
            timestamp: 1,
            body: body.into(),
            sealed: true,
            expire_timer: 0,
        });
    }

    /// The owner (or anyone) sent `body` as the Signal message `id`, with a
    /// disappearing-message timer.
    pub fn received_as(&mut self, id: &str, sender: &str, body: &str, expire_timer: u32) {
        self.event(&GatewayEvent::Received {
            id: Some(id.into()),
            sender: sender.into(),
            device: 1,
            timestamp: 1,
            body: body.into(),
            sealed: true,
            expire_timer,
        });
    }

    /// `sender` reacted with `emoji` to the message sent with Signal timestamp `target`.
    pub fn react(&mut self, id: &str, sender: &str, emoji: &str, target: u64, remove: bool) {
        self.event(&GatewayEvent::Reaction {
            id: id.into(),
            sender: sender.into(),
            emoji: emoji.into(),
            target_timestamp: target,
            remove,
        });
    }

    /// The Signal timestamp and timer the core gave the send `id`.
    pub fn meta_of(&self, id: &str) -> (u64, Option<u32>) {
        self.sent_meta
            .iter()
            .rev()
            .find(|(i, _, _)| i == id)
            .map(|(_, t, e)| (*t, *e))
            .unwrap_or_else(|| panic!("no send {id}"))
    }

    /// Waits for the next send and returns its id, leaving it for `reply`.
    pub fn next_send_id(&mut self) -> String {
        let deadline = Instant::now() + Duration::from_secs(10);
        while self.queued.is_empty() {
            assert!(Instant::now() < deadline, "no send came");
            let sends = self.sends(Duration::from_millis(100));
            self.queued.extend(sends);
        }
        self.queued[0].0.clone()
    }

    /// Writes `id` into the sent log as if another message had gone out under it.
    pub fn log_as_sent_elsewhere(&mut self, id: &str) {
        let other = content_digest(&self.owner, 1, "another message");
        self.sent_log
            .as_mut()
            .expect("a gateway with a sent log")
            .record(id, &other)
            .unwrap();
    }

    /// Waits until the core has acknowledged `id` `times` times.
    pub fn wait_for_acks(&mut self, id: &str, times: usize) {
        let deadline = Instant::now() + Duration::from_secs(10);
        while self.acks.iter().filter(|a| *a == id).count() < times {
            assert!(
                Instant::now() < deadline,
                "{id} acknowledged {:?}",
                self.acks
            );
            let sends = self.sends(Duration::from_millis(100));
            self.queued.extend(sends);
        }
    }

    /// Every send that arrives within `wait`.
    pub fn sends(&mut self, wait: Duration) -> Vec<(String, String, String)> {
        let deadline = Instant::now() + wait;
        let mut out: Vec<_> = self.queued.drain(..).collect();
        while Instant::now() < deadline {
            match self.wire.read() {
                // The agent went away (stopped, killed): nothing more comes on this socket.
                Err(e)
                    if matches!(
                        e.kind(),
                        std::io::ErrorKind::UnexpectedEof | std::io::ErrorKind::ConnectionReset
                    ) =>
                {
                    break
                }
                Err(e) => panic!("the gateway socket: {e}"),
                Ok(None) => {}
                Ok(Some(command)) => match command {
                    CoreCommand::Send {
                        id,
                        recipient,
                        body,
                        timestamp,
                        expire_timer,
                    } => {
                        self.sent_meta.push((id.clone(), timestamp, expire_timer));
                        out.push((id, recipient, body));
                    }
                    CoreCommand::Ack { id } => self.acks.push(id),
                    CoreCommand::StoreKey { passphrase } => {
                        self.keying.push(Some(passphrase.expose().to_string()))
                    }
                    CoreCommand::Seal {} => self.keying.push(None),
                    CoreCommand::SubmitChallenge { token, captcha } => {
                        self.challenges.push((token, captcha))
                    }
                },
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
                // Replies on Signal are words: no body sent to the phone is JSON.
                assert!(
                    serde_json::from_str::<serde_json::Value>(&body).is_err(),
                    "a Signal message is JSON: {body}"
                );
                self.last_id = Some(id.clone());
                if self.sent_log.is_some() {
                    let digest = content_digest(&recipient, self.meta_of(&id).0, &body);
                    let log = self.sent_log.as_mut().unwrap();
                    match log.check(&id, &digest) {
                        Seen::New => log.record(&id, &digest).unwrap(),
                        Seen::Sent => {
                            // pane-signal: already sent, so `sent` at once and nothing sent.
                            self.event(&GatewayEvent::Sent {
                                id: id.clone(),
                                timestamp: None,
                            });
                            self.not_delivered.push((id, body));
                            continue;
                        }
                        Seen::Conflict => {
                            self.event(&GatewayEvent::SendFailed {
                                id: id.clone(),
                                error: ID_CONFLICT.into(),
                                retryable: false,
                            });
                            self.refused.push((id, body));
                            continue;
                        }
                    }
                }
                self.event(&GatewayEvent::Sent {
                    id,
                    timestamp: None,
                });
                return body;
            }
            assert!(Instant::now() < deadline, "no reply came");
        }
    }
}

/// A pane-agent `help` envelope's reply says this on Signal for an empty store.
#[allow(dead_code)]
pub const NO_CONTEXTS: &str = "No contexts yet: `enroll` one.";

/// The approval code a prompt names (`approve ABCDE-FGHJK`).
pub fn code_in(prompt: &str) -> String {
    let at = prompt
        .find("`approve ")
        .unwrap_or_else(|| panic!("no code in {prompt}"));
    prompt[at + 9..at + 20].to_string()
}
