//! The managed registry of OAuth2 clients: what a registered client is (its
//! stored digests, capabilities and audiences), how the API shows it, and
//! the rules its fields obey. Kept apart from [`crate::client`], which is
//! about authenticating any client (static, registry or certificate).

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::{
    client::{Capability, ClientSource},
    text,
    token_controls::IpNet,
    DomainError,
};

/// The prefix of the ids the registry generates.
pub const CLIENT_ID_PREFIX: &str = "cl_";

/// The longest grace a secret rotation may give the previous secret (7 days).
pub const MAX_ROTATION_GRACE_SECS: i64 = 604_800;

/// At most this many audiences per client.
pub const MAX_AUDIENCES: usize = 32;

/// A client of the managed registry, as stored. The secret is only ever
/// here as its HMAC-SHA-256 (hex) under the server key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RegisteredClient {
    pub id: String,
    pub name: String,
    pub secret_hash: String,
    /// The digest of the secret before the last rotation, while its grace
    /// lasts.
    pub previous_secret_hash: Option<String>,
    pub previous_secret_expires_at: Option<DateTime<Utc>>,
    /// Sorted, without duplicates, never empty.
    pub capabilities: Vec<Capability>,
    /// The audiences whose tokens it may introspect; `None` for any.
    pub audiences: Option<Vec<String>>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub deleted_at: Option<DateTime<Utc>>,
    /// Networks the client may authenticate from (empty: any).
    pub ip_allow: Vec<IpNet>,
    /// Networks it may never authenticate from (wins over `ip_allow`).
    pub ip_deny: Vec<IpNet>,
}

/// A client as the API and CLI show it (never a secret or a digest).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema, PartialEq)]
pub struct ClientView {
    pub id: String,
    pub name: String,
    pub capabilities: Vec<Capability>,
    /// The audiences whose tokens it may introspect; `null` for any.
    pub audiences: Option<Vec<String>>,
    /// `registry` (managed here) or `environment` (`INTROSPECTION_CLIENTS`,
    /// read-only).
    pub source: ClientSource,
    /// `null` for a client from the environment.
    pub created_at: Option<DateTime<Utc>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub updated_at: Option<DateTime<Utc>>,
    /// Until when the secret before the last rotation still works.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub previous_secret_expires_at: Option<DateTime<Utc>>,
    /// Networks the client may authenticate from (empty: any).
    #[serde(default)]
    #[schema(value_type = Vec<String>)]
    pub ip_allow: Vec<IpNet>,
    /// Networks it may never authenticate from (wins over `ip_allow`).
    #[serde(default)]
    #[schema(value_type = Vec<String>)]
    pub ip_deny: Vec<IpNet>,
}

impl RegisteredClient {
    pub fn view(&self) -> ClientView {
        ClientView {
            id: self.id.clone(),
            name: self.name.clone(),
            capabilities: self.capabilities.clone(),
            audiences: self.audiences.clone(),
            source: ClientSource::Registry,
            created_at: Some(self.created_at),
            updated_at: Some(self.updated_at),
            previous_secret_expires_at: self.previous_secret_expires_at,
            ip_allow: self.ip_allow.clone(),
            ip_deny: self.ip_deny.clone(),
        }
    }

    /// Whether the client may authenticate from `ip` (see
    /// [`crate::token_controls::ip_allowed`]).
    pub fn ip_allowed(&self, ip: Option<std::net::IpAddr>) -> bool {
        crate::token_controls::ip_allowed(&self.ip_allow, &self.ip_deny, ip)
    }
}

/// A new registry client id: `cl_` and a UUIDv7 in 32 hex digits, so ids
/// sort by creation time (the listings page by id) and never contain `:`.
pub fn new_client_id() -> String {
    format!("{CLIENT_ID_PREFIX}{}", uuid::Uuid::now_v7().simple())
}

/// Whether `s` has the shape of an id the registry generates (checked before
/// a lookup or as a cursor).
pub fn is_registry_client_id(s: &str) -> bool {
    s.strip_prefix(CLIENT_ID_PREFIX).is_some_and(|rest| {
        rest.len() == 32 && rest.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
    })
}

/// A client's display name: 1-200 printable characters, trimmed.
pub fn validate_client_name(name: &str) -> Result<String, DomainError> {
    text::printable("name", name, 200)
}

/// Audiences: 1-32 distinct values of 1-256 visible ASCII characters (an
/// audience is usually a URL or a name). `None` means any audience.
pub fn validate_audiences(
    audiences: Option<Vec<String>>,
) -> Result<Option<Vec<String>>, DomainError> {
    let Some(list) = audiences else {
        return Ok(None);
    };
    if list.is_empty() || list.len() > MAX_AUDIENCES {
        return Err(DomainError::invalid(
            "audiences",
            "must list 1-32 audiences, or be omitted (or null) for any audience",
        ));
    }
    let mut out: Vec<String> = Vec::with_capacity(list.len());
    for a in list {
        let ok = (1..=256).contains(&a.len()) && a.bytes().all(|b| b.is_ascii_graphic());
        if !ok {
            return Err(DomainError::invalid(
                "audiences",
                "each audience must be 1-256 visible ASCII characters without spaces",
            ));
        }
        if !out.contains(&a) {
            out.push(a);
        }
    }
    Ok(Some(out))
}

/// A rotation's grace in seconds: 0 (the old secret stops at once) to 7 days.
pub fn validate_grace(seconds: Option<i64>) -> Result<i64, DomainError> {
    match seconds.unwrap_or(0) {
        s @ 0..=MAX_ROTATION_GRACE_SECS => Ok(s),
        _ => Err(DomainError::invalid(
            "grace_seconds",
            "must be 0-604800 (7 days)",
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::client::is_valid_client_id;

    #[test]
    fn generated_ids_are_valid_and_recognised() {
        let id = new_client_id();
        assert!(is_valid_client_id(&id));
        assert!(is_registry_client_id(&id));
        assert!(!is_registry_client_id("cl_xyz"));
        assert!(!is_registry_client_id("rs-1"));
    }

    #[test]
    fn audiences_are_checked_and_deduplicated() {
        assert_eq!(validate_audiences(None).unwrap(), None);
        let got = validate_audiences(Some(vec!["api".into(), "api".into(), "b".into()])).unwrap();
        assert_eq!(got, Some(vec!["api".to_string(), "b".to_string()]));
        assert!(validate_audiences(Some(vec![])).is_err());
        assert!(validate_audiences(Some(vec!["a b".into()])).is_err());
    }

    #[test]
    fn grace_is_bounded() {
        assert_eq!(validate_grace(None).unwrap(), 0);
        assert_eq!(validate_grace(Some(604_800)).unwrap(), 604_800);
        assert!(validate_grace(Some(-1)).is_err());
        assert!(validate_grace(Some(604_801)).is_err());
    }
}
