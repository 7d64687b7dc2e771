//! Where the gateway keeps its Signal state, and how the encrypted store is opened.
//!
//! - The presage sqlite store (SQLCipher-encrypted), the journal of unacknowledged messages
//!   (`inbox/`), the sent-id log and the known identity keys live in `<data-dir>/signal/`
//!   (mode 0700).
//! - The store passphrase comes from `PANE_SIGNAL_PASSPHRASE` or from the systemd credential
//!   `$CREDENTIALS_DIRECTORY/signal-passphrase`, never from the command line; without one the
//!   installation is sealed and the core hands it over (`relay::Keying`).

use anyhow::{bail, Context};
use presage_store_sqlite::{OnNewIdentity, SqliteConnectOptions, SqliteStore};
use sqlx::ConnectOptions;
use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
use std::path::{Path, PathBuf};
use zeroize::Zeroizing;

/// The environment variable holding the store passphrase.
pub const PASSPHRASE_ENV: &str = "PANE_SIGNAL_PASSPHRASE";
/// The systemd credential (under `$CREDENTIALS_DIRECTORY`) holding the store passphrase.
pub const PASSPHRASE_CREDENTIAL: &str = "signal-passphrase";

/// The gateway's directory under the data dir.
pub fn signal_dir(data_dir: &Path) -> PathBuf {
    data_dir.join("signal")
}

/// The presage store's database file.
pub fn store_path(data_dir: &Path) -> PathBuf {
    signal_dir(data_dir).join("presage.db3")
}

/// Creates `<data-dir>/signal/` if needed and makes it private to this user (0700).
pub fn ensure_signal_dir(data_dir: &Path) -> anyhow::Result<PathBuf> {
    let dir = signal_dir(data_dir);
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(&dir)
        .with_context(|| format!("cannot create {}", dir.display()))?;
    if std::fs::metadata(&dir)?.permissions().mode() & 0o077 != 0 {
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o700))
            .with_context(|| format!("cannot make {} private (0700)", dir.display()))?;
        tracing::warn!(dir = %dir.display(), "tightened the Signal state directory to 0700");
    }
    Ok(dir)
}

/// Reads the store passphrase: `PANE_SIGNAL_PASSPHRASE` (removed from the environment once
/// read), else `$CREDENTIALS_DIRECTORY/signal-passphrase`. Call it before any thread starts.
///
/// None when neither is there (or both are empty): a sealed installation, where the core
/// hands the passphrase over on its socket once the owner has unsealed it.
pub fn read_passphrase() -> anyhow::Result<Option<Zeroizing<String>>> {
    let from_env = std::env::var(PASSPHRASE_ENV).ok().map(Zeroizing::new);
    // Nothing this process starts needs it; do not hand it on. (Single-threaded here.)
    std::env::remove_var(PASSPHRASE_ENV);
    if let Some(passphrase) = from_env.filter(|p| !p.is_empty()) {
        return Ok(Some(passphrase));
    }
    let Some(dir) = std::env::var_os("CREDENTIALS_DIRECTORY") else {
        return Ok(None);
    };
    let path = Path::new(&dir).join(PASSPHRASE_CREDENTIAL);
    let file = match std::fs::read(&path) {
        Ok(bytes) => Zeroizing::new(bytes),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e).with_context(|| format!("cannot read {}", path.display())),
    };
    let text = std::str::from_utf8(&file)
        .map_err(|_| anyhow::anyhow!("{} is not UTF-8 text", path.display()))?;
    let passphrase = text.trim_end_matches(['\r', '\n']);
    Ok((!passphrase.is_empty()).then(|| Zeroizing::new(passphrase.to_string())))
}

/// Opens the encrypted presage store at `path`; `create` allows creating a new one.
///
/// New identities of contacts are trusted (so a contact who reinstalls Signal is not cut
/// off); the gateway reports the change to the core instead (see `identities`).
pub async fn open(path: &Path, passphrase: &str, create: bool) -> anyhow::Result<SqliteStore> {
    if !create && !path.exists() {
        bail!(
            "no Signal registration at {}: link this gateway first with `pane-signal link`",
            path.display()
        );
    }
    let options = SqliteConnectOptions::new()
        .filename(path)
        .create_if_missing(create)
        .foreign_keys(true)
        // What the gateway deletes (presage's copies of messages) is overwritten, not left
        // in free pages.
        .pragma("secure_delete", "on")
        // SQLCipher: the key must be the first statement; quotes doubled as SQL asks. (sqlx
        // keeps its copy of the pragma until the store closes, and frees it unwiped: beyond
        // this crate's reach.)
        .pragma("key", {
            // Reserved whole (every quote doubled at most), so it never moves and leaves no
            // copy of the passphrase behind.
            let mut quoted = String::with_capacity(passphrase.len() * 2 + 2);
            quoted.push('\'');
            for c in passphrase.chars() {
                if c == '\'' {
                    quoted.push('\'');
                }
                quoted.push(c);
            }
            quoted.push('\'');
            quoted
        })
        // sqlx logs each connection's first statement, the pragmas above with the key in
        // clear: every time at DEBUG, and at WARN (the default filter) whenever it takes
        // over a second, as SQLCipher's key derivation can. Never log statements.
        .disable_statement_logging();
    SqliteStore::open_with_options(options, OnNewIdentity::Trust)
        .await
        .with_context(|| {
            format!(
                "cannot open the Signal store {} (wrong passphrase, or not a pane-signal store?)",
                path.display()
            )
        })
}
