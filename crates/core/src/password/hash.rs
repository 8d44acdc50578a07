//! Password hashes: Argon2id PHC strings for every password Tessera stores,
//! and verification of the hashes other systems left behind (imported with
//! `tessera user import`) until a successful login replaces them.
//!
//! Every comparison of a computed hash with a stored one is constant time:
//! `password-hash`'s `Output` compares with `subtle` (Argon2, scrypt) and
//! bcrypt compares its 23 bytes with `subtle::ConstantTimeEq`.
//!
//! Imported hashes are trusted to be well-formed, not to be cheap: a hash
//! whose parameters would take more than [`MAX_ARGON2_M_KIB`] of memory, or
//! scrypt beyond [`MAX_SCRYPT_LOG_N`], is refused up front rather than let
//! one login take a gigabyte.

use std::collections::HashMap;
use std::sync::{Mutex, OnceLock};

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::{Algorithm, Argon2, Version};
use rand::rngs::OsRng;

/// The largest Argon2 memory cost an imported hash may ask for (1 GiB).
pub const MAX_ARGON2_M_KIB: u32 = 1 << 20;
/// The largest Argon2 time cost an imported hash may ask for.
pub const MAX_ARGON2_T: u32 = 64;
/// The largest scrypt cost exponent an imported hash may ask for (2^20,
/// 1 GiB with r = 8).
pub const MAX_SCRYPT_LOG_N: u8 = 20;
/// The largest scrypt r × p an imported hash may ask for.
pub const MAX_SCRYPT_R_TIMES_P: u32 = 64;

/// Argon2id cost parameters. Never weaker than [`HashParams::DEFAULT`], the
/// OWASP minimum, since [`HashParams::new`] refuses that.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct HashParams {
    m_kib: u32,
    t: u32,
    p: u32,
}

/// Cost parameters an operator configured that are too weak or impossible.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum HashParamsError {
    #[error("Argon2id parameters must be at least m=19456 KiB, t=2, p=1 (the OWASP minimum)")]
    TooWeak,
    #[error("Argon2id parameters out of range: at most m={MAX_ARGON2_M_KIB} KiB, t={MAX_ARGON2_T}, p=16")]
    TooLarge,
}

impl HashParams {
    /// m = 19456 KiB (19 MiB), t = 2, p = 1: OWASP's minimum for Argon2id,
    /// about 20–40 ms on one core of a current server.
    pub const DEFAULT: Self = Self {
        m_kib: 19_456,
        t: 2,
        p: 1,
    };

    /// Parameters at least as strong as [`Self::DEFAULT`] in every dimension
    /// (more memory, passes or lanes only add cost), and small enough that
    /// an imported hash with them would also be accepted.
    pub fn new(m_kib: u32, t: u32, p: u32) -> Result<Self, HashParamsError> {
        let min = Self::DEFAULT;
        if m_kib < min.m_kib || t < min.t || p < min.p {
            return Err(HashParamsError::TooWeak);
        }
        if m_kib > MAX_ARGON2_M_KIB || t > MAX_ARGON2_T || p > 16 {
            return Err(HashParamsError::TooLarge);
        }
        Ok(Self { m_kib, t, p })
    }

    pub fn m_kib(&self) -> u32 {
        self.m_kib
    }

    pub fn t(&self) -> u32 {
        self.t
    }

    pub fn p(&self) -> u32 {
        self.p
    }

    fn hasher(&self) -> Argon2<'static> {
        let params = argon2::Params::new(self.m_kib, self.t, self.p, None)
            .expect("HashParams::new keeps the parameters within Argon2's limits");
        Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
    }
}

impl Default for HashParams {
    fn default() -> Self {
        Self::DEFAULT
    }
}

/// The algorithm of a stored hash.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum HashKind {
    Argon2id,
    Argon2i,
    /// Argon2d: data-dependent memory access, so not meant for passwords;
    /// verified so such imports can log in once and be re-hashed.
    Argon2d,
    /// `$2a$`, `$2b$` or `$2y$`.
    Bcrypt,
    /// PHC `$scrypt$`.
    Scrypt,
}

impl HashKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Argon2id => "argon2id",
            Self::Argon2i => "argon2i",
            Self::Argon2d => "argon2d",
            Self::Bcrypt => "bcrypt",
            Self::Scrypt => "scrypt",
        }
    }
}

/// A stored hash that cannot be used. Messages name the algorithm at most,
/// never the hash text (it is a secret's derivative, and may be a secret
/// pasted into the wrong column).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum HashError {
    #[error(
        "not a supported password hash (Argon2 or scrypt PHC string, or bcrypt $2a$/$2b$/$2y$)"
    )]
    Unsupported,
    #[error("malformed {} hash", .0.as_str())]
    Malformed(HashKind),
    #[error("the {} hash's cost parameters are beyond what this server verifies", .0.as_str())]
    TooCostly(HashKind),
}

/// The outcome of checking a password against a stored hash.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verified {
    /// The password is right. `needs_rehash`: the stored hash is not Argon2id
    /// at least as strong as the configured parameters, so store
    /// [`hash_password`]'s output in its place now that the password is known.
    Match {
        needs_rehash: bool,
    },
    Mismatch,
}

/// The Argon2id PHC string of `normalised` (the output of
/// [`super::normalise`] or [`super::PasswordPolicy::check`]) with a random
/// 16-byte salt from the OS.
pub fn hash_password(normalised: &str, params: &HashParams) -> String {
    let salt = SaltString::generate(&mut OsRng);
    params
        .hasher()
        .hash_password(normalised.as_bytes(), &salt)
        .expect("Argon2id with valid parameters and a generated salt cannot fail")
        .to_string()
}

