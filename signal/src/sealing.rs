//! The keys that seal what the gateway writes outside its encrypted store, all derived from
//! the store passphrase, and the sealed file format.
//!
//! The presage store is SQLCipher, but the journal of unacknowledged messages (`inbox/`),
//! the sent-id log and the record of contacts' identity keys are files of the gateway's own:
//! they hold the owner's messages, digests of what was sent to the owner, and ACIs. Each is
//! sealed with a key of its own, derived from the store passphrase with HKDF-SHA256 (one
//! `info` label per use), so that nothing of the owner's is on disk in clear and nothing new
//! has to be kept: whoever can open the store can read them, and nobody else.
//!
//! A sealed file is `MAGIC`, a random 24-byte nonce, then XChaCha20-Poly1305's ciphertext
//! and tag. The additional data names what the file is (say, the journal entry with
//! sequence number 7), so a sealed file cannot be passed off as another.
//!
//! The derivation is HKDF, not a password hash: the passphrase is meant to be random (the
//! sealed core generates 32 random bytes; `openssl rand -hex 32` otherwise). A guessable
//! passphrase would be as cheap to try against these files as HKDF is, cheaper than against
//! SQLCipher's own key derivation.

use chacha20poly1305::aead::{Aead, Generate, KeyInit, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use hmac::{Hmac, Mac};
use sha2::Sha256;
use zeroize::Zeroizing;

/// How a sealed file begins (and a file in clear from before sealing never does: those
/// begin with `{` or an ACI's hex digits).
pub const MAGIC: &[u8; 8] = b"PANESEAL";

/// The HKDF salt: which derivation this is.
const SALT: &[u8] = b"pane-signal state keys v1";

/// The length of a nonce.
const NONCE_BYTES: usize = 24;

/// A key that seals and opens files of one kind.
#[derive(Clone)]
pub struct SealKey(Zeroizing<[u8; 32]>);

/// A key for the sent-id log's digests (HMAC-SHA256).
#[derive(Clone)]
pub struct DigestKey(Zeroizing<[u8; 32]>);

/// Every key derived from one store passphrase.
#[derive(Clone)]
pub struct StateKeys {
    /// Seals the journal's entries.
    pub journal: SealKey,
    /// Seals the record of identity keys.
    pub identities: SealKey,
    /// Keys the sent-id log's digests.
    pub sent_ids: DigestKey,
    /// Tells whether another passphrase is this one, without keeping the passphrase.
    check: Zeroizing<[u8; 32]>,
}

impl std::fmt::Debug for SealKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SealKey(<redacted>)")
    }
}

impl std::fmt::Debug for DigestKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("DigestKey(<redacted>)")
    }
}

impl std::fmt::Debug for StateKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("StateKeys(<redacted>)")
    }
}

/// HKDF-SHA256's output for `label`, 32 bytes.
fn expand(hkdf: &hkdf::Hkdf<Sha256>, label: &str) -> Zeroizing<[u8; 32]> {
    let mut key = Zeroizing::new([0u8; 32]);
    // 32 bytes is far below HKDF-SHA256's limit (255 * 32): this cannot fail.
    if hkdf.expand(label.as_bytes(), &mut key[..]).is_err() {
        unreachable!("HKDF-SHA256 gives 32 bytes");
    }
    key
}

impl StateKeys {
    /// The keys of the store with this passphrase.
    pub fn derive(passphrase: &str) -> StateKeys {
        let hkdf = hkdf::Hkdf::<Sha256>::new(Some(SALT), passphrase.as_bytes());
        StateKeys {
            journal: SealKey(expand(&hkdf, "journal")),
            identities: SealKey(expand(&hkdf, "known-identities")),
            sent_ids: DigestKey(expand(&hkdf, "sent-ids")),
            check: expand(&hkdf, "passphrase check"),
        }
    }

    /// True when `passphrase` is the one these keys come from.
    pub fn is_from(&self, passphrase: &str) -> bool {
        StateKeys::derive(passphrase).check == self.check
    }
}

