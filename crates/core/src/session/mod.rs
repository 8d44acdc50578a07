//! Sessions for people: a session (`sid`) is what an access token belongs
//! to and what a family of refresh tokens rotates within. The rules here are
//! pure: when a session is live, when a refresh token expires, which scopes a
//! session gets, and what a presented refresh token that was already used
//! means (a grace replay, or reuse).

mod scope;

use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

pub use scope::{grant_scope, RoleScopes};

/// Longest reuse grace window an operator may configure.
pub const MAX_REFRESH_GRACE_SECS: i64 = 60;
/// Longest access token lifetime an operator may configure.
pub const MAX_ACCESS_TTL_SECS: i64 = 3600;
/// How long a second-factor login challenge stays open.
pub const CHALLENGE_TTL_SECS: i64 = 300;

/// Why a session ended; stored and shown as the snake-case string.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum RevokeReason {
    Logout,
    Admin,
    ReuseDetected,
    PasswordChanged,
    /// The password was reset through a mailed link.
    PasswordReset,
    UserDisabled,
    UserDeleted,
    UserErased,
    /// An OAuth2 client revoked one of its tokens (`POST /oauth2/revoke`).
    ClientRevocation,
}

impl RevokeReason {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Logout => "logout",
            Self::Admin => "admin",
            Self::ReuseDetected => "reuse_detected",
            Self::PasswordChanged => "password_changed",
            Self::PasswordReset => "password_reset",
            Self::UserDisabled => "user_disabled",
            Self::UserDeleted => "user_deleted",
            Self::UserErased => "user_erased",
            Self::ClientRevocation => "client_revocation",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        [
            Self::Logout,
            Self::Admin,
            Self::ReuseDetected,
            Self::PasswordChanged,
            Self::PasswordReset,
            Self::UserDisabled,
            Self::UserDeleted,
            Self::UserErased,
            Self::ClientRevocation,
        ]
        .into_iter()
        .find(|r| r.as_str() == s)
    }
}

/// A stored session. The client's IP and user agent are sealed.
#[derive(Debug, Clone, PartialEq)]
pub struct Session {
    pub id: String,
    /// The user id for Tessera's own users; the application's subject for
    /// sessions it opens itself (`POST /v1/sessions`).
    pub subject: String,
    pub user_id: Option<String>,
    pub client_id: Option<String>,
    pub scope: Vec<String>,
    /// How the person authenticated (`pwd`, `otp`, ... as RFC 8176 names them).
    pub amr: Vec<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub last_refreshed_at: Option<DateTime<Utc>>,
    pub idle_expires_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
    pub revoked_at: Option<DateTime<Utc>>,
    pub revoke_reason: Option<RevokeReason>,
    pub ip_sealed: Option<String>,
    pub user_agent_sealed: Option<String>,
    /// The keyed hash of the device id the session was opened from, when it
    /// is device-bound (never the id itself); a refresh must present it.
    pub device_hash: Option<String>,
}

/// A session as the API shows it.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct SessionView {
    pub id: String,
    pub subject: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client_id: Option<String>,
    pub scope: String,
    pub amr: Vec<String>,
    /// `active`, `revoked` or `expired`, judged now.
    pub state: &'static str,
    pub created_at: DateTime<Utc>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_refreshed_at: Option<DateTime<Utc>>,
    pub idle_expires_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub revoked_at: Option<DateTime<Utc>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub revoke_reason: Option<RevokeReason>,
    /// Whether a refresh must come from the device the session was opened
    /// from (its id is kept only as a keyed hash, never shown).
    pub device_bound: bool,
}

impl Session {
    /// Live: not revoked, and neither its absolute nor its idle lifetime over.
    pub fn is_active_at(&self, now: DateTime<Utc>) -> bool {
        self.revoked_at.is_none() && now < self.expires_at && now < self.idle_expires_at
    }

    pub fn state_at(&self, now: DateTime<Utc>) -> &'static str {
        if self.revoked_at.is_some() {
            "revoked"
        } else if self.is_active_at(now) {
            "active"
        } else {
            "expired"
        }
    }

    pub fn view(&self, now: DateTime<Utc>) -> SessionView {
        SessionView {
            id: self.id.clone(),
            subject: self.subject.clone(),
            user_id: self.user_id.clone(),
            client_id: self.client_id.clone(),
            scope: self.scope.join(" "),
            amr: self.amr.clone(),
            state: self.state_at(now),
            created_at: self.created_at,
            last_refreshed_at: self.last_refreshed_at,
            idle_expires_at: self.idle_expires_at,
            expires_at: self.expires_at,
            revoked_at: self.revoked_at,
            revoke_reason: self.revoke_reason,
            device_bound: self.device_hash.is_some(),
        }
    }
}

/// Whether sessions bind to the device they are opened from
/// (`TESSERA_SESSION_DEVICE_BINDING`). The device is the `X-Device-Id` the
/// client sends; a bound session refreshes only with that same id. The
/// setting decides at opening: a bound session stays bound until it ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SessionDeviceBinding {
    /// No session binds; a device id sent at login is ignored.
    Off,
    /// A session binds when its opening request names a device (the
    /// default: clients that send none work as before).
    #[default]
    WhenSent,
    /// Every session binds: opening one without a device id is refused.
    Required,
}

