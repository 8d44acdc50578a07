//! WebSocket tickets: browsers cannot set `Authorization` on a WebSocket
//! handshake, so a signed-in person exchanges their access token for a
//! short, single-use ticket that the page puts in the WebSocket URL, and the
//! gateway redeems it (OWASP ASVS 5.0 §4.4). This module holds what a ticket
//! is bound to and the rules of a redemption; storing it (only as SHA-256)
//! and the one-time take are the server's.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::{
    text::{self, TextRule},
    DomainError,
};

/// What a ticket is bound to. The ticket itself is never stored: only its
/// SHA-256, as the key of this record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WsTicket {
    pub session_id: String,
    /// The access token's `sub`.
    pub subject: String,
    /// The access token's scopes, space-separated.
    pub scope: String,
    /// The audience the page asked for (a gateway's name), if any.
    pub audience: Option<String>,
    /// A keyed hash of the caller's IP at issue (never the address).
    pub ip_hash: Option<String>,
    pub issued_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
}

/// Why a redemption answered `{"active": false}` (the `reason` of
/// `ws.connection.rejected`; never told to the gateway).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum RejectReason {
    /// No such ticket: never issued, already redeemed, or gone from Redis
    /// after its TTL. Nothing tells whose it was.
    UnknownOrUsed,
    Expired,
    WrongAudience,
    WrongIp,
    /// The session was revoked or has ended.
    SessionRevoked,
}

impl RejectReason {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::UnknownOrUsed => "unknown_or_used",
            Self::Expired => "expired",
            Self::WrongAudience => "wrong_audience",
            Self::WrongIp => "wrong_ip",
            Self::SessionRevoked => "session_revoked",
        }
    }
}

/// What the gateway states at redemption.
#[derive(Debug, Clone, Copy)]
pub struct Presented<'a> {
    pub audience: Option<&'a str>,
    /// The keyed hash of the `client_ip` the gateway saw, when it sent one.
    pub ip_hash: Option<&'a str>,
    /// The audiences the redeeming client may serve (`None` for any).
    pub client_audiences: Option<&'a [String]>,
}

impl WsTicket {
    /// The ticket's own rules (the session is checked apart, in the store):
    /// not expired, the same audience when the ticket names one (and one
    /// the client may serve; a client limited to audiences serves only
    /// tickets that name one of them), the same IP when the gateway gives one.
    pub fn check(&self, p: &Presented<'_>, now: DateTime<Utc>) -> Result<(), RejectReason> {
        if now >= self.expires_at {
            return Err(RejectReason::Expired);
        }
        match &self.audience {
            Some(aud) => {
                let stated = p.audience == Some(aud.as_str());
                let allowed = p.client_audiences.is_none_or(|list| list.contains(aud));
                if !stated || !allowed {
                    return Err(RejectReason::WrongAudience);
                }
            }
            // A gateway limited to some audiences serves no ticket that
            // names none (as introspection shows it no such token).
            None if p.client_audiences.is_some() => return Err(RejectReason::WrongAudience),
            None => {}
        }
        if let Some(ip) = p.ip_hash {
            // A ticket issued without a known address cannot be matched:
            // refuse rather than accept any IP.
            if self.ip_hash.as_deref() != Some(ip) {
                return Err(RejectReason::WrongIp);
            }
        }
        Ok(())
    }
}

/// Longest audience, in characters.
pub const MAX_AUDIENCE_CHARS: usize = 200;

/// An optional audience: 1-200 printable characters, trimmed.
pub fn validate_audience(audience: Option<&str>) -> Result<Option<String>, DomainError> {
    audience
        .map(|a| text::printable("audience", a, MAX_AUDIENCE_CHARS))
        .transpose()
}

/// A WebSocket connection opened by a redeemed ticket, as the gateway
/// reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WsConnection {
    pub id: String,
    pub session_id: String,
    pub subject: String,
    /// The built-in user, when the session is one's (for the masked id).
    pub user_id: Option<String>,
    /// The gateway (OAuth2 client) that redeemed the ticket.
    pub client_id: String,
    pub audience: Option<String>,
    pub opened_at: DateTime<Utc>,
    pub closed_at: Option<DateTime<Utc>>,
    pub close_code: Option<u16>,
    pub close_reason: Option<String>,
}

