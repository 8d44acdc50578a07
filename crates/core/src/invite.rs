//! Invites: human-friendly one-time codes that grant a role, the issuer
//! policy (who may grant what), and the rules for validating and redeeming.
//!
//! Codes are 16 Crockford base32 characters (80 bits from the OS CSPRNG),
//! shown as `K7QH-2MXD-9TVA-R4PE`. They are stored only as an HMAC-SHA-256
//! under a server key ([`crate::crypto::KeyedHasher`]), so a database dump
//! alone does not allow an offline search of the code space.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use utoipa::ToSchema;

use crate::one_time::{Lifecycle, Unusable};

const CODE_LEN: usize = 16;
/// Inputs longer than this are not codes, whatever they contain.
pub const MAX_CODE_INPUT: usize = crate::crockford::MAX_INPUT;

/// A fresh code, formatted for people (groups of four; 80 bits).
pub fn generate_code() -> String {
    crate::crockford::generate(CODE_LEN)
}

/// The canonical form of a presented code: upper case, hyphens and spaces
/// dropped, Crockford's look-alikes mapped (O→0, I/L→1). `None` if it cannot
/// be a code.
pub fn normalize_code(input: &str) -> Option<String> {
    crate::crockford::normalize(input, CODE_LEN)
}

/// Who issued an invite: an application subject and its role.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Issuer {
    pub subject: String,
    pub role: String,
}

/// What redeeming an invite grants.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Grants {
    pub role: String,
    #[serde(default)]
    pub scopes: Vec<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Invite {
    pub id: String,
    pub issuer: Issuer,
    pub grants: Grants,
    /// Lower-cased; redemption must present the same address.
    pub email: Option<String>,
    pub max_uses: i64,
    pub uses: i64,
    pub expires_at: DateTime<Utc>,
    pub revoked_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub deleted_at: Option<DateTime<Utc>>,
    pub metadata: Map<String, Value>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum InviteState {
    Active,
    Used,
    Expired,
    Revoked,
}

impl InviteState {
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "active" => Self::Active,
            "used" => Self::Used,
            "expired" => Self::Expired,
            "revoked" => Self::Revoked,
            _ => return None,
        })
    }

    /// The API's word for the state (what `parse` reads back).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Active => "active",
            Self::Used => "used",
            Self::Expired => "expired",
            Self::Revoked => "revoked",
        }
    }
}

/// Why an invite cannot be used. The codes are public API.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum InviteFailure {
    NotFound,
    Expired,
    Revoked,
    UsedUp,
    EmailMismatch,
    /// The invite is bound to an e-mail address and none was given.
    EmailRequired,
}

impl InviteFailure {
    pub const ALL: [Self; 6] = [
        Self::NotFound,
        Self::Expired,
        Self::Revoked,
        Self::UsedUp,
        Self::EmailMismatch,
        Self::EmailRequired,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::NotFound => "NOT_FOUND",
            Self::Expired => "EXPIRED",
            Self::Revoked => "REVOKED",
            Self::UsedUp => "USED_UP",
            Self::EmailMismatch => "EMAIL_MISMATCH",
            Self::EmailRequired => "EMAIL_REQUIRED",
        }
    }
}

impl Invite {
    /// The one-time-secret state of this invite: up to `max_uses` uses
    /// until it expires; wrong guesses are limited per client, not per code.
    pub fn lifecycle(&self) -> Lifecycle {
        Lifecycle {
            expires_at: self.expires_at,
            uses: self.uses,
            max_uses: self.max_uses,
            attempts: 0,
            max_attempts: None,
            revoked: self.revoked_at.is_some(),
        }
    }

    /// Revoked wins over used, used over expired: the state a person would
    /// name first when asked why the code no longer works.
    pub fn state_at(&self, now: DateTime<Utc>) -> InviteState {
        match self.lifecycle().check(now) {
            Ok(()) => InviteState::Active,
            Err(Unusable::Revoked) => InviteState::Revoked,
            Err(Unusable::UsedUp) => InviteState::Used,
            // An invite has no attempt limit, so it is never locked.
            Err(Unusable::Expired | Unusable::Locked) => InviteState::Expired,
        }
    }