impl SessionDeviceBinding {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Off => "off",
            Self::WhenSent => "when_sent",
            Self::Required => "required",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        [Self::Off, Self::WhenSent, Self::Required]
            .into_iter()
            .find(|m| m.as_str() == s)
    }

    /// The device id a new session binds to, given the one its opening
    /// request named: `None` for an unbound session, and an error when the
    /// mode requires a device and none was named.
    pub fn device_to_bind(
        self,
        device_id: Option<&str>,
    ) -> Result<Option<&str>, crate::DomainError> {
        match (self, device_id) {
            (Self::Off, _) => Ok(None),
            (Self::Required, None) => Err(crate::DomainError::DeviceRequired),
            (_, id) => Ok(id),
        }
    }
}

/// How long sessions and their tokens live.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SessionLifetimes {
    pub access: Duration,
    /// From the session's start; nothing renews it.
    pub absolute: Duration,
    /// Renewed by each refresh.
    pub idle: Duration,
    /// A used refresh token's immediate successor may be handed out again
    /// for this long (0: never).
    pub reuse_grace: Duration,
}

impl Default for SessionLifetimes {
    fn default() -> Self {
        Self {
            access: Duration::minutes(15),
            absolute: Duration::days(30),
            idle: Duration::days(7),
            reuse_grace: Duration::zero(),
        }
    }
}

impl SessionLifetimes {
    /// The idle deadline after activity at `now`, never past the absolute end.
    pub fn idle_deadline(&self, now: DateTime<Utc>, expires_at: DateTime<Utc>) -> DateTime<Utc> {
        (now + self.idle).min(expires_at)
    }

    /// When a refresh token issued at `now` expires: it never outlives its
    /// session's absolute or (renewed) idle deadline.
    pub fn refresh_expiry(&self, now: DateTime<Utc>, expires_at: DateTime<Utc>) -> DateTime<Utc> {
        self.idle_deadline(now, expires_at)
    }
}

/// A stored refresh token (the raw value is never stored).
#[derive(Debug, Clone, PartialEq)]
pub struct RefreshToken {
    pub id: String,
    pub session_id: String,
    pub parent_id: Option<String>,
    pub created_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
    pub used_at: Option<DateTime<Utc>>,
    pub revoked_at: Option<DateTime<Utc>>,
    pub successor_id: Option<String>,
    /// The successor's raw value, sealed, while the grace window lasts.
    pub successor_sealed: Option<String>,
    pub successor_until: Option<DateTime<Utc>>,
}

/// What a presented refresh token is, judged inside the refresh transaction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RefreshVerdict {
    /// Unused and live: rotate it.
    Rotate,
    /// Used a moment ago: hand out the same successor again (grace window).
    GraceReplay,
    /// Used (beyond the window) or its successor moved on: revoke the family.
    Reuse,
    /// Expired or revoked: refuse, without revoking anything more.
    Dead,
}

impl RefreshToken {
    /// The verdict for this token presented at `now`. `successor_unused`
    /// says whether the immediate successor is itself unused and unrevoked
    /// (checked only for a used token).
    pub fn verdict(&self, now: DateTime<Utc>, successor_unused: bool) -> RefreshVerdict {
        if self.revoked_at.is_some() {
            return RefreshVerdict::Dead;
        }
        match self.used_at {
            None if now < self.expires_at => RefreshVerdict::Rotate,
            None => RefreshVerdict::Dead,
            Some(_) => {
                let in_grace = self.successor_until.is_some_and(|until| now < until)
                    && self.successor_sealed.is_some();
                if in_grace && successor_unused {
                    RefreshVerdict::GraceReplay
                } else {
                    RefreshVerdict::Reuse
                }
            }
        }
    }
}

/// A client id as a login or an opened session names it: 1-200 printable
/// characters.
pub fn validate_client_id(client_id: Option<String>) -> Result<Option<String>, crate::DomainError> {
    client_id
        .map(|c| crate::text::printable("client_id", &c, 200))
        .transpose()
}

/// Scopes a session is opened with: at most 64, each an RFC 6749 scope
/// token of at most 128 characters.
pub fn validate_scopes(scopes: &[String]) -> Result<Vec<String>, crate::DomainError> {
    let ok = scopes.len() <= 64
        && scopes.iter().all(|s| {
            !s.is_empty()
                && s.len() <= 128
                && s.bytes()
                    .all(|b| b == 0x21 || (0x23..=0x5B).contains(&b) || (0x5D..=0x7E).contains(&b))
        });
    if ok {
        Ok(scopes.to_vec())
    } else {
        Err(crate::DomainError::invalid(
            "scopes",
            "at most 64 scopes of 1-128 printable ASCII characters, no spaces or quotes",
        ))
    }
}

/// Authentication methods (RFC 8176 names): at most 8, each 1-32 of
/// `a-z 0-9 _ -`.
pub fn validate_amr(amr: &[String]) -> Result<Vec<String>, crate::DomainError> {
    let ok = amr.len() <= 8
        && amr.iter().all(|m| {
            !m.is_empty()
                && m.len() <= 32
                && m.bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-')
        });
    if ok {
        Ok(amr.to_vec())
    } else {
        Err(crate::DomainError::invalid(
            "amr",
            "at most 8 methods of 1-32 characters a-z, 0-9, _ or -",
        ))
    }
}

#[cfg(test)]
mod tests;
