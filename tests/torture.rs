//! Crash torture: the real daemon under a mixed load, killed with SIGKILL at random moments,
//! then restarted and checked against everything it acknowledged before the kill.
//!
//! The load, all at once: signed commands over the control socket (reads, grants that open
//! approvals, approvals and denials, enrolls against the local addy.io and Privacy.com
//! servers, sweeps, audit reads), mail arriving at a real Dovecot (which the agent sweeps on
//! its schedule, on IDLE and on `sweep`), and a test gateway on `gateway.sock` that sends the
//! owner's commands over the Signal channel and takes the outbox's messages.
//!
//! After every restart: the store opens (the daemon becomes ready); the audit chain verifies;
//! every envelope the agent answered has its `envelope.accepted` entry and is refused as
//! replayed; every pending approval is still there with its original deadline; every context
//! whose enroll was answered is there with the same alias and card; every incident a sweep
//! reported is there; no alias or card exists twice at the providers. At the end the outbox
//! drains and: nothing is left in it, no message was sent twice on one connection, every
//! approval prompt and every incident alert reached the gateway exactly once, and every alias
//! and card at the providers belongs to its context.
//!
//! The installation is sealed at rest (issue 23): unsealed once, and every restart after a
//! kill resumes from the kernel keyring, as a crash-restart under systemd does.
//!
//! Short form (`cargo test`): 12 kills. Long form:
//! `PANE_TORTURE_KILLS=200 cargo test --release --test torture -- --nocapture`.
//! A failure names its seed; `PANE_TORTURE_SEED=<seed>` replays the same schedule of kills
//! and operations (thread timing still varies).

mod common;

use common::dovecot::{message, Dovecot};
use common::providers::{self, MockServer};
use common::Agent;
use pane_agent::auth::{Envelope, Secret};
use pane_agent::gateway::protocol::{decode_line, encode_line, CoreCommand, GatewayEvent};
use pane_agent::outbox::Outbox;
use serde_json::{json, Map, Value};
use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

const OWNER: &str = "0b5c6a5e-2f6e-4a7b-9d35-6a1c1f1f2c3d";
/// Enrolls sent at once in a burst.
const BURST_JOBS: usize = 20;
/// Kills in the short form that `cargo test` (and CI) runs.
const SHORT_KILLS: usize = 12;
/// Envelopes older than this are not re-sent to test the replay cache: the 300 s window
/// would refuse them as expired before the cache is asked.
const REPLAY_CHECK_AGE: Duration = Duration::from_secs(200);
/// Error kinds that refuse an envelope before it is accepted (no audit entry for it).
const BEFORE_ACCEPTANCE: &[&str] = &[
    "too_large",
    "malformed",
    "bad_signature",
    "expired",
    "replayed",
];

/// SplitMix64: a small, seedable generator, so a failing schedule can be replayed.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
    fn range(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.below(hi - lo)
    }
    fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }
}

/// What an approval is known to be, from the replies the driver got.
#[derive(Debug, Clone, PartialEq)]
enum Settled {
    /// Opened, and nothing was answered about it since.
    Pending,
    /// An approve or deny was sent and the daemon died before answering.
    Unknown,
    /// Approved or denied, answered.
    Done,
}

#[derive(Debug, Clone)]
struct ApprovalRecord {
    expires_at: String,
    deadline: chrono::DateTime<chrono::Utc>,
    state: Settled,
}

/// An answered envelope.
#[derive(Debug, Clone)]
struct Answered {
    at: Instant,
    json: String,
    sig12: String,
    cycle: usize,
    cmd: String,
}

/// Everything the daemon acknowledged, as the clients saw it.
#[derive(Default)]
struct Ledger {
    answered: Vec<Answered>,
    approvals: BTreeMap<String, ApprovalRecord>,
    /// Context name -> (alias email, card last four) from the enroll reply.
    enrolled: BTreeMap<String, (String, Option<String>)>,
    /// Enrolls sent but not answered: sent again later, as a user would.
    enroll_unanswered: BTreeSet<String>,
    next_site: usize,
    /// Ids of the incidents sweep replies reported.
    incidents: BTreeSet<String>,
    /// Bursts of concurrent enrolls sent.
    bursts: usize,
    /// Operations answered, by command.
    ops: BTreeMap<String, usize>,
    /// Requests that got no answer because of a kill.
    cut_off: usize,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// One request over the control socket; `None` when the daemon died before answering.
fn try_request(socket: &Path, bytes: &[u8]) -> Option<Value> {
    let mut s = UnixStream::connect(socket).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(60))).ok()?;
    s.write_all(bytes).ok()?;
    s.shutdown(std::net::Shutdown::Write).ok()?;
    let mut out = String::new();
    s.read_to_string(&mut out).ok()?;
    serde_json::from_str(&out).ok()
}

/// The last timestamp signed, in ms: every envelope gets a later one, so two threads that
/// send the same command in the same millisecond do not make the same envelope (the agent
/// would rightly refuse the second as a replay).
static LAST_SIGNED_MS: AtomicI64 = AtomicI64::new(0);

