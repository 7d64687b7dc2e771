//! Records sealed at rest (issue #23, `docs/sealing.md`): what [`super::Table`] does to every
//! key and value on a sealed store.
//!
//! - A value is sealed with XChaCha20-Poly1305 under a key derived from the installation's
//!   data key, with a fresh random 24-byte nonce each write. What is sealed is the record's
//!   own key and its value together, so a tree whose keys are hashed (below) still gives
//!   back the real keys when iterated. The associated data binds the record to its tree and
//!   its key on disk: a sealed value moved to another key or tree does not open.
//! - A key that names something of the owner's (a context is named after a site) is stored
//!   as a keyed hash (HMAC-SHA256 under a second derived key, 16 bytes), so the tree is
//!   still a map (one record per name, found by name) while the names stay unreadable.
//!
//! The subkeys are derived with HKDF-SHA256; nothing here is hand-made crypto. The keys live
//! in one heap block that is locked in memory where the platform allows (`mlock`) and
//! zeroed when the sealer is dropped.

use super::StoreError;
use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use hmac::{Hmac, Mac};
use sha2::Sha256;
use zeroize::Zeroize;

/// The length of a data key, in bytes.
pub const DATA_KEY_BYTES: usize = 32;
/// The first byte of every sealed value: the record format's version.
pub const RECORD_VERSION: u8 = 1;
/// The length of a hashed key on disk.
pub const HASHED_KEY_BYTES: usize = 16;
const NONCE_BYTES: usize = 24;
const TAG_BYTES: usize = 16;
const AAD_PREFIX: &[u8] = b"pane-agent/record/1\0";

/// The installation's data key: 32 random bytes, made once by `init` (or `seal-init`),
/// stored only wrapped (`seal::keyfile`), and in memory only while the agent is unsealed,
/// locked out of swap where the platform allows. Zeroed when dropped; its `Debug` prints
/// nothing of it.
pub struct DataKey(Box<[u8; DATA_KEY_BYTES]>);

impl DataKey {
    fn boxed() -> DataKey {
        let key = Box::new([0u8; DATA_KEY_BYTES]);
        crate::unix::lock_memory(key.as_ptr(), DATA_KEY_BYTES);
        DataKey(key)
    }

    /// A new random key.
    pub fn generate() -> Result<DataKey, StoreError> {
        let mut key = DataKey::boxed();
        getrandom::fill(&mut key.0[..])
            .map_err(|e| StoreError::Corrupt(format!("no randomness for a key: {e}")))?;
        Ok(key)
    }

    /// The key in `bytes` (32 of them), else None.
    pub fn from_bytes(bytes: &[u8]) -> Option<DataKey> {
        if bytes.len() != DATA_KEY_BYTES {
            return None;
        }
        let mut key = DataKey::boxed();
        key.0.copy_from_slice(bytes);
        Some(key)
    }

    /// The raw bytes, to wrap them or hand them to the kernel keyring.
    pub fn expose(&self) -> &[u8; DATA_KEY_BYTES] {
        &self.0
    }
}

impl Clone for DataKey {
    fn clone(&self) -> Self {
        let mut key = DataKey::boxed();
        key.0.copy_from_slice(&self.0[..]);
        key
    }
}

impl Drop for DataKey {
    fn drop(&mut self) {
        self.0.zeroize();
        crate::unix::unlock_memory(self.0.as_ptr(), DATA_KEY_BYTES);
    }
}

impl std::fmt::Debug for DataKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("DataKey(<sealed>)")
    }
}

/// The two subkeys, in one block that is locked in memory and zeroed on drop.
struct Subkeys {
    values: [u8; 32],
    names: [u8; 32],
}

/// Seals and opens the records of a sealed store, and hashes their keys. Built from the data
/// key when the owner unseals; dropped (and zeroed) when the agent seals again.
pub struct Sealer {
    keys: Box<Subkeys>,
}

impl Sealer {
    /// The sealer of the store whose data key is `key`.
    pub fn new(key: &DataKey) -> Result<Sealer, StoreError> {
        let hk = hkdf::Hkdf::<Sha256>::new(Some(b"pane-agent/store"), key.expose());
        let mut keys = Box::new(Subkeys {
            values: [0; 32],
            names: [0; 32],
        });
        hk.expand(b"record values v1", &mut keys.values)
            .and_then(|_| hk.expand(b"record names v1", &mut keys.names))
            .map_err(|_| StoreError::Corrupt("key derivation failed".into()))?;
        crate::unix::lock_memory(&*keys as *const Subkeys as *const u8, size_of::<Subkeys>());
        Ok(Sealer { keys })
    }

    /// The key on disk of `key` in `table`: a keyed hash.
    pub fn hash_key(&self, table: &str, key: &[u8]) -> [u8; HASHED_KEY_BYTES] {
        let mut mac = <Hmac<Sha256> as hmac::KeyInit>::new_from_slice(&self.keys.names)
            .unwrap_or_else(|_| unreachable!("HMAC takes a key of any length"));
        mac.update(table.as_bytes());
        mac.update(&[0]);
        mac.update(key);
        let full = mac.finalize().into_bytes();
        let mut out = [0u8; HASHED_KEY_BYTES];
        out.copy_from_slice(&full[..HASHED_KEY_BYTES]);
        out
    }

    fn cipher(&self) -> XChaCha20Poly1305 {
        XChaCha20Poly1305::new((&self.keys.values).into())
    }

