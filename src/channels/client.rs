//! The client side of the control socket, used by `pane-agent send` and `command`.

use serde_json::Value;
use std::path::Path;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::UnixStream;

/// A failure to talk to the daemon.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// Nothing is listening.
    #[error("cannot reach the agent at {path}: {source} (is `pane-agent run` running on this data dir?)")]
    Connect {
        /// The socket path.
        path: String,
        /// Why.
        source: std::io::Error,
    },
    /// The connection broke.
    #[error("control socket: {0}")]
    Io(#[from] std::io::Error),
    /// The daemon's answer was not JSON.
    #[error("the agent's reply is not JSON: {0}")]
    BadReply(String),
}

/// Sends raw envelope bytes to the daemon and returns its reply.
pub async fn deliver(socket: &Path, envelope: &[u8]) -> Result<Value, ClientError> {
    let mut stream = UnixStream::connect(socket)
        .await
        .map_err(|source| ClientError::Connect {
            path: socket.display().to_string(),
            source,
        })?;
    stream.write_all(envelope).await?;
    stream.shutdown().await?;
    let mut reply = Vec::new();
    stream.read_to_end(&mut reply).await?;
    serde_json::from_slice(&reply).map_err(|e| ClientError::BadReply(e.to_string()))
}