fn sign(secret: &Secret, cmd: &str, args: Value) -> Envelope {
    let args: Map<String, Value> = args.as_object().cloned().unwrap_or_default();
    let now = chrono::Utc::now().timestamp_millis();
    let prev = LAST_SIGNED_MS
        .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |last| {
            Some(now.max(last + 1))
        })
        .unwrap_or(now);
    let ms = now.max(prev + 1);
    let ts = chrono::DateTime::from_timestamp_millis(ms).unwrap_or_else(chrono::Utc::now);
    Envelope::sign(secret, ts, cmd, args)
}

/// The first 12 hex characters of an envelope's signature, as the audit log keeps them.
fn sig12(json: &str) -> String {
    let v: Value = serde_json::from_str(json).unwrap_or_default();
    v["sig"].as_str().unwrap_or_default()[..12].to_string()
}

/// The shared world: providers, the mailbox, the daemon's paths and secret.
struct World {
    socket: PathBuf,
    secret: Secret,
    imap: Dovecot,
    aliases: MockServer,
    cards: MockServer,
    ledger: Mutex<Ledger>,
}

impl World {
    /// Signs and sends; records the answer in the ledger.
    fn command(&self, cycle: usize, cmd: &str, args: Value) -> Option<Value> {
        let env = sign(&self.secret, cmd, args).to_json();
        let reply = try_request(&self.socket, env.as_bytes());
        let mut ledger = lock(&self.ledger);
        match &reply {
            Some(r) if !BEFORE_ACCEPTANCE.contains(&r["kind"].as_str().unwrap_or("")) => {
                ledger.answered.push(Answered {
                    at: Instant::now(),
                    sig12: sig12(&env),
                    json: env,
                    cycle,
                    cmd: cmd.to_string(),
                });
                *ledger.ops.entry(cmd.to_string()).or_default() += 1;
            }
            Some(r) => panic!("a fresh envelope was refused before acceptance: {r}"),
            None => ledger.cut_off += 1,
        }
        reply
    }

    /// One random operation of the control-socket load. With `light`, only commands that
    /// write nothing but their audit entries and replies (reads, grants, approvals): then the
    /// flush before each reply is the only one, and a missing flush shows.
    fn operation(&self, cycle: usize, rng: &mut Rng, light: bool) {
        let pick = if light {
            [0, 30, 45, 85, 95][rng.below(5) as usize] + rng.below(10)
        } else {
            rng.below(100)
        };
        match pick {
            0..=24 => {
                let ctx = {
                    let l = lock(&self.ledger);
                    l.enrolled
                        .keys()
                        .nth(rng.below(l.enrolled.len() as u64 + 1) as usize)
                        .cloned()
                };
                match ctx {
                    Some(c) => self.command(cycle, "status", json!({"context": c})),
                    None => self.command(cycle, "list", json!({})),
                };
            }
            25..=39 => {
                let tool =
                    ["list", "status", "transactions", "check-incidents"][rng.below(4) as usize];
                if let Some(r) = self.command(cycle, "grant", json!({"tool": tool})) {
                    if r["merged"] == true {
                        // The same request while one is pending joins it: no new approval
                        // (its prompt was sent once, for the first).
                        return;
                    }
                    let code = r["code"].as_str();
                    let expires = r["expires_at"].as_str();
                    let (Some(code), Some(expires)) = (code, expires) else {
                        panic!("grant did not open an approval: {r}");
                    };
                    let deadline = chrono::DateTime::parse_from_rfc3339(expires)
                        .map(|t| t.with_timezone(&chrono::Utc))
                        .unwrap_or_else(|e| panic!("bad expires_at {expires}: {e}"));
                    lock(&self.ledger).approvals.insert(
                        code.to_string(),
                        ApprovalRecord {
                            expires_at: expires.to_string(),
                            deadline,
                            state: Settled::Pending,
                        },
                    );
                }
            }
            40..=54 => {
                let code = {
                    let mut l = lock(&self.ledger);
                    let now = chrono::Utc::now() + chrono::Duration::seconds(5);
                    let open: Vec<String> = l
                        .approvals
                        .iter()
                        .filter(|(_, a)| a.state == Settled::Pending && a.deadline > now)
                        .map(|(c, _)| c.clone())
                        .collect();
                    if open.is_empty() {
                        None
                    } else {
                        let code = open[rng.below(open.len() as u64) as usize].clone();
                        if let Some(a) = l.approvals.get_mut(&code) {
                            a.state = Settled::Unknown;
                        }
                        Some(code)
                    }
                };
                if let Some(code) = code {
                    let verb = if rng.chance(75) { "approve" } else { "deny" };
                    if let Some(r) = self.command(cycle, verb, json!({"code": code})) {
                        assert!(
                            r.get("error").is_none(),
                            "{verb} of a pending approval failed: {r}"
                        );
                        if let Some(a) = lock(&self.ledger).approvals.get_mut(&code) {
                            a.state = Settled::Done;
                        }
                    }
                }
            }
            55..=69 => self.enroll_next(cycle),
            70..=79 => {
                if let Some(r) = self.command(cycle, "sweep", json!({})) {
                    self.note_incidents(&r);
                }
            }
            80..=89 => {
                self.command(cycle, "audit", json!({"limit": 5}));
            }
            _ => {
                self.command(cycle, "help", json!({}));
            }
        }
    }

