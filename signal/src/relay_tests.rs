//! The relay against a test double of the device and a test core on a real Unix socket.

use super::*;
use crate::journal::event_id;
use pane_protocol::messages::{encode_line, message_id, ID_CONFLICT};
use pane_protocol::sent_log::content_digest;
use std::cell::RefCell;
use std::collections::BTreeSet;
use std::rc::Rc;
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::unix::{OwnedReadHalf, OwnedWriteHalf};

/// The proxy the test relay is told its connections go through (`RelayConfig::proxy`).
pub(crate) const TEST_PROXY: &str = "socks5h://127.0.0.1:9050";
use tokio::net::UnixListener;
use tokio::sync::{broadcast, mpsc};

const OWNER: &str = "0b5c6a5e-2f6e-4a7b-9d35-6a1c1f1f2c3d";

/// The passphrase an unsealed test gateway has of its own.
const OWN: &str = "own passphrase of the test gateway";

type Events = mpsc::UnboundedSender<Result<DeviceEvent, DeviceError>>;

/// What the double was asked to send, and which identities are pending; what was opened.
#[derive(Default)]
struct Seen {
    sent: Vec<Outgoing>,
    pending: BTreeSet<String>,
    /// The passphrase of every store opened, in order.
    opened: Vec<String>,
    /// Devices open now (dropped ones are closed).
    live: usize,
    /// Reaching Signal fails (the websocket cannot be opened).
    unreachable: bool,
    /// Signal refuses the device's credentials when it connects.
    refused: bool,
    /// Every send is refused with a challenge (HTTP 428) until one is answered.
    challenge: Option<String>,
    /// The challenge answers submitted: (token, captcha).
    answers: Vec<(String, String)>,
    /// The sender of the device opened last.
    events: Option<Events>,
}

struct Double {
    events: mpsc::UnboundedReceiver<Result<DeviceEvent, DeviceError>>,
    seen: Rc<RefCell<Seen>>,
}

impl Drop for Double {
    fn drop(&mut self) {
        self.seen.borrow_mut().live -= 1;
    }
}

impl Device for Double {
    async fn connect(&mut self) -> Result<(), DeviceError> {
        if self.seen.borrow().unreachable {
            return Err(DeviceError::Disconnected("test: unreachable".into()));
        }
        if self.seen.borrow().refused {
            return Err(DeviceError::Unlinked("test: credentials refused".into()));
        }
        Ok(())
    }
    async fn next_event(&mut self) -> Result<DeviceEvent, DeviceError> {
        match self.events.recv().await {
            Some(e) => e,
            None => std::future::pending().await,
        }
    }
    async fn send(&mut self, out: &Outgoing) -> Result<Delivered, SendFailure> {
        let mut seen = self.seen.borrow_mut();
        if seen.pending.contains(&out.recipient) {
            return Err(SendFailure::IdentityChanged);
        }
        if let Some(token) = &seen.challenge {
            return Err(SendFailure::Refused {
                message: "test: HTTP 428".into(),
                registration: Registration::ProofRequired,
                challenge: Some(pane_protocol::messages::Challenge {
                    token: token.clone(),
                    options: vec!["captcha".into()],
                }),
            });
        }
        seen.sent.push(out.clone());
        Ok(Delivered {
            identity_changed: false,
        })
    }
    fn pending_identities(&self) -> Vec<String> {
        self.seen.borrow().pending.iter().cloned().collect()
    }
    fn confirm_identity(&mut self, aci: &str) -> std::io::Result<()> {
        self.seen.borrow_mut().pending.remove(aci);
        Ok(())
    }
    async fn submit_challenge(&mut self, token: &str, captcha: &str) -> Result<(), String> {
        let mut seen = self.seen.borrow_mut();
        seen.answers.push((token.into(), captcha.into()));
        if seen.challenge.as_deref() == Some(token) && captcha == "solved" {
            seen.challenge = None;
            Ok(())
        } else {
            Err("test: wrong captcha".into())
        }
    }
}

/// Opens a [`Double`] for any passphrase, and records it.
struct DoubleOpener {
    seen: Rc<RefCell<Seen>>,
}

impl Opener for DoubleOpener {
    type Device = Double;
    async fn open(&mut self, passphrase: &str, _keys: &StateKeys) -> Result<Double, RelayError> {
        let (tx, rx) = mpsc::unbounded_channel();
        let mut seen = self.seen.borrow_mut();
        seen.opened.push(passphrase.to_string());
        seen.live += 1;
        seen.events = Some(tx);
        Ok(Double {
            events: rx,
            seen: self.seen.clone(),
        })
    }
}

