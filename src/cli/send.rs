//! `pane-agent send CMD [key=value | key:=json ...]`: signs, delivers over the control
//! socket, prints the reply.

use super::{sign::sign, CommandArgs};
use crate::channels::client::deliver;
use serde_json::Value;

/// Signs and delivers; returns the daemon's reply.
pub async fn send(args: &CommandArgs) -> anyhow::Result<Value> {
    let envelope = sign(args).await?;
    let socket = args.data_dir.resolve()?.join("agent.sock");
    Ok(deliver(&socket, envelope.as_bytes()).await?)
}
