//! Who is calling, as far as the audit log is concerned: request id, client
//! IP and user agent, and the request's audit context built from them (IP
//! and user agent sealed, i.e. encrypted, before anything stores them).

use std::{
    convert::Infallible,
    net::{IpAddr, SocketAddr},
    sync::OnceLock,
};

use axum::{
    extract::{ConnectInfo, FromRequestParts},
    http::{header, request::Parts},
};
use tessera_core::{audit::RequestContext, crypto::Keyring};

use super::{request_id::RequestId, state::AppState};

/// Longest user agent we keep; the rest is noise or abuse.
const MAX_USER_AGENT: usize = 512;

#[derive(Debug, Clone, Default)]
pub struct ClientInfo {
    pub request_id: Option<String>,
    pub ip: Option<IpAddr>,
    pub user_agent: Option<String>,
}

impl ClientInfo {
    fn from_parts(parts: &Parts, trust_proxy_headers: bool) -> Self {
        let peer = parts
            .extensions
            .get::<ConnectInfo<SocketAddr>>()
            .map(|c| c.0.ip());
        // X-Forwarded-For is only believed when the operator says a proxy
        // sets it; otherwise any client could forge its address.
        let forwarded = trust_proxy_headers
            .then(|| {
                parts
                    .headers
                    .get("x-forwarded-for")?
                    .to_str()
                    .ok()?
                    .split(',')
                    .next()?
                    .trim()
                    .parse::<IpAddr>()
                    .ok()
            })
            .flatten();
        Self {
            request_id: parts.extensions.get::<RequestId>().map(|r| r.0.clone()),
            ip: forwarded.or(peer),
            user_agent: parts
                .headers
                .get(header::USER_AGENT)
                .and_then(|v| v.to_str().ok())
                // Kept, but cleaned: a header is not refused for a control character.
                .map(|s| {
                    tessera_core::text::sanitize_header_text(s)
                        .chars()
                        .take(MAX_USER_AGENT)
                        .collect()
                }),
        }
    }

    /// The audit context, with IP (in its text form) and user agent sealed.
    pub fn seal(&self, ring: &Keyring) -> RequestContext {
        RequestContext {
            request_id: self.request_id.clone(),
            ip_sealed: self
                .ip
                .map(|ip| ring.seal(ip.to_string().as_bytes(), "audit.ip")),
            user_agent_sealed: self
                .user_agent
                .as_ref()
                .map(|ua| ring.seal(ua.as_bytes(), "audit.user_agent")),
        }
    }
}

impl FromRequestParts<AppState> for ClientInfo {
    type Rejection = Infallible;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Infallible> {
        Ok(Self::from_parts(parts, state.trust_proxy_headers()))
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
        let client = ClientInfo::from_parts(parts, state.trust_proxy_headers());
        Ok(Self::new(client, state.clone()))
    }
}