/// Checks `normalised` (pass the attempt through [`super::normalise`]
/// first) against a stored hash of any supported kind.
pub fn verify_password(
    normalised: &str,
    stored: &str,
    params: &HashParams,
) -> Result<Verified, HashError> {
    let password = normalised.as_bytes();
    let matched = match parse(stored)? {
        (_, None) => {
            // bcrypt reads at most 72 bytes; the system that made the hash
            // truncated the same way, so verify as it did.
            bcrypt::verify(password, stored).map_err(|_| HashError::Malformed(HashKind::Bcrypt))?
        }
        (kind, Some(hash)) => {
            let outcome = if kind == HashKind::Scrypt {
                scrypt::Scrypt.verify_password(password, &hash)
            } else {
                Argon2::default().verify_password(password, &hash)
            };
            match outcome {
                Ok(()) => true,
                Err(argon2::password_hash::Error::Password) => false,
                Err(_) => return Err(HashError::Malformed(kind)),
            }
        }
    };
    Ok(if matched {
        Verified::Match {
            needs_rehash: needs_rehash(stored, params),
        }
    } else {
        Verified::Mismatch
    })
}

/// The kind of a stored hash, if it is one [`verify_password`] can check:
/// for `tessera user import` to refuse a bad file before storing any of it.
pub fn classify_hash(stored: &str) -> Result<HashKind, HashError> {
    parse(stored).map(|(kind, _)| kind)
}

/// A valid Argon2id hash with `params`, of a password nobody knows: verify
/// an attempt against it when the e-mail is unknown, so that answer takes as
/// long as a wrong password and does not reveal which accounts exist.
/// Computed once per distinct `params` (a process has one or two).
pub fn dummy_hash(params: &HashParams) -> &'static str {
    static CACHE: OnceLock<Mutex<HashMap<HashParams, &'static str>>> = OnceLock::new();
    let cache = CACHE.get_or_init(Default::default);
    let mut cache = cache
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    cache.entry(*params).or_insert_with(|| {
        let hash = hash_password("tessera dummy password, never a real one", params);
        Box::leak(hash.into_boxed_str())
    })
}

/// Whether a hash that just verified should be replaced: anything but
/// Argon2id v1.3 with at least `params`' memory, passes and lanes and a
/// 32-byte output.
fn needs_rehash(stored: &str, params: &HashParams) -> bool {
    let Ok((HashKind::Argon2id, Some(hash))) = parse(stored) else {
        return true;
    };
    let Ok(have) = argon2::Params::try_from(&hash) else {
        return true;
    };
    let version_ok = hash.version.is_some_and(|v| v == u32::from(Version::V0x13));
    let output_ok = hash.hash.is_some_and(|h| h.len() >= 32);
    !(version_ok
        && output_ok
        && have.m_cost() >= params.m_kib
        && have.t_cost() >= params.t
        && have.p_cost() >= params.p)
}

/// Recognises and validates a stored hash, including the cost limits: its
/// kind, and its PHC form unless it is bcrypt (which has none).
fn parse(stored: &str) -> Result<(HashKind, Option<PasswordHash<'_>>), HashError> {
    if ["$2a$", "$2b$", "$2y$"]
        .iter()
        .any(|p| stored.starts_with(p))
    {
        // `$2x$` (crypt_blowfish's marker for its sign-extension bug) is
        // left out on purpose: the bcrypt crate does not reproduce the bug,
        // so such hashes would never verify.
        let parts: bcrypt::HashParts = stored
            .parse()
            .map_err(|_| HashError::Malformed(HashKind::Bcrypt))?;
        let cost = parts.get_cost();
        if !(4..=31).contains(&cost) {
            return Err(HashError::Malformed(HashKind::Bcrypt));
        }
        // 2^20 rounds take about a minute; nobody stores those.
        if cost > 20 {
            return Err(HashError::TooCostly(HashKind::Bcrypt));
        }
        return Ok((HashKind::Bcrypt, None));
    }
    let kind = match stored.split('$').nth(1) {
        Some("argon2id") => HashKind::Argon2id,
        Some("argon2i") => HashKind::Argon2i,
        Some("argon2d") => HashKind::Argon2d,
        Some("scrypt") => HashKind::Scrypt,
        _ => return Err(HashError::Unsupported),
    };
    let hash = PasswordHash::new(stored).map_err(|_| HashError::Malformed(kind))?;
    if hash.salt.is_none() || hash.hash.is_none() {
        return Err(HashError::Malformed(kind));
    }
    check_cost(kind, &hash)?;
    Ok((kind, Some(hash)))
}

fn check_cost(kind: HashKind, hash: &PasswordHash) -> Result<(), HashError> {
    let affordable = if kind == HashKind::Scrypt {
        let p = scrypt::Params::try_from(hash).map_err(|_| HashError::Malformed(kind))?;
        p.log_n() <= MAX_SCRYPT_LOG_N && p.r().saturating_mul(p.p()) <= MAX_SCRYPT_R_TIMES_P
    } else {
        let p = argon2::Params::try_from(hash).map_err(|_| HashError::Malformed(kind))?;
        if hash.version.is_some_and(|v| Version::try_from(v).is_err()) {
            return Err(HashError::Malformed(kind));
        }
        p.m_cost() <= MAX_ARGON2_M_KIB && p.t_cost() <= MAX_ARGON2_T
    };
    if affordable {
        Ok(())
    } else {
        Err(HashError::TooCostly(kind))
    }
}

#[cfg(test)]
#[path = "hash_tests.rs"]
mod tests;