    pub fn uses_left(&self) -> i64 {
        self.lifecycle().uses_left()
    }

    /// Whether this invite can be used now, by someone presenting `email`.
    pub fn check_usable(
        &self,
        email: Option<&str>,
        now: DateTime<Utc>,
    ) -> Result<(), InviteFailure> {
        if self.deleted_at.is_some() {
            return Err(InviteFailure::NotFound);
        }
        match self.state_at(now) {
            InviteState::Revoked => return Err(InviteFailure::Revoked),
            InviteState::Used => return Err(InviteFailure::UsedUp),
            InviteState::Expired => return Err(InviteFailure::Expired),
            InviteState::Active => {}
        }
        match (&self.email, email) {
            (Some(bound), Some(given)) if bound.eq_ignore_ascii_case(given.trim()) => Ok(()),
            (Some(_), Some(_)) => Err(InviteFailure::EmailMismatch),
            (Some(_), None) => Err(InviteFailure::EmailRequired),
            (None, _) => Ok(()),
        }
    }

    pub fn view(&self, now: DateTime<Utc>) -> InviteView {
        InviteView {
            id: self.id.clone(),
            state: self.state_at(now),
            issuer: self.issuer.clone(),
            grants: self.grants.clone(),
            email: self.email.clone(),
            max_uses: self.max_uses,
            uses: self.uses,
            uses_left: self.uses_left(),
            expires_at: self.expires_at,
            revoked_at: self.revoked_at,
            created_at: self.created_at,
            updated_at: self.updated_at,
            deleted_at: self.deleted_at,
            metadata: self.metadata.clone(),
        }
    }
}

/// The invite as the API and `--json` show it. Never the code or its hash.
#[derive(Debug, Clone, Serialize, ToSchema, PartialEq)]
pub struct InviteView {
    pub id: String,
    pub state: InviteState,
    pub issuer: Issuer,
    pub grants: Grants,
    pub email: Option<String>,
    pub max_uses: i64,
    pub uses: i64,
    pub uses_left: i64,
    pub expires_at: DateTime<Utc>,
    pub revoked_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub deleted_at: Option<DateTime<Utc>>,
    #[schema(value_type = Object)]
    pub metadata: Map<String, Value>,
}

/// Which issuer roles may grant which roles. `*` means any role.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IssuerPolicy {
    rules: BTreeMap<String, BTreeSet<String>>,
}

impl Default for IssuerPolicy {
    /// Safe by default: only `admin` may invite.
    fn default() -> Self {
        Self::parse("admin=*").expect("the default policy parses")
    }
}

impl IssuerPolicy {
    /// Parses `admin=*;coordinator=member,guest;member=` (an empty list or a
    /// missing role means "may not invite").
    pub fn parse(spec: &str) -> Result<Self, String> {
        let mut rules = BTreeMap::new();
        for part in spec.split(';').map(str::trim).filter(|p| !p.is_empty()) {
            let (issuer, grants) = part
                .split_once('=')
                .ok_or_else(|| format!("expected role=grantable,roles in {part:?}"))?;
            let issuer = issuer.trim();
            if !is_role_name(issuer) {
                return Err(format!("invalid role name {issuer:?}"));
            }
            let mut set = BTreeSet::new();
            for g in grants.split(',').map(str::trim).filter(|g| !g.is_empty()) {
                if g != "*" && !is_role_name(g) {
                    return Err(format!("invalid role name {g:?}"));
                }
                set.insert(g.to_string());
            }
            rules.insert(issuer.to_string(), set);
        }
        Ok(Self { rules })
    }

    pub fn allows(&self, issuer_role: &str, granted_role: &str) -> bool {
        self.rules
            .get(issuer_role)
            .is_some_and(|set| set.contains("*") || set.contains(granted_role))
    }

