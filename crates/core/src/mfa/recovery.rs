//! Recovery codes: the way back in when the authenticator is lost.
//!
//! Ten codes per set, each 24 Crockford base32 characters (120 bits from the
//! OS CSPRNG, above the 112 bits asked of them), shown once in groups of four
//! and stored only as a SHA-256, salted with the subject. 120 bits make a
//! search of the code space hopeless without any key (as for API tokens), so
//! a fast unkeyed hash is the right tool rather than Argon2id; and because no
//! server key is involved, the codes survive any rotation of
//! `TESSERA_ENC_KEY` (they live for years, unlike invite codes).

use sha2::{Digest, Sha256};

use crate::token_format::to_hex;

/// Characters per code (5 bits each).
pub const CODE_CHARS: usize = 24;
/// Codes per set.
pub const SET_SIZE: usize = 10;

/// One fresh code, e.g. `7K2M-QH9D-X4TV-A8RE-3NPW-G6ZC`.
pub fn generate_code() -> String {
    crate::crockford::generate(CODE_CHARS)
}

/// A full set.
pub fn generate_set() -> Vec<String> {
    (0..SET_SIZE).map(|_| generate_code()).collect()
}

/// The canonical form that is hashed: upper case, separators dropped,
/// look-alikes mapped (O→0, I/L→1). `None` if it cannot be a code.
pub fn normalize(input: &str) -> Option<String> {
    crate::crockford::normalize(input, CODE_CHARS)
}

/// The stored form of a canonical code for `subject` (hex SHA-256). The
/// subject is part of the input, so equal hashes never link two subjects.
pub fn hash(subject: &str, canonical: &str) -> String {
    to_hex(&Sha256::digest(
        format!("tessera-recovery-code\n{subject}\n{canonical}").as_bytes(),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_grouped_unique_and_normalise() {
        let set = generate_set();
        assert_eq!(set.len(), 10);
        let unique: std::collections::BTreeSet<_> = set.iter().collect();
        assert_eq!(unique.len(), 10);
        for c in &set {
            assert_eq!(c.len(), 29);
            let n = normalize(c).unwrap();
            assert_eq!(normalize(&c.to_lowercase()).unwrap(), n);
            assert_eq!(normalize(&n).unwrap(), n);
        }
        assert!(normalize("ABCD").is_none());
        let n = normalize(&set[0]).unwrap();
        assert_eq!(hash("u1", &n), hash("u1", &n));
        assert_ne!(hash("u1", &n), hash("u2", &n));
        assert_eq!(hash("u1", &n).len(), 64);
        assert!(normalize("!!!!-QH9D-X4TV-A8RE-3NPW-G6ZC").is_none());
        assert_eq!(
            normalize("oooo-iiii-llll-0000-1111-2222").unwrap(),
            "000011111111000011112222"
        );
    }
}