    /// Enrolls the next new site, or again one whose enroll a kill left unanswered.
    fn enroll_next(&self, cycle: usize) {
        let name = {
            let mut l = lock(&self.ledger);
            match l.enroll_unanswered.pop_first() {
                Some(n) => n,
                None => {
                    l.next_site += 1;
                    format!("site{}", l.next_site)
                }
            }
        };
        let url = format!("https://www.{name}.example");
        match self.command(cycle, "enroll", json!({"url": url})) {
            Some(r) if r["status"] == "enrolled" => {
                let email = r["alias"]["email"].as_str().unwrap_or_default();
                assert!(!email.is_empty(), "enroll without an alias: {r}");
                let last4 = r["card"]["last_four"].as_str().map(str::to_string);
                lock(&self.ledger)
                    .enrolled
                    .insert(name, (email.to_string(), last4));
            }
            Some(r) if r["kind"] == "conflict" => {
                // Answered before the kill but the reply was lost: it exists.
                let status = self
                    .command(cycle, "status", json!({"context": name}))
                    .unwrap_or_default();
                if status["state"] == "active" {
                    let email = status["alias"]["email"].as_str().unwrap_or_default();
                    let last4 = status["card"]["last_four"].as_str().map(str::to_string);
                    lock(&self.ledger)
                        .enrolled
                        .insert(name, (email.to_string(), last4));
                } else {
                    lock(&self.ledger).enroll_unanswered.insert(name);
                }
            }
            Some(r) => panic!("enroll failed: {r}"),
            None => {
                lock(&self.ledger).enroll_unanswered.insert(name);
            }
        }
    }

    /// A burst of `BURST_JOBS` enrolls sent at once: every job step flushes the store, and
    /// concurrent flushes once froze the agent for good (security round 3, point 1).
    fn burst(&self, cycle: usize) {
        std::thread::scope(|s| {
            for _ in 0..BURST_JOBS {
                s.spawn(|| self.enroll_next(cycle));
            }
        });
        lock(&self.ledger).bursts += 1;
    }

    fn note_incidents(&self, sweep_reply: &Value) {
        let Some(new) = sweep_reply["new_incidents"].as_array() else {
            panic!("sweep failed: {sweep_reply}");
        };
        let mut l = lock(&self.ledger);
        for i in new {
            l.incidents
                .insert(i["id"].as_str().unwrap_or_default().to_string());
        }
    }

    /// Mail for the enrolled aliases: mostly from the site, sometimes from a stranger.
    fn deliver_mail(&self, rng: &mut Rng, serial: &mut usize) {
        let targets: Vec<(String, String)> = {
            let l = lock(&self.ledger);
            l.enrolled
                .iter()
                .map(|(n, (email, _))| (n.clone(), email.clone()))
                .collect()
        };
        if targets.is_empty() {
            return;
        }
        let mut batch = Vec::new();
        for _ in 0..rng.range(1, 4) {
            let (name, alias) = &targets[rng.below(targets.len() as u64) as usize];
            *serial += 1;
            let sender = if rng.chance(20) {
                format!("offers@broker{}.example", rng.below(3))
            } else {
                format!("hello@mail.{name}.example")
            };
            batch.push(message(
                &[
                    ("From", &format!("Sender <{sender}>")),
                    ("Delivered-To", alias),
                    ("To", alias),
                    ("Subject", &format!("message {serial}")),
                    ("Message-ID", &format!("<m{serial}@torture.test>")),
                ],
                "body",
            ));
        }
        self.imap.append_many(&batch);
    }
}

/// One send the gateway took from the core.
#[derive(Debug, Clone)]
struct Delivery {
    id: String,
    body: String,
}

/// A test gateway that lives across the daemon's restarts: it reconnects to `gateway.sock`,
/// takes every send and answers `sent`, and (while `chatty`) sends the owner's commands.
/// Like the real gateway it keeps every owner message until the core acknowledges it
/// (`ack`, once recorded) and sends every unacknowledged one again, in order, on each
/// reconnect.
struct Gateway {
    /// Owner messages sent and not yet acknowledged, in order: (id, line).
    unacked: Mutex<Vec<(String, String)>>,
    /// Every owner message sent: (id, the first 12 hex digits of its envelope's signature).
    owner_messages: Mutex<Vec<(String, String)>>,
    /// Acknowledgements received per id.
    acks: Mutex<HashMap<String, usize>>,
    /// Owner messages sent again on a reconnect.
    resent: Mutex<usize>,
    deliveries: Mutex<Vec<Delivery>>,
    /// (connection, id) pairs already answered `sent`.
    answered: Mutex<HashSet<(usize, String)>>,
    /// Sends of an id that was already answered on the same connection.
    duplicates_same_connection: Mutex<Vec<String>>,
    chatty: AtomicBool,
    stop: AtomicBool,
    commands_sent: Mutex<usize>,
}

