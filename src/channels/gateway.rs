//! The core side of the Signal relay: `<data-dir>/gateway.sock` (mode 0600, peer uid
//! checked), one gateway at a time. Events go to the gate (messages from anyone but the
//! owner are dropped here and only counted); the outbox goes to the gateway the moment a
//! message is queued, each message until the gateway acknowledges it (`sent`), failed ones
//! again after a pause. Reading never waits for a command to be carried out.

use crate::gate::{GateHandle, StrangerTally};
use crate::gateway::protocol::{
    decode_line, encode_line, CoreCommand, GatewayEvent, MAX_LINE_BYTES,
};
use crate::outbox::Outbox;
use crate::shutdown::{Shutdown, Trigger};
use crate::store::signal::SignalState;
use crate::unix;
use std::collections::{HashMap, HashSet};
use std::path::PathBuf;
use std::time::{Duration, Instant};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{UnixListener, UnixStream};
use tokio::sync::mpsc;

/// How often the outbox is read anyway, for messages whose retry time came.
const SWEEP: Duration = Duration::from_secs(1);
/// How long a failed send waits before it is tried again.
const RETRY_AFTER: Duration = Duration::from_secs(5);

/// The listening gateway socket.
pub struct GatewaySocket {
    /// The bound listener.
    pub listener: UnixListener,
    /// Its path, removed on shutdown.
    pub path: PathBuf,
    /// The gate.
    pub gate: GateHandle,
    /// The outbox, read directly: queued messages ring its bell.
    pub outbox: Outbox,
    /// The owner's ACI; None when not configured (then nothing is sent and nobody heard).
    pub owner: Option<String>,
    /// Strangers dropped here.
    pub strangers: StrangerTally,
    /// The Signal records: whether the owner's identity is confirmed, and their
    /// disappearing-message timer.
    pub signal: SignalState,
}

impl GatewaySocket {
    /// Serves gateways until shutdown; a new connection replaces the previous one.
    pub async fn run(self, notify: Trigger, done: mpsc::Sender<()>) {
        let mut shutdown = notify.subscribe();
        let mut current: Option<tokio::task::JoinHandle<()>> = None;
        loop {
            let accepted = tokio::select! {
                a = self.listener.accept() => a,
                _ = shutdown.recv() => break,
            };
            let Ok((stream, _)) = accepted else {
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            };
            let peer_ok = stream
                .peer_cred()
                .map(|c| c.uid() == unix::euid())
                .unwrap_or(false);
            if !peer_ok {
                tracing::warn!("gateway socket: refused a peer with another uid");
                continue;
            }
            if let Some(live) = current.as_mut() {
                // A gateway that just went away may not have been noticed yet: give its
                // connection a moment to end before calling this one a second gateway.
                let _ = tokio::time::timeout(Duration::from_secs(1), live).await;
            }
            if current.as_ref().is_some_and(|c| !c.is_finished()) {
                // One gateway at a time: a second one is refused, never a silent takeover.
                tracing::warn!("gateway socket: refused a second gateway while one is connected");
                drop(stream);
                self.gate
                    .notice(
                        "gateway.refused_second",
                        serde_json::json!({"reason": "a gateway is already connected"}),
                        Some("A second Signal gateway tried to connect to the agent while yours is connected; it was refused. If you did not start one, someone with access to the agent's account on the server did.".into()),
                    )
                    .await;
                continue;
            }
            let conn = Connection {
                gate: self.gate.clone(),
                outbox: self.outbox.clone(),
                owner: self.owner.clone(),
                strangers: self.strangers.clone(),
                signal: self.signal.clone(),
            };
            let conn_shutdown = notify.subscribe();
            let done = done.clone();
            let state_file = self.path.with_file_name("gateway.state");
            current = Some(tokio::spawn(async move {
                record_state(&state_file, true);
                conn.serve(stream, conn_shutdown).await;
                record_state(&state_file, false);
                drop(done);
            }));
        }
        if let Some(old) = current.take() {
            old.abort();
        }
        record_state(&self.path.with_file_name("gateway.state"), false);
        let _ = std::fs::remove_file(&self.path);
        drop(done);
    }
}

/// Records whether a gateway is connected, for `pane-agent doctor` (which cannot open the
/// store while the daemon holds it): `<data-dir>/gateway.state`.
fn record_state(state_file: &std::path::Path, connected: bool) {
    let line = format!(
        "{} {}\n",
        if connected {
            "connected"
        } else {
            "disconnected"
        },
        chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
    );
    if let Err(e) = std::fs::write(state_file, line) {
        tracing::warn!(error = %e, "cannot record the gateway state");
    }
}

/// What one gateway connection works with.
struct Connection {
    gate: GateHandle,
    outbox: Outbox,
    owner: Option<String>,
    strangers: StrangerTally,
    signal: SignalState,
}

