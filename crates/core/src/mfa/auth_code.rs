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
use crate::DomainError;

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
    /// Whether a guess may be evaluated at all, before the code is compared.
    pub fn check_usable(&self, now: DateTime<Utc>) -> Result<(), MfaFailure> {
        if self.consumed_at.is_some() {
            Err(MfaFailure::Replayed)
        } else if self.sent_at.is_none() {
            Err(MfaFailure::NoCode)
        } else if now >= self.expires_at {
            Err(MfaFailure::Expired)
        } else if self.attempts >= self.max_attempts {
            Err(MfaFailure::Locked)
        } else {
            Ok(())
        }
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
    if crate::invite::is_role_name(purpose) {
        Ok(purpose.to_string())
    } else {
        Err(DomainError::invalid(
            "purpose",
            "must be 1-64 characters of a-z, 0-9, _ : . -",
        ))
    }
}

/// A plausible destination for the channel: an e-mail address, or an E.164
/// phone number (`+` and 8-15 digits).
pub fn validate_destination(channel: Channel, to: &str) -> Result<String, DomainError> {
    let to = to.trim();
    let ok = match channel {
        Channel::Email => {
            to.len() <= 254
                && !to.chars().any(|c| c.is_whitespace() || c.is_control())
                && to
                    .split_once('@')
                    .is_some_and(|(l, d)| !l.is_empty() && d.contains('.') && !d.contains('@'))
        }
        Channel::Sms => to
            .strip_prefix('+')
            .is_some_and(|d| (8..=15).contains(&d.len()) && d.bytes().all(|b| b.is_ascii_digit())),
    };
    if ok {
        Ok(to.to_string())
    } else {
        Err(DomainError::invalid(
            "destination",
            match channel {
                Channel::Email => "must be an e-mail address",
                Channel::Sms => "must be a phone number in E.164 form, e.g. +447700900123",
            },
        ))
    }
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
    fn destinations_are_checked_per_channel() {
        assert!(validate_destination(Channel::Email, "a@b.io").is_ok());
        assert!(validate_destination(Channel::Email, "a b@c.io").is_err());
        assert!(validate_destination(Channel::Email, "+447700900123").is_err());
        assert!(validate_destination(Channel::Sms, "+447700900123").is_ok());
        assert!(validate_destination(Channel::Sms, "447700900123").is_err());
    }
}