impl Gateway {
    fn new() -> Gateway {
        Gateway {
            unacked: Mutex::new(Vec::new()),
            owner_messages: Mutex::new(Vec::new()),
            acks: Mutex::new(HashMap::new()),
            resent: Mutex::new(0),
            deliveries: Mutex::new(Vec::new()),
            answered: Mutex::new(HashSet::new()),
            duplicates_same_connection: Mutex::new(Vec::new()),
            chatty: AtomicBool::new(false),
            stop: AtomicBool::new(false),
            commands_sent: Mutex::new(0),
        }
    }

    fn run(&self, socket: &Path, secret: &Secret, seed: u64) {
        let mut rng = Rng(seed);
        let mut connection = 0usize;
        while !self.stop.load(Ordering::SeqCst) {
            let Ok(stream) = UnixStream::connect(socket) else {
                // The pause between reconnects while the agent is down (killed on purpose).
                std::thread::sleep(Duration::from_millis(20));
                continue;
            };
            connection += 1;
            if stream
                .set_read_timeout(Some(Duration::from_millis(20)))
                .is_err()
            {
                continue;
            }
            let Ok(read_half) = stream.try_clone() else {
                continue;
            };
            let mut writer = stream;
            let mut reader = BufReader::new(read_half);
            // What the core has not acknowledged goes again, in order, before anything new.
            let again: Vec<String> = lock(&self.unacked).iter().map(|(_, l)| l.clone()).collect();
            if again
                .iter()
                .any(|line| writer.write_all(line.as_bytes()).is_err())
            {
                continue;
            }
            *lock(&self.resent) += again.len();
            let mut buf = Vec::new();
            let mut next_command = Instant::now();
            loop {
                if self.stop.load(Ordering::SeqCst) {
                    return;
                }
                match reader.read_until(b'\n', &mut buf) {
                    Ok(0) => break,
                    Ok(_) if buf.ends_with(b"\n") => {
                        let line = String::from_utf8_lossy(&buf).into_owned();
                        buf.clear();
                        let (id, recipient, body) = match decode_line(&line)
                            .unwrap_or_else(|e| panic!("core sent a bad line {line:?}: {e}"))
                        {
                            CoreCommand::Send {
                                id,
                                recipient,
                                body,
                                ..
                            } => (id, recipient, body),
                            CoreCommand::Ack { id } => {
                                // Recorded by the core: it need not be sent again.
                                lock(&self.unacked).retain(|(u, _)| *u != id);
                                *lock(&self.acks).entry(id).or_default() += 1;
                                continue;
                            }
                            // A sealed installation's keying, a challenge's answer: nothing to
                            // deliver.
                            CoreCommand::StoreKey { .. }
                            | CoreCommand::Seal {}
                            | CoreCommand::SubmitChallenge { .. } => continue,
                        };
                        assert_eq!(recipient, OWNER);
                        if lock(&self.answered).contains(&(connection, id.clone())) {
                            lock(&self.duplicates_same_connection).push(id.clone());
                        }
                        lock(&self.deliveries).push(Delivery {
                            id: id.clone(),
                            body,
                        });
                        let sent = encode_line(&GatewayEvent::Sent {
                            id: id.clone(),
                            timestamp: None,
                        })
                        .unwrap_or_default();
                        if writer.write_all(sent.as_bytes()).is_err() {
                            break;
                        }
                        lock(&self.answered).insert((connection, id));
                    }
                    Ok(_) => {}
                    Err(e)
                        if e.kind() == std::io::ErrorKind::WouldBlock
                            || e.kind() == std::io::ErrorKind::TimedOut => {}
                    Err(_) => break,
                }
                if self.chatty.load(Ordering::SeqCst) && Instant::now() >= next_command {
                    next_command = Instant::now() + Duration::from_millis(rng.range(40, 200));
                    let cmd = if rng.chance(50) { "list" } else { "help" };
                    let body = sign(secret, cmd, json!({})).to_json();
                    let n = {
                        let mut sent = lock(&self.commands_sent);
                        *sent += 1;
                        *sent as u64
                    };
                    let id = format!("{OWNER}.1.{n}");
                    let event = GatewayEvent::Received {
                        id: Some(id.clone()),
                        expire_timer: 0,
                        sender: OWNER.into(),
                        device: 1,
                        timestamp: n,
                        body: body.clone(),
                        sealed: true,
                    };
                    let line = encode_line(&event).unwrap_or_default();
                    lock(&self.owner_messages).push((id.clone(), sig12(&body)));
                    // Journaled before it is written, as the real gateway does.
                    lock(&self.unacked).push((id, line.clone()));
                    if writer.write_all(line.as_bytes()).is_err() {
                        break;
                    }
                    if rng.chance(10) {
                        // The gateway's own connection drops before the ack can arrive:
                        // the message goes again on the next connection.
                        break;
                    }
                }
            }
        }
    }

