//! `pane-agent rotate-secret`: a new command secret (32 random bytes, mode 0600); the old one
//! stays accepted for `[auth] rotation_grace_days` (default 7) in `previous.secrets`, with
//! the time its grace ends, which the daemon checks at every verification. A grace of 0 days
//! drops the old secret at once (a secret known to be stolen). A running daemon is told to
//! reload (the rotation is then in its audit log); a stopped one notices the new secret at
//! start and audits it then.
//!
//! The grace comes from the config the daemon uses: `--config` as given to `run`, else
//! `<data-dir>/pane.toml`.

use super::DataDirArg;
use crate::auth::secret::{rotated_file_after, ROTATED_FILE};
use crate::auth::{Envelope, Secret, SecretSet};
use crate::channels::client::deliver;
use crate::config::Config;
use anyhow::{bail, Context};
use std::io::Write;
use std::os::unix::fs::DirBuilderExt;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

/// `rotate-secret [--data-dir DIR] [--config FILE] [--credentials DIR]`
#[derive(Debug, Clone, clap::Args)]
pub struct RotateArgs {
    #[command(flatten)]
    /// The data directory.
    pub data_dir: DataDirArg,
    /// The config file the daemon runs with (default: `<data-dir>/pane.toml` if it exists,
    /// else built-in defaults); its `[auth] rotation_grace_days` sets the old secret's grace.
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// The systemd credentials directory holding `agent-secret` (default
    /// /etc/pane/credentials when it has one); `previous-secrets` there keeps the old one.
    #[arg(long)]
    pub credentials: Option<PathBuf>,
}

/// Writes `text` to `path` atomically with mode 0600.
fn write_private(path: &Path, text: &str) -> anyhow::Result<()> {
    let tmp = path.with_extension("new");
    let _ = std::fs::remove_file(&tmp);
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&tmp)
        .with_context(|| format!("cannot write {}", tmp.display()))?;
    f.write_all(text.as_bytes())?;
    f.sync_all()?;
    std::fs::rename(&tmp, path).with_context(|| format!("cannot replace {}", path.display()))?;
    Ok(())
}

/// Puts `old` in the rotated-secrets file `path` for `grace_days` (nothing for 0), drops the
/// lines whose grace has ended, then writes a fresh secret to `current`. Returns the line
/// that tells the owner how long the old secret is accepted.
fn rotate_files(
    current: &Path,
    previous: &Path,
    old: &Secret,
    grace_days: u64,
) -> anyhow::Result<String> {
    let text = match std::fs::read_to_string(previous) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
        Err(e) => return Err(e).with_context(|| format!("cannot read {}", previous.display())),
    };
    let now = chrono::Utc::now().timestamp();
    write_private(previous, &rotated_file_after(&text, old, now, grace_days))?;
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes)
        .map_err(|e| anyhow::anyhow!("no randomness for the secret: {e}"))?;
    write_private(current, &format!("{}\n", hex::encode(bytes)))?;
    Ok(if grace_days == 0 {
        "the old secret is refused from now on ([auth] rotation_grace_days = 0)".to_string()
    } else {
        format!(
            "the old secret is accepted for {grace_days} more day(s) ({}); update your signers now",
            previous.display()
        )
    })
}

/// Rotates the secret in a systemd credentials directory (the installed setup): the old one
/// goes to `previous-secrets` with its expiry, the new one to `agent-secret`; the service
/// reads both at its next start and audits the rotation then.
fn rotate_credential(dir: &Path, grace_days: u64) -> anyhow::Result<Vec<String>> {
    let current = dir.join("agent-secret");
    let old = std::fs::read_to_string(&current)
        .with_context(|| format!("cannot read {}", current.display()))?;
    let old = Secret::new(&old);
    if old.as_bytes().len() < 32 {
        bail!("{} is shorter than 32 bytes", current.display());
    }
    let grace = rotate_files(&current, &dir.join("previous-secrets"), &old, grace_days)?;
    Ok(vec![
        format!("new secret in {} (32 random bytes, mode 600)", current.display()),
        grace,
        "restart the agent to use it: systemctl restart pane-agent (the rotation is audited at start)".into(),
    ])
}

