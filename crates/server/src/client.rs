//! Who is calling, as far as the audit log is concerned: request id, client
//! IP and user agent. Sealed (encrypted) before it is stored.

use std::{convert::Infallible, net::SocketAddr};

use axum::{
    extract::{ConnectInfo, FromRequestParts},
    http::{header, request::Parts},
};

use crate::{app::AppState, request_id::RequestId};

/// Longest user agent we keep; the rest is noise or abuse.
const MAX_USER_AGENT: usize = 512;

#[derive(Debug, Clone, Default)]
pub struct ClientInfo {
    pub request_id: Option<String>,
    pub ip: Option<String>,
    pub user_agent: Option<String>,
}

impl FromRequestParts<AppState> for ClientInfo {
    type Rejection = Infallible;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Infallible> {
        let peer = parts
            .extensions
            .get::<ConnectInfo<SocketAddr>>()
            .map(|c| c.0.ip().to_string());
        // X-Forwarded-For is only believed when the operator says a proxy
        // sets it; otherwise any client could forge its address.
        let forwarded = state
            .trust_proxy_headers()
            .then(|| {
                parts
                    .headers
                    .get("x-forwarded-for")?
                    .to_str()
                    .ok()?
                    .split(',')
                    .next()
                    .map(|s| s.trim().to_string())
            })
            .flatten()
            .filter(|s| s.parse::<std::net::IpAddr>().is_ok());
        Ok(Self {
            request_id: parts.extensions.get::<RequestId>().map(|r| r.0.clone()),
            ip: forwarded.or(peer),
            user_agent: parts
                .headers
                .get(header::USER_AGENT)
                .and_then(|v| v.to_str().ok())
                .map(|s| s.chars().take(MAX_USER_AGENT).collect()),
        })
    }
}
