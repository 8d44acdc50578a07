//! Tests of `password::hash`: every supported format verifies, with vectors
//! made here by the same crates (so no other system's hashes are needed), and
//! re-hash and error answers are the ones the login and import flows rely on.

use super::*;
use crate::password::normalise;

const PASSWORD: &str = "correct horse battery staple 1987 zebra";

/// An Argon2 hash with explicit (possibly weak) parameters, as another
/// system would have stored it.
fn argon2_hash(alg: Algorithm, version: Version, m: u32, t: u32, p: u32, pw: &str) -> String {
    let params = argon2::Params::new(m, t, p, None).unwrap();
    Argon2::new(alg, version, params)
        .hash_password(pw.as_bytes(), &SaltString::generate(&mut OsRng))
        .unwrap()
        .to_string()
}

fn scrypt_hash(pw: &str) -> String {
    let params = scrypt::Params::new(4, 8, 1, 32).unwrap();
    scrypt::Scrypt
        .hash_password_customized(
            pw.as_bytes(),
            None,
            None,
            params,
            &SaltString::generate(&mut OsRng),
        )
        .unwrap()
        .to_string()
}

fn bcrypt_hash(pw: &str, version: bcrypt::Version) -> String {
    bcrypt::hash_with_result(pw, 4)
        .unwrap()
        .format_for_version(version)
}

fn matches(pw: &str, stored: &str) -> Verified {
    verify_password(pw, stored, &HashParams::DEFAULT).unwrap()
}

#[test]
fn argon2id_round_trip_with_default_params() {
    let params = HashParams::DEFAULT;
    let stored = hash_password(PASSWORD, &params);
    assert!(
        stored.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"),
        "{stored}"
    );
    assert_eq!(classify_hash(&stored), Ok(HashKind::Argon2id));
    assert_eq!(
        matches(PASSWORD, &stored),
        Verified::Match {
            needs_rehash: false
        }
    );
    assert_eq!(
        matches("correct horse battery staple 1987 zebrA", &stored),
        Verified::Mismatch
    );
    // A fresh salt each time.
    assert_ne!(stored, hash_password(PASSWORD, &params));
}

#[test]
fn nfc_equivalent_inputs_hash_and_verify_alike() {
    let decomposed = normalise("cafe\u{301} cre\u{300}me bru\u{302}le\u{301}e 42");
    let composed = normalise("caf\u{e9} cr\u{e8}me br\u{fb}l\u{e9}e 42");
    assert_eq!(decomposed, composed);
    let stored = hash_password(&decomposed, &HashParams::DEFAULT);
    assert!(matches!(
        matches(&composed, &stored),
        Verified::Match { .. }
    ));
    let stored = hash_password(&composed, &HashParams::DEFAULT);
    assert!(matches!(
        matches(&decomposed, &stored),
        Verified::Match { .. }
    ));
}

#[test]
fn imported_bcrypt_hashes_verify_and_want_rehash() {
    for (version, prefix) in [
        (bcrypt::Version::TwoA, "$2a$04$"),
        (bcrypt::Version::TwoB, "$2b$04$"),
        (bcrypt::Version::TwoY, "$2y$04$"),
    ] {
        let stored = bcrypt_hash(PASSWORD, version);
        assert!(stored.starts_with(prefix));
        assert_eq!(classify_hash(&stored), Ok(HashKind::Bcrypt));
        assert_eq!(
            matches(PASSWORD, &stored),
            Verified::Match { needs_rehash: true }
        );
        assert_eq!(
            matches("wrong password entirely", &stored),
            Verified::Mismatch
        );
    }
    // `$2x$` is refused: the crate does not reproduce the bug it marks.
    let x = bcrypt_hash(PASSWORD, bcrypt::Version::TwoX);
    assert_eq!(classify_hash(&x), Err(HashError::Unsupported));
}

#[test]
fn imported_scrypt_hashes_verify_and_want_rehash() {
    let stored = scrypt_hash(PASSWORD);
    assert!(stored.starts_with("$scrypt$ln=4,r=8,p=1$"), "{stored}");
    assert_eq!(classify_hash(&stored), Ok(HashKind::Scrypt));
    assert_eq!(
        matches(PASSWORD, &stored),
        Verified::Match { needs_rehash: true }
    );
    assert_eq!(
        matches("wrong password entirely", &stored),
        Verified::Mismatch
    );
}

#[test]
fn other_argon2_variants_verify_and_want_rehash() {
    for (alg, kind) in [
        (Algorithm::Argon2i, HashKind::Argon2i),
        (Algorithm::Argon2d, HashKind::Argon2d),
    ] {
        let stored = argon2_hash(alg, Version::V0x13, 19_456, 2, 1, PASSWORD);
        assert_eq!(classify_hash(&stored), Ok(kind));
        assert_eq!(
            matches(PASSWORD, &stored),
            Verified::Match { needs_rehash: true }
        );
        assert_eq!(
            matches("wrong password entirely", &stored),
            Verified::Mismatch
        );
    }
}

