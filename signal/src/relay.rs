//! The relay: carries a [`Device`]'s messages to the core over `gateway.sock` and the core's
//! sends to the device (`docs/gateway-protocol.md`).
//!
//! - Every `received` and `reaction` is journaled (synced) before it is relayed, and relayed
//!   again after every reconnect or restart until the core answers `ack` ([`Journal`]).
//! - A send goes out with the timestamp the core chose, so a retry is the same Signal
//!   message; an id already sent is answered `sent` at once (the sent-id log, synced before
//!   `sent` is written). Sends wait until Signal's queue for the device is drained.
//! - Fail-secure: nothing is sent to a contact whose identity key changed until the core has
//!   read the `identity_changed` line (it acknowledged a message written after it); such a
//!   send is answered `send_failed` with `"error":"identity_changed"`.
//! - The websocket or the core may drop: each is reconnected with backoff.

use crate::journal::{event_id, Journal};
use crate::shutdown::Shutdown;
use pane_protocol::device::DeviceError;
use pane_protocol::messages::{
    decode_line, encode_line, CoreCommand, GatewayEvent, IDENTITY_CHANGED, ID_CONFLICT,
    MAX_LINE_BYTES,
};
use pane_protocol::sent_log::{self, content_digest, SentLog};
use std::collections::{HashMap, VecDeque};
use std::future::Future;
use std::path::PathBuf;
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::unix::OwnedWriteHalf;
use tokio::net::UnixStream;

/// What the device reports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DeviceEvent {
    /// A `received` or `reaction` line for the core.
    Relay(GatewayEvent),
    /// A contact's identity key changed (the device has marked it pending).
    IdentityChanged {
        /// Whose.
        sender: String,
    },
    /// The server's queue of messages for this device is drained; sends may begin.
    QueueEmpty,
}

/// A message to send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outgoing {
    /// The recipient's ACI.
    pub recipient: String,
    /// The text.
    pub body: String,
    /// The Signal timestamp (ms).
    pub timestamp: u64,
    /// The disappearing-message timer (seconds).
    pub expire_timer: Option<u32>,
}

/// Why a send failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SendFailure {
    /// The recipient's identity key differs from the one confirmed: nothing was sent.
    IdentityChanged,
    /// Anything else.
    Failed {
        /// presage's error text.
        message: String,
        /// True when trying again may help.
        retryable: bool,
    },
}

/// A sent message; `identity_changed` when the recipient's key changed during the send
/// (libsignal-service fetched a new pre-key bundle and presage trusted it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Delivered {
    /// The key changed while sending.
    pub identity_changed: bool,
}

/// A linked Signal device, as the relay drives it (presage's, or a test double).
pub trait Device {
    /// Connects (or reconnects) the receiving websocket.
    fn connect(&mut self) -> impl Future<Output = Result<(), DeviceError>>;
    /// Waits for the next event; `Disconnected` when the websocket drops.
    fn next_event(&mut self) -> impl Future<Output = Result<DeviceEvent, DeviceError>>;
    /// Sends one message, refusing a recipient whose identity key is pending.
    fn send(&mut self, out: &Outgoing) -> impl Future<Output = Result<Delivered, SendFailure>>;
    /// The contacts whose changed identity key the core has not been told of.
    fn pending_identities(&self) -> Vec<String>;
    /// The core knows of `aci`'s changed key.
    fn confirm_identity(&mut self, aci: &str) -> std::io::Result<()>;
}

/// Where the relay connects and keeps its state.
#[derive(Debug, Clone)]
pub struct RelayConfig {
    /// The core's `gateway.sock`.
    pub socket: PathBuf,
    /// The gateway's private directory (journal, sent-id log).
    pub state_dir: PathBuf,
}

