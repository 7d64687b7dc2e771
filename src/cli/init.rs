//! `pane-agent init`: the data dir (0700), a commented `pane.toml` (0600), and a sealed store
//! (the default): a new data key wrapped by the owner's unseal passphrase (typed, or
//! generated and printed once) in `seal.json`, and inside the sealed store the command
//! secret (32 random bytes as 64 hex characters, unless `AGENT_SECRET` is set) and the Signal
//! store's passphrase; no secret is ever written in clear. `--unsealed` makes the layout of
//! before sealing: `agent.secret` (0600) beside a store in clear. It never overwrites an
//! existing file.

use crate::config::TEMPLATE;
use crate::unix;
use anyhow::Context;
use std::fs::{DirBuilder, OpenOptions};
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::Path;

/// `init [--unsealed] [--recovery]`
#[derive(Debug, Clone, clap::Args)]
pub struct InitArgs {
    #[command(flatten)]
    /// The data directory.
    pub data_dir: super::DataDirArg,
    /// Keep the store and the secrets in clear (the layout before sealing; `doctor` warns).
    #[arg(long)]
    pub unsealed: bool,
    /// Also make a recovery passphrase (printed once), which unseals as the passphrase does.
    #[arg(long)]
    pub recovery: bool,
    /// How long one unseal's key derivation should take on this machine, in milliseconds
    /// (Argon2id over 64 MiB; 1000 by default).
    #[arg(long, default_value_t = 1000, hide = true)]
    pub kdf_ms: u64,
}

/// `init`: the unsealed layout, or a sealed installation.
pub async fn run(args: &InitArgs) -> anyhow::Result<Vec<String>> {
    let data_dir = args.data_dir.resolve()?;
    if args.unsealed {
        let mut report = init(&data_dir)?;
        report.push(
            "unsealed: the store and agent.secret are in clear on disk (`pane-agent seal-init` seals them)".into(),
        );
        return Ok(report);
    }
    init_sealed(&data_dir, args).await
}

async fn init_sealed(data_dir: &Path, args: &InitArgs) -> anyhow::Result<Vec<String>> {
    use crate::seal::{passphrase, vault, Cost, KeyFile};
    if crate::seal::is_sealed_installation(data_dir) {
        anyhow::bail!(
            "{} is sealed already ({} exists): nothing to do",
            data_dir.display(),
            crate::seal::SEAL_FILE
        );
    }
    if data_dir.join("store").exists() || data_dir.join("agent.secret").exists() {
        anyhow::bail!(
            "{} holds an installation in clear: `pane-agent seal-init` converts it in place",
            data_dir.display()
        );
    }
    let given_secret = std::env::var("AGENT_SECRET")
        .ok()
        .map(zeroize::Zeroizing::new)
        .filter(|s| !s.trim().is_empty());
    if given_secret.as_ref().is_some_and(|s| s.trim().len() < 32) {
        anyhow::bail!("AGENT_SECRET is shorter than 32 bytes: nothing was made");
    }
    let mut report = Vec::new();
    let (pass, generated) = passphrase::new_one()?;
    let recovery = args.recovery.then(passphrase::generate).transpose()?;
    report.extend(layout(data_dir)?);
    let cost = Cost::calibrate(std::time::Duration::from_millis(args.kdf_ms.max(1)))?;
    let key = crate::store::DataKey::generate()?;
    let file = KeyFile::create(&key, &pass, recovery.as_deref().map(|r| r.as_str()), cost)?;
    let disk = crate::store::Disk::open(&data_dir.join("store"))?;
    let store = disk.store(Some(std::sync::Arc::new(crate::store::Sealer::new(&key)?)))?;
    let v = vault::Vault::new(&store)?;
    v.check_canary(true)?;
    if let Some(given) = given_secret {
        // The secret chosen elsewhere is sealed in, so that `run` needs no environment.
        v.set(vault::Credential::CommandSecret, given.trim())?;
        report.push("took AGENT_SECRET into the sealed store as the command secret".to_string());
    } else {
        let mut bytes = zeroize::Zeroizing::new([0u8; 32]);
        getrandom::fill(&mut bytes[..])
            .map_err(|e| anyhow::anyhow!("no randomness for the secret: {e}"))?;
        v.set(vault::Credential::CommandSecret, &hex::encode(&bytes[..]))?;
        report.push("made the command secret, inside the sealed store".to_string());
    }
    v.signal_passphrase(data_dir)?;
    report.push("made the Signal store's passphrase, inside the sealed store".to_string());
    store.flush().await?;
    drop(v);
    drop(store);
    disk.flush()?;
    write_new(
        &data_dir.join(crate::seal::keyfile::SEALED_MARKER),
        b"sealed\n",
    )?;
    file.save(data_dir)?;
    report.push(format!(
        "wrote {} (the data key, wrapped: Argon2id {} MiB x {} passes)",
        data_dir.join(crate::seal::SEAL_FILE).display(),
        cost.m_kib / 1024,
        cost.t
    ));
    if generated {
        report.push(format!(
            "unseal passphrase (shown once; write it down, it is not stored anywhere): {}",
            *pass
        ));
    }
    if let Some(r) = &recovery {
        report.push(format!(
            "recovery passphrase (shown once; keep it apart from the other): {}",
            **r
        ));
    }
    report.push(
        "sealed: after every start run `pane-agent unseal` (or Unseal on the signer page); `pane-agent signer-qr` shows the command secret once unsealed".to_string(),
    );
    Ok(report)
}

