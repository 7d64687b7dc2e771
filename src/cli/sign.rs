//! `pane-agent sign CMD [key=value | key:=json ...]`: prints a signed envelope.
//!
//! On a sealed installation the console cannot read the command secret (it lives in the
//! sealed store): the running, unsealed daemon signs for it, as a peer of its own uid on the
//! control socket.

use super::{parse_pairs, CommandArgs};
use crate::auth::{Envelope, SecretSet};
use crate::channels::client::deliver;
use chrono::Utc;
use serde_json::{json, Value};

/// Signs `CMD` with its arguments using the current secret; the envelope's JSON text.
pub async fn sign(args: &CommandArgs) -> anyhow::Result<String> {
    let data_dir = args.data_dir.resolve()?;
    let map = parse_pairs(&args.args)?;
    if crate::seal::is_sealed_installation(&data_dir)
        && std::env::var("AGENT_SECRET").map_or(true, |s| s.trim().is_empty())
    {
        let request = json!({"local": "sign", "cmd": args.cmd, "args": map}).to_string();
        let reply = deliver(&data_dir.join("agent.sock"), request.as_bytes()).await?;
        return match reply.get("envelope").and_then(Value::as_str) {
            Some(envelope) => Ok(envelope.to_string()),
            None => anyhow::bail!(
                "the agent did not sign: {}",
                reply
                    .get("error")
                    .and_then(Value::as_str)
                    .unwrap_or("no envelope in its reply")
            ),
        };
    }
    let secrets = SecretSet::load(&data_dir, &[])?;
    Ok(Envelope::sign(&secrets.current, Utc::now(), &args.cmd, map).to_json())
}

/// The console's secret on a sealed installation: asked of the unsealed daemon.
pub async fn command_secret(data_dir: &std::path::Path) -> anyhow::Result<crate::auth::Secret> {
    let reply = deliver(
        &data_dir.join("agent.sock"),
        json!({"local": "command_secret"}).to_string().as_bytes(),
    )
    .await?;
    match reply.get("secret").and_then(Value::as_str) {
        Some(s) => Ok(crate::auth::Secret::new(s)),
        None => anyhow::bail!(
            "the agent did not give the command secret: {}",
            reply
                .get("error")
                .and_then(Value::as_str)
                .unwrap_or("no secret in its reply")
        ),
    }
}
