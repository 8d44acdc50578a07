//! The one-time-secret building block: a secret shown once, stored only as a
//! digest, good until it expires, for a limited number of uses and of wrong
//! guesses. Invites and one-time auth codes are built on it today; password
//! reset and e-mail verification links will be.
//!
//! What differs between them is data: the [`Purpose`], how the secret is
//! digested ([`SecretDigest`]: a keyed hash for high-entropy or short-lived
//! codes, a password hash where the issue asks for one), and the limits. The
//! rules for "may this secret be used now" live here once, in
//! [`Lifecycle::check`]; storage applies a use with one conditional update so
//! that concurrent uses cannot exceed the limit.

use chrono::{DateTime, Utc};

/// What a one-time secret is for. A secret minted for one purpose never
/// verifies for another: the purpose is bound into its digest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Purpose {
    Invite,
    /// A one-time auth code, with the application's purpose label (`login`, …).
    AuthCode(String),
    PasswordReset,
    EmailVerification,
}

impl Purpose {
    /// The stable name used in digests, audit rows and storage.
    pub fn as_str(&self) -> &str {
        match self {
            Self::Invite => "invite",
            Self::AuthCode(label) => label,
            Self::PasswordReset => "password_reset",
            Self::EmailVerification => "email_verification",
        }
    }
}

/// How a secret is kept: never in clear.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SecretDigest {
    /// HMAC-SHA-256 under a server key (hex): fast, for secrets with enough
    /// entropy or a short life and an attempt limit.
    Keyed(String),
    /// A PHC string from a slow password hash (Argon2id).
    Password(String),
}

/// The state that decides whether a secret may be used.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Lifecycle {
    pub expires_at: DateTime<Utc>,
    pub uses: i64,
    pub max_uses: i64,
    /// Wrong guesses counted against this secret, and how many it survives;
    /// `None` when guesses are limited elsewhere (per client address).
    pub attempts: i64,
    pub max_attempts: Option<i64>,
    pub revoked: bool,
}

/// Why a secret cannot be used, in the order a person would name it first.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unusable {
    Revoked,
    UsedUp,
    Expired,
    /// Too many wrong guesses.
    Locked,
}

impl Lifecycle {
    /// Revoked wins over used up, used up over expired, expired over locked.
    pub fn check(&self, now: DateTime<Utc>) -> Result<(), Unusable> {
        if self.revoked {
            Err(Unusable::Revoked)
        } else if self.uses >= self.max_uses {
            Err(Unusable::UsedUp)
        } else if now >= self.expires_at {
            Err(Unusable::Expired)
        } else if self.max_attempts.is_some_and(|max| self.attempts >= max) {
            Err(Unusable::Locked)
        } else {
            Ok(())
        }
    }

    pub fn uses_left(&self) -> i64 {
        (self.max_uses - self.uses).max(0)
    }
}

#[cfg(test)]
mod tests {
    use chrono::Duration;

    use super::*;

    fn fresh(now: DateTime<Utc>) -> Lifecycle {
        Lifecycle {
            expires_at: now + Duration::minutes(10),
            uses: 0,
            max_uses: 1,
            attempts: 0,
            max_attempts: Some(5),
            revoked: false,
        }
    }

    #[test]
    fn a_fresh_secret_is_usable_once() {
        let now = Utc::now();
        let mut s = fresh(now);
        assert_eq!(s.check(now), Ok(()));
        s.uses = 1;
        assert_eq!(s.check(now), Err(Unusable::UsedUp));
        assert_eq!(s.uses_left(), 0);
    }

    #[test]
    fn the_first_reason_wins() {
        let now = Utc::now();
        let all_wrong = Lifecycle {
            expires_at: now,
            uses: 1,
            max_uses: 1,
            attempts: 5,
            max_attempts: Some(5),
            revoked: true,
        };
        assert_eq!(all_wrong.check(now), Err(Unusable::Revoked));
        let s = Lifecycle {
            revoked: false,
            ..all_wrong
        };
        assert_eq!(s.check(now), Err(Unusable::UsedUp));
        let s = Lifecycle { uses: 0, ..s };
        assert_eq!(s.check(now), Err(Unusable::Expired));
        let s = Lifecycle {
            expires_at: now + Duration::seconds(1),
            ..s
        };
        assert_eq!(s.check(now), Err(Unusable::Locked));
    }

    #[test]
    fn guesses_limited_elsewhere_never_lock() {
        let now = Utc::now();
        let s = Lifecycle {
            attempts: 1_000,
            max_attempts: None,
            ..fresh(now)
        };
        assert_eq!(s.check(now), Ok(()));
    }

    #[test]
    fn purposes_have_stable_names() {
        assert_eq!(Purpose::Invite.as_str(), "invite");
        assert_eq!(Purpose::AuthCode("login".into()).as_str(), "login");
        assert_eq!(Purpose::PasswordReset.as_str(), "password_reset");
    }
}
