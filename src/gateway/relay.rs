//! The gateway side of the relay: carries a [`SignalDevice`]'s events to the core over
//! `gateway.sock` and the core's sends to the device.
//!
//! - The core may be down: the relay reconnects with backoff and holds received messages
//!   (bounded) until it is back.
//! - The websocket may drop: the device is reconnected with backoff.
//! - Sends wait until the device reports its queue drained (so replies never overtake the
//!   backlog), and a send id that was already sent is answered `sent` without sending again:
//!   the ids are kept in a log file, flushed before `sent` is reported, so even a restart of
//!   either side never delivers a message twice.

use super::device::{DeviceError, DeviceEvent, SignalDevice};
use super::protocol::{decode_line, encode_line, CoreCommand, GatewayEvent, MAX_LINE_BYTES};
use crate::retry::Backoff;
use crate::shutdown::Shutdown;
use std::collections::{HashSet, VecDeque};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::UnixStream;

/// Where the relay connects and keeps its state.
#[derive(Debug, Clone)]
pub struct RelayConfig {
    /// The core's `gateway.sock`.
    pub socket: PathBuf,
    /// A private directory for the sent-id log.
    pub state_dir: PathBuf,
}

/// Why the relay stopped.
#[derive(Debug, thiserror::Error)]
pub enum RelayError {
    /// The device must be linked again.
    #[error(transparent)]
    Device(#[from] DeviceError),
    /// The sent-id log could not be used.
    #[error("sent-id log: {0}")]
    Log(#[from] std::io::Error),
}

/// Received messages held while the core is unreachable.
const MAX_HELD: usize = 1000;
/// Sent ids remembered (older ones are forgotten when the log is compacted).
const KEEP_SENT: usize = 10_000;

/// The ids already sent, persisted one per line.
pub struct SentLog {
    path: PathBuf,
    ids: HashSet<String>,
    order: VecDeque<String>,
}

impl SentLog {
    /// Opens (or creates) the log at `path`.
    pub fn open(path: &Path) -> std::io::Result<SentLog> {
        let text = match std::fs::read_to_string(path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
            Err(e) => return Err(e),
        };
        let order: VecDeque<String> = text
            .lines()
            .filter(|l| !l.is_empty())
            .map(str::to_string)
            .collect();
        Ok(SentLog {
            path: path.to_path_buf(),
            ids: order.iter().cloned().collect(),
            order,
        })
    }

    /// True when `id` was sent.
    pub fn contains(&self, id: &str) -> bool {
        self.ids.contains(id)
    }

    /// Records `id` as sent, on disk before returning.
    pub fn record(&mut self, id: &str) -> std::io::Result<()> {
        if !self.ids.insert(id.to_string()) {
            return Ok(());
        }
        self.order.push_back(id.to_string());
        if self.order.len() > 2 * KEEP_SENT {
            while self.order.len() > KEEP_SENT {
                if let Some(old) = self.order.pop_front() {
                    self.ids.remove(&old);
                }
            }
            let tmp = self.path.with_extension("tmp");
            let mut body = String::new();
            for i in &self.order {
                body.push_str(i);
                body.push('\n');
            }
            std::fs::write(&tmp, body)?;
            std::fs::rename(&tmp, &self.path)?;
            return Ok(());
        }
        let mut f = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.path)?;
        writeln!(f, "{id}")?;
        f.sync_data()
    }
}

/// A doubling backoff from 200 ms up to 30 s, with jitter.
fn reconnect_backoff() -> Backoff {
    Backoff::forever(Duration::from_millis(200), Duration::from_secs(30))
}

/// Runs the relay until shutdown (or until the device is unlinked).
pub async fn run<D: SignalDevice>(
    mut device: D,
    config: RelayConfig,
    mut shutdown: Shutdown,
) -> Result<(), RelayError> {
    let mut sent = SentLog::open(&config.state_dir.join("sent-ids"))?;
    let mut held: VecDeque<GatewayEvent> = VecDeque::new();
    let mut waiting: VecDeque<(String, String, String)> = VecDeque::new();
    let mut queue_empty = false;
    let mut device_backoff = reconnect_backoff();
    let mut core_backoff = reconnect_backoff();
    if !connect_device(&mut device, &mut device_backoff, &mut shutdown).await? {
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
                let wait = core_backoff.next_delay().unwrap_or(Duration::from_secs(30));
                tracing::info!(error = %e, retry_ms = wait.as_millis() as u64, "core not reachable");
                // Keep receiving while the core is away, holding what arrives.
                let deadline = tokio::time::sleep(wait);
                tokio::pin!(deadline);
                loop {
                    tokio::select! {
                        _ = &mut deadline => break,
                        ev = device.next_event() => {
                            if !on_device_event(ev, &mut device, &mut device_backoff, &mut shutdown, &mut held, &mut queue_empty).await? {
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
        let (reader, mut writer) = stream.into_split();
        let mut lines = BufReader::new(reader).lines();
        // Whatever arrived while the core was away goes first.
        let mut broken = false;
        while let Some(ev) = held.pop_front() {
            if write(&mut writer, &ev).await.is_err() {
                held.push_front(ev);
                broken = true;
                break;
            }
        }
        while !broken {
            if queue_empty {
                while let Some((id, recipient, body)) = waiting.pop_front() {
                    let reply = send_once(&mut device, &mut sent, &id, &recipient, &body).await?;
                    if write(&mut writer, &reply).await.is_err() {
                        broken = true;
                        break;
                    }
                }
            }
            if broken {
                break;
            }
            tokio::select! {
                ev = device.next_event() => {
                    if !on_device_event(ev, &mut device, &mut device_backoff, &mut shutdown, &mut held, &mut queue_empty).await? {
                        return Ok(());
                    }
                    while let Some(ev) = held.pop_front() {
                        if write(&mut writer, &ev).await.is_err() {
                            held.push_front(ev);
                            broken = true;
                            break;
                        }
                    }
                }
                line = lines.next_line() => match line {
                    Ok(Some(line)) => match decode_line::<CoreCommand>(&line) {
                        Ok(CoreCommand::Send { id, recipient, body, .. }) => {
                            if sent.contains(&id) {
                                if write(&mut writer, &GatewayEvent::Sent { id, timestamp: None }).await.is_err() {
                                    broken = true;
                                }
                            } else {
                                waiting.push_back((id, recipient, body));
                            }
                        }
                        // This relay holds received messages in memory only (pane-signal
                        // journals them); an acknowledgement has nothing to release.
                        Ok(CoreCommand::Ack { .. }) => {}
                        Err(e) => tracing::warn!(error = %e, "ignored a line from the core"),
                    },
                    _ => broken = true,
                },
                _ = shutdown.recv() => return Ok(()),
            }
        }
        tracing::info!("lost the core; reconnecting");
    }
}

async fn write<W: AsyncWriteExt + Unpin>(writer: &mut W, ev: &GatewayEvent) -> std::io::Result<()> {
    let line = encode_line(ev).map_err(std::io::Error::other)?;
    if line.len() > MAX_LINE_BYTES {
        return Ok(());
    }
    writer.write_all(line.as_bytes()).await
}

async fn send_once<D: SignalDevice>(
    device: &mut D,
    sent: &mut SentLog,
    id: &str,
    recipient: &str,
    body: &str,
) -> Result<GatewayEvent, RelayError> {
    if sent.contains(id) {
        return Ok(GatewayEvent::Sent {
            id: id.to_string(),
            timestamp: None,
        });
    }
    Ok(match device.send(recipient, body).await {
        Ok(()) => {
            sent.record(id)?;
            GatewayEvent::Sent {
                id: id.to_string(),
                timestamp: None,
            }
        }
        Err(e) => GatewayEvent::SendFailed {
            id: id.to_string(),
            error: e.message,
            retryable: e.retryable,
        },
    })
}

/// Handles one device event; false when shutdown came while reconnecting.
async fn on_device_event<D: SignalDevice>(
    ev: Result<DeviceEvent, DeviceError>,
    device: &mut D,
    backoff: &mut Backoff,
    shutdown: &mut Shutdown,
    held: &mut VecDeque<GatewayEvent>,
    queue_empty: &mut bool,
) -> Result<bool, RelayError> {
    match ev {
        Ok(DeviceEvent::Message(m)) => {
            backoff.reset();
            if held.len() >= MAX_HELD {
                held.pop_front();
                tracing::warn!("core unreachable for long: dropped the oldest held message");
            }
            held.push_back(GatewayEvent::Received {
                id: Some(format!("{}.{}.{}", m.sender, m.device, m.timestamp)),
                expire_timer: 0,
                sender: m.sender,
                device: m.device,
                timestamp: m.timestamp,
                body: m.body,
                sealed: m.sealed,
            });
        }
        Ok(DeviceEvent::IdentityChanged { sender }) => {
            held.push_back(GatewayEvent::IdentityChanged { sender })
        }
        Ok(DeviceEvent::QueueEmpty) => *queue_empty = true,
        Err(DeviceError::Disconnected(why)) => {
            tracing::warn!(%why, "Signal connection lost");
            *queue_empty = false;
            return connect_device(device, backoff, shutdown).await;
        }
        Err(e @ DeviceError::Unlinked(_)) => return Err(e.into()),
    }
    Ok(true)
}

/// Connects the device, retrying with backoff; false when shutdown came first.
async fn connect_device<D: SignalDevice>(
    device: &mut D,
    backoff: &mut Backoff,
    shutdown: &mut Shutdown,
) -> Result<bool, RelayError> {
    loop {
        match device.connect().await {
            Ok(()) => return Ok(true),
            Err(e @ DeviceError::Unlinked(_)) => return Err(e.into()),
            Err(DeviceError::Disconnected(why)) => {
                let wait = backoff.next_delay().unwrap_or(Duration::from_secs(30));
                tracing::warn!(%why, retry_ms = wait.as_millis() as u64, "cannot reach Signal");
                tokio::select! {
                    _ = tokio::time::sleep(wait) => {}
                    _ = shutdown.recv() => return Ok(false),
                }
            }
        }
    }
}