/// Rotates the secret of a sealed installation, whose running and unsealed daemon holds it:
/// the new secret and the old one's grace line are written to the data dir's `credentials/`
/// drop directory, and `secrets.reload` (signed by the daemon with the old secret, still its
/// current one) takes them into the sealed store and removes the files.
async fn rotate_sealed(data_dir: &Path, grace_days: u64) -> anyhow::Result<Vec<String>> {
    let old = super::sign::command_secret(data_dir)
        .await
        .context("a sealed installation's secret is rotated by its running, unsealed agent")?;
    let drop_dir = data_dir.join(crate::seal::vault::DROP_DIR);
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(&drop_dir)
        .with_context(|| format!("cannot create {}", drop_dir.display()))?;
    let grace_line = rotate_files(
        &drop_dir.join("agent-secret"),
        &drop_dir.join("previous-secrets"),
        &old,
        grace_days,
    )?;
    let request = serde_json::json!({"local": "sign", "cmd": "secrets.reload"}).to_string();
    let signed = deliver(&data_dir.join("agent.sock"), request.as_bytes()).await?;
    let Some(envelope) = signed.get("envelope").and_then(serde_json::Value::as_str) else {
        bail!("the agent did not sign the reload: {}", signed["error"]);
    };
    let reply = deliver(&data_dir.join("agent.sock"), envelope.as_bytes()).await?;
    if reply.get("error").is_some() {
        bail!(
            "the agent refused to take the new secret in: {} (the files wait in {})",
            reply["error"],
            drop_dir.display()
        );
    }
    Ok(vec![
        "new secret made and sealed into the store (32 random bytes); its files removed".into(),
        grace_line,
        "`pane-agent signer-qr` shows it for the phone; the rotation is in the audit log".into(),
    ])
}

/// Rotates the secret in `<data-dir>/agent.secret`, or in the systemd credentials directory
/// when that is where it lives; returns what happened, line by line.
pub async fn rotate_secret(args: &RotateArgs) -> anyhow::Result<Vec<String>> {
    let data_dir = args.data_dir.resolve()?;
    if std::env::var("AGENT_SECRET").is_ok_and(|v| !v.trim().is_empty()) {
        bail!("the secret comes from AGENT_SECRET: rotate it where it is configured, and put the old one in [auth] previous_secrets for the grace period");
    }
    if std::env::var_os("CREDENTIALS_DIRECTORY").is_some() {
        bail!("run rotate-secret at the console (as root), not inside the service");
    }
    let credentials = args.credentials.clone().or_else(|| {
        Some(PathBuf::from("/etc/pane/credentials")).filter(|d| d.join("agent-secret").exists())
    });
    let config = match Config::path_for(&data_dir, args.config.as_deref()) {
        Some(path) => Config::load(&path)?,
        None => Config::default(),
    };
    let grace = config.auth.rotation_grace_days;
    if crate::seal::is_sealed_installation(&data_dir) {
        return rotate_sealed(&data_dir, grace).await;
    }
    if let Some(cred_dir) = credentials {
        return rotate_credential(&cred_dir, grace);
    }
    let old = SecretSet::load(&data_dir, &config.auth.previous_secrets)?;
    let current = data_dir.join("agent.secret");
    let grace_line = rotate_files(&current, &data_dir.join(ROTATED_FILE), &old.current, grace)?;
    let mut report = vec![
        format!(
            "new secret in {} (32 random bytes, mode 600)",
            current.display()
        ),
        grace_line,
    ];
    // Tell a running daemon; the old secret, still its current one, signs this one command.
    let envelope = Envelope::sign(
        &old.current,
        chrono::Utc::now(),
        "secrets.reload",
        Default::default(),
    );
    match deliver(&data_dir.join("agent.sock"), envelope.to_json().as_bytes()).await {
        Ok(reply) if reply.get("error").is_none() => report.push("the running agent reloaded its secrets; the rotation is in its audit log".into()),
        Ok(reply) => report.push(format!("the running agent refused to reload: {}", reply["error"])),
        Err(_) => report.push("the agent is not running: it will use the new secret, and audit the rotation, at start".into()),
    }
    Ok(report)
}