    /// Distinct ids taken so far.
    fn distinct(&self) -> HashMap<String, String> {
        lock(&self.deliveries)
            .iter()
            .map(|d| (d.id.clone(), d.body.clone()))
            .collect()
    }
}

fn config(imap: &Dovecot) -> String {
    common::unlimited_rates(&imap.configure(pane_agent::config::TEMPLATE))
        .replace("owner = \"\"", &format!("owner = \"{OWNER}\""))
        // The clients approve from the socket: codes shown there (phone-only is the default
        // with an owner, and tested in tests/security.rs).
        .replace(
            "codes_over_signal_only = true",
            "codes_over_signal_only = false",
        )
        .replace(
            "breach_sweep = \"0 0 * * * *\"",
            "breach_sweep = \"*/3 * * * * *\"",
        )
}

/// Checks, through the restarted daemon, everything acknowledged before the kill.
fn verify_after_restart(agent: &Agent, world: &World, cycle: usize, since: Instant) {
    let ctx = |what: &str| format!("after kill {cycle}: {what}");
    let verify = agent.send("audit", json!({"verify": true, "limit": 1}));
    assert_eq!(
        verify["verify"]["ok"],
        true,
        "{}: {verify}",
        ctx("audit chain")
    );

    let entries = agent.audit();
    let accepted: HashSet<String> = entries
        .iter()
        .filter(|e| e["event"] == "envelope.accepted")
        .filter_map(|e| e["detail"]["sig"].as_str().map(str::to_string))
        .collect();
    let ledger = lock(&world.ledger);
    let last: Vec<&Answered> = ledger
        .answered
        .iter()
        .filter(|a| a.cycle + 1 == cycle)
        .collect();
    for a in &last {
        assert!(
            accepted.contains(&a.sig12) || entries.len() >= 1000,
            "{}: the answered `{}` envelope {} has no audit entry",
            ctx("audit"),
            a.cmd,
            a.sig12
        );
    }
    assert!(
        entries.len() < 1000 || last.iter().all(|a| accepted.contains(&a.sig12)),
        "{}: the cycle wrote more than the 1,000 entries `audit` shows; slow the load down",
        ctx("audit")
    );

    // The replay cache: a sample of answered envelopes young enough for the window.
    let young: Vec<&Answered> = ledger
        .answered
        .iter()
        .filter(|a| a.at.elapsed() < REPLAY_CHECK_AGE && a.at >= since)
        .collect();
    for a in young.iter().rev().take(8) {
        let r = agent.raw(a.json.as_bytes());
        assert_eq!(
            r["kind"],
            "replayed",
            "{}: answered `{}` envelope accepted again: {r}",
            ctx("replay cache"),
            a.cmd
        );
    }

    // Pending approvals keep their deadline.
    let pending = agent.send("approvals", json!({}));
    let pending: HashMap<String, String> = pending["pending"]
        .as_array()
        .unwrap_or_else(|| panic!("{}: {pending}", ctx("approvals")))
        .iter()
        .map(|p| {
            (
                p["code"].as_str().unwrap_or_default().to_string(),
                p["expires_at"].as_str().unwrap_or_default().to_string(),
            )
        })
        .collect();
    let soon = chrono::Utc::now() + chrono::Duration::seconds(2);
    for (code, a) in &ledger.approvals {
        match (&a.state, pending.get(code)) {
            (Settled::Pending, None) if a.deadline > soon => {
                panic!("{}: pending approval {code} is gone", ctx("approvals"))
            }
            (Settled::Done, Some(_)) => {
                panic!(
                    "{}: settled approval {code} is pending again",
                    ctx("approvals")
                )
            }
            (_, Some(deadline)) => assert_eq!(
                deadline,
                &a.expires_at,
                "{}: approval {code} has a new deadline",
                ctx("approvals")
            ),
            _ => {}
        }
    }

    // Contexts whose enroll was answered are there, with the same alias and card.
    let contexts = contexts_by_name(agent);
    for (name, (email, last4)) in &ledger.enrolled {
        let c = contexts
            .get(name)
            .unwrap_or_else(|| panic!("{}: {name} is gone", ctx("context")));
        assert_eq!(
            c["alias"]["email"].as_str(),
            Some(email.as_str()),
            "{}: {name}: {c}",
            ctx("context")
        );
        assert_eq!(
            c["card"]["last_four"].as_str().map(str::to_string),
            *last4,
            "{}: {name}: {c}",
            ctx("context")
        );
    }

    // Incidents a sweep reported are there.
    let all = agent.send("check-incidents", json!({}));
    let ids: HashSet<String> = all["incidents"]
        .as_array()
        .unwrap_or_else(|| panic!("{}: {all}", ctx("incidents")))
        .iter()
        .filter_map(|i| i["id"].as_str().map(str::to_string))
        .collect();
    for id in &ledger.incidents {
        assert!(
            ids.contains(id),
            "{}: incident {id} is gone",
            ctx("incidents")
        );
    }
    drop(ledger);
    assert_no_twins(world, &ctx("providers"));
}

