//! Encryption at rest for values that must be read back (IP addresses, user
//! agents, TOTP secrets, cached upstream tokens), and keyed hashing.
//!
//! Ciphertexts are XChaCha20-Poly1305 (192-bit random nonces, so no nonce
//! bookkeeping) and are stored as `<key id>:<base64url(nonce ‖ ciphertext)>`.
//! The key id lets a [`Keyring`] keep older keys readable while it encrypts
//! with the newest one, which is what makes key rotation possible.

use base64::{engine::general_purpose::URL_SAFE_NO_PAD, Engine};
use chacha20poly1305::{
    aead::{Aead, KeyInit, Payload},
    XChaCha20Poly1305, XNonce,
};
use hkdf::Hkdf;
use hmac::{Hmac, Mac};
use rand::{rngs::OsRng, RngCore};
use sha2::{Digest, Sha256};

use crate::token_format::to_hex;

/// The shortest key material we accept, in characters.
pub const MIN_KEY_LEN: usize = 32;

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum CryptoError {
    #[error("the key must be at least {MIN_KEY_LEN} characters")]
    KeyTooShort,
    #[error("the ciphertext is not in the expected format")]
    Malformed,
    #[error("no key with this key id is configured")]
    UnknownKey,
    #[error("the ciphertext failed authentication")]
    Tampered,
}

/// One derived 256-bit key and its public id.
#[derive(Clone)]
struct Key {
    id: String,
    cipher: XChaCha20Poly1305,
}

impl Key {
    fn derive(material: &str, purpose: &str) -> Result<Self, CryptoError> {
        if material.chars().count() < MIN_KEY_LEN {
            return Err(CryptoError::KeyTooShort);
        }
        let bytes = derive_bytes(material, purpose);
        // The id is a hash of the derived key: stable, public, and different per purpose.
        let id = to_hex(&Sha256::digest([b"tessera-key-id:".as_slice(), &bytes].concat())[..4]);
        Ok(Self {
            id,
            cipher: XChaCha20Poly1305::new((&bytes).into()),
        })
    }
}

fn derive_bytes(material: &str, purpose: &str) -> [u8; 32] {
    let hk = Hkdf::<Sha256>::new(Some(b"tessera"), material.as_bytes());
    let mut out = [0u8; 32];
    hk.expand(purpose.as_bytes(), &mut out)
        .expect("32 bytes is a valid HKDF-SHA256 output length");
    out
}

/// Equality of two digests (or codes) in time that does not depend on where
/// they differ.
pub fn constant_time_eq(a: &str, b: &str) -> bool {
    use subtle::ConstantTimeEq;
    bool::from(a.as_bytes().ct_eq(b.as_bytes()))
}

/// The current key plus older keys that can still decrypt.
#[derive(Clone)]
pub struct Keyring {
    current: Key,
    previous: Vec<Key>,
}

impl std::fmt::Debug for Keyring {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Keyring")
            .field("current", &self.current.id)
            .field(
                "previous",
                &self.previous.iter().map(|k| &k.id).collect::<Vec<_>>(),
            )
            .finish()
    }
}

impl Keyring {
    /// Derives the keyring for one `purpose` (e.g. `"audit"`) so that keys for
    /// different data never coincide even when operators reuse one secret.
    pub fn new(current: &str, previous: &[String], purpose: &str) -> Result<Self, CryptoError> {
        Ok(Self {
            current: Key::derive(current, purpose)?,
            previous: previous
                .iter()
                .map(|p| Key::derive(p, purpose))
                .collect::<Result<_, _>>()?,
        })
    }

    pub fn current_key_id(&self) -> &str {
        &self.current.id
    }

    /// Whether ciphertexts under key `id` can be opened (current or previous).
    pub fn has_key(&self, id: &str) -> bool {
        self.current.id == id || self.previous.iter().any(|k| k.id == id)
    }

    /// Encrypts `plaintext`, binding it to `context` (e.g. the column name) so a
    /// ciphertext copied into another column fails to decrypt.
    pub fn seal(&self, plaintext: &[u8], context: &str) -> String {
        let mut nonce = [0u8; 24];
        OsRng.fill_bytes(&mut nonce);
        let ct = self
            .current
            .cipher
            .encrypt(
                XNonce::from_slice(&nonce),
                Payload {
                    msg: plaintext,
                    aad: context.as_bytes(),
                },
            )
            .expect("XChaCha20-Poly1305 encryption cannot fail for in-memory buffers");
        let mut blob = nonce.to_vec();
        blob.extend_from_slice(&ct);
        format!("{}:{}", self.current.id, URL_SAFE_NO_PAD.encode(blob))
    }

