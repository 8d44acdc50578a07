//! One-time auth codes sent by e-mail or SMS: a short numeric code bound to a
//! subject and a purpose, valid for minutes, a few attempts, one use.
//!
//! The code is low-entropy by nature (10^6), so what protects it is the
//! attempt limit and the short life, not the hash. It is stored as an
//! HMAC-SHA-256 under a server key, bound to the code's id, subject and
//! purpose, so a database dump alone reveals nothing and a hash cannot be
//! moved to another code. (Argon2id would add nothing against someone who
//! holds the key: 10^6 guesses are cheap either way.)

use chrono::{DateTime, Duration, Utc};
use rand::{rngs::OsRng, Rng};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::MfaFailure;
use crate::{
    one_time::{Lifecycle, Unusable},
    DomainError,
};

/// How a code reaches the user.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Channel {
    Email,
    Sms,
}

impl Channel {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Email => "email",
            Self::Sms => "sms",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "email" => Some(Self::Email),
            "sms" => Some(Self::Sms),
            _ => None,
        }
    }
}

/// Limits for auth codes.
#[derive(Debug, Clone, Copy)]
pub struct AuthCodePolicy {
    /// 6-8.
    pub digits: u32,
    pub lifetime: Duration,
    pub max_attempts: i64,
}

impl Default for AuthCodePolicy {
    fn default() -> Self {
        Self {
            digits: 6,
            lifetime: Duration::minutes(10),
            max_attempts: 5,
        }
    }
}

/// A stored auth code (without its hash or destination).
#[derive(Debug, Clone, PartialEq)]
pub struct AuthCode {
    pub id: String,
    pub subject: String,
    pub purpose: String,
    pub channel: Channel,
    pub attempts: i64,
    pub max_attempts: i64,
    pub expires_at: DateTime<Utc>,
    pub consumed_at: Option<DateTime<Utc>>,
    /// Set once the message left (a code that was never sent cannot be used).
    pub sent_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
}

impl AuthCode {
    /// The one-time-secret state of this code: one use, a few attempts.
    pub fn lifecycle(&self) -> Lifecycle {
        Lifecycle {
            expires_at: self.expires_at,
            uses: i64::from(self.consumed_at.is_some()),
            max_uses: 1,
            attempts: self.attempts,
            max_attempts: Some(self.max_attempts),
            revoked: false,
        }
    }

    /// Whether a guess may be evaluated at all, before the code is compared.
    pub fn check_usable(&self, now: DateTime<Utc>) -> Result<(), MfaFailure> {
        // A used code was sent, so "never sent" only applies to unused ones.
        if self.consumed_at.is_none() && self.sent_at.is_none() {
            return Err(MfaFailure::NoCode);
        }
        self.lifecycle().check(now).map_err(|why| match why {
            Unusable::UsedUp | Unusable::Revoked => MfaFailure::Replayed,
            Unusable::Expired => MfaFailure::Expired,
            Unusable::Locked => MfaFailure::Locked,
        })
    }
}

/// A uniformly random numeric code of `digits` digits (leading zeros kept).
pub fn generate_code(digits: u32) -> String {
    let n: u64 = OsRng.gen_range(0..10u64.pow(digits));
    format!("{n:0width$}", width = digits as usize)
}

/// Purposes are the application's names for why a code is sent
/// (`login`, `verify_email`…): 1-64 characters of a-z, 0-9, _ : . -
pub fn validate_purpose(purpose: &str) -> Result<String, DomainError> {
    crate::text::check("purpose", purpose, crate::text::TextRule::Name)?;
    if crate::invite::is_role_name(purpose) {
        Ok(purpose.to_string())
    } else {
        Err(DomainError::invalid(
            "purpose",
            "must be 1-64 characters of a-z, 0-9, _ : . -",
        ))
    }
}

