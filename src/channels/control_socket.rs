//! The control socket `<data-dir>/agent.sock`: mode 0600, and only peers running as the
//! agent's own uid are served. One envelope per connection: the client writes it and shuts
//! down its write half; the agent answers with one line of JSON and closes.
//!
//! Besides envelopes it takes the console's local requests (a JSON object with a `local`
//! key, [`Local`]): `unseal`, and on a sealed installation, whose console cannot read the
//! command secret or the MCP key any more, `sign`, `mcp_key` and `command_secret`. A peer of
//! the agent's own uid could read those files before sealing; it is the same peer now.
//! While the agent is sealed everything else is answered `sealed`.

use super::door::{sealed_reply, Door, Local};
use crate::auth::MAX_ENVELOPE_BYTES;
use crate::origin::Channel;
use crate::reply::{CommandError, ErrorKind};
use crate::shutdown::Trigger;
use crate::unix;
use std::path::{Path, PathBuf};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{UnixListener, UnixStream};
use tokio::sync::mpsc;

/// How long a client may take to send its envelope.
const READ_TIMEOUT: Duration = Duration::from_secs(10);

/// How much of an oversized envelope is read and dropped before answering.
const DRAIN_LIMIT: u64 = 8 * 1024 * 1024;

/// Binds the socket at `path` (replacing a stale one) with mode 0600.
pub fn bind(path: &Path) -> std::io::Result<UnixListener> {
    if path.exists() {
        // A live agent holds the store lock, so a socket file here is left over from a crash.
        std::fs::remove_file(path)?;
    }
    let listener = UnixListener::bind(path)?;
    unix::set_mode(path, 0o600)?;
    Ok(listener)
}

/// Serves connections until shutdown.
pub struct ControlSocket {
    /// The bound listener.
    pub listener: UnixListener,
    /// Its path, removed on shutdown.
    pub path: PathBuf,
    /// The gate, through the door of the seal.
    pub door: Door,
}

impl ControlSocket {
    /// Accepts and serves clients until `shutdown` fires. Each connection gets its own task
    /// that also stops on shutdown; `_done` is dropped when they all have.
    pub async fn run(self, notify: Trigger, done: mpsc::Sender<()>) {
        let mut shutdown = notify.subscribe();
        loop {
            let accepted = tokio::select! {
                a = self.listener.accept() => a,
                _ = shutdown.recv() => break,
            };
            let stream = match accepted {
                Ok((stream, _)) => stream,
                Err(e) => {
                    tracing::warn!(error = %e, "control socket accept failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            };
            let door = self.door.clone();
            let mut conn_shutdown = notify.subscribe();
            let done = done.clone();
            tokio::spawn(async move {
                tokio::select! {
                    _ = serve(stream, door) => {}
                    _ = conn_shutdown.recv() => {}
                }
                drop(done);
            });
        }
        let _ = std::fs::remove_file(&self.path);
        drop(done);
    }
}

async fn serve(mut stream: UnixStream, door: Door) {
    let peer_ok = match stream.peer_cred() {
        Ok(cred) => cred.uid() == unix::euid(),
        Err(_) => false,
    };
    if !peer_ok {
        tracing::warn!("control socket: refused a peer with another uid");
        return;
    }
    let read = read_envelope(&mut stream).await;
    if let Ok(bytes) = &read {
        if let Some(local) = local_request(bytes) {
            tracing::debug!(request = local.name(), "control socket: a local request");
            let answer = door.local(local).await;
            let mut bytes = read.unwrap_or_default();
            zeroize::Zeroize::zeroize(&mut bytes);
            let _ = write_line(&mut stream, answer.to_string()).await;
            let _ = stream.shutdown().await;
            return;
        }
    }
    let Some(gate) = door.gate() else {
        let _ = write_line(&mut stream, sealed_reply().to_string()).await;
        let _ = stream.shutdown().await;
        return;
    };
    let reply = match read {
        Ok(bytes) => gate.submit(bytes, Channel::Socket).await,
        Err(e) => gate.refused(e, Channel::Socket).await,
    };
    let _ = write_line(&mut stream, reply.to_json_string()).await;
    let _ = stream.shutdown().await;
}

/// The local request in `bytes`, if they are one (an object with a `local` key; anything
/// else goes to the gate as an envelope, which refuses what it does not know).
fn local_request(bytes: &[u8]) -> Option<Local> {
    #[derive(serde::Deserialize)]
    struct Probe {
        local: Option<serde::de::IgnoredAny>,
    }
    let probe: Probe = serde_json::from_slice(bytes).ok()?;
    probe.local?;
    serde_json::from_slice::<Local>(bytes).ok()
}

/// Writes the reply and its newline.
async fn write_line(stream: &mut UnixStream, mut text: String) -> std::io::Result<()> {
    text.push('\n');
    stream.write_all(text.as_bytes()).await?;
    stream.flush().await
}

async fn read_envelope(stream: &mut UnixStream) -> Result<Vec<u8>, CommandError> {
    let mut buf = Vec::with_capacity(1024);
    let limit = (MAX_ENVELOPE_BYTES + 1) as u64;
    let read = tokio::time::timeout(
        READ_TIMEOUT,
        (&mut *stream).take(limit).read_to_end(&mut buf),
    )
    .await;
    match read {
        Err(_) => Err(CommandError::new(
            ErrorKind::Malformed,
            "malformed envelope: timed out waiting for it",
        )),
        Ok(Err(e)) => Err(CommandError::new(
            ErrorKind::Malformed,
            format!("malformed envelope: read failed ({e})"),
        )),
        Ok(Ok(_)) if buf.len() > MAX_ENVELOPE_BYTES => {
            // Read (and drop) the rest, up to a bound, so the client sees the reply instead
            // of a connection reset.
            let mut sink = tokio::io::sink();
            let drain = (&mut *stream).take(DRAIN_LIMIT);
            let _ = tokio::time::timeout(READ_TIMEOUT, tokio::io::copy(&mut { drain }, &mut sink))
                .await;
            Err(CommandError::new(
                ErrorKind::TooLarge,
                format!("too large: an envelope is at most {MAX_ENVELOPE_BYTES} bytes"),
            ))
        }
        Ok(Ok(_)) => Ok(buf),
    }
}
