//! Who is calling, as far as the audit log is concerned: request id, client
//! IP and user agent, and the request's audit context built from them (IP
//! and user agent sealed, i.e. encrypted, before anything stores them).
//! The client IP comes from the TCP peer and, behind trusted proxies, from
//! `X-Forwarded-For` under the rule in [`super::forwarded`].

use std::{
    convert::Infallible,
    net::{IpAddr, SocketAddr},
    sync::OnceLock,
};

use axum::{
    extract::{ConnectInfo, FromRequestParts},
    http::{header, request::Parts, HeaderMap},
};
use tessera_core::{
    audit::{RequestContext, IP_CONTEXT, USER_AGENT_CONTEXT},
    crypto::Keyring,
};

use super::{
    forwarded::{client_ip, TrustedProxies},
    request_id::RequestId,
    state::AppState,
};

/// Longest user agent we keep, in bytes (cut at a character boundary); the
/// rest is noise or abuse, and every audit row carries it.
pub const MAX_USER_AGENT_BYTES: usize = 256;

#[derive(Debug, Clone, Default)]
pub struct ClientInfo {
    pub request_id: Option<String>,
    pub ip: Option<IpAddr>,
    pub user_agent: Option<String>,
}

impl ClientInfo {
    fn from_parts(parts: &Parts, trusted: &TrustedProxies) -> Self {
        let peer = parts
            .extensions
            .get::<ConnectInfo<SocketAddr>>()
            .map(|c| c.0.ip());
        // X-Forwarded-For is only read when the peer is a trusted proxy (and
        // not at all when none is configured); otherwise any client could
        // forge its address.
        let ip = peer.map(|peer| {
            let forwarded = trusted
                .contains(peer)
                .then(|| forwarded_for(&parts.headers))
                .flatten();
            client_ip(peer, forwarded.as_deref(), trusted)
        });
        Self {
            request_id: parts.extensions.get::<RequestId>().map(|r| r.0.clone()),
            ip,
            user_agent: parts
                .headers
                .get(header::USER_AGENT)
                .and_then(|v| v.to_str().ok())
                // Kept, but cleaned (a header is not refused for a control
                // character) and capped in bytes.
                .map(|s| {
                    let clean = tessera_core::text::sanitize_header_text(s);
                    truncate_at_char(&clean, MAX_USER_AGENT_BYTES).to_string()
                }),
        }
    }

    /// The audit context, with IP (in its text form) and user agent sealed.
    pub fn seal(&self, ring: &Keyring) -> RequestContext {
        RequestContext {
            request_id: self.request_id.clone(),
            ip_sealed: self
                .ip
                .map(|ip| ring.seal(ip.to_string().as_bytes(), IP_CONTEXT)),
            user_agent_sealed: self
                .user_agent
                .as_ref()
                .map(|ua| ring.seal(ua.as_bytes(), USER_AGENT_CONTEXT)),
        }
    }
}

/// Every `X-Forwarded-For` line joined with `,` (a list split over several
/// lines is one list). A line that is not visible ASCII becomes an entry
/// that does not parse, so the walk stops there.
fn forwarded_for(headers: &HeaderMap) -> Option<String> {
    let mut lines = headers.get_all("x-forwarded-for").iter().peekable();
    lines.peek()?;
    Some(
        lines
            .map(|v| v.to_str().unwrap_or("invalid"))
            .collect::<Vec<_>>()
            .join(","),
    )
}

/// The longest prefix of `s` of at most `max` bytes that ends on a
/// character boundary.
fn truncate_at_char(s: &str, max: usize) -> &str {
    if s.len() <= max {
        return s;
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

impl FromRequestParts<AppState> for ClientInfo {
    type Rejection = Infallible;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Infallible> {
        Ok(Self::from_parts(parts, state.trusted_proxies()))
    }
}

/// The client of one request and its audit context, sealed on first use
/// and then reused: reads never pay for encryption, writes pay once.
pub struct RequestAudit {
    pub client: ClientInfo,
    state: AppState,
    sealed: OnceLock<RequestContext>,
}

impl RequestAudit {
    pub fn new(client: ClientInfo, state: AppState) -> Self {
        Self {
            client,
            state,
            sealed: OnceLock::new(),
        }
    }

    /// The request's audit context (request id, sealed IP and user agent).
    pub fn context(&self) -> &RequestContext {
        self.sealed
            .get_or_init(|| self.client.seal(self.state.audit_keyring()))
    }
}

impl FromRequestParts<AppState> for RequestAudit {
    type Rejection = Infallible;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Infallible> {
        let client = ClientInfo::from_parts(parts, state.trusted_proxies());
        Ok(Self::new(client, state.clone()))
    }
}

#[cfg(test)]
mod tests {
    use axum::http::{HeaderValue, Request};

    use super::*;

    fn parts(headers: &[(&str, &[u8])], peer: &str) -> Parts {
        let mut req = Request::builder();
        for (name, value) in headers {
            req = req.header(*name, HeaderValue::from_bytes(value).unwrap());
        }
        let (mut parts, ()) = req.body(()).unwrap().into_parts();
        let peer: SocketAddr = peer.parse().unwrap();
        parts.extensions.insert(ConnectInfo(peer));
        parts
    }

    #[test]
    fn several_forwarded_lines_are_one_list() {
        let trusted = TrustedProxies::parse("127.0.0.1, 10.0.0.0/8").unwrap();
        let p = parts(
            &[
                ("x-forwarded-for", b"203.0.113.5"),
                ("x-forwarded-for", b"10.0.0.1, 10.0.0.2"),
            ],
            "127.0.0.1:5000",
        );
        let ip = ClientInfo::from_parts(&p, &trusted).ip;
        assert_eq!(ip, Some("203.0.113.5".parse().unwrap()));
        // A line that is not text stops the walk at the hop right of it.
        let p = parts(
            &[
                ("x-forwarded-for", b"203.0.113.5"),
                ("x-forwarded-for", b"\xff\xfe"),
                ("x-forwarded-for", b"10.0.0.2"),
            ],
            "127.0.0.1:5000",
        );
        let ip = ClientInfo::from_parts(&p, &trusted).ip;
        assert_eq!(ip, Some("10.0.0.2".parse().unwrap()));
        // Not trusted: the peer, whatever the header says.
        let p = parts(&[("x-forwarded-for", b"203.0.113.5")], "198.51.100.1:5000");
        let ip = ClientInfo::from_parts(&p, &trusted).ip;
        assert_eq!(ip, Some("198.51.100.1".parse().unwrap()));
    }

    #[test]
    fn the_user_agent_is_cut_to_256_bytes_on_a_character_boundary() {
        let long = "a".repeat(1000);
        let p = parts(&[("user-agent", long.as_bytes())], "127.0.0.1:1");
        let ua = ClientInfo::from_parts(&p, &TrustedProxies::none())
            .user_agent
            .unwrap();
        assert_eq!(ua.len(), MAX_USER_AGENT_BYTES);
        let wide = format!("a{}", "é".repeat(300));
        assert_eq!(truncate_at_char(&wide, 256).len(), 255);
        assert_eq!(truncate_at_char("aé", 2), "a");
        assert_eq!(truncate_at_char("short", 256), "short");
    }
}