/// The canonical destination for the channel, or a 422. E-mail: a bare
/// address (`local@domain`: no display name, no angle brackets, no lists),
/// ASCII, the domain lower-cased. SMS: E.164, `+` and 7-15 digits not starting
/// with 0. Being strict here keeps two things true: whatever passes is
/// deliverable by the providers (a bad address is a 422, not a 503), and one
/// mailbox or phone has one canonical form, so the per-destination rate limit
/// cannot be dodged by writing it differently.
pub fn validate_destination(channel: Channel, to: &str) -> Result<String, DomainError> {
    let to = to.trim();
    crate::text::check("destination", to, crate::text::TextRule::Name)?;
    let canonical = match channel {
        Channel::Email => canonical_email(to),
        Channel::Sms => to
            .strip_prefix('+')
            .filter(|d| {
                (7..=15).contains(&d.len())
                    && d.bytes().all(|b| b.is_ascii_digit())
                    && !d.starts_with('0')
            })
            .map(|_| to.to_string()),
    };
    canonical.ok_or_else(|| {
        DomainError::invalid(
            "destination",
            match channel {
                Channel::Email => "must be a plain e-mail address such as alice@example.com",
                Channel::Sms => "must be a phone number in E.164 form, e.g. +447700900123",
            },
        )
    })
}

fn canonical_email(to: &str) -> Option<String> {
    const LOCAL_SPECIALS: &str = ".!#$%&'*+/=?^_`{|}~-";
    let (local, domain) = to.split_once('@')?;
    let local_ok = (1..=64).contains(&local.len())
        && local
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || LOCAL_SPECIALS.contains(c))
        && !local.starts_with('.')
        && !local.ends_with('.')
        && !local.contains("..");
    let labels: Vec<&str> = domain.split('.').collect();
    let domain_ok = domain.len() <= 253
        && labels.len() >= 2
        && labels.iter().all(|l| {
            (1..=63).contains(&l.len())
                && l.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
                && !l.starts_with('-')
                && !l.ends_with('-')
        });
    (local_ok && domain_ok && to.len() <= 254)
        .then(|| format!("{local}@{}", domain.to_ascii_lowercase()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn code(now: DateTime<Utc>) -> AuthCode {
        AuthCode {
            id: "c".into(),
            subject: "u".into(),
            purpose: "login".into(),
            channel: Channel::Email,
            attempts: 0,
            max_attempts: 5,
            expires_at: now + AuthCodePolicy::default().lifetime,
            consumed_at: None,
            sent_at: Some(now),
            created_at: now,
        }
    }

    #[test]
    fn codes_expire_after_ten_minutes_and_die_after_five_attempts_or_one_use() {
        let now = Utc::now();
        let c = code(now);
        assert_eq!(c.check_usable(now + Duration::minutes(9)), Ok(()));
        assert_eq!(
            c.check_usable(now + Duration::minutes(10)),
            Err(MfaFailure::Expired)
        );
        let tired = AuthCode {
            attempts: 5,
            ..c.clone()
        };
        assert_eq!(tired.check_usable(now), Err(MfaFailure::Locked));
        let used = AuthCode {
            consumed_at: Some(now),
            ..c.clone()
        };
        assert_eq!(used.check_usable(now), Err(MfaFailure::Replayed));
        let unsent = AuthCode { sent_at: None, ..c };
        assert_eq!(unsent.check_usable(now), Err(MfaFailure::NoCode));
    }

    #[test]
    fn generated_codes_have_the_requested_digits() {
        for digits in 6..=8 {
            for _ in 0..50 {
                let c = generate_code(digits);
                assert_eq!(c.len(), digits as usize);
                assert!(c.bytes().all(|b| b.is_ascii_digit()));
            }
        }
    }

    #[test]
    fn destinations_are_checked_and_canonical_per_channel() {
        let email = |s| validate_destination(Channel::Email, s);
        let sms = |s| validate_destination(Channel::Sms, s);
        assert_eq!(
            email(" Alice.B+tag@Example.COM ").unwrap(),
            "Alice.B+tag@example.com"
        );
        for bad in [
            "a b@c.io",
            "+447700900123",
            "Alice <alice@example.com>",
            "<alice@example.com>",
            "a,b@x.io",
            "a@b",
            "a@-b.io",
            ".a@b.io",
            "a..b@c.io",
            "a@b..io",
            "ä@b.io",
            "a@b.io,c@d.io",
            "a@b@c.io",
        ] {
            assert!(email(bad).is_err(), "{bad}");
        }
        assert_eq!(sms("+447700900123").unwrap(), "+447700900123");
        for bad in [
            "447700900123",
            "+0447700900123",
            "+123456",
            "+44 7700 900123",
            "+1234567890123456",
        ] {
            assert!(sms(bad).is_err(), "{bad}");
        }
    }
}
