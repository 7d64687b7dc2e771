//! `pane-agent seal-init`: seals an installation in clear, in place, with the daemon stopped.
//!
//! Crash-safe: the sealed copy is built beside the old store (`store.sealing`) with its key
//! file beside the old one (`seal.json.pending`), and nothing of the old is touched until
//! both are complete and on disk. Then three renames make the switch (old store aside, new
//! store in, key file in), and only after them is the plaintext removed: the old store's
//! files and the credential files, each overwritten with zeros and unlinked. A run cut off
//! anywhere is finished (or, before the switch, started over) by running `seal-init` again;
//! `run` refuses to start meanwhile. What deletion does not guarantee on an SSD or a
//! journaling file system is in docs/sealing.md: rotate the provider keys afterwards.

use super::DataDirArg;
use crate::seal::{keyfile::SEALED_MARKER, passphrase, vault::Vault, Cost, KeyFile, SEAL_FILE};
use crate::store::{DataKey, Disk, Sealer};
use anyhow::{bail, Context};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// `seal-init [--recovery]`
#[derive(Debug, Clone, clap::Args)]
pub struct SealInitArgs {
    #[command(flatten)]
    /// The data directory.
    pub data_dir: DataDirArg,
    /// Also make a recovery passphrase (printed once).
    #[arg(long)]
    pub recovery: bool,
    /// How long one unseal's key derivation should take, in milliseconds.
    #[arg(long, default_value_t = 1000, hide = true)]
    pub kdf_ms: u64,
}

const SEALING: &str = "store.sealing";
const OLD: &str = "store.plain-old";
const PENDING: &str = "seal.json.pending";

/// True when a `seal-init` was cut off in `data_dir` (the daemon refuses to start then).
pub fn interrupted(data_dir: &Path) -> bool {
    [SEALING, OLD, PENDING]
        .iter()
        .any(|f| data_dir.join(f).exists())
}

/// Seals the installation in `args.data_dir`; what it did, one line each.
pub async fn seal_init(args: &SealInitArgs) -> anyhow::Result<Vec<String>> {
    let dir = args.data_dir.resolve()?;
    let mut report = Vec::new();
    if let Some(done) = finish_interrupted(&dir)? {
        return Ok(done);
    }
    if crate::seal::is_sealed_installation(&dir) {
        bail!("{} is sealed already ({SEAL_FILE} exists)", dir.display());
    }
    let store_dir = dir.join("store");
    if !store_dir.exists() && !dir.join("agent.secret").exists() {
        bail!(
            "{} has no installation: `pane-agent init` makes a sealed one",
            dir.display()
        );
    }
    // The old store first (made empty when `init --unsealed` never ran the daemon): sled's
    // lock says whether a daemon still runs on it.
    let old_disk = Disk::open(&store_dir).context("stop the daemon first")?;
    let (pass, generated) = passphrase::new_one()?;
    let recovery = args.recovery.then(passphrase::generate).transpose()?;
    let cost = Cost::calibrate(std::time::Duration::from_millis(args.kdf_ms.max(1)))?;
    let key = DataKey::generate()?;
    let file = KeyFile::create(&key, &pass, recovery.as_deref().map(|r| r.as_str()), cost)?;

    let sealing_dir = dir.join(SEALING);
    if sealing_dir.exists() {
        std::fs::remove_dir_all(&sealing_dir)?;
    }
    let copied = {
        let old = old_disk.store(None)?;
        let new_disk = Disk::open(&sealing_dir)?;
        let new = new_disk.store(Some(Arc::new(Sealer::new(&key)?)))?;
        let vault = Vault::new(&new)?;
        vault.check_canary(true)?;
        let copied = old.copy_into(&new)?;
        // The files stay until the sealed store has replaced the old one: a run cut off
        // before that starts over from them.
        let imported = vault.import_keeping_files(&dir)?;
        for i in &imported {
            report.push(format!(
                "took {} into the sealed store from {}",
                i.credential.name(),
                i.from.display()
            ));
        }
        vault.signal_passphrase(&dir)?;
        new.flush().await?;
        new_disk.flush()?;
        copied
    };
    drop(old_disk);
    std::fs::write(sealing_dir.join("SEALED"), b"sealed\n")?;
    let text = serde_json::to_vec_pretty(&file)?;
    crate::unix::write_private_atomically(&dir.join(PENDING), &text)?;
    // From here the store will be sealed under this key file whatever happens next (a run
    // again finishes the switch): the passphrases are shown now, not after the switch.
    if generated {
        println!(
            "unseal passphrase (shown once; write it down, it is not stored anywhere): {}",
            *pass
        );
    }
    if let Some(r) = &recovery {
        println!("recovery passphrase (shown once): {}", **r);
    }
    report.push(format!("sealed {copied} records into a new store"));
    report.extend(finish_interrupted(&dir)?.unwrap_or_default());
    report.push("rotate the provider keys now: deleted files may survive on an SSD or in a file system's journal (docs/sealing.md)".into());
    Ok(report)
}