/// Why the relay stopped.
#[derive(Debug, thiserror::Error)]
pub enum RelayError {
    /// The device must be linked again.
    #[error(transparent)]
    Device(#[from] DeviceError),
    /// The journal or the sent-id log could not be used.
    #[error("gateway state: {0}")]
    State(#[from] std::io::Error),
}

/// A doubling backoff from 200 ms up to 30 s.
struct Backoff(Duration);

impl Backoff {
    fn new() -> Backoff {
        Backoff(Duration::from_millis(200))
    }
    fn next(&mut self) -> Duration {
        let d = self.0;
        self.0 = (self.0 * 2).min(Duration::from_secs(30));
        d
    }
    fn reset(&mut self) {
        self.0 = Duration::from_millis(200);
    }
}

/// One connection to the core: lines written, and where each went in the stream.
struct CoreLink {
    writer: OwnedWriteHalf,
    written: u64,
    /// Position of each journaled line written on this connection.
    positions: HashMap<String, u64>,
    /// Position of the `identity_changed` line written for each contact.
    reported: HashMap<String, u64>,
}

impl CoreLink {
    async fn write(&mut self, ev: &GatewayEvent) -> std::io::Result<u64> {
        let line = encode_line(ev).map_err(std::io::Error::other)?;
        if line.len() > MAX_LINE_BYTES {
            // The mapping keeps bodies inside the limit; never cut a line.
            tracing::warn!("dropped a line over the protocol limit");
            return Ok(self.written);
        }
        self.writer.write_all(line.as_bytes()).await?;
        self.written += 1;
        if let Some(id) = event_id(ev) {
            self.positions.insert(id.to_string(), self.written);
        }
        if let GatewayEvent::IdentityChanged { sender } = ev {
            self.reported.insert(sender.clone(), self.written);
        }
        Ok(self.written)
    }
}

/// The relay's state across connections.
struct Relay<D> {
    device: D,
    journal: Journal,
    sent: SentLog,
    waiting: VecDeque<(String, Outgoing)>,
    queue_empty: bool,
    device_backoff: Backoff,
}

/// Runs the relay until shutdown (or until the device is unlinked).
pub async fn run<D: Device>(
    device: D,
    config: RelayConfig,
    mut shutdown: Shutdown,
) -> Result<(), RelayError> {
    let mut relay = Relay {
        device,
        journal: Journal::open(&config.state_dir.join("inbox"))?,
        sent: SentLog::open(&config.state_dir.join("sent-ids"))?,
        waiting: VecDeque::new(),
        queue_empty: false,
        device_backoff: Backoff::new(),
    };
    relay.note_backlog();
    let mut core_backoff = Backoff::new();
    if !relay.connect_device(&mut shutdown).await? {
        return Ok(());
    }
    loop {
        let stream = tokio::select! {
            s = UnixStream::connect(&config.socket) => s,
            _ = shutdown.recv() => return Ok(()),
        };
        let stream = match stream {
            Ok(s) => s,
            Err(e) => {
                let wait = core_backoff.next();
                tracing::info!(error = %e, retry_ms = wait.as_millis() as u64, "core not reachable");
                // Keep receiving (and journaling) while the core is away.
                let deadline = tokio::time::sleep(wait);
                tokio::pin!(deadline);
                loop {
                    tokio::select! {
                        _ = &mut deadline => break,
                        ev = relay.device.next_event() => {
                            if !relay.on_device_event(ev, None, &mut shutdown).await? {
                                return Ok(());
                            }
                        }
                        _ = shutdown.recv() => return Ok(()),
                    }
                }
                continue;
            }
        };
        core_backoff.reset();
        tracing::info!("connected to the core");
        match relay.serve(stream, &mut shutdown).await? {
            Served::Shutdown => return Ok(()),
            Served::Lost => tracing::info!("lost the core; reconnecting"),
        }
        // The core sends everything unsent again when it is back.
        relay.waiting.clear();
    }
}

enum Served {
    Shutdown,
    Lost,
}

impl<D: Device> Relay<D> {
    fn note_backlog(&self) {
        let n = self.journal.pending().len();
        if n > 0 {
            tracing::info!(
                count = n,
                "messages not yet acknowledged by the core: relaying them again"
            );
        }
    }

    /// One connection to the core, until it drops or shutdown.
    async fn serve(
        &mut self,
        stream: UnixStream,
        shutdown: &mut Shutdown,
    ) -> Result<Served, RelayError> {
        let (reader, writer) = stream.into_split();
        let mut lines = BufReader::new(reader).lines();
        let mut link = CoreLink {
            writer,
            written: 0,
            positions: HashMap::new(),
            reported: HashMap::new(),
        };
        // Changes the core was not told of first, then every unacknowledged message.
        for sender in self.device.pending_identities() {
            if link
                .write(&GatewayEvent::IdentityChanged { sender })
                .await
                .is_err()
            {
                return Ok(Served::Lost);
            }
        }
        let backlog: Vec<GatewayEvent> = self
            .journal
            .pending()
            .iter()
            .map(|e| e.event.clone())
            .collect();
        for ev in &backlog {
            if link.write(ev).await.is_err() {
                return Ok(Served::Lost);
            }
        }
        loop {
            if self.queue_empty {
                while let Some((id, out)) = self.waiting.pop_front() {
                    if self.send_once(&mut link, &id, &out).await?.is_err() {
                        return Ok(Served::Lost);
                    }
                }
            }
            tokio::select! {
                ev = self.device.next_event() => {
                    match self.on_device_event(ev, Some(&mut link), shutdown).await {
                        Ok(true) => {}
                        Ok(false) => return Ok(Served::Shutdown),
                        Err(RelayError::State(e)) if e.kind() == std::io::ErrorKind::BrokenPipe => {
                            return Ok(Served::Lost)
                        }
                        Err(e) => return Err(e),
                    }
                }
                line = lines.next_line() => match line {
                    Ok(Some(line)) => {
                        if self.on_core_line(&line, &mut link).await?.is_err() {
                            return Ok(Served::Lost);
                        }
                    }
                    _ => return Ok(Served::Lost),
                },
                _ = shutdown.recv() => return Ok(Served::Shutdown),
            }
        }
    }

    /// Handles a line from the core; `Err(())` when writing the answer failed.
    async fn on_core_line(
        &mut self,
        line: &str,
        link: &mut CoreLink,
    ) -> Result<Result<(), ()>, RelayError> {
        match decode_line::<CoreCommand>(line) {
            Ok(CoreCommand::Ack { id }) => {
                if let Some(at) = link.positions.remove(&id) {
                    // The core has read every line before this one: the identity changes
                    // reported before it are known to it now.
                    let known: Vec<String> = link
                        .reported
                        .iter()
                        .filter(|(_, &r)| r < at)
                        .map(|(s, _)| s.clone())
                        .collect();
                    for sender in known {
                        link.reported.remove(&sender);
                        self.device.confirm_identity(&sender)?;
                        tracing::info!(%sender, "the core has the changed identity key");
                    }
                }
                if !self.journal.remove(&id)? {
                    tracing::debug!(%id, "ack of a message not waiting");
                }
            }
            Ok(CoreCommand::Send {
                id,
                recipient,
                body,
                timestamp,
                expire_timer,
            }) => {
                let out = Outgoing {
                    recipient,
                    body,
                    timestamp,
                    expire_timer,
                };
                match self.answer_from_log(&id, &out) {
                    Some(answer) => {
                        if link.write(&answer).await.is_err() {
                            return Ok(Err(()));
                        }
                    }
                    None => self.waiting.push_back((id, out)),
                }
            }
            Err(e) => tracing::warn!(error = %e, "ignored a line from the core"),
        }
        Ok(Ok(()))
    }

    /// The answer to a send whose id the sent log holds, None for a new id: `sent` for the
    /// same message (the core asks again), an `id_conflict` refusal for another message
    /// under a used id, which must never be taken for sent.
    fn answer_from_log(&self, id: &str, out: &Outgoing) -> Option<GatewayEvent> {
        let digest = content_digest(&out.recipient, out.timestamp, &out.body);
        match self.sent.check(id, &digest) {
            sent_log::Seen::New => None,
            sent_log::Seen::Sent => Some(GatewayEvent::Sent {
                id: id.to_string(),
                timestamp: Some(out.timestamp),
            }),
            sent_log::Seen::Conflict => {
                tracing::error!(%id, "the core sent a new message under an id already sent with other content: refused (id_conflict), not sent");
                Some(GatewayEvent::SendFailed {
                    id: id.to_string(),
                    error: ID_CONFLICT.into(),
                    retryable: false,
                })
            }
        }
    }

    /// Sends one message and writes the outcome; `Err(())` when writing failed.
    async fn send_once(
        &mut self,
        link: &mut CoreLink,
        id: &str,
        out: &Outgoing,
    ) -> Result<Result<(), ()>, RelayError> {
        let ok = |r: std::io::Result<u64>| r.map(|_| ()).map_err(|_| ());
        if let Some(answer) = self.answer_from_log(id, out) {
            return Ok(ok(link.write(&answer).await));
        }
        tracing::info!(%id, timestamp = out.timestamp, "sending");
        match self.device.send(out).await {
            Ok(delivered) => {
                let digest = content_digest(&out.recipient, out.timestamp, &out.body);
                self.sent.record(id, &digest)?;
                let sent = GatewayEvent::Sent {
                    id: id.to_string(),
                    timestamp: Some(out.timestamp),
                };
                if ok(link.write(&sent).await).is_err() {
                    return Ok(Err(()));
                }
                if delivered.identity_changed {
                    tracing::warn!(recipient = %out.recipient, "the recipient's identity key changed during a send");
                    let ev = GatewayEvent::IdentityChanged {
                        sender: out.recipient.clone(),
                    };
                    return Ok(ok(link.write(&ev).await));
                }
                Ok(Ok(()))
            }
            Err(SendFailure::IdentityChanged) => {
                if !link.reported.contains_key(&out.recipient) {
                    let ev = GatewayEvent::IdentityChanged {
                        sender: out.recipient.clone(),
                    };
                    if ok(link.write(&ev).await).is_err() {
                        return Ok(Err(()));
                    }
                }
                let failed = GatewayEvent::SendFailed {
                    id: id.to_string(),
                    error: IDENTITY_CHANGED.into(),
                    retryable: false,
                };
                Ok(ok(link.write(&failed).await))
            }
            Err(SendFailure::Failed { message, retryable }) => {
                let failed = GatewayEvent::SendFailed {
                    id: id.to_string(),
                    error: message,
                    retryable,
                };
                Ok(ok(link.write(&failed).await))
            }
        }
    }

    /// Handles one device event (`link` when the core is connected); false when shutdown
    /// came while reconnecting. A failed write to the core is a `BrokenPipe` state error.
    async fn on_device_event(
        &mut self,
        ev: Result<DeviceEvent, DeviceError>,
        link: Option<&mut CoreLink>,
        shutdown: &mut Shutdown,
    ) -> Result<bool, RelayError> {
        let lost = |_| RelayError::State(std::io::ErrorKind::BrokenPipe.into());
        match ev {
            Ok(DeviceEvent::Relay(event)) => {
                self.device_backoff.reset();
                // On disk before the core sees it; a repeat of a waiting message is dropped.
                if let Some(entry) = self.journal.append(event)? {
                    if let Some(link) = link {
                        link.write(&entry.event).await.map_err(lost)?;
                    }
                }
            }
            Ok(DeviceEvent::IdentityChanged { sender }) => {
                // Sends already waiting were asked for before the core knew: refuse them.
                let (refused, kept): (Vec<_>, Vec<_>) = self
                    .waiting
                    .drain(..)
                    .partition(|(_, out)| out.recipient == sender);
                self.waiting = kept.into();
                if let Some(link) = link {
                    link.write(&GatewayEvent::IdentityChanged { sender })
                        .await
                        .map_err(lost)?;
                    for (id, _) in refused {
                        let failed = GatewayEvent::SendFailed {
                            id,
                            error: IDENTITY_CHANGED.into(),
                            retryable: false,
                        };
                        link.write(&failed).await.map_err(lost)?;
                    }
                }
            }
            Ok(DeviceEvent::QueueEmpty) => self.queue_empty = true,
            Err(DeviceError::Disconnected(why)) => {
                tracing::warn!(%why, "Signal connection lost");
                self.queue_empty = false;
                return self.connect_device(shutdown).await;
            }
            Err(e @ DeviceError::Unlinked(_)) => return Err(e.into()),
        }
        Ok(true)
    }

    /// Connects the device, retrying with backoff; false when shutdown came first.
    async fn connect_device(&mut self, shutdown: &mut Shutdown) -> Result<bool, RelayError> {
        loop {
            match self.device.connect().await {
                Ok(()) => return Ok(true),
                Err(e @ DeviceError::Unlinked(_)) => return Err(e.into()),
                Err(DeviceError::Disconnected(why)) => {
                    let wait = self.device_backoff.next();
                    tracing::warn!(%why, retry_ms = wait.as_millis() as u64, "cannot reach Signal");
                    tokio::select! {
                        _ = tokio::time::sleep(wait) => {}
                        _ = shutdown.recv() => return Ok(false),
                    }
                }
            }
        }
    }
}

#[cfg(test)]
#[path = "relay_tests.rs"]
mod tests;
