//! `pane-agent rotate-secret`: a new command secret (32 random bytes, mode 0600); the old one
//! stays accepted for `[auth] rotation_grace_days` (default 7) in `previous.secrets`. A
//! running daemon is told to reload (the rotation is then in its audit log); a stopped one
//! notices the new secret at start and audits it then.

use super::DataDirArg;
use crate::auth::secret::ROTATED_FILE;
use crate::auth::{Envelope, SecretSet};
use crate::channels::client::deliver;
use crate::config::Config;
use anyhow::{bail, Context};
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;

/// `rotate-secret [--data-dir DIR] [--credentials DIR]`
#[derive(Debug, Clone, clap::Args)]
pub struct RotateArgs {
    #[command(flatten)]
    /// The data directory.
    pub data_dir: DataDirArg,
    /// The systemd credentials directory holding `agent-secret` (default
    /// /etc/pane/credentials when it has one); `previous-secrets` there keeps the old one.
    #[arg(long)]
    pub credentials: Option<std::path::PathBuf>,
}

/// Writes `text` to `path` atomically with mode 0600.
fn write_private(path: &std::path::Path, text: &str) -> anyhow::Result<()> {
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

/// Rotates the secret in a systemd credentials directory (the installed setup): the old one
/// goes to `previous-secrets` with its expiry, the new one to `agent-secret`; the service
/// reads both at its next start and audits the rotation then.
fn rotate_credential(dir: &std::path::Path, grace_days: u64) -> anyhow::Result<Vec<String>> {
    let current = dir.join("agent-secret");
    let old = std::fs::read_to_string(&current)
        .with_context(|| format!("cannot read {}", current.display()))?;
    let old = old.trim();
    if old.len() < 32 {
        bail!("{} is shorter than 32 bytes", current.display());
    }
    let previous = dir.join("previous-secrets");
    let mut text = std::fs::read_to_string(&previous).unwrap_or_default();
    let expires = chrono::Utc::now().timestamp() + (grace_days as i64) * 86_400;
    text.push_str(&format!("{expires} {old}\n"));
    write_private(&previous, &text)?;
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes)
        .map_err(|e| anyhow::anyhow!("no randomness for the secret: {e}"))?;
    write_private(&current, &format!("{}\n", hex::encode(bytes)))?;
    Ok(vec![
        format!("new secret in {} (32 random bytes, mode 600)", current.display()),
        format!("the old secret is accepted for {grace_days} more day(s) ({})", previous.display()),
        "restart the agent to use it: systemctl restart pane-agent (the rotation is audited at start)".into(),
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
        Some(std::path::PathBuf::from("/etc/pane/credentials"))
            .filter(|d| d.join("agent-secret").exists())
    });
    let config_path = data_dir.join("pane.toml");
    let config = if config_path.exists() {
        Config::load(&config_path)?
    } else {
        Config::default()
    };
    if let Some(cred_dir) = credentials {
        return rotate_credential(&cred_dir, config.auth.rotation_grace_days.max(1));
    }
    let old = SecretSet::load(&data_dir, &config.auth.previous_secrets)?;
    let grace = config.auth.rotation_grace_days.max(1);
    let expires = chrono::Utc::now().timestamp() + (grace as i64) * 86_400;
    let mut previous = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .mode(0o600)
        .open(data_dir.join(ROTATED_FILE))
        .context("cannot open previous.secrets")?;
    writeln!(previous, "{expires} {}", old.current.as_text())?;
    previous.sync_all()?;
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes)
        .map_err(|e| anyhow::anyhow!("no randomness for the secret: {e}"))?;
    let tmp = data_dir.join("agent.secret.new");
    let _ = std::fs::remove_file(&tmp);
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&tmp)
        .context("cannot write the new secret")?;
    writeln!(f, "{}", hex::encode(bytes))?;
    f.sync_all()?;
    std::fs::rename(&tmp, data_dir.join("agent.secret")).context("cannot replace agent.secret")?;
    let mut report = vec![
        format!(
            "new secret in {} (32 random bytes, mode 600)",
            data_dir.join("agent.secret").display()
        ),
        format!("the old secret is accepted for {grace} more day(s); update your signers now"),
    ];
    // Tell a running daemon; the old secret still signs this one command.
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
