//! `<data-dir>/seal.json`: the installation's data key, stored only wrapped. Each wrapper is
//! the data key sealed with XChaCha20-Poly1305 under a key derived from a passphrase with
//! Argon2id; the KDF's parameters and salt are recorded beside it, so a later machine (or a
//! later version with other defaults) derives the same key. The owner's unseal passphrase
//! is one wrapper; a recovery passphrase, printed once, is another. The format is versioned
//! and described in `docs/sealing.md`.

use super::SealError;
use crate::store::DataKey;
use base64::Engine;
use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use serde::{Deserialize, Serialize};
use std::path::Path;
use std::time::{Duration, Instant};
use zeroize::Zeroizing;

/// The key file's name in the data dir.
pub const SEAL_FILE: &str = "seal.json";
/// A file beside the store's own, written when a store is sealed: a sealed store whose key
/// file went missing is then refused instead of being written to in clear.
pub const SEALED_MARKER: &str = "store/SEALED";
/// The format written and read.
pub const FORMAT: &str = "pane-agent/seal";
/// Its version.
pub const VERSION: u32 = 1;
/// The least memory the KDF is allowed, in KiB (64 MiB).
pub const MIN_MEMORY_KIB: u32 = 64 * 1024;
const SALT_BYTES: usize = 16;
const NONCE_BYTES: usize = 24;

const B64: base64::engine::GeneralPurpose = base64::engine::general_purpose::STANDARD;

/// Which secret a wrapper opens with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum WrapperKind {
    /// The owner's unseal passphrase.
    Passphrase,
    /// The recovery passphrase printed once at set-up.
    Recovery,
}

/// Argon2id's parameters, as recorded with a wrapper.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Kdf {
    /// Always `argon2id` (version 0x13).
    pub alg: String,
    /// Memory, KiB.
    pub m_kib: u32,
    /// Passes.
    pub t: u32,
    /// Lanes.
    pub p: u32,
    /// The salt, base64.
    pub salt: String,
}

/// The data key sealed under one passphrase.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Wrapper {
    /// Which passphrase opens it.
    pub kind: WrapperKind,
    /// How the wrapping key is derived from it.
    pub kdf: Kdf,
    /// The AEAD nonce, base64.
    pub nonce: String,
    /// The sealed data key (ciphertext and tag), base64.
    pub wrapped: String,
}

/// The whole key file.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KeyFile {
    /// [`FORMAT`].
    pub format: String,
    /// [`VERSION`].
    pub version: u32,
    /// A random id of this installation (hex): names its kernel keyring entry and binds
    /// each wrapper to this file.
    pub installation: String,
    /// The wrappers, the owner's passphrase first.
    pub wrappers: Vec<Wrapper>,
}

/// The KDF's cost: Argon2id with `m_kib` KiB, `t` passes, one lane.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cost {
    /// Memory, KiB (at least [`MIN_MEMORY_KIB`]).
    pub m_kib: u32,
    /// Passes.
    pub t: u32,
}

impl Cost {
    /// The passes that make one derivation take about `target` on this machine, with 64 MiB
    /// (measured here: after a first derivation that only warms the memory up, two and six
    /// passes are timed, and the cost of a pass is taken from their difference, which leaves
    /// out what every derivation pays once; at least 2 passes, at most 64).
    pub fn calibrate(target: Duration) -> Result<Cost, SealError> {
        let time = |t: u32| -> Result<Duration, SealError> {
            let started = Instant::now();
            derive(
                b"calibration",
                &[0u8; SALT_BYTES],
                Cost {
                    m_kib: MIN_MEMORY_KIB,
                    t,
                },
            )?;
            Ok(started.elapsed())
        };
        time(1)?;
        let two = time(2)?;
        let six = time(6)?;
        let per_pass = (six.saturating_sub(two) / 4).max(Duration::from_millis(1));
        let fixed = two.saturating_sub(per_pass * 2);
        let t = (target.saturating_sub(fixed).as_secs_f64() / per_pass.as_secs_f64())
            .round()
            .clamp(2.0, 64.0) as u32;
        Ok(Cost {
            m_kib: MIN_MEMORY_KIB,
            t,
        })
    }
}

