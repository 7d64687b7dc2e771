//! Sealing at rest (issue #23; the format is in `docs/sealing.md`, the threat model in
//! `docs/security-model.md`).
//!
//! One random data key per installation seals every record of the store
//! ([`crate::store::sealer`]) and, through the [`vault`], every credential. The key is kept on
//! disk only wrapped by keys derived from the owner's passphrases ([`keyfile`]); in memory
//! only while the agent is unsealed; and across a crash-restart in the kernel keyring
//! ([`keyring`]). This module holds the key hierarchy; the daemon's sealed and unsealed
//! states are in `cli::run`.

pub mod keyfile;
pub mod keyring;
pub mod passphrase;
pub mod vault;

pub use keyfile::{Cost, KeyFile, WrapperKind, SEAL_FILE};

use crate::store::StoreError;

/// Why sealing or unsealing failed.
#[derive(Debug, thiserror::Error)]
pub enum SealError {
    /// The passphrase opens none of the key file's wrappers.
    #[error("wrong passphrase: nothing was unsealed")]
    WrongPassphrase,
    /// A passphrase the owner typed is too weak to protect the store.
    #[error("passphrase too weak: {0}")]
    WeakPassphrase(String),
    /// The key file is missing, unreadable or not of this format.
    #[error("key file: {0}")]
    KeyFile(String),
    /// The data key does not open this store (the key file belongs to another store).
    #[error("the key does not open this store: {0}")]
    WrongStore(String),
    /// A file could not be read or written.
    #[error("{0}")]
    Io(String),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A vault was asked of a store in clear.
    #[error("the store is not sealed")]
    NotSealed,
}

/// True when `data_dir` holds a sealed installation (its key file).
pub fn is_sealed_installation(data_dir: &std::path::Path) -> bool {
    data_dir.join(SEAL_FILE).exists()
}
