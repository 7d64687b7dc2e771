//! `pane-agent command '<envelope json>'`: delivers an envelope signed elsewhere (a phone,
//! another machine) and prints the reply. This is the CLI-over-SSH channel.

use super::DataDirArg;
use crate::channels::client::deliver;
use serde_json::Value;

/// `command [--data-dir DIR] ENVELOPE`
#[derive(Debug, Clone, clap::Args)]
pub struct CommandEnvelope {
    #[command(flatten)]
    /// The data directory (for the socket).
    pub data_dir: DataDirArg,
    /// The envelope JSON, exactly as signed (`-` reads it from standard input).
    pub envelope: String,
}

/// Delivers the envelope bytes unchanged; the daemon does all the checking.
pub async fn command(args: &CommandEnvelope) -> anyhow::Result<Value> {
    let socket = args.data_dir.resolve()?.join("agent.sock");
    let bytes = if args.envelope == "-" {
        use tokio::io::AsyncReadExt;
        let mut buf = Vec::new();
        tokio::io::stdin()
            .take((crate::auth::MAX_ENVELOPE_BYTES + 1) as u64)
            .read_to_end(&mut buf)
            .await?;
        buf
    } else {
        args.envelope.clone().into_bytes()
    };
    Ok(deliver(&socket, &bytes).await?)
}