    pub fn open(&self, sealed: &str, context: &str) -> Result<Vec<u8>, CryptoError> {
        let (kid, body) = sealed.split_once(':').ok_or(CryptoError::Malformed)?;
        let key = std::iter::once(&self.current)
            .chain(&self.previous)
            .find(|k| k.id == kid)
            .ok_or(CryptoError::UnknownKey)?;
        let blob = URL_SAFE_NO_PAD
            .decode(body)
            .map_err(|_| CryptoError::Malformed)?;
        if blob.len() < 24 + 16 {
            return Err(CryptoError::Malformed);
        }
        let (nonce, ct) = blob.split_at(24);
        key.cipher
            .decrypt(
                XNonce::from_slice(nonce),
                Payload {
                    msg: ct,
                    aad: context.as_bytes(),
                },
            )
            .map_err(|_| CryptoError::Tampered)
    }

    /// Whether `sealed` was written under an older key (and so wants re-encryption).
    pub fn is_stale(&self, sealed: &str) -> bool {
        sealed
            .split_once(':')
            .is_some_and(|(kid, _)| kid != self.current.id)
    }
}

/// HMAC-SHA-256 with a server-side key: for low-entropy codes (invites, one-time
/// codes) where a database dump alone must not allow an offline brute force.
#[derive(Clone)]
pub struct KeyedHasher {
    key: [u8; 32],
}

impl std::fmt::Debug for KeyedHasher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("KeyedHasher([redacted])")
    }
}

impl KeyedHasher {
    pub fn new(material: &str, purpose: &str) -> Result<Self, CryptoError> {
        if material.chars().count() < MIN_KEY_LEN {
            return Err(CryptoError::KeyTooShort);
        }
        Ok(Self {
            key: derive_bytes(material, purpose),
        })
    }

    pub fn hash_hex(&self, data: &[u8]) -> String {
        let mut mac =
            <Hmac<Sha256> as Mac>::new_from_slice(&self.key).expect("HMAC takes any key length");
        mac.update(data);
        to_hex(&mac.finalize().into_bytes())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const K1: &str = "0123456789abcdef0123456789abcdef";
    const K2: &str = "fedcba9876543210fedcba9876543210";

    #[test]
    fn round_trip_and_context_binding() {
        let ring = Keyring::new(K1, &[], "audit").unwrap();
        let sealed = ring.seal(b"203.0.113.9", "ip");
        assert!(sealed.starts_with(ring.current_key_id()));
        assert!(!sealed.contains("203.0.113.9"));
        assert_eq!(ring.open(&sealed, "ip").unwrap(), b"203.0.113.9");
        assert_eq!(ring.open(&sealed, "user_agent"), Err(CryptoError::Tampered));
    }

    #[test]
    fn rotation_keeps_old_ciphertexts_readable() {
        let old = Keyring::new(K1, &[], "audit").unwrap();
        let sealed = old.seal(b"x", "ip");
        let rotated = Keyring::new(K2, &[K1.to_string()], "audit").unwrap();
        assert!(rotated.is_stale(&sealed));
        assert_eq!(rotated.open(&sealed, "ip").unwrap(), b"x");
        let only_new = Keyring::new(K2, &[], "audit").unwrap();
        assert_eq!(only_new.open(&sealed, "ip"), Err(CryptoError::UnknownKey));
    }

    #[test]
    fn purposes_get_different_keys() {
        let a = Keyring::new(K1, &[], "audit").unwrap();
        let b = Keyring::new(K1, &[], "totp").unwrap();
        assert_ne!(a.current_key_id(), b.current_key_id());
    }

    #[test]
    fn short_keys_and_garbage_are_rejected() {
        assert_eq!(
            Keyring::new("short", &[], "audit").unwrap_err(),
            CryptoError::KeyTooShort
        );
        let ring = Keyring::new(K1, &[], "audit").unwrap();
        assert_eq!(ring.open("nokid", "ip"), Err(CryptoError::Malformed));
        let kid = ring.current_key_id().to_string();
        assert_eq!(
            ring.open(&format!("{kid}:!!"), "ip"),
            Err(CryptoError::Malformed)
        );
    }

    #[test]
    fn keyed_hash_depends_on_key() {
        let a = KeyedHasher::new(K1, "invite").unwrap();
        let b = KeyedHasher::new(K2, "invite").unwrap();
        assert_eq!(a.hash_hex(b"code"), a.hash_hex(b"code"));
        assert_ne!(a.hash_hex(b"code"), b.hash_hex(b"code"));
    }
}