/// Finishes a conversion whose sealed store and key file are complete; starts over one that
/// was cut off before. None when there was nothing to finish.
fn finish_interrupted(dir: &Path) -> anyhow::Result<Option<Vec<String>>> {
    let (sealing, old, pending, store) = (
        dir.join(SEALING),
        dir.join(OLD),
        dir.join(PENDING),
        dir.join("store"),
    );
    let mut report = Vec::new();
    if !pending.exists() {
        if crate::seal::is_sealed_installation(dir) && old.exists() {
            for removed in crate::seal::vault::remove_credential_files(dir) {
                report.push(format!(
                    "removed {} (it is in the sealed store)",
                    removed.display()
                ));
            }
            shred_dir(&old)?;
            report.push(format!("removed the store in clear ({})", old.display()));
            return Ok(Some(report));
        }
        if sealing.exists() {
            // Cut off before its key file was written: start over.
            std::fs::remove_dir_all(&sealing)?;
        }
        return Ok(None);
    }
    // The sealed store and its key file are complete: switch.
    if sealing.exists() {
        if store.exists() && !old.exists() {
            std::fs::rename(&store, &old)?;
        }
        std::fs::rename(&sealing, &store)?;
    }
    std::fs::rename(store.join("SEALED"), dir.join(SEALED_MARKER))
        .or_else(|_| std::fs::write(dir.join(SEALED_MARKER), b"sealed\n"))?;
    std::fs::rename(&pending, dir.join(SEAL_FILE))?;
    std::fs::File::open(dir)?.sync_all()?;
    report.push(format!("wrote {}", dir.join(SEAL_FILE).display()));
    for removed in crate::seal::vault::remove_credential_files(dir) {
        report.push(format!(
            "removed {} (it is in the sealed store)",
            removed.display()
        ));
    }
    if old.exists() {
        shred_dir(&old)?;
        report.push("removed the store in clear (its files overwritten, then unlinked)".into());
    }
    Ok(Some(report))
}

/// Overwrites every file under `dir` with zeros, syncs, and removes the tree.
fn shred_dir(dir: &Path) -> anyhow::Result<()> {
    let mut stack: Vec<PathBuf> = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d)? {
            let path = entry?.path();
            if path.is_dir() {
                stack.push(path);
            } else if let Ok(meta) = std::fs::metadata(&path) {
                if let Ok(mut f) = std::fs::OpenOptions::new().write(true).open(&path) {
                    use std::io::Write;
                    let zeros = vec![0u8; 64 * 1024];
                    let mut left = meta.len();
                    while left > 0 {
                        let n = left.min(zeros.len() as u64) as usize;
                        if f.write_all(&zeros[..n]).is_err() {
                            break;
                        }
                        left -= n as u64;
                    }
                    let _ = f.sync_all();
                }
            }
        }
    }
    std::fs::remove_dir_all(dir)?;
    Ok(())
}
