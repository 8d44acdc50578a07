//! People with an account in Tessera's own identity store: what a user record
//! holds, the rules for its fields, and the view the API shows (never the
//! password hash).

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::{email::normalize_email, invite::is_role_name, DomainError};

/// Most roles one user may hold; each maps to scopes through configuration.
pub const MAX_ROLES: usize = 16;

/// Whether the account may sign in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum UserStatus {
    Active,
    Disabled,
}

impl UserStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Active => "active",
            Self::Disabled => "disabled",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "active" => Some(Self::Active),
            "disabled" => Some(Self::Disabled),
            _ => None,
        }
    }
}

/// A stored user. `password_hash` is a PHC string and never leaves the
/// service layer: [`User::view`] is what callers see.
#[derive(Debug, Clone, PartialEq)]
pub struct User {
    pub id: String,
    pub email: String,
    pub email_verified_at: Option<DateTime<Utc>>,
    pub password_hash: Option<String>,
    pub display_name: Option<String>,
    pub locale: Option<String>,
    pub roles: Vec<String>,
    pub status: UserStatus,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub deleted_at: Option<DateTime<Utc>>,
    pub last_login_at: Option<DateTime<Utc>>,
    /// Set when the personal fields were replaced by a tombstone (erasure).
    pub erased_at: Option<DateTime<Utc>>,
}

/// A user as the API and CLI show it.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema, PartialEq)]
pub struct UserView {
    pub id: String,
    pub email: String,
    pub email_verified: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub email_verified_at: Option<DateTime<Utc>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub display_name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub locale: Option<String>,
    pub roles: Vec<String>,
    pub status: UserStatus,
    /// Whether a password is set (imported accounts may have none).
    pub has_password: bool,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub deleted_at: Option<DateTime<Utc>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_login_at: Option<DateTime<Utc>>,
}

impl User {
    /// A new active account.
    pub fn new(id: String, email: String, roles: Vec<String>, now: DateTime<Utc>) -> Self {
        Self {
            id,
            email,
            email_verified_at: None,
            password_hash: None,
            display_name: None,
            locale: None,
            roles,
            status: UserStatus::Active,
            created_at: now,
            updated_at: now,
            deleted_at: None,
            last_login_at: None,
            erased_at: None,
        }
    }

    pub fn view(&self) -> UserView {
        UserView {
            id: self.id.clone(),
            email: self.email.clone(),
            email_verified: self.email_verified_at.is_some(),
            email_verified_at: self.email_verified_at,
            display_name: self.display_name.clone(),
            locale: self.locale.clone(),
            roles: self.roles.clone(),
            status: self.status,
            has_password: self.password_hash.is_some(),
            created_at: self.created_at,
            updated_at: self.updated_at,
            deleted_at: self.deleted_at,
            last_login_at: self.last_login_at,
        }
    }

    /// Whether the account may sign in now (a password is checked apart).
    pub fn can_sign_in(&self) -> bool {
        self.status == UserStatus::Active && self.deleted_at.is_none()
    }
}

/// The user id as log lines and events show it: `u_…1234`.
pub fn mask_user_id(id: &str) -> String {
    let tail: String = id
        .chars()
        .rev()
        .take(4)
        .collect::<Vec<_>>()
        .into_iter()
        .rev()
        .collect();
    format!("u_…{tail}")
}

/// The account e-mail, as stored and looked up.
pub fn normalize_user_email(email: &str) -> Result<String, DomainError> {
    normalize_email("email", email)
}

/// A display name: printable, at most 200 characters (names rule: no
/// zero-width or bidirectional controls).
pub fn validate_display_name(name: Option<String>) -> Result<Option<String>, DomainError> {
    name.map(|n| crate::text::printable("display_name", &n, 200))
        .transpose()
}

/// A BCP 47-like locale tag: letters, digits and `-`, at most 35 characters.
pub fn validate_locale(locale: Option<String>) -> Result<Option<String>, DomainError> {
    let Some(l) = locale
        .map(|l| l.trim().to_string())
        .filter(|l| !l.is_empty())
    else {
        return Ok(None);
    };
    let ok = l.len() <= 35
        && l.split('-').all(|part| {
            !part.is_empty() && part.len() <= 8 && part.bytes().all(|b| b.is_ascii_alphanumeric())
        });
    if ok {
        Ok(Some(l))
    } else {
        Err(DomainError::invalid(
            "locale",
            "must be a language tag such as en or pt-BR",
        ))
    }
}

/// Role names: each a role name (letters, digits, `_ - : .`), no
/// duplicates, at most [`MAX_ROLES`]. Order is kept.
pub fn validate_roles(roles: &[String]) -> Result<Vec<String>, DomainError> {
    if roles.len() > MAX_ROLES {
        return Err(DomainError::invalid(
            "roles",
            format!("at most {MAX_ROLES} roles"),
        ));
    }
    let mut out: Vec<String> = Vec::with_capacity(roles.len());
    for r in roles {
        let r = r.trim();
        if !is_role_name(r) {
            return Err(DomainError::invalid(
                "roles",
                "each role is 1-64 lower-case letters, digits, '_', '-', ':' or '.'",
            ));
        }
        if !out.iter().any(|o| o == r) {
            out.push(r.to_string());
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn masks_user_ids() {
        assert_eq!(
            mask_user_id("0193a1b2-7c4d-7e8f-9a0b-1c2d3e4f1234"),
            "u_…1234"
        );
    }

    #[test]
    fn locales_and_roles() {
        assert_eq!(
            validate_locale(Some("pt-BR".into())).unwrap().as_deref(),
            Some("pt-BR")
        );
        assert!(validate_locale(Some("pt_BR".into())).is_err());
        assert_eq!(
            validate_roles(&["member".into(), "member".into()]).unwrap(),
            vec!["member"]
        );
        assert!(validate_roles(&["bad role".into()]).is_err());
    }
}
