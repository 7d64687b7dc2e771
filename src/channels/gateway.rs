//! The core side of the Signal relay: `<data-dir>/gateway.sock` (mode 0600, peer uid
//! checked), one gateway at a time. Events go to the agent; the outbox goes to the gateway,
//! each message until the gateway acknowledges it (`sent`), failed ones again after a pause.

use crate::actors::agent::AgentHandle;
use crate::gateway::protocol::{decode_line, encode_line, CoreCommand, GatewayEvent};
use crate::shutdown::Shutdown;
use crate::unix;
use std::collections::{HashMap, HashSet};
use std::path::PathBuf;
use std::time::{Duration, Instant};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::{UnixListener, UnixStream};
use tokio::sync::{broadcast, mpsc};

/// How often the outbox is checked while a gateway is connected.
const POLL: Duration = Duration::from_millis(200);
/// How long a failed send waits before it is tried again.
const RETRY_AFTER: Duration = Duration::from_secs(5);

/// The listening gateway socket.
pub struct GatewaySocket {
    /// The bound listener.
    pub listener: UnixListener,
    /// Its path, removed on shutdown.
    pub path: PathBuf,
    /// The agent.
    pub agent: AgentHandle,
}

impl GatewaySocket {
    /// Serves gateways until shutdown; a new connection replaces the previous one.
    pub async fn run(self, notify: broadcast::Sender<()>, done: mpsc::Sender<()>) {
        let mut shutdown = Shutdown::new(notify.subscribe());
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
            if let Some(old) = current.take() {
                old.abort();
            }
            let agent = self.agent.clone();
            let conn_shutdown = Shutdown::new(notify.subscribe());
            let done = done.clone();
            let state_file = self.path.with_file_name("gateway.state");
            current = Some(tokio::spawn(async move {
                serve(stream, agent, conn_shutdown, state_file).await;
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

async fn serve(stream: UnixStream, agent: AgentHandle, shutdown: Shutdown, state_file: PathBuf) {
    record_state(&state_file, true);
    serve_connection(stream, agent, shutdown).await;
    record_state(&state_file, false);
}

async fn serve_connection(stream: UnixStream, agent: AgentHandle, mut shutdown: Shutdown) {
    tracing::info!("Signal gateway connected");
    let (reader, mut writer) = stream.into_split();
    let mut lines = BufReader::new(reader).lines();
    let mut in_flight: HashSet<u64> = HashSet::new();
    let mut failed: HashMap<u64, Instant> = HashMap::new();
    let mut tick = tokio::time::interval(POLL);
    loop {
        tokio::select! {
            line = lines.next_line() => {
                let line = match line {
                    Ok(Some(l)) => l,
                    _ => break,
                };
                let event: GatewayEvent = match decode_line(&line) {
                    Ok(e) => e,
                    Err(e) => {
                        tracing::warn!(error = %e, "ignored a line from the gateway");
                        continue;
                    }
                };
                match &event {
                    GatewayEvent::Sent { id } => {
                        if let Ok(id) = id.parse() {
                            in_flight.remove(&id);
                            failed.remove(&id);
                        }
                    }
                    GatewayEvent::SendFailed { id, .. } => {
                        if let Ok(id) = id.parse() {
                            in_flight.remove(&id);
                            failed.insert(id, Instant::now() + RETRY_AFTER);
                        }
                    }
                    _ => {}
                }
                agent.signal_event(event).await;
            }
            _ = tick.tick() => {
                let (owner, pending) = agent.outbox_pending().await;
                let Some(owner) = owner else { continue };
                let now = Instant::now();
                for msg in pending {
                    if in_flight.contains(&msg.id) || failed.get(&msg.id).is_some_and(|t| *t > now) {
                        continue;
                    }
                    let cmd = CoreCommand::Send { id: msg.id.to_string(), recipient: owner.clone(), body: msg.body };
                    let Ok(line) = encode_line(&cmd) else { continue };
                    if writer.write_all(line.as_bytes()).await.is_err() {
                        tracing::info!("Signal gateway disconnected");
                        return;
                    }
                    in_flight.insert(msg.id);
                }
            }
            _ = shutdown.recv() => return,
        }
    }
    tracing::info!("Signal gateway disconnected");
}

/// Binds `path` with mode 0600 (replacing a stale socket).
pub fn bind(path: &std::path::Path) -> std::io::Result<UnixListener> {
    crate::channels::control_socket::bind(path)
}