    pub fn describe(&self) -> String {
        self.rules
            .iter()
            .map(|(k, v)| format!("{k}={}", v.iter().cloned().collect::<Vec<_>>().join(",")))
            .collect::<Vec<_>>()
            .join(";")
    }
}

/// Role names: 1–64 chars of `[a-z0-9_:.-]`.
pub fn is_role_name(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 64
        && s.bytes().all(|b| {
            b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'_' | b':' | b'.' | b'-')
        })
}

/// Lifetime and size limits for new invites.
#[derive(Debug, Clone)]
pub struct InviteLimits {
    pub default_lifetime: Duration,
    pub max_lifetime: Duration,
    pub max_uses: i64,
}

impl Default for InviteLimits {
    fn default() -> Self {
        Self {
            default_lifetime: Duration::days(7),
            max_lifetime: Duration::days(30),
            max_uses: 1000,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_grouped_crockford_and_normalise() {
        let code = generate_code();
        assert_eq!(code.len(), 19);
        assert_eq!(code.matches('-').count(), 3);
        let canonical = normalize_code(&code).unwrap();
        assert_eq!(canonical.len(), 16);
        assert_eq!(
            normalize_code(&code.to_lowercase()),
            Some(canonical.clone())
        );
        assert_eq!(normalize_code(&code.replace('-', "")), Some(canonical));
        assert_eq!(
            normalize_code("OIL0-0000-0000-0000").unwrap(),
            "0110000000000000"
        );
        assert_eq!(normalize_code("K7QH-2MXD-9TVA-R4P"), None);
        assert_eq!(
            normalize_code("K7QH-2MXD-9TVA-R4PU"),
            None,
            "U is not Crockford"
        );
        assert_eq!(normalize_code(&"A".repeat(100)), None);
        assert_ne!(generate_code(), generate_code());
    }

    #[test]
    fn policy() {
        let p = IssuerPolicy::parse("admin=*; coordinator=member,guest; member=").unwrap();
        assert!(p.allows("admin", "anything"));
        assert!(p.allows("coordinator", "member"));
        assert!(!p.allows("coordinator", "admin"));
        assert!(!p.allows("member", "member"));
        assert!(!p.allows("stranger", "member"));
        let d = IssuerPolicy::default();
        assert!(d.allows("admin", "member") && !d.allows("coordinator", "member"));
        assert!(IssuerPolicy::parse("Admin=*").is_err());
        assert!(IssuerPolicy::parse("admin").is_err());
    }

    #[test]
    fn usability_order() {
        let now = Utc::now();
        let mut i = Invite {
            id: "i".into(),
            issuer: Issuer {
                subject: "s".into(),
                role: "admin".into(),
            },
            grants: Grants {
                role: "member".into(),
                scopes: vec![],
            },
            email: Some("a@example.com".into()),
            max_uses: 1,
            uses: 0,
            expires_at: now + Duration::days(1),
            revoked_at: None,
            created_at: now,
            updated_at: now,
            deleted_at: None,
            metadata: Map::new(),
        };
        assert_eq!(i.check_usable(Some("A@Example.com"), now), Ok(()));
        assert_eq!(i.check_usable(None, now), Err(InviteFailure::EmailRequired));
        assert_eq!(
            i.check_usable(Some("a@example.com"), now + Duration::days(2)),
            Err(InviteFailure::Expired)
        );
        i.uses = 1;
        assert_eq!(
            i.check_usable(Some("a@example.com"), now),
            Err(InviteFailure::UsedUp)
        );
        i.revoked_at = Some(now);
        assert_eq!(
            i.check_usable(Some("a@example.com"), now),
            Err(InviteFailure::Revoked)
        );
        i.deleted_at = Some(now);
        assert_eq!(
            i.check_usable(Some("a@example.com"), now),
            Err(InviteFailure::NotFound)
        );
    }
}
