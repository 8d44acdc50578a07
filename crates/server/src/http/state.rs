//! The state every handler shares. A leaf of the HTTP layer: it holds the
//! services and the finished OpenAPI document, and imports nothing above it
//! (the router builds the document and hands it in).

use std::sync::Arc;

use tessera_core::crypto::{KeyedHasher, Keyring};
use tessera_store::Store;

use super::forwarded::TrustedProxies;
use crate::{
    config::BrowserSettings,
    metrics::Metrics,
    runtime::Services,
    service::{
        clients::ClientService, events::EventStreamService, keys::KeyService,
        sessions::SessionService, users::UserService, ws_tickets::WsTicketService, AuditService,
        AuthCodeService, InviteService, MfaService, TokenService, WebhookService,
    },
};

/// Cheap to clone: one `Arc`.
#[derive(Clone)]
pub struct AppState(Arc<Inner>);

struct Inner {
    services: Arc<Services>,
    trusted_proxies: TrustedProxies,
    openapi_json: String,
}

impl AppState {
    /// `openapi_json` is the served `/openapi.json`, built by the router.
    pub fn new(
        services: Arc<Services>,
        trusted_proxies: TrustedProxies,
        openapi_json: String,
    ) -> Self {
        Self(Arc::new(Inner {
            services,
            trusted_proxies,
            openapi_json,
        }))
    }

    pub fn upstream(&self) -> &tessera_upstream::TokenCache {
        &self.0.services.upstream
    }

    pub fn webhooks(&self) -> &WebhookService {
        &self.0.services.webhooks
    }

    pub fn tokens(&self) -> &TokenService {
        &self.0.services.tokens
    }

    pub fn sessions(&self) -> &SessionService {
        &self.0.services.sessions
    }

    pub fn users(&self) -> &UserService {
        &self.0.services.users
    }

    pub fn clients(&self) -> &ClientService {
        &self.0.services.clients
    }

    /// The event stream for gateways.
    pub fn events(&self) -> &EventStreamService {
        &self.0.services.events
    }

    pub fn ws_tickets(&self) -> &WsTicketService {
        &self.0.services.ws_tickets
    }

    /// Password reset and e-mail verification links.
    pub fn links(&self) -> &crate::service::links::LinkService {
        &self.0.services.links
    }

    /// Introspection and revocation for OAuth2 clients.
    pub fn oauth(&self) -> crate::service::oauth::OAuthTokens<'_> {
        let s = &self.0.services;
        crate::service::oauth::OAuthTokens {
            sessions: &s.sessions,
            tokens: &s.tokens,
            metrics: &s.metrics,
        }
    }

    pub fn keys(&self) -> &KeyService {
        &self.0.services.keys
    }

    pub fn mfa(&self) -> &MfaService {
        &self.0.services.mfa
    }

    pub fn auth_codes(&self) -> &AuthCodeService {
        &self.0.services.auth_codes
    }

    pub fn audit(&self) -> &AuditService {
        &self.0.services.audit
    }

    pub fn invites(&self) -> &InviteService {
        &self.0.services.invites
    }

    pub fn store(&self) -> &Arc<dyn Store> {
        &self.0.services.store
    }

    pub fn metrics(&self) -> &Metrics {
        &self.0.services.metrics
    }

    /// Seals client IPs and user agents for the audit log.
    pub fn audit_keyring(&self) -> &Keyring {
        &self.0.services.audit_keyring
    }

    /// The reverse proxies whose `X-Forwarded-For` entries are believed.
    pub fn trusted_proxies(&self) -> &TrustedProxies {
        &self.0.trusted_proxies
    }

    /// `TESSERA_ALLOWED_ORIGINS` and the CSRF token lifetime.
    pub fn browser(&self) -> &BrowserSettings {
        &self.0.services.browser.settings
    }

    /// Signs and checks CSRF tokens (`http::csrf`).
    pub fn csrf_key(&self) -> &KeyedHasher {
        &self.0.services.browser.csrf_key
    }

    pub fn openapi_json(&self) -> &str {
        &self.0.openapi_json
    }
}
