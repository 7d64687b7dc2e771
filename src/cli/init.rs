//! `pane-agent init`: the data dir (0700), a commented `pane.toml` (0600) and, unless
//! `AGENT_SECRET` is set, `agent.secret`: 32 random bytes as 64 hex characters (0600).
//! It never overwrites an existing file.

use crate::config::TEMPLATE;
use crate::unix;
use anyhow::Context;
use std::fs::{DirBuilder, OpenOptions};
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::Path;

/// What `init` did, one line per file.
pub fn init(data_dir: &Path) -> anyhow::Result<Vec<String>> {
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