/// A close report's code and reason: a WebSocket close code (1000-4999,
/// RFC 6455 §7.4) and a reason of at most 123 characters (a close frame
/// holds 123 bytes; characters, so the API document can state the limit),
/// one line of text.
pub fn validate_close(
    code: Option<i64>,
    reason: Option<String>,
) -> Result<(Option<u16>, Option<String>), DomainError> {
    let code = code
        .map(|c| {
            u16::try_from(c)
                .ok()
                .filter(|c| (1000..=4999).contains(c))
                .ok_or_else(|| DomainError::invalid("code", "must be a close code, 1000-4999"))
        })
        .transpose()?;
    let reason = text::optional("reason", reason, 123, TextRule::Line)?;
    Ok((code, reason))
}

#[cfg(test)]
mod tests {
    use chrono::Duration;

    use super::*;

    fn ticket(audience: Option<&str>, ip: Option<&str>) -> WsTicket {
        let now = Utc::now();
        WsTicket {
            session_id: "s".into(),
            subject: "u".into(),
            scope: String::new(),
            audience: audience.map(str::to_string),
            ip_hash: ip.map(str::to_string),
            issued_at: now,
            expires_at: now + Duration::seconds(30),
        }
    }

    fn presented<'a>(audience: Option<&'a str>, ip: Option<&'a str>) -> Presented<'a> {
        Presented {
            audience,
            ip_hash: ip,
            client_audiences: None,
        }
    }

    #[test]
    fn audience_and_ip_bind_when_set() {
        let now = Utc::now();
        let t = ticket(Some("chat"), Some("h1"));
        assert_eq!(t.check(&presented(Some("chat"), Some("h1")), now), Ok(()));
        assert_eq!(t.check(&presented(Some("chat"), None), now), Ok(()));
        assert_eq!(
            t.check(&presented(Some("news"), None), now),
            Err(RejectReason::WrongAudience)
        );
        assert_eq!(
            t.check(&presented(None, None), now),
            Err(RejectReason::WrongAudience)
        );
        assert_eq!(
            t.check(&presented(Some("chat"), Some("h2")), now),
            Err(RejectReason::WrongIp)
        );
        let unbound = ticket(None, None);
        assert_eq!(unbound.check(&presented(Some("any"), None), now), Ok(()));
        assert_eq!(
            unbound.check(&presented(None, Some("h1")), now),
            Err(RejectReason::WrongIp)
        );
        let later = now + Duration::seconds(31);
        assert_eq!(
            t.check(&presented(Some("chat"), None), later),
            Err(RejectReason::Expired)
        );
    }

    #[test]
    fn a_client_limited_to_audiences_cannot_take_others() {
        let t = ticket(Some("chat"), None);
        let allowed = vec!["news".to_string()];
        let p = Presented {
            audience: Some("chat"),
            ip_hash: None,
            client_audiences: Some(&allowed),
        };
        assert_eq!(t.check(&p, Utc::now()), Err(RejectReason::WrongAudience));
        // Nor a ticket that names no audience.
        let p = Presented {
            audience: None,
            ip_hash: None,
            client_audiences: Some(&allowed),
        };
        let unbound = ticket(None, None);
        assert_eq!(
            unbound.check(&p, Utc::now()),
            Err(RejectReason::WrongAudience)
        );
    }

    #[test]
    fn close_reports() {
        assert_eq!(validate_close(None, None).unwrap(), (None, None));
        assert_eq!(
            validate_close(Some(1000), Some("bye".into())).unwrap(),
            (Some(1000), Some("bye".into()))
        );
        assert!(validate_close(Some(999), None).is_err());
        assert!(validate_close(Some(70_000), None).is_err());
        assert!(validate_close(None, Some("a\nb".into())).is_err());
        assert!(validate_close(None, Some("é".repeat(123))).is_ok());
        assert!(validate_close(None, Some("a".repeat(124))).is_err());
        assert!(validate_audience(Some("  ")).is_err());
        assert_eq!(
            validate_audience(Some(" chat ")).unwrap().as_deref(),
            Some("chat")
        );
    }
}
