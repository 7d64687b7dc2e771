//! `pane-agent mcp-key` (makes the MCP key) and `pane-agent mcp` (the MCP server on stdio,
//! which signs with it and talks to the running daemon; it never opens the store).

use super::DataDirArg;
use crate::auth::mcp_key;
use crate::config::Config;
use crate::mcp::PaneMcp;
use anyhow::{bail, Context};
use rmcp::ServiceExt;
use std::path::{Path, PathBuf};

/// `mcp-key [--data-dir DIR]`: creates `<data-dir>/mcp.key` (32 random bytes as hex, mode
/// 0600) unless it exists, and reports its fingerprint. Never overwrites.
pub fn mcp_key(dir: &DataDirArg) -> anyhow::Result<Vec<String>> {
    let data_dir = dir.resolve()?;
    if !data_dir.is_dir() {
        bail!(
            "data dir {} does not exist: run `pane-agent init --data-dir {}` first",
            data_dir.display(),
            data_dir.display()
        );
    }
    let path = mcp_key::path(&data_dir);
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes).map_err(|e| anyhow::anyhow!("no randomness for the key: {e}"))?;
    let mut text = hex::encode(bytes);
    text.push('\n');
    let made = super::init::write_new(&path, text.as_bytes())?;
    let key = mcp_key::load(&data_dir)?.with_context(|| format!("{} vanished", path.display()))?;
    let fingerprint = mcp_key::fingerprint(&key);
    Ok(if made {
        vec![
            format!(
                "wrote {} (32 random bytes as hex, mode 600)",
                path.display()
            ),
            format!("fingerprint {fingerprint}"),
            "restart the daemon, or run `pane-agent send secrets.reload`, for it to accept the key"
                .into(),
        ]
    } else {
        vec![
            format!("kept existing {} (never overwritten)", path.display()),
            format!("fingerprint {fingerprint}"),
        ]
    })
}

/// `mcp [--data-dir DIR] [--config FILE]`
#[derive(Debug, Clone, clap::Args)]
pub struct McpArgs {
    #[command(flatten)]
    /// The data directory (the MCP key, the config and the daemon's socket).
    pub data_dir: DataDirArg,
    /// The config the daemon runs with, for `[mcp] tools` (default: `<data-dir>/pane.toml`
    /// if it exists, else the built-in defaults).
    #[arg(long)]
    pub config: Option<PathBuf>,
}

/// The MCP server for `args`: the key, the scope from the config, the socket.
pub async fn server(args: &McpArgs) -> anyhow::Result<PaneMcp> {
    let data_dir = args.data_dir.resolve()?;
    let key = match mcp_key::load(&data_dir)? {
        Some(key) => key,
        // A sealed installation keeps the key in its sealed store: the unsealed daemon hands
        // it to a peer of its own uid (which could read mcp.key before sealing).
        None if crate::seal::is_sealed_installation(&data_dir) => sealed_key(&data_dir).await?,
        None => anyhow::bail!(
            "no MCP key at {}: run `pane-agent mcp-key` first",
            mcp_key::path(&data_dir).display()
        ),
    };
    let config = match Config::path_for(&data_dir, args.config.as_deref()) {
        Some(path) => Config::load(&path)?,
        None => Config::default(),
    };
    crate::policy::mcp::check_scope(&config.mcp.tools, |n| crate::commands::find(n).is_some())
        .map_err(anyhow::Error::msg)?;
    Ok(PaneMcp::new(key, socket_of(&data_dir), &config.mcp.tools))
}

async fn sealed_key(data_dir: &Path) -> anyhow::Result<crate::auth::Secret> {
    let request = serde_json::json!({"local": "mcp_key"}).to_string();
    let reply = crate::channels::client::deliver(&socket_of(data_dir), request.as_bytes()).await?;
    match reply.get("mcp_key").and_then(serde_json::Value::as_str) {
        Some(k) => Ok(crate::auth::Secret::new(k)),
        None => anyhow::bail!(
            "the agent did not give the MCP key: {}",
            reply
                .get("error")
                .and_then(serde_json::Value::as_str)
                .unwrap_or("no key in its reply")
        ),
    }
}

fn socket_of(data_dir: &Path) -> PathBuf {
    data_dir.join("agent.sock")
}

/// Serves MCP on stdin/stdout until the client closes it. Logs go to stderr only: stdout is
/// the protocol's.
pub async fn mcp(args: &McpArgs) -> anyhow::Result<()> {
    let server = server(args).await?;
    let running = server
        .serve(rmcp::transport::stdio())
        .await
        .context("the MCP client did not initialise")?;
    running.waiting().await?;
    Ok(())
}