fn derive(passphrase: &[u8], salt: &[u8], cost: Cost) -> Result<Zeroizing<[u8; 32]>, SealError> {
    let params = argon2::Params::new(cost.m_kib, cost.t, 1, Some(32))
        .map_err(|e| SealError::KeyFile(format!("bad KDF parameters: {e}")))?;
    let argon = argon2::Argon2::new(argon2::Algorithm::Argon2id, argon2::Version::V0x13, params);
    let mut out = Zeroizing::new([0u8; 32]);
    argon
        .hash_password_into(passphrase, salt, &mut out[..])
        .map_err(|e| SealError::KeyFile(format!("the KDF failed: {e}")))?;
    Ok(out)
}

fn aad(installation: &str, kind: WrapperKind) -> Vec<u8> {
    let kind = match kind {
        WrapperKind::Passphrase => "passphrase",
        WrapperKind::Recovery => "recovery",
    };
    format!("{FORMAT}/{VERSION}\0{installation}\0{kind}").into_bytes()
}

fn random<const N: usize>() -> Result<[u8; N], SealError> {
    let mut b = [0u8; N];
    getrandom::fill(&mut b).map_err(|e| SealError::KeyFile(format!("no randomness: {e}")))?;
    Ok(b)
}

impl KeyFile {
    /// A new key file for `key`, openable with `passphrase` (and `recovery`, when given).
    pub fn create(
        key: &DataKey,
        passphrase: &str,
        recovery: Option<&str>,
        cost: Cost,
    ) -> Result<KeyFile, SealError> {
        let mut file = KeyFile {
            format: FORMAT.to_string(),
            version: VERSION,
            installation: hex::encode(random::<12>()?),
            wrappers: Vec::new(),
        };
        file.add_wrapper(key, WrapperKind::Passphrase, passphrase, cost)?;
        if let Some(r) = recovery {
            file.add_wrapper(key, WrapperKind::Recovery, r, cost)?;
        }
        Ok(file)
    }

    /// Adds (or replaces) the wrapper of `kind`.
    pub fn add_wrapper(
        &mut self,
        key: &DataKey,
        kind: WrapperKind,
        passphrase: &str,
        cost: Cost,
    ) -> Result<(), SealError> {
        let salt = random::<SALT_BYTES>()?;
        let nonce = random::<NONCE_BYTES>()?;
        let kek = derive(passphrase.as_bytes(), &salt, cost)?;
        let wrapped = XChaCha20Poly1305::new((&*kek).into())
            .encrypt(
                &XNonce::from(nonce),
                Payload {
                    msg: key.expose(),
                    aad: &aad(&self.installation, kind),
                },
            )
            .map_err(|_| SealError::KeyFile("wrapping the key failed".into()))?;
        self.wrappers.retain(|w| w.kind != kind);
        self.wrappers.push(Wrapper {
            kind,
            kdf: Kdf {
                alg: "argon2id".into(),
                m_kib: cost.m_kib,
                t: cost.t,
                p: 1,
                salt: B64.encode(salt),
            },
            nonce: B64.encode(nonce),
            wrapped: B64.encode(wrapped),
        });
        self.wrappers
            .sort_by_key(|w| w.kind == WrapperKind::Recovery);
        Ok(())
    }

    /// The data key, if `passphrase` opens one of the wrappers (each is tried: the owner's
    /// passphrase first, then the recovery one). [`SealError::WrongPassphrase`] when none.
    pub fn unwrap_key(&self, passphrase: &str) -> Result<(DataKey, WrapperKind), SealError> {
        for w in &self.wrappers {
            if let Some(key) = self.open_wrapper(w, passphrase)? {
                return Ok((key, w.kind));
            }
        }
        Err(SealError::WrongPassphrase)
    }