#[test]
fn weaker_or_older_argon2id_wants_rehash_stronger_does_not() {
    let weaker = [
        (Version::V0x13, 8_192, 2, 1),
        (Version::V0x13, 19_456, 1, 1),
        (Version::V0x10, 19_456, 2, 1),
    ];
    for (version, m, t, p) in weaker {
        let stored = argon2_hash(Algorithm::Argon2id, version, m, t, p, PASSWORD);
        assert_eq!(
            matches(PASSWORD, &stored),
            Verified::Match { needs_rehash: true },
            "{stored}"
        );
    }
    let stronger = argon2_hash(Algorithm::Argon2id, Version::V0x13, 19_456, 3, 2, PASSWORD);
    assert_eq!(
        matches(PASSWORD, &stronger),
        Verified::Match {
            needs_rehash: false
        }
    );
    // Against stronger configured parameters, today's default is weaker.
    let configured = HashParams::new(19_456, 3, 1).unwrap();
    let stored = hash_password(PASSWORD, &HashParams::DEFAULT);
    assert_eq!(
        verify_password(PASSWORD, &stored, &configured),
        Ok(Verified::Match { needs_rehash: true })
    );
}

#[test]
fn garbage_hashes_are_typed_errors_that_do_not_quote_the_hash() {
    let good_scrypt = scrypt_hash(PASSWORD);
    let cases = [
        ("", HashError::Unsupported),
        ("plaintext-password", HashError::Unsupported),
        ("$1$salt$md5cryptisnotsupported", HashError::Unsupported),
        (
            "$pbkdf2-sha256$i=1000$c2FsdA$aGFzaA",
            HashError::Unsupported,
        ),
        ("$2b$04$short", HashError::Malformed(HashKind::Bcrypt)),
        (
            "$argon2id$v=19$m=19456,t=2,p=1$",
            HashError::Malformed(HashKind::Argon2id),
        ),
        (
            "$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHQ",
            HashError::Malformed(HashKind::Argon2id),
        ),
        (
            "$argon2i$v=99$m=19456,t=2,p=1$c2FsdHNhbHQ$aGFzaGhhc2hoYXNo",
            HashError::Malformed(HashKind::Argon2i),
        ),
        (
            &good_scrypt[..good_scrypt.len() - 50],
            HashError::Malformed(HashKind::Scrypt),
        ),
    ];
    for (stored, expected) in cases {
        assert_eq!(classify_hash(stored), Err(expected), "{stored}");
        assert_eq!(
            verify_password(PASSWORD, stored, &HashParams::DEFAULT),
            Err(expected)
        );
        if stored.len() > 4 {
            assert!(!expected.to_string().contains(stored));
        }
    }
}

#[test]
fn hashes_too_costly_to_verify_are_refused_up_front() {
    let huge_argon2 =
        "$argon2id$v=19$m=4194304,t=2,p=1$c2FsdHNhbHQ$aGFzaGhhc2hoYXNoaGFzaGhhc2hoYXNoaGFzaA";
    assert_eq!(
        classify_hash(huge_argon2),
        Err(HashError::TooCostly(HashKind::Argon2id))
    );
    let huge_scrypt = scrypt_hash(PASSWORD).replace("ln=4", "ln=30");
    assert_eq!(
        classify_hash(&huge_scrypt),
        Err(HashError::TooCostly(HashKind::Scrypt))
    );
    let huge_bcrypt = bcrypt_hash(PASSWORD, bcrypt::Version::TwoB).replace("$04$", "$25$");
    assert_eq!(
        classify_hash(&huge_bcrypt),
        Err(HashError::TooCostly(HashKind::Bcrypt))
    );
}

#[test]
fn params_weaker_than_owasp_minimum_are_refused() {
    assert_eq!(HashParams::new(19_456, 2, 1), Ok(HashParams::DEFAULT));
    assert_eq!(HashParams::default(), HashParams::DEFAULT);
    for (m, t, p) in [(19_455, 2, 1), (65_536, 1, 1), (19_456, 2, 0)] {
        assert_eq!(HashParams::new(m, t, p), Err(HashParamsError::TooWeak));
    }
    assert_eq!(
        HashParams::new(MAX_ARGON2_M_KIB + 1, 2, 1),
        Err(HashParamsError::TooLarge)
    );
    let p = HashParams::new(47_104, 3, 2).unwrap();
    assert_eq!((p.m_kib(), p.t(), p.p()), (47_104, 3, 2));
}

#[test]
fn dummy_hash_is_computed_once_per_params_and_never_matches() {
    let a = dummy_hash(&HashParams::DEFAULT);
    assert!(std::ptr::eq(a, dummy_hash(&HashParams::DEFAULT)));
    assert_eq!(classify_hash(a), Ok(HashKind::Argon2id));
    assert_eq!(matches(PASSWORD, a), Verified::Mismatch);
    let stronger = HashParams::new(19_456, 3, 1).unwrap();
    let b = dummy_hash(&stronger);
    assert!(b.starts_with("$argon2id$v=19$m=19456,t=3,p=1$"));
}
