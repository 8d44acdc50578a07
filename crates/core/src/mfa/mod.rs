//! Second factors: TOTP devices, recovery codes and one-time auth codes, as
//! data and rules. Subjects are the application's own user ids; Tessera keeps
//! no user table.

pub mod auth_code;
pub mod lockout;
pub mod recovery;
pub mod totp;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

pub use crate::ids::validate_subject;
use crate::DomainError;

/// Why a second-factor check failed. The strings are part of the API.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum MfaFailure {
    /// The code is wrong.
    Invalid,
    /// The code (or a later one) was already accepted.
    Replayed,
    /// Too many failed attempts; wait for the lockout to end (or request a new code).
    Locked,
    /// The subject has no active device (TOTP) or no unused codes (recovery).
    NoDevice,
    /// An auth code's ten minutes are over.
    Expired,
    /// No auth code is pending for this subject and purpose.
    NoCode,
}

impl MfaFailure {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Invalid => "INVALID",
            Self::Replayed => "REPLAYED",
            Self::Locked => "LOCKED",
            Self::NoDevice => "NO_DEVICE",
            Self::Expired => "EXPIRED",
            Self::NoCode => "NO_CODE",
        }
    }
}

/// Whether a TOTP device can be used yet.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum DeviceStatus {
    /// Enrolled, waiting for the first code to prove the app has the secret.
    Pending,
    Active,
}

impl DeviceStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Active => "active",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "pending" => Some(Self::Pending),
            "active" => Some(Self::Active),
            _ => None,
        }
    }
}

/// A TOTP authenticator enrolled for a subject. The secret is not here: it
/// is stored sealed and only the service opens it.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct TotpDevice {
    pub id: String,
    pub subject: String,
    pub name: String,
    pub status: DeviceStatus,
    pub params: totp::TotpParams,
    pub created_at: DateTime<Utc>,
    pub confirmed_at: Option<DateTime<Utc>>,
    pub last_used_at: Option<DateTime<Utc>>,
}

/// A device name: 1-64 printable characters.
pub fn validate_device_name(name: &str) -> Result<String, DomainError> {
    crate::text::printable("name", name, 64)
}

/// The subject as it appears in log lines: enough to correlate, not enough
/// to identify (`u_8f3a…1234` becomes `u_…1234`).
pub fn mask_subject(subject: &str) -> String {
    let chars: Vec<char> = subject.chars().collect();
    let prefix: String = match subject.find('_') {
        Some(i) if i <= 4 => subject[..=i].to_string(),
        _ => String::new(),
    };
    // Short ids would be mostly revealed by four characters: show none.
    if chars.len() < 10 {
        return format!("{prefix}…");
    }
    let tail: String = chars[chars.len() - 4..].iter().collect();
    format!("{prefix}…{tail}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn masks_subjects() {
        assert_eq!(mask_subject("u_8f3a91234"), "u_…1234");
        assert_eq!(mask_subject("alice@example.com"), "….com");
        assert_eq!(mask_subject("bob"), "…");
        assert_eq!(mask_subject("u_12345"), "u_…");
        assert_eq!(mask_subject("usr_ééééé9876"), "usr_…9876");
    }

    #[test]
    fn failure_codes_are_stable() {
        assert_eq!(
            serde_json::to_string(&MfaFailure::NoDevice).unwrap(),
            "\"NO_DEVICE\""
        );
        assert_eq!(MfaFailure::Replayed.as_str(), "REPLAYED");
    }
}