/// What `init --unsealed` did, one line per file.
pub fn init(data_dir: &Path) -> anyhow::Result<Vec<String>> {
    let mut report = layout(data_dir)?;
    if std::env::var("AGENT_SECRET").is_ok_and(|s| !s.trim().is_empty()) {
        report.push("AGENT_SECRET is set: no agent.secret written".to_string());
    } else {
        let path = data_dir.join("agent.secret");
        let mut bytes = [0u8; 32];
        getrandom::fill(&mut bytes)
            .map_err(|e| anyhow::anyhow!("no randomness for the secret: {e}"))?;
        let mut text = hex::encode(bytes);
        text.push('\n');
        if write_new(&path, text.as_bytes())? {
            report.push(format!(
                "wrote {} (32 random bytes as hex, mode 600)",
                path.display()
            ));
        } else {
            report.push(format!("kept existing {}", path.display()));
        }
    }
    Ok(report)
}

/// The data dir (0700) and its commented `pane.toml` (0600), each kept when it exists.
fn layout(data_dir: &Path) -> anyhow::Result<Vec<String>> {
    let mut report = Vec::new();
    if data_dir.exists() {
        let mode = unix::mode_of(data_dir)?;
        report.push(format!(
            "kept existing {} (mode {mode:o})",
            data_dir.display()
        ));
        if mode & 0o077 != 0 {
            report.push(format!(
                "  warning: {} is open to group or others; run: chmod 700 {}",
                data_dir.display(),
                data_dir.display()
            ));
        }
    } else {
        DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(data_dir)
            .with_context(|| format!("cannot create {}", data_dir.display()))?;
        unix::set_mode(data_dir, 0o700)?;
        report.push(format!("created {} (mode 700)", data_dir.display()));
    }
    let config = data_dir.join("pane.toml");
    if write_new(&config, TEMPLATE.as_bytes())? {
        report.push(format!("wrote {} (mode 600)", config.display()));
    } else {
        report.push(format!("kept existing {}", config.display()));
    }
    Ok(report)
}

/// Creates `path` with mode 0600 and `content`; false when it already exists.
pub(crate) fn write_new(path: &Path, content: &[u8]) -> anyhow::Result<bool> {
    let file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path);
    let mut file = match file {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => return Ok(false),
        Err(e) => return Err(e).with_context(|| format!("cannot create {}", path.display())),
    };
    file.write_all(content)?;
    file.sync_all()?;
    Ok(true)
}