struct Harness {
    dir: PathBuf,
    listener: UnixListener,
    seen: Rc<RefCell<Seen>>,
    stop: Option<broadcast::Sender<()>>,
    relay: Option<tokio::task::JoinHandle<Result<(), RelayError>>>,
}

fn received(ts: u64, body: &str) -> GatewayEvent {
    GatewayEvent::Received {
        id: Some(message_id(OWNER, 1, ts)),
        sender: OWNER.into(),
        device: 1,
        timestamp: ts,
        body: body.into(),
        sealed: true,
        expire_timer: 0,
    }
}

/// The gateway's answer to a send refused for a changed identity key.
fn refused(id: &str) -> GatewayEvent {
    GatewayEvent::SendFailed {
        id: id.into(),
        error: "identity_changed".into(),
        retryable: false,
    }
}

fn sent(id: &str, timestamp: u64) -> GatewayEvent {
    GatewayEvent::Sent {
        id: id.into(),
        timestamp: Some(timestamp),
    }
}

fn changed() -> GatewayEvent {
    GatewayEvent::IdentityChanged {
        sender: OWNER.into(),
    }
}

fn send(id: &str, timestamp: u64) -> CoreCommand {
    CoreCommand::Send {
        id: id.into(),
        recipient: OWNER.into(),
        body: "reply".into(),
        timestamp,
        expire_timer: Some(60),
    }
}

fn store_key(passphrase: &str) -> CoreCommand {
    CoreCommand::StoreKey {
        passphrase: Passphrase::new(passphrase.into()),
    }
}