/// Every context, by name, from `list`.
fn contexts_by_name(agent: &Agent) -> HashMap<String, Value> {
    let list = agent.send("list", json!({}));
    list["contexts"]
        .as_array()
        .unwrap_or_else(|| panic!("list failed: {list}"))
        .iter()
        .map(|c| {
            (
                c["context"].as_str().unwrap_or_default().to_string(),
                c.clone(),
            )
        })
        .collect()
}

/// The context name in an alias description (`pane NAME (pane:MARKER)`) or card memo.
fn owner_of(text: &str) -> Option<String> {
    let rest = text.strip_prefix("pane ")?;
    rest.split_whitespace().next().map(str::to_string)
}

/// No context has two aliases or two cards at the providers.
fn assert_no_twins(world: &World, what: &str) {
    let mut per_context: HashMap<String, usize> = HashMap::new();
    for a in world.aliases.aliases() {
        if let Some(n) = a["description"].as_str().and_then(owner_of) {
            *per_context.entry(n).or_default() += 1;
        }
    }
    let twins: Vec<_> = per_context.iter().filter(|(_, n)| **n > 1).collect();
    assert!(twins.is_empty(), "{what}: aliases made twice: {twins:?}");
    let mut per_context: HashMap<String, usize> = HashMap::new();
    for c in world.cards.cards() {
        if let Some(n) = c["memo"].as_str().and_then(owner_of) {
            *per_context.entry(n).or_default() += 1;
        }
    }
    let twins: Vec<_> = per_context.iter().filter(|(_, n)| **n > 1).collect();
    assert!(twins.is_empty(), "{what}: cards made twice: {twins:?}");
}

/// Runs the load until `stop`, on the given seed.
fn load(world: &World, cycle: usize, seed: u64, stop: &AtomicBool) {
    // One cycle in three is light (see `World::operation`).
    let light = seed.is_multiple_of(3);
    std::thread::scope(|s| {
        for w in 0..4u64 {
            let seed = seed ^ (w + 1).wrapping_mul(0x1234_5678_9ABC_DEF1);
            s.spawn(move || {
                let mut rng = Rng(seed);
                while !stop.load(Ordering::SeqCst) {
                    world.operation(cycle, &mut rng, light);
                    // Pacing the load (random gaps), not synchronisation.
                    std::thread::sleep(Duration::from_millis(rng.range(10, 60)));
                }
            });
        }
        if !light {
            // One burst of concurrent jobs beside the rest of the load, at a random moment
            // (one a cycle: more would write past the 1,000 audit entries a check reads).
            s.spawn(move || {
                let mut rng = Rng(seed ^ 0x0B0B_0B0B);
                // The burst's random moment in the cycle (the scenario).
                std::thread::sleep(Duration::from_millis(rng.range(20, 800)));
                if !stop.load(Ordering::SeqCst) {
                    world.burst(cycle);
                }
            });
        }
        s.spawn(move || {
            let mut rng = Rng(seed ^ 0xA5A5_A5A5);
            let mut serial = cycle * 10_000;
            while !stop.load(Ordering::SeqCst) {
                if !light {
                    world.deliver_mail(&mut rng, &mut serial);
                }
                // Pacing the mail (random gaps), not synchronisation.
                std::thread::sleep(Duration::from_millis(rng.range(50, 250)));
            }
        });
    });
}

#[test]
fn sigkill_torture() {
    let kills: usize = std::env::var("PANE_TORTURE_KILLS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(SHORT_KILLS);
    let seed: u64 = std::env::var("PANE_TORTURE_SEED")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_nanos() as u64)
                .unwrap_or(1)
        });
    println!("torture: {kills} kills, PANE_TORTURE_SEED={seed}");
    let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| torture(kills, seed)));
    if let Err(e) = outcome {
        eprintln!("torture failed with PANE_TORTURE_SEED={seed} ({kills} kills)");
        std::panic::resume_unwind(e);
    }
}

