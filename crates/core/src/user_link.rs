//! Single-use links mailed to a person: the password-reset link and the
//! e-mail verification link. What a link token looks like (`<id>.<secret>`),
//! what is kept of it (a record holding only a slow hash of the secret), and
//! the rule that decides whether a presented token works.
//!
//! The id half is a UUID, so a confirmation finds its row by primary key and
//! hashes once; the secret half is 256 bits from the OS, base64url without
//! padding. Only an Argon2id hash of the secret is stored (the hashing itself
//! runs on the server's bounded password pool, not here).

use base64::{engine::general_purpose::URL_SAFE_NO_PAD, Engine};
use chrono::{DateTime, Utc};
use rand::{rngs::OsRng, RngCore};
use zeroize::Zeroize;

use crate::SecretString;

/// Bytes of randomness in a link's secret (256 bits).
pub const SECRET_BYTES: usize = 32;
/// Characters of the base64url secret (no padding).
pub const SECRET_CHARS: usize = 43;
/// The longest lifetime a link may have, in seconds (OWASP ASVS: under an hour).
pub const MAX_TTL_SECS: i64 = 3600;

/// Which flow a link belongs to. Each kind has its own table, so a reset
/// token can never confirm an e-mail address or the other way round.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum LinkKind {
    PasswordReset,
    EmailVerification,
}

impl LinkKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::PasswordReset => "password_reset",
            Self::EmailVerification => "email_verification",
        }
    }
}

/// A freshly made link token: the row id and the secret. `Debug` redacts
/// the secret; [`NewLinkToken::token`] is the only way to the full token.
#[derive(Debug)]
pub struct NewLinkToken {
    pub id: String,
    pub secret: SecretString,
}

impl NewLinkToken {
    /// A new id (UUIDv7, as `ids::new_id` makes them) and 256 random bits.
    pub fn generate() -> Self {
        let mut bytes = [0u8; SECRET_BYTES];
        OsRng.fill_bytes(&mut bytes);
        let secret = SecretString::new(URL_SAFE_NO_PAD.encode(bytes));
        bytes.zeroize();
        Self {
            id: uuid::Uuid::now_v7().hyphenated().to_string(),
            secret,
        }
    }

    /// `<id>.<secret>`: what goes into the link, and nowhere else.
    pub fn token(&self) -> SecretString {
        SecretString::new(format!("{}.{}", self.id, self.secret.expose()))
    }
}

/// A presented token split into its halves. Built only by [`parse`].
#[derive(Debug)]
pub struct PresentedLinkToken {
    pub id: String,
    pub secret: SecretString,
}

/// Splits `<uuid>.<secret>`; `None` for anything else (the caller answers
/// `invalid_token`, as for an unknown one). The id must be a UUID in its
/// hyphenated form and the secret exactly 43 base64url characters.
pub fn parse(token: &str) -> Option<PresentedLinkToken> {
    let (id, secret) = token.trim().split_once('.')?;
    let id_ok = id.len() == 36 && uuid::Uuid::try_parse(id).is_ok();
    let secret_ok = secret.len() == SECRET_CHARS
        && secret
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    (id_ok && secret_ok).then(|| PresentedLinkToken {
        id: id.to_ascii_lowercase(),
        secret: SecretString::new(secret.to_string()),
    })
}

/// A stored link: never the secret, only its Argon2id PHC string.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserLink {
    pub id: String,
    pub kind: LinkKind,
    pub user_id: String,
    pub secret_hash: String,
    pub created_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
    pub used_at: Option<DateTime<Utc>>,
    /// Set when a newer link of the same kind was sent to the same user.
    pub superseded_at: Option<DateTime<Utc>>,
    /// The requesting client's address, sealed (AEAD) for the audit trail.
    pub requester_ip_sealed: Option<String>,
}

/// Why a presented link does not work. Only two answers exist, so that a
/// guesser learns nothing beyond "not this one": `Invalid` covers unknown,
/// malformed, used, superseded and wrong-secret tokens; `Expired` is told
/// only to the holder of the right secret.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LinkFailure {
    Invalid,
    Expired,
}

impl LinkFailure {
    /// The outcome label of metrics and audit rows.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Invalid => "invalid",
            Self::Expired => "expired",
        }
    }
}

impl UserLink {
    /// Judges a presentation whose secret was (or was not) found to match.
    /// A wrong secret is `Invalid` even for an expired link, so expiry is
    /// never a hint to someone who does not hold the link.
    pub fn judge(&self, secret_matches: bool, now: DateTime<Utc>) -> Result<(), LinkFailure> {
        if !secret_matches || self.used_at.is_some() || self.superseded_at.is_some() {
            return Err(LinkFailure::Invalid);
        }
        if self.expires_at <= now {
            return Err(LinkFailure::Expired);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use chrono::Duration;

    use super::*;

    fn link(now: DateTime<Utc>) -> UserLink {
        UserLink {
            id: uuid::Uuid::now_v7().to_string(),
            kind: LinkKind::PasswordReset,
            user_id: uuid::Uuid::now_v7().to_string(),
            secret_hash: "$argon2id$…".into(),
            created_at: now,
            expires_at: now + Duration::seconds(900),
            used_at: None,
            superseded_at: None,
            requester_ip_sealed: None,
        }
    }

    #[test]
    fn a_generated_token_parses_back_to_its_halves() {
        let t = NewLinkToken::generate();
        assert_eq!(t.secret.expose().len(), SECRET_CHARS);
        let token = t.token();
        let parsed = parse(token.expose()).expect("parses");
        assert_eq!(parsed.id, t.id);
        assert_eq!(parsed.secret.expose(), t.secret.expose());
        assert!(!format!("{t:?}").contains(t.secret.expose()));
    }

    #[test]
    fn two_tokens_never_share_a_secret() {
        let (a, b) = (NewLinkToken::generate(), NewLinkToken::generate());
        assert_ne!(a.secret.expose(), b.secret.expose());
        assert_ne!(a.id, b.id);
    }

    #[test]
    fn malformed_tokens_are_refused() {
        let good = NewLinkToken::generate();
        let secret = good.secret.expose();
        for bad in [
            String::new(),
            ".".into(),
            good.id.clone(),
            format!("{}.", good.id),
            format!(".{secret}"),
            format!("not-a-uuid.{secret}"),
            format!("{}.{}", good.id, &secret[1..]),
            format!("{}.{secret}x", good.id),
            format!("{}.{}+", good.id, &secret[1..]),
            format!("{}.{secret}.{secret}", good.id),
        ] {
            assert!(parse(&bad).is_none(), "{bad:?}");
        }
    }

    #[test]
    fn judging_never_reveals_expiry_without_the_secret() {
        let now = Utc::now();
        let fresh = link(now);
        assert_eq!(fresh.judge(true, now), Ok(()));
        assert_eq!(fresh.judge(false, now), Err(LinkFailure::Invalid));
        let later = now + Duration::seconds(901);
        assert_eq!(fresh.judge(true, later), Err(LinkFailure::Expired));
        assert_eq!(fresh.judge(false, later), Err(LinkFailure::Invalid));
        let used = UserLink {
            used_at: Some(now),
            ..link(now)
        };
        assert_eq!(used.judge(true, now), Err(LinkFailure::Invalid));
        assert_eq!(used.judge(true, later), Err(LinkFailure::Invalid));
        let superseded = UserLink {
            superseded_at: Some(now),
            ..link(now)
        };
        assert_eq!(superseded.judge(true, now), Err(LinkFailure::Invalid));
    }
}