    /// The sealed value stored at `disk_key` in `table` for the record `key` = `value`.
    pub fn seal(
        &self,
        table: &str,
        disk_key: &[u8],
        key: &[u8],
        value: &[u8],
    ) -> Result<Vec<u8>, StoreError> {
        let key_len = u32::try_from(key.len())
            .map_err(|_| StoreError::Corrupt("a record key over 4 GiB".into()))?;
        let mut plain = Vec::with_capacity(4 + key.len() + value.len());
        plain.extend_from_slice(&key_len.to_be_bytes());
        plain.extend_from_slice(key);
        plain.extend_from_slice(value);
        let mut nonce = [0u8; NONCE_BYTES];
        getrandom::fill(&mut nonce)
            .map_err(|e| StoreError::Corrupt(format!("no randomness for a nonce: {e}")))?;
        let aad = aad(table, disk_key);
        let sealed = self.cipher().encrypt(
            &XNonce::from(nonce),
            Payload {
                msg: &plain,
                aad: &aad,
            },
        );
        plain.zeroize();
        let sealed = sealed.map_err(|_| StoreError::Corrupt("sealing a record failed".into()))?;
        let mut out = Vec::with_capacity(1 + NONCE_BYTES + sealed.len());
        out.push(RECORD_VERSION);
        out.extend_from_slice(&nonce);
        out.extend_from_slice(&sealed);
        Ok(out)
    }

    /// Opens what [`Sealer::seal`] made: the record's key and value. An error when the bytes
    /// are not a sealed record of this tree and key on disk, or were sealed under another
    /// data key.
    pub fn open(
        &self,
        table: &str,
        disk_key: &[u8],
        sealed: &[u8],
    ) -> Result<(Vec<u8>, Vec<u8>), StoreError> {
        let corrupt = || StoreError::Corrupt(format!("a sealed record of {table} does not open"));
        let (version, rest) = sealed.split_first().ok_or_else(corrupt)?;
        if *version != RECORD_VERSION || rest.len() < NONCE_BYTES + TAG_BYTES {
            return Err(corrupt());
        }
        let (nonce, body) = rest.split_at(NONCE_BYTES);
        let nonce: [u8; NONCE_BYTES] = nonce.try_into().map_err(|_| corrupt())?;
        let aad = aad(table, disk_key);
        let mut plain = self
            .cipher()
            .decrypt(
                &XNonce::from(nonce),
                Payload {
                    msg: body,
                    aad: &aad,
                },
            )
            .map_err(|_| corrupt())?;
        let parsed = split_record(&plain).ok_or_else(corrupt);
        plain.zeroize();
        parsed
    }
}

impl Drop for Sealer {
    fn drop(&mut self) {
        self.keys.values.zeroize();
        self.keys.names.zeroize();
        crate::unix::unlock_memory(
            &*self.keys as *const Subkeys as *const u8,
            size_of::<Subkeys>(),
        );
    }
}

impl std::fmt::Debug for Sealer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Sealer(<keys>)")
    }
}

fn aad(table: &str, disk_key: &[u8]) -> Vec<u8> {
    let mut aad = Vec::with_capacity(AAD_PREFIX.len() + table.len() + 1 + disk_key.len());
    aad.extend_from_slice(AAD_PREFIX);
    aad.extend_from_slice(table.as_bytes());
    aad.push(0);
    aad.extend_from_slice(disk_key);
    aad
}

/// `u32 key length ‖ key ‖ value` into its key and value.
fn split_record(plain: &[u8]) -> Option<(Vec<u8>, Vec<u8>)> {
    let len: [u8; 4] = plain.get(..4)?.try_into().ok()?;
    let len = u32::from_be_bytes(len) as usize;
    let key = plain.get(4..4usize.checked_add(len)?)?;
    let value = plain.get(4 + len..)?;
    Some((key.to_vec(), value.to_vec()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_record_opens_only_where_it_was_sealed() {
        let key = DataKey::generate().unwrap();
        let s = Sealer::new(&key).unwrap();
        let dk = s.hash_key("contexts", b"notion");
        assert_eq!(dk, s.hash_key("contexts", b"notion"));
        assert_ne!(dk, s.hash_key("intents", b"notion"));
        let sealed = s
            .seal("contexts", &dk, b"notion", b"{\"alias\":1}")
            .unwrap();
        assert!(!sealed.windows(6).any(|w| w == b"notion"));
        let (k, v) = s.open("contexts", &dk, &sealed).unwrap();
        assert_eq!(
            (k.as_slice(), v.as_slice()),
            (&b"notion"[..], &b"{\"alias\":1}"[..])
        );
        // Another tree, another key on disk, another data key, a flipped bit: none opens.
        assert!(s.open("intents", &dk, &sealed).is_err());
        assert!(s.open("contexts", b"other", &sealed).is_err());
        let other = Sealer::new(&DataKey::generate().unwrap()).unwrap();
        assert!(other.open("contexts", &dk, &sealed).is_err());
        let mut flipped = sealed.clone();
        let last = flipped.len() - 1;
        flipped[last] ^= 1;
        assert!(s.open("contexts", &dk, &flipped).is_err());
        assert!(s.open("contexts", &dk, &[]).is_err());
        assert!(s.open("contexts", &dk, &[RECORD_VERSION; 30]).is_err());
        // Two seals of the same record differ (a fresh nonce each).
        assert_ne!(
            sealed,
            s.seal("contexts", &dk, b"notion", b"{\"alias\":1}")
                .unwrap()
        );
    }

    #[test]
    fn the_key_prints_nothing() {
        let key = DataKey::from_bytes(&[7u8; 32]).unwrap();
        assert_eq!(format!("{key:?}"), "DataKey(<sealed>)");
        assert!(DataKey::from_bytes(&[1u8; 31]).is_none());
    }
}
