//! OAuth2 clients: the resource servers and gateways that ask Tessera about
//! tokens (introspection, revocation, WebSocket tickets). A client is known
//! from `INTROSPECTION_CLIENTS`, from the managed registry, or by a client
//! certificate whose CN is allowed; once authenticated, each is a
//! [`ClientIdentity`] with the capabilities it may use.

use serde::{Deserialize, Serialize};

use crate::DomainError;

/// What an authenticated client may do.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Hash,
    PartialOrd,
    Ord,
    Serialize,
    Deserialize,
    utoipa::ToSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum Capability {
    /// `POST /oauth2/introspect`.
    Introspect,
    /// `POST /oauth2/revoke`.
    Revoke,
    /// `POST /v1/ws-tickets/redeem` and the connection reports.
    WsTickets,
    /// Passing the caller's facts to `POST /v1/tokens/verify` (usage controls).
    Verify,
    /// `GET /v1/events/stream`: the lifecycle events (revocations and the
    /// rest of the webhook catalogue) as Server-Sent Events.
    Events,
}

impl Capability {
    pub const ALL: [Capability; 5] = [
        Capability::Introspect,
        Capability::Revoke,
        Capability::WsTickets,
        Capability::Verify,
        Capability::Events,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Introspect => "introspect",
            Self::Revoke => "revoke",
            Self::WsTickets => "ws_tickets",
            Self::Verify => "verify",
            Self::Events => "events",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|c| c.as_str() == s)
    }
}

/// The longest list of capability names accepted (duplicates included).
pub const MAX_CAPABILITY_NAMES: usize = 16;

/// Parses, de-duplicates and sorts a list of capability names: 422 for an
/// unknown name, an empty list or one over [`MAX_CAPABILITY_NAMES`].
pub fn parse_capabilities<S: AsRef<str>>(names: &[S]) -> Result<Vec<Capability>, DomainError> {
    if names.len() > MAX_CAPABILITY_NAMES {
        return Err(DomainError::invalid(
            "capabilities",
            "must list at most 16 capability names",
        ));
    }
    let mut out = Vec::with_capacity(names.len());
    for name in names {
        let c = Capability::parse(name.as_ref()).ok_or_else(|| {
            DomainError::invalid(
                "capabilities",
                "must be among introspect, revoke, ws_tickets, verify, events",
            )
        })?;
        out.push(c);
    }
    if out.is_empty() {
        return Err(DomainError::invalid(
            "capabilities",
            "must name at least one capability",
        ));
    }
    out.sort();
    out.dedup();
    Ok(out)
}

/// Where a client is defined.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ClientSource {
    /// The managed registry (`/v1/clients`, `tessera client`).
    Registry,
    /// `INTROSPECTION_CLIENTS`.
    Environment,
    /// A client certificate whose CN is in `INTROSPECTION_MTLS_ALLOWED_CNS`.
    Mtls,
}

/// How the client proved who it is (the `method` label of
/// `tokens_client_auth_failures_total`, and the audit record's detail).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum AuthMethod {
    ClientSecretBasic,
    ClientSecretPost,
    TlsClientAuth,
    /// No credentials at all.
    None,
}

impl AuthMethod {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::ClientSecretBasic => "client_secret_basic",
            Self::ClientSecretPost => "client_secret_post",
            Self::TlsClientAuth => "tls_client_auth",
            Self::None => "none",
        }
    }
}

/// An authenticated client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientIdentity {
    /// The client id (`mtls:<CN>` for a certificate).
    pub id: String,
    pub source: ClientSource,
    pub method: AuthMethod,
    pub capabilities: Vec<Capability>,
    /// The audiences whose tokens it may introspect; `None` for any.
    pub audiences: Option<Vec<String>>,
}

impl ClientIdentity {
    pub fn can(&self, capability: Capability) -> bool {
        self.capabilities.contains(&capability)
    }

    /// Whether a token for `audience` may be described to this client.
    pub fn may_see_audience(&self, audience: &str) -> bool {
        self.audiences
            .as_ref()
            .is_none_or(|allowed| allowed.iter().any(|a| a == audience))
    }
}

/// Why a client authentication failed: kept in the log and the audit
/// record, never told to the caller (every one is `401 invalid_client`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ClientAuthFailure {
    /// No credentials of any kind.
    Missing,
    /// Credentials that do not parse (bad Basic encoding, an id without a
    /// secret) or two methods at once (RFC 6749 §2.3).
    Malformed,
    UnknownClient,
    WrongSecret,
    /// A certificate whose CN is not allowed (or that has several CNs).
    CertificateRefused,
    /// The client exists but lacks the capability the endpoint needs.
    NotPermitted,
    /// The right credentials, from an address outside the client's IP lists.
    IpNotAllowed,
    /// Too many failures from this IP.
    Throttled,
    /// The registry could not be read (the database is down): the client
    /// may be fine, so the caller hears `503`, not `invalid_client`.
    Unavailable,
}

impl ClientAuthFailure {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Missing => "missing",
            Self::Malformed => "malformed",
            Self::UnknownClient => "unknown_client",
            Self::WrongSecret => "wrong_secret",
            Self::CertificateRefused => "certificate_refused",
            Self::NotPermitted => "not_permitted",
            Self::IpNotAllowed => "ip_not_allowed",
            Self::Throttled => "throttled",
            Self::Unavailable => "unavailable",
        }
    }
}

/// A client certificate that the TLS listener verified against the client
/// CA (chain, validity, `clientAuth`, CRL). Handlers find it in the
/// request's extensions; it says nothing yet about which client it is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeerCertificate {
    /// Every CN of the subject, in order (a certificate authenticates a
    /// client only when it has exactly one).
    pub common_names: Vec<String>,
}

impl PeerCertificate {
    /// The subject's only CN, if it has exactly one.
    pub fn sole_common_name(&self) -> Option<&str> {
        match self.common_names.as_slice() {
            [cn] => Some(cn),
            _ => None,
        }
    }
}

/// The shortest secret `INTROSPECTION_CLIENTS` accepts.
pub const MIN_STATIC_SECRET_LEN: usize = 16;

/// A client id: 1-128 characters of `A-Za-z0-9._:-` (no `:` for ids an
/// operator defines in `INTROSPECTION_CLIENTS`, where it separates the secret).
pub fn is_valid_client_id(id: &str) -> bool {
    (1..=128).contains(&id.len())
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-' | b':'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn capabilities_parse_sort_and_dedupe() {
        let caps = parse_capabilities(&["revoke", "introspect", "revoke"]).unwrap();
        assert_eq!(caps, vec![Capability::Introspect, Capability::Revoke]);
        assert!(parse_capabilities(&["root"]).is_err());
        assert_eq!(
            parse_capabilities(&["events"]).unwrap(),
            vec![Capability::Events]
        );
        assert!(parse_capabilities::<&str>(&[]).is_err());
    }

    #[test]
    fn audiences_restrict_only_when_set() {
        let mut c = ClientIdentity {
            id: "rs".into(),
            source: ClientSource::Registry,
            method: AuthMethod::ClientSecretBasic,
            capabilities: vec![Capability::Introspect],
            audiences: None,
        };
        assert!(c.may_see_audience("anything"));
        c.audiences = Some(vec!["api".into()]);
        assert!(c.may_see_audience("api"));
        assert!(!c.may_see_audience("other"));
        assert!(c.can(Capability::Introspect) && !c.can(Capability::Revoke));
    }

    #[test]
    fn client_ids() {
        assert!(is_valid_client_id("mtls:gateway.internal"));
        assert!(!is_valid_client_id(""));
        assert!(!is_valid_client_id("a b"));
    }
}