impl Harness {
    fn new(name: &str) -> Harness {
        let dir =
            std::env::temp_dir().join(format!("pane-signal-relay-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let listener = UnixListener::bind(dir.join("gateway.sock")).unwrap();
        Harness {
            dir,
            listener,
            seen: Rc::default(),
            stop: None,
            relay: None,
        }
    }

    /// Starts a relay (a gateway process) on the harness's state, with a passphrase of its
    /// own (an unsealed installation).
    fn start(&mut self) {
        self.start_with(Keying::Own(Zeroizing::new(OWN.into())));
    }

    /// Starts a relay of a sealed installation: its key comes from the core.
    fn start_sealed(&mut self) {
        self.start_with(Keying::FromCore);
    }

    fn start_with(&mut self, keying: Keying) {
        let opener = DoubleOpener {
            seen: self.seen.clone(),
        };
        let (stop, _) = broadcast::channel(1);
        let shutdown = Shutdown::new(stop.subscribe());
        self.stop = Some(stop);
        let config = RelayConfig {
            socket: self.dir.join("gateway.sock"),
            state_dir: self.dir.clone(),
            proxy: Some(TEST_PROXY.into()),
        };
        self.relay = Some(tokio::task::spawn_local(run(
            opener, keying, config, shutdown,
        )));
    }

    /// Stops the relay (as SIGTERM would; the journal is on disk either way).
    async fn stop(&mut self) {
        self.stop.take();
        if let Some(relay) = self.relay.take() {
            relay.await.unwrap().unwrap();
        }
    }

    async fn accept(&self) -> Core {
        let (stream, _) = tokio::time::timeout(Duration::from_secs(5), self.listener.accept())
            .await
            .expect("the gateway connects within 5 s")
            .unwrap();
        let (r, w) = stream.into_split();
        Core {
            lines: BufReader::new(r).lines(),
            writer: w,
            health: Vec::new(),
        }
    }

    fn device(&self, ev: DeviceEvent) {
        let seen = self.seen.borrow();
        seen.events
            .as_ref()
            .expect("a device open")
            .send(Ok(ev))
            .unwrap();
    }

    /// The websocket drops (the double reconnects at once; Signal's queue is not drained).
    fn drop_websocket(&self) {
        let lost = DeviceError::Disconnected("test".into());
        let seen = self.seen.borrow();
        seen.events
            .as_ref()
            .expect("a device open")
            .send(Err(lost))
            .unwrap();
    }

    /// Waits (at most 5 s) until `what` holds of what the double saw.
    async fn until(&self, why: &str, what: impl Fn(&Seen) -> bool) {
        for _ in 0..500 {
            if what(&self.seen.borrow()) {
                return;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        panic!("not within 5 s: {why}");
    }

    /// Every file under the gateway's state directory, with its bytes.
    fn files(&self) -> Vec<(PathBuf, Vec<u8>)> {
        let mut out = Vec::new();
        let mut dirs = vec![self.dir.clone()];
        while let Some(dir) = dirs.pop() {
            for entry in std::fs::read_dir(&dir).unwrap() {
                let path = entry.unwrap().path();
                if path.is_dir() {
                    dirs.push(path);
                } else if let Ok(bytes) = std::fs::read(&path) {
                    out.push((path, bytes));
                }
            }
        }
        out
    }
}

impl Drop for Harness {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// The test core's end of one connection.
struct Core {
    lines: tokio::io::Lines<BufReader<OwnedReadHalf>>,
    writer: OwnedWriteHalf,
    /// The `health` lines read, in order (kept apart from the other lines).
    health: Vec<pane_protocol::messages::LinkHealth>,
}

impl Core {
    /// The next line that is not a `health` line (those are kept in `health`).
    async fn line(&mut self) -> GatewayEvent {
        loop {
            let line = tokio::time::timeout(Duration::from_secs(5), self.lines.next_line())
                .await
                .expect("a line within 5 s")
                .unwrap()
                .expect("the gateway hung up");
            match decode_line(&line).unwrap() {
                GatewayEvent::Health(h) => self.health.push(*h),
                other => return other,
            }
        }
    }

    /// The next `health` line (other lines in between are an error).
    async fn health_line(&mut self) -> pane_protocol::messages::LinkHealth {
        let line = tokio::time::timeout(Duration::from_secs(5), self.lines.next_line())
            .await
            .expect("a health line within 5 s")
            .unwrap()
            .expect("the gateway hung up");
        match decode_line(&line).unwrap() {
            GatewayEvent::Health(h) => *h,
            other => panic!("not a health line: {other:?}"),
        }
    }

    /// True when nothing but `health` lines comes for 300 ms.
    async fn quiet(&mut self) -> bool {
        let until = tokio::time::Instant::now() + Duration::from_millis(300);
        loop {
            match tokio::time::timeout_at(until, self.lines.next_line()).await {
                Err(_) => return true,
                Ok(Ok(Some(line))) => match decode_line(&line) {
                    Ok(GatewayEvent::Health(h)) => self.health.push(*h),
                    _ => return false,
                },
                Ok(_) => return false,
            }
        }
    }

    /// True when the gateway closes the connection within 5 s (nothing more but `health`
    /// lines is written).
    async fn closed(&mut self) -> bool {
        loop {
            match tokio::time::timeout(Duration::from_secs(5), self.lines.next_line()).await {
                Ok(Ok(None)) | Ok(Err(_)) => return true,
                Ok(Ok(Some(line))) if line.contains("\"type\":\"health\"") => continue,
                _ => return false,
            }
        }
    }

    async fn say(&mut self, c: &CoreCommand) {
        self.writer
            .write_all(encode_line(c).unwrap().as_bytes())
            .await
            .unwrap();
    }

    async fn ack(&mut self, ev: &GatewayEvent) {
        let id = event_id(ev).unwrap().to_string();
        self.say(&CoreCommand::Ack { id }).await;
    }
}

async fn local<F: Future<Output = ()>>(f: F) {
    tokio::task::LocalSet::new().run_until(f).await
}

#[tokio::test(flavor = "current_thread")]
async fn unacked_messages_are_relayed_again_after_a_reconnect_and_a_restart() {
    local(async {
        let mut h = Harness::new("unacked");
        h.start();
        let mut core = h.accept().await;
        h.device(DeviceEvent::Relay(received(1, "list")));
        h.device(DeviceEvent::Relay(received(2, "status")));
        h.device(DeviceEvent::Relay(received(2, "status"))); // Signal delivered it twice
        let a = core.line().await;
        let b = core.line().await;
        assert_eq!(
            (a.clone(), b.clone()),
            (received(1, "list"), received(2, "status"))
        );
        assert!(
            core.quiet().await,
            "a repeat of a waiting message is relayed once"
        );
        core.ack(&a).await;
        // The core drops (killed before it recorded b): b comes again, a does not.
        drop(core);
        let mut core = h.accept().await;
        assert_eq!(core.line().await, b);
        assert!(core.quiet().await);
        // The gateway restarts before the ack: b comes again, after the restart.
        h.stop().await;
        drop(core);
        h.start();
        let mut core = h.accept().await;
        assert_eq!(core.line().await, b);
        h.device(DeviceEvent::Relay(received(3, "help")));
        assert_eq!(
            core.line().await,
            received(3, "help"),
            "new messages after the backlog"
        );
        core.ack(&b).await;
        core.ack(&received(3, "help")).await;
        tokio::time::sleep(Duration::from_millis(100)).await;
        h.stop().await;
        drop(core);
        h.start();
        let mut core = h.accept().await;
        assert!(core.quiet().await, "nothing acked is relayed again");
        h.stop().await;
    })
    .await
}

#[tokio::test(flavor = "current_thread")]
async fn sends_go_out_once_with_the_cores_timestamp_after_the_backlog() {
    local(async {
        let mut h = Harness::new("sends");
        h.start();
        let mut core = h.accept().await;
        core.say(&send("7", 1_700)).await;
        assert!(
            core.quiet().await,
            "no send before Signal's queue is drained"
        );
        assert!(h.seen.borrow().sent.is_empty());
        h.device(DeviceEvent::QueueEmpty);
        assert_eq!(core.line().await, sent("7", 1_700));
        // The core did not record `sent` and asks again: answered, not sent twice.
        core.say(&send("7", 1_700)).await;
        assert_eq!(core.line().await, sent("7", 1_700));
        let sent = h.seen.borrow().sent.clone();
        assert_eq!(sent.len(), 1);
        assert_eq!((sent[0].timestamp, sent[0].expire_timer), (1_700, Some(60)));
        // Another message under that id (a core whose store went back): refused, not sent,
        // and never answered `sent`.
        core.say(&send("7", 1_800)).await;
        assert_eq!(
            core.line().await,
            GatewayEvent::SendFailed {
                id: "7".into(),
                error: ID_CONFLICT.into(),
                retryable: false,
            }
        );
        assert_eq!(h.seen.borrow().sent.len(), 1);
        // Lines that are not the protocol (the old `send` without a timestamp) are ignored.
        core.writer
            .write_all(b"{\"type\":\"send\",\"id\":\"8\",\"recipient\":\"x\",\"body\":\"b\"}\n")
            .await
            .unwrap();
        assert!(core.quiet().await);
        assert_eq!(h.seen.borrow().sent.len(), 1);
        h.stop().await;
    })
    .await
}

#[tokio::test(flavor = "current_thread")]
async fn nothing_goes_to_a_changed_identity_until_the_core_has_read_the_change() {
    local(async {
        let mut h = Harness::new("identity");
        h.seen.borrow_mut().pending.insert(OWNER.into());
        h.start();
        let mut core = h.accept().await;
        // Reported first, on every connection until confirmed.
        assert_eq!(core.line().await, changed());
        h.device(DeviceEvent::QueueEmpty);
        core.say(&send("1", 10)).await;
        assert_eq!(core.line().await, refused("1"));
        assert!(
            h.seen.borrow().sent.is_empty(),
            "nothing reached the new key"
        );
        // The core acknowledges a message written after the change: it has read it.
        h.device(DeviceEvent::Relay(received(5, "list")));
        let m = core.line().await;
        core.ack(&m).await;
        tokio::time::sleep(Duration::from_millis(100)).await;
        assert!(h.seen.borrow().pending.is_empty(), "confirmed");
        core.say(&send("1", 10)).await;
        assert_eq!(core.line().await, sent("1", 10));
        // A change seen while sends wait (the websocket reconnected, the queue is not
        // drained yet): those sends were asked for before the core knew, and are refused.
        h.drop_websocket();
        core.say(&send("2", 20)).await;
        core.say(&send("3", 30)).await;
        assert!(core.quiet().await, "sends wait for the drained queue");
        h.seen.borrow_mut().pending.insert(OWNER.into());
        h.device(DeviceEvent::IdentityChanged {
            sender: OWNER.into(),
        });
        assert_eq!(core.line().await, changed());
        for id in ["2", "3"] {
            assert_eq!(core.line().await, refused(id));
        }
        h.device(DeviceEvent::QueueEmpty);
        assert!(core.quiet().await, "nothing left to send");
        assert_eq!(
            h.seen.borrow().sent.len(),
            1,
            "only the send after the confirmation"
        );
        h.stop().await;
    })
    .await
}

#[tokio::test(flavor = "current_thread")]
async fn an_ack_of_a_line_before_the_change_does_not_confirm_it() {
    local(async {
        let mut h = Harness::new("identity-order");
        h.start();
        let mut core = h.accept().await;
        h.device(DeviceEvent::QueueEmpty);
        h.device(DeviceEvent::Relay(received(1, "list")));
        let before = core.line().await;
        h.seen.borrow_mut().pending.insert(OWNER.into());
        h.device(DeviceEvent::IdentityChanged {
            sender: OWNER.into(),
        });
        assert_eq!(core.line().await, changed());
        // The core acknowledges the line it read before the change: it may not have read
        // the change yet, so the key stays pending.
        core.ack(&before).await;
        core.say(&send("1", 10)).await;
        assert_eq!(core.line().await, refused("1"));
        assert!(h.seen.borrow().pending.contains(OWNER));
        h.device(DeviceEvent::Relay(received(2, "status")));
        let after = core.line().await;
        core.ack(&after).await;
        tokio::time::sleep(Duration::from_millis(100)).await;
        assert!(
            !h.seen.borrow().pending.contains(OWNER),
            "confirmed by the later ack"
        );
        h.stop().await;
    })
    .await
}

#[path = "relay_keying_tests.rs"]
mod keying;

#[path = "relay_health_tests.rs"]
mod health;