impl Connection {
    async fn serve(self, stream: UnixStream, mut shutdown: Shutdown) {
        tracing::info!("Signal gateway connected");
        let (reader, mut writer) = stream.into_split();
        let mut reader = BufReader::new(reader);
        let mut buf = Vec::new();
        // Keyed by the id each message was sent with (`OutboxId`'s text): a message given a
        // new id after an `id_conflict` is a new send.
        let mut in_flight: HashSet<String> = HashSet::new();
        let mut failed: HashMap<String, Instant> = HashMap::new();
        let mut sweep = tokio::time::interval(SWEEP);
        loop {
            tokio::select! {
                read = read_line(&mut reader, &mut buf) => {
                    let line = match read {
                        Ok(Some(l)) => l,
                        Ok(None) => break,
                        Err(why) => {
                            // Refused as soon as it passes the limit: nothing more is buffered.
                            tracing::warn!(%why, "gateway socket: line refused; disconnecting");
                            self.gate
                                .notice("gateway.line_refused", serde_json::json!({"reason": why}), None)
                                .await;
                            return;
                        }
                    };
                    let event: GatewayEvent = match decode_line(&line) {
                        Ok(e) => e,
                        Err(e) => {
                            tracing::warn!(error = %e, "ignored a line from the gateway");
                            continue;
                        }
                    };
                    match &event {
                        GatewayEvent::Sent { id, .. } => {
                            in_flight.remove(id);
                            failed.remove(id);
                        }
                        GatewayEvent::SendFailed { id, .. } => {
                            in_flight.remove(id);
                            failed.insert(id.clone(), Instant::now() + RETRY_AFTER);
                        }
                        GatewayEvent::Received { sender, id, .. } if Some(sender) != self.owner.as_ref() => {
                            // Strangers get no reply and never reach the gate's queue; the
                            // gateway may forget their message.
                            self.strangers.add();
                            if let Some(id) = id.clone() {
                                if !write_ack(&mut writer, id).await {
                                    return;
                                }
                            }
                            continue;
                        }
                        GatewayEvent::Reaction { sender, id, .. } if Some(sender) != self.owner.as_ref() => {
                            self.strangers.add();
                            if !write_ack(&mut writer, id.clone()).await {
                                return;
                            }
                            continue;
                        }
                        _ => {}
                    }
                    if let Some(id) = self.gate.signal_event(event).await {
                        // Recorded (flushed): the gateway may forget it.
                        if !write_ack(&mut writer, id).await {
                            return;
                        }
                    }
                }
                _ = self.outbox.queued() => {
                    if !self.send_pending(&mut writer, &mut in_flight, &failed).await {
                        return;
                    }
                }
                _ = sweep.tick() => {
                    if !self.send_pending(&mut writer, &mut in_flight, &failed).await {
                        return;
                    }
                }
                _ = shutdown.recv() => return,
            }
        }
        tracing::info!("Signal gateway disconnected");
    }

    /// Writes every queued message not already on its way; false when the gateway is gone.
    async fn send_pending(
        &self,
        writer: &mut tokio::net::unix::OwnedWriteHalf,
        in_flight: &mut HashSet<String>,
        failed: &HashMap<String, Instant>,
    ) -> bool {
        let Some(owner) = &self.owner else {
            return true;
        };
        if self.signal.identity_blocked().unwrap_or(false) {
            // Fail secure: nothing goes to an owner whose new identity nobody confirmed;
            // messages wait in the outbox until `pane-agent trust`.
            return true;
        }
        let expire_timer = self.signal.expire_timer().ok().flatten();
        let pending = match self.outbox.pending(100) {
            Ok(p) => p,
            Err(e) => {
                tracing::error!(error = %e, "cannot read the outbox");
                return true;
            }
        };
        let now = Instant::now();
        for msg in pending {
            let id = msg.id().to_string();
            if in_flight.contains(&id) || failed.get(&id).is_some_and(|t| *t > now) {
                continue;
            }
            let timestamp = if msg.timestamp > 0 {
                msg.timestamp
            } else {
                // Queued before timestamps were kept: the time it was queued (to the
                // second), still the same on every retry.
                chrono::DateTime::parse_from_rfc3339(&msg.created)
                    .map(|t| t.timestamp_millis().max(0) as u64)
                    .unwrap_or(msg.seq)
            };
            let cmd = CoreCommand::Send {
                id: id.clone(),
                recipient: owner.clone(),
                body: msg.body,
                timestamp,
                expire_timer,
            };
            let Ok(line) = encode_line(&cmd) else {
                continue;
            };
            if writer.write_all(line.as_bytes()).await.is_err() {
                tracing::info!("Signal gateway disconnected");
                return false;
            }
            in_flight.insert(id);
        }
        true
    }
}

/// Writes an `ack`; false when the gateway is gone.
async fn write_ack(writer: &mut tokio::net::unix::OwnedWriteHalf, id: String) -> bool {
    match encode_line(&CoreCommand::Ack { id }) {
        Ok(line) => writer.write_all(line.as_bytes()).await.is_ok(),
        Err(_) => true,
    }
}

/// Reads one line of at most [`MAX_LINE_BYTES`]: None at the end of the stream, an error as
/// soon as the line passes the limit (the rest is never read) or is not UTF-8.
async fn read_line(
    reader: &mut BufReader<tokio::net::unix::OwnedReadHalf>,
    buf: &mut Vec<u8>,
) -> Result<Option<String>, String> {
    buf.clear();
    let limit = MAX_LINE_BYTES as u64 + 1;
    let n = (&mut *reader)
        .take(limit)
        .read_until(b'\n', buf)
        .await
        .map_err(|e| e.to_string())?;
    if n == 0 {
        return Ok(None);
    }
    if buf.last() != Some(&b'\n') {
        if buf.len() as u64 >= limit {
            return Err(format!("a line longer than {MAX_LINE_BYTES} bytes"));
        }
        // The stream ended in the middle of a line.
        return Ok(None);
    }
    buf.pop();
    String::from_utf8(std::mem::take(buf))
        .map(Some)
        .map_err(|_| "a line that is not UTF-8".to_string())
}

/// Binds `path` with mode 0600 (replacing a stale socket).
pub fn bind(path: &std::path::Path) -> std::io::Result<UnixListener> {
    crate::channels::control_socket::bind(path)
}