impl SealKey {
    /// Seals `plaintext` as a file named by `context` (the additional data).
    pub fn seal(&self, context: &[u8], plaintext: &[u8]) -> std::io::Result<Vec<u8>> {
        let nonce = XNonce::try_generate()
            .map_err(|e| std::io::Error::other(format!("no random nonce: {e}")))?;
        let cipher = XChaCha20Poly1305::new((&*self.0).into());
        let sealed = cipher
            .encrypt(
                &nonce,
                Payload {
                    msg: plaintext,
                    aad: context,
                },
            )
            .map_err(|_| std::io::Error::other("cannot seal"))?;
        let mut out = Vec::with_capacity(MAGIC.len() + NONCE_BYTES + sealed.len());
        out.extend_from_slice(MAGIC);
        out.extend_from_slice(&nonce);
        out.extend_from_slice(&sealed);
        Ok(out)
    }

    /// Opens a sealed file named by `context`; an error when it is not sealed, was sealed
    /// with another key or as another file, or was changed.
    pub fn open(&self, context: &[u8], file: &[u8]) -> std::io::Result<Zeroizing<Vec<u8>>> {
        let invalid = |why: &str| std::io::Error::new(std::io::ErrorKind::InvalidData, why);
        let rest = file
            .strip_prefix(MAGIC.as_slice())
            .ok_or_else(|| invalid("not a sealed file"))?;
        if rest.len() < NONCE_BYTES {
            return Err(invalid("a sealed file cut short"));
        }
        let (nonce, sealed) = rest.split_at(NONCE_BYTES);
        let nonce = XNonce::try_from(nonce).map_err(|_| invalid("a sealed file cut short"))?;
        let cipher = XChaCha20Poly1305::new((&*self.0).into());
        cipher
            .decrypt(
                &nonce,
                Payload {
                    msg: sealed,
                    aad: context,
                },
            )
            .map(Zeroizing::new)
            .map_err(|_| {
                invalid("cannot open a sealed file (another passphrase, another file, or damaged)")
            })
    }
}

/// True when `file` is sealed (as opposed to a file in clear from before sealing).
pub fn is_sealed(file: &[u8]) -> bool {
    file.starts_with(MAGIC)
}

impl DigestKey {
    /// The keyed form of a sent-id log digest (`pane_protocol::sent_log::content_digest`):
    /// HMAC-SHA256 of it, in hex. A plain SHA-256 of a reply lets whoever reads the log test
    /// guesses of what was sent to the owner; the keyed one does not.
    pub fn digest(&self, plain: &str) -> String {
        let mut mac = match <Hmac<Sha256>>::new_from_slice(&self.0[..]) {
            Ok(mac) => mac,
            // HMAC takes a key of any length.
            Err(_) => unreachable!("HMAC takes a 32-byte key"),
        };
        mac.update(plain.as_bytes());
        hex::encode(mac.finalize().into_bytes())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sealed_file_opens_only_with_its_key_and_as_itself() {
        let keys = StateKeys::derive("0123456789abcdef");
        let sealed = keys.journal.seal(b"journal/1", b"the body").unwrap();
        assert!(is_sealed(&sealed));
        assert_eq!(
            &keys.journal.open(b"journal/1", &sealed).unwrap()[..],
            b"the body"
        );
        assert!(
            keys.journal.open(b"journal/2", &sealed).is_err(),
            "as another file"
        );
        assert!(
            keys.identities.open(b"journal/1", &sealed).is_err(),
            "another use's key"
        );
        let other = StateKeys::derive("fedcba9876543210");
        assert!(
            other.journal.open(b"journal/1", &sealed).is_err(),
            "another passphrase"
        );
        let mut changed = sealed.clone();
        let last = changed.len() - 1;
        changed[last] ^= 1;
        assert!(
            keys.journal.open(b"journal/1", &changed).is_err(),
            "changed"
        );
        assert!(
            keys.journal.open(b"journal/1", b"{\"type\":1}").is_err(),
            "in clear"
        );
        assert!(
            keys.journal.open(b"journal/1", &sealed[..20]).is_err(),
            "cut short"
        );
        // A fresh nonce each time: the same text never seals to the same bytes.
        assert_ne!(
            sealed,
            keys.journal.seal(b"journal/1", b"the body").unwrap()
        );
        assert!(keys.is_from("0123456789abcdef"));
        assert!(!keys.is_from("0123456789abcdeF"));
        assert_eq!(format!("{keys:?}"), "StateKeys(<redacted>)");
        let digest = keys.sent_ids.digest(&"ab".repeat(32));
        assert_eq!(digest.len(), 64);
        assert_ne!(digest, other.sent_ids.digest(&"ab".repeat(32)));
    }
}
