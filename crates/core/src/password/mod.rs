//! Passwords for user accounts: how one is prepared, judged and stored, with no I/O.
//!
//! The login feature (and `tessera user import`) need three things that must
//! agree everywhere, so they live here once:
//! - [`normalise`]: the same password typed on two keyboards is one password
//!   (RFC 8265 OpaqueString preparation);
//! - [`PasswordPolicy::check`]: what a new password must be (OWASP ASVS 5.0
//!   §6.2: a length range, no common or breached password, nothing built from
//!   the account's own words, and no composition rules);
//! - [`hash_password`] / [`verify_password`]: Argon2id PHC strings, plus
//!   verification of hashes imported from other systems (Argon2i/d, bcrypt,
//!   scrypt) with a flag saying when to re-hash on the next successful login.
//!
//! Hashing is deliberately slow (tens of milliseconds): callers in async code
//! run it on the server's bounded hashing pool, never on a runtime thread.

mod hash;
mod policy;

pub use hash::{
    classify_hash, dummy_hash, hash_password, verify_password, HashError, HashKind, HashParams,
    HashParamsError, Verified,
};
pub use policy::{PasswordPolicy, PolicyContext, PolicyError, WeakPassword};

use unicode_normalization::UnicodeNormalization;

/// The RFC 8265 OpaqueString preparation of `password`, the form that is
/// checked, hashed and verified.
///
/// Non-ASCII spaces (Unicode category Zs) become U+0020 and the result is in
/// NFC, so "é" typed as e + combining acute equals the precomposed "é" and a
/// pasted no-break space equals a typed space. Nothing else changes: no case
/// folding, no trimming (a space is part of a passphrase), no truncation.
pub fn normalise(password: &str) -> String {
    password
        .chars()
        .map(|c| if is_non_ascii_space(c) { ' ' } else { c })
        .nfc()
        .collect()
}

/// The characters of Unicode's Zs category other than U+0020 (the category
/// is closed in practice: it has not changed since Unicode 4.1).
fn is_non_ascii_space(c: char) -> bool {
    matches!(
        c,
        '\u{00A0}' | '\u{1680}' | '\u{2000}'..='\u{200A}' | '\u{202F}' | '\u{205F}' | '\u{3000}'
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn composed_and_decomposed_forms_are_one_password() {
        let decomposed = "caf\u{0065}\u{0301} au lait";
        let composed = "caf\u{00e9} au lait";
        assert_ne!(decomposed, composed);
        assert_eq!(normalise(decomposed), composed);
        assert_eq!(normalise(composed), composed);
    }

    #[test]
    fn non_ascii_spaces_become_spaces_and_nothing_else_changes() {
        assert_eq!(normalise("a\u{a0}b\u{3000}c\u{2009}d"), "a b c d");
        // No case folding, trimming or compatibility mapping (NFKC would turn
        // the ligature into "fi" and the full-width A into "A").
        assert_eq!(
            normalise("  MiXed \u{fb01}\u{ff21} "),
            "  MiXed \u{fb01}\u{ff21} "
        );
        // Zero-width and bidirectional characters are the name rule's
        // business, not the password's: they are kept.
        assert_eq!(normalise("a\u{200b}b\u{202e}"), "a\u{200b}b\u{202e}");
    }
}