    fn open_wrapper(&self, w: &Wrapper, passphrase: &str) -> Result<Option<DataKey>, SealError> {
        let bad = |what: &str| SealError::KeyFile(format!("{SEAL_FILE}: {what}"));
        if w.kdf.alg != "argon2id" || w.kdf.p != 1 {
            return Err(bad("unknown KDF"));
        }
        if w.kdf.m_kib < MIN_MEMORY_KIB || w.kdf.t == 0 || w.kdf.t > 64 {
            return Err(bad("KDF parameters out of range"));
        }
        let salt = B64.decode(&w.kdf.salt).map_err(|_| bad("bad salt"))?;
        let nonce: [u8; NONCE_BYTES] = B64
            .decode(&w.nonce)
            .ok()
            .and_then(|n| n.try_into().ok())
            .ok_or_else(|| bad("bad nonce"))?;
        let wrapped = B64.decode(&w.wrapped).map_err(|_| bad("bad wrapped key"))?;
        let kek = derive(
            passphrase.as_bytes(),
            &salt,
            Cost {
                m_kib: w.kdf.m_kib,
                t: w.kdf.t,
            },
        )?;
        let opened = XChaCha20Poly1305::new((&*kek).into()).decrypt(
            &XNonce::from(nonce),
            Payload {
                msg: &wrapped,
                aad: &aad(&self.installation, w.kind),
            },
        );
        match opened {
            Ok(bytes) => {
                let bytes = Zeroizing::new(bytes);
                Ok(Some(
                    DataKey::from_bytes(&bytes)
                        .ok_or_else(|| bad("the wrapped key is not 32 bytes"))?,
                ))
            }
            Err(_) => Ok(None),
        }
    }

    /// Reads the key file of `data_dir`; None when the installation is not sealed.
    pub fn load(data_dir: &Path) -> Result<Option<KeyFile>, SealError> {
        let path = data_dir.join(SEAL_FILE);
        let text = match std::fs::read_to_string(&path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => {
                return Err(SealError::Io(format!(
                    "cannot read {}: {e}",
                    path.display()
                )))
            }
        };
        let file: KeyFile = serde_json::from_str(&text).map_err(|e| {
            SealError::KeyFile(format!("{} is not a key file: {e}", path.display()))
        })?;
        if file.format != FORMAT || file.version != VERSION {
            return Err(SealError::KeyFile(format!(
                "{} is format {} version {}; this agent reads {FORMAT} version {VERSION}",
                path.display(),
                file.format,
                file.version
            )));
        }
        if file.wrappers.is_empty() || file.installation.len() != 24 {
            return Err(SealError::KeyFile(format!(
                "{} has no usable wrapper",
                path.display()
            )));
        }
        Ok(Some(file))
    }

    /// Writes it to `data_dir` atomically (a temporary file, synced, renamed over, the
    /// directory synced), mode 0600.
    pub fn save(&self, data_dir: &Path) -> Result<(), SealError> {
        let text = serde_json::to_string_pretty(self)
            .map_err(|e| SealError::KeyFile(format!("cannot encode the key file: {e}")))?;
        crate::unix::write_private_atomically(&data_dir.join(SEAL_FILE), text.as_bytes())
            .map_err(|e| SealError::Io(format!("cannot write {SEAL_FILE}: {e}")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const CHEAP: Cost = Cost {
        m_kib: MIN_MEMORY_KIB,
        t: 1,
    };

    #[test]
    fn each_passphrase_opens_the_same_key_and_nothing_else_does() {
        let dir = tempfile::tempdir().unwrap();
        let key = DataKey::generate().unwrap();
        let file = KeyFile::create(
            &key,
            "correct horse battery",
            Some("recovery words here"),
            CHEAP,
        )
        .unwrap();
        file.save(dir.path()).unwrap();
        let text = std::fs::read_to_string(dir.path().join(SEAL_FILE)).unwrap();
        assert!(!text.contains(&hex::encode(key.expose())));
        let file = KeyFile::load(dir.path()).unwrap().unwrap();
        let (a, kind) = file.unwrap_key("correct horse battery").unwrap();
        assert_eq!((a.expose(), kind), (key.expose(), WrapperKind::Passphrase));
        let (b, kind) = file.unwrap_key("recovery words here").unwrap();
        assert_eq!((b.expose(), kind), (key.expose(), WrapperKind::Recovery));
        assert!(matches!(
            file.unwrap_key("wrong"),
            Err(SealError::WrongPassphrase)
        ));
        // A wrapper moved to another installation does not open there.
        let mut moved = file.clone();
        moved.installation = hex::encode([9u8; 12]);
        assert!(matches!(
            moved.unwrap_key("correct horse battery"),
            Err(SealError::WrongPassphrase)
        ));
        // Weakened parameters are refused, not used.
        let mut weak = file.clone();
        weak.wrappers[0].kdf.m_kib = 1024;
        assert!(matches!(
            weak.unwrap_key("correct horse battery"),
            Err(SealError::KeyFile(_))
        ));
        assert!(KeyFile::load(&dir.path().join("none")).unwrap().is_none());
    }
}
