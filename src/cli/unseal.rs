//! `pane-agent unseal`: hands the running daemon the owner's passphrase over the control
//! socket. The passphrase is read from the terminal, or from standard input when that is not
//! a terminal (scripts, tests); never from argv or the environment.

use super::DataDirArg;
use crate::channels::client::deliver;
use serde_json::{json, Value};

/// Reads the passphrase and asks the daemon to unseal; its reply.
pub async fn unseal(dir: &DataDirArg) -> anyhow::Result<Value> {
    let data_dir = dir.resolve()?;
    if !crate::seal::is_sealed_installation(&data_dir) {
        anyhow::bail!(
            "{} is not a sealed installation (no {}): nothing to unseal",
            data_dir.display(),
            crate::seal::SEAL_FILE
        );
    }
    let passphrase = crate::seal::passphrase::read("Unseal passphrase: ")?;
    let mut request = zeroize::Zeroizing::new(
        json!({"local": "unseal", "passphrase": passphrase.as_str()}).to_string(),
    );
    drop(passphrase);
    let reply = deliver(&data_dir.join("agent.sock"), request.as_bytes()).await;
    zeroize::Zeroize::zeroize(&mut *request);
    Ok(reply?)
}