fn torture(kills: usize, seed: u64) {
    let started = Instant::now();
    let imap = Dovecot::start();
    let aliases = providers::addy("k-addy-torture");
    let cards = providers::privacy("k-privacy-torture");
    // Sealed at rest, as `init` makes an installation by default (PANE_TORTURE_UNSEALED=1 for
    // one in clear): unsealed once, then every restart after a kill resumes from the kernel
    // keyring, as a crash-restart under systemd does.
    let sealed = std::env::var_os("PANE_TORTURE_UNSEALED").is_none();
    let mut agent = if sealed {
        Agent::init_sealed()
    } else {
        Agent::init()
    };
    common::use_local_services(&mut agent, &aliases, &cards, &imap);
    agent.env.push(("RUST_LOG".into(), "info".into()));
    agent.write_config(&config(&imap));
    agent.spawn();
    if sealed {
        let r = agent.unseal(common::PASSPHRASE);
        assert_eq!(r["status"], "unsealed", "{r}");
    }
    let world = World {
        socket: agent.socket(),
        secret: agent.secret(),
        imap,
        aliases,
        cards,
        ledger: Mutex::new(Ledger::default()),
    };
    let gateway = Arc::new(Gateway::new());
    let mut gw_thread = Some({
        let gateway = gateway.clone();
        let socket = agent.dir.join("gateway.sock");
        let secret = agent.secret();
        std::thread::spawn(move || gateway.run(&socket, &secret, seed ^ 0x5EED))
    });
    // A failure in the gateway thread fails the run at once.
    let mut check_gateway = || {
        if gw_thread.as_ref().is_some_and(|t| t.is_finished()) {
            if let Some(Err(e)) = gw_thread.take().map(|t| t.join()) {
                std::panic::resume_unwind(e);
            }
            panic!("the test gateway stopped");
        }
    };
    let mut rng = Rng(seed);
    let mut kill_points = Vec::new();
    for cycle in 1..=kills {
        let cycle_start = Instant::now();
        let stop = AtomicBool::new(false);
        let run_for = Duration::from_millis(rng.range(100, 2500));
        kill_points.push(run_for.as_millis());
        gateway.chatty.store(true, Ordering::SeqCst);
        std::thread::scope(|s| {
            let load_seed = rng.next();
            let world = &world;
            let stop = &stop;
            s.spawn(move || load(world, cycle - 1, load_seed, stop));
            // The random kill point under load (the scenario), not synchronisation.
            std::thread::sleep(run_for);
            agent.kill();
            stop.store(true, Ordering::SeqCst);
        });
        gateway.chatty.store(false, Ordering::SeqCst);
        check_gateway();
        agent.spawn();
        verify_after_restart(&agent, &world, cycle, cycle_start);
        if cycle % 20 == 0 {
            println!(
                "torture: {cycle} kills checked ({:.0} s)",
                started.elapsed().as_secs_f64()
            );
        }
    }

    // The last start's reconciliation may wait out the landing window of creates the kill
    // left in flight (a card the provider makes after the kill is attached, not orphaned): the
    // checks below come after it has finished.
    let deadline = Instant::now() + Duration::from_secs(90);
    loop {
        let audit = agent.audit();
        let job = audit
            .iter()
            .rev()
            .find(|e| e["event"] == "job.started" && e["detail"]["cmd"] == "reconcile")
            .and_then(|e| e["detail"]["job"].as_u64());
        let finished = job.is_some_and(|id| {
            audit.iter().any(|e| {
                (e["event"] == "action.ok" || e["event"] == "action.error")
                    && e["detail"]["job"].as_u64() == Some(id)
            })
        });
        if finished {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the last start's reconciliation did not finish"
        );
        // The poll interval of this bounded wait.
        std::thread::sleep(Duration::from_millis(200));
    }

    // Drain: a last sweep raises whatever a kill left un-alerted, then the outbox empties.
    let r = agent.send("sweep", json!({}));
    world.note_incidents(&r);
    let mut last_count = usize::MAX;
    let mut quiet_since = Instant::now();
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let n = lock(&gateway.deliveries).len();
        if n != last_count {
            last_count = n;
            quiet_since = Instant::now();
        } else if quiet_since.elapsed() > Duration::from_secs(3) {
            break;
        }
        check_gateway();
        assert!(Instant::now() < deadline, "the outbox did not drain");
        // The poll interval of this bounded wait (60 s) for 3 s without a new delivery.
        std::thread::sleep(Duration::from_millis(100));
    }
    // Every owner message was recorded and acknowledged (the last restart's reconnect sent
    // the unacknowledged ones again).
    let deadline = Instant::now() + Duration::from_secs(30);
    while !lock(&gateway.unacked).is_empty() {
        check_gateway();
        assert!(
            Instant::now() < deadline,
            "owner messages never acknowledged: {:?}",
            lock(&gateway.unacked)
                .iter()
                .map(|(id, _)| id.clone())
                .collect::<Vec<_>>()
        );
        // The poll interval of this bounded wait.
        std::thread::sleep(Duration::from_millis(100));
    }
    let contexts = contexts_by_name(&agent);
    let incidents = agent.send("check-incidents", json!({}));
    agent.stop();
    gateway.stop.store(true, Ordering::SeqCst);
    if let Some(Err(e)) = gw_thread.take().map(|t| t.join()) {
        std::panic::resume_unwind(e);
    }

    let all_deliveries = lock(&gateway.deliveries).clone();
    let store = agent.open_store();
    // The acknowledged relay: no owner message lost, none acted on twice. Each one's
    // envelope was accepted exactly once, however often a kill made the gateway send it.
    let mut accepted: HashMap<String, usize> = HashMap::new();
    // Accepted, then cut off by a kill before it was answered: the owner was told so.
    let mut cut_off: HashMap<String, usize> = HashMap::new();
    for entry in store.table(pane_agent::store::TableId::Audit).iter() {
        let (_, bytes) = entry.expect("read the audit log");
        let e: Value = pane_agent::store::decode(&bytes).expect("an audit entry");
        if e["event"] == "envelope.accepted" {
            if let Some(sig) = e["detail"]["sig"].as_str() {
                *accepted.entry(sig.to_string()).or_default() += 1;
            }
        }
        if e["event"] == "signal.cut_off" {
            if let Some(sig) = e["detail"]["sig"].as_str() {
                *cut_off.entry(sig.to_string()).or_default() += 1;
            }
        }
    }
    let owner_messages = lock(&gateway.owner_messages).clone();
    // A message sent again is acknowledged and not acted on again (not even refused as a
    // replay, which would reach the owner as an error).
    let replayed: Vec<&Delivery> = all_deliveries
        .iter()
        .filter(|d| d.body.contains("replayed"))
        .collect();
    assert!(
        replayed.is_empty(),
        "a re-sent owner message was answered as a replay: {replayed:?}"
    );
    for (id, sig) in &owner_messages {
        let n = accepted.get(sig).copied().unwrap_or(0);
        let told = cut_off.get(sig).copied().unwrap_or(0);
        assert!(
            n <= 1 && told <= 1 && n + told >= 1,
            "owner message {id}: accepted {n} times, answered as cut off {told} times"
        );
    }
    let acks_total: usize = lock(&gateway.acks).values().sum();
    let left = Outbox::new(&store)
        .pending(usize::MAX)
        .expect("read the outbox");
    assert!(left.is_empty(), "undelivered after the drain: {left:?}");
    drop(store);

    let dups = lock(&gateway.duplicates_same_connection).clone();
    assert!(
        dups.is_empty(),
        "sends repeated on one connection after `sent`: {dups:?}"
    );
    let distinct = gateway.distinct();
    let all = lock(&gateway.deliveries).clone();
    for d in &all {
        assert_eq!(
            distinct.get(&d.id),
            Some(&d.body),
            "a re-sent id must carry the same text"
        );
    }
    let resent = all.len() - distinct.len();

    let ledger = lock(&world.ledger);
    // Every approval prompt reached the gateway once (under one id).
    for code in ledger.approvals.keys() {
        let n = distinct
            .values()
            .filter(|b| b.contains(&format!("approve {code}")))
            .count();
        assert_eq!(n, 1, "the prompt for {code} was delivered {n} times");
    }
    // Every incident (those sweeps reported, and those found by sweeps whose reply a kill
    // cut off) was alerted once.
    let incidents = incidents["incidents"]
        .as_array()
        .unwrap_or_else(|| panic!("check-incidents failed: {incidents}"))
        .clone();
    for id in &ledger.incidents {
        assert!(
            incidents.iter().any(|i| i["id"] == id.as_str()),
            "incident {id} is gone"
        );
    }
    for i in &incidents {
        let head = format!(
            "breach signal: {} ← {} ",
            i["context"].as_str().unwrap_or_default(),
            i["sender_domain"].as_str().unwrap_or_default()
        );
        let n = distinct.values().filter(|b| b.contains(&head)).count();
        assert_eq!(n, 1, "incident {} ({head}) was alerted {n} times", i["id"]);
        assert_eq!(i["alerted"], true, "{i}");
    }
    // Every alias and card at the providers belongs to its context.
    for a in world.aliases.aliases() {
        let Some(name) = a["description"].as_str().and_then(owner_of) else {
            continue;
        };
        let c = contexts
            .get(&name)
            .unwrap_or_else(|| panic!("alias {} has no context {name}", a["email"]));
        assert_eq!(c["alias"]["email"], a["email"], "orphan alias for {name}");
    }
    for card in world.cards.cards() {
        let Some(name) = card["memo"].as_str().and_then(owner_of) else {
            continue;
        };
        let c = contexts
            .get(&name)
            .unwrap_or_else(|| panic!("card {} has no context {name}", card["token"]));
        assert_eq!(
            c["card"]["last_four"], card["last_four"],
            "orphan card for {name}"
        );
    }
    assert_no_twins(&world, "at the end");

    println!(
        "torture: {kills} kills in {:.1} s; answered {} commands ({:?}), {} cut off by kills; \
         {} contexts, {} approvals, {} incidents; gateway: {} owner commands ({} acks, {} sent again), {} sends, {} \
         re-sent after a kill (absorbed by the relay's sent-id log); {} bursts of {BURST_JOBS} concurrent enrolls; kill points (ms): {:?}",
        started.elapsed().as_secs_f64(),
        ledger.answered.len(),
        ledger.ops,
        ledger.cut_off,
        ledger.enrolled.len(),
        ledger.approvals.len(),
        incidents.len(),
        owner_messages.len(),
        acks_total,
        lock(&gateway.resent),
        distinct.len(),
        resent,
        ledger.bursts,
        kill_points
    );
}
