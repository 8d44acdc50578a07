//! OAuth2 client authentication: who is asking about a token. A client
//! proves itself with a certificate whose CN is allowed (mutual TLS), or
//! with an id and secret (HTTP Basic or form fields) checked against
//! `INTROSPECTION_CLIENTS` or the managed registry. Secrets are compared as
//! HMAC-SHA-256 digests under a server key, in constant time: client
//! secrets are high-entropy, so a slow hash would only make introspection
//! slow (the bcrypt-per-call trap of other servers). Every failure is the
//! same `401 invalid_client` to the caller; the reason goes to the log, the
//! audit record and the `tokens_client_auth_failures_total` metric.

mod credentials;

use std::{collections::HashMap, sync::Arc};

use tessera_core::{
    audit::RequestContext,
    client::{AuthMethod, Capability, ClientAuthFailure, ClientIdentity, ClientSource},
    crypto::{constant_time_eq, KeyedHasher},
};

pub use credentials::{ClientCredentials, PresentedSecret};

use crate::{config::ClientSettings, metrics::Metrics};

/// The keyed-hash purpose of client secrets (stored and static alike).
pub const SECRET_HASH_PURPOSE: &str = "client-secret";

pub struct ClientService {
    settings: ClientSettings,
    /// `INTROSPECTION_CLIENTS` by id: the HMAC of each secret, so the raw
    /// secret does not stay in memory longer than start-up.
    static_clients: HashMap<String, String>,
    hasher: Arc<KeyedHasher>,
    metrics: Arc<Metrics>,
}

impl ClientService {
    pub fn new(settings: ClientSettings, hasher: Arc<KeyedHasher>, metrics: Arc<Metrics>) -> Self {
        let static_clients = settings
            .static_clients
            .iter()
            .map(|c| (c.id.clone(), hasher.hash_hex(c.secret.expose().as_bytes())))
            .collect();
        Self {
            settings,
            static_clients,
            hasher,
            metrics,
        }
    }

    pub fn settings(&self) -> &ClientSettings {
        &self.settings
    }

    /// Authenticates the caller as a client that holds `needed`. Any
    /// failure is logged with its reason and counted; the caller answers
    /// every one the same way.
    pub async fn authenticate(
        &self,
        credentials: &ClientCredentials,
        needed: Capability,
        ctx: &RequestContext,
    ) -> Result<ClientIdentity, ClientAuthFailure> {
        let result = self.identify(credentials).and_then(|client| {
            if client.can(needed) {
                Ok(client)
            } else {
                Err(ClientAuthFailure::NotPermitted)
            }
        });
        if let Err(reason) = result {
            self.record_failure(credentials, reason, ctx);
        }
        result
    }

    /// Who the credentials name, if they prove it. A certificate with an
    /// allowed CN wins; any other certificate falls back to the secret.
    fn identify(
        &self,
        credentials: &ClientCredentials,
    ) -> Result<ClientIdentity, ClientAuthFailure> {
        if let Some(cn) = credentials
            .certificate
            .as_ref()
            .and_then(|c| c.sole_common_name())
            .filter(|cn| self.settings.mtls_allowed_cns.contains(*cn))
        {
            return Ok(ClientIdentity {
                id: format!("mtls:{cn}"),
                source: ClientSource::Mtls,
                method: AuthMethod::TlsClientAuth,
                capabilities: vec![Capability::Introspect],
                audiences: None,
            });
        }
        let secret = match &credentials.secret {
            PresentedSecret::Valid(secret) => secret,
            PresentedSecret::Malformed => return Err(ClientAuthFailure::Malformed),
            PresentedSecret::None if credentials.certificate.is_some() => {
                return Err(ClientAuthFailure::CertificateRefused)
            }
            PresentedSecret::None => return Err(ClientAuthFailure::Missing),
        };
        let digest = self.hasher.hash_hex(secret.secret.expose().as_bytes());
        match self.static_clients.get(&secret.client_id) {
            Some(expected) if constant_time_eq(expected, &digest) => Ok(ClientIdentity {
                id: secret.client_id.clone(),
                source: ClientSource::Environment,
                method: secret.method,
                capabilities: vec![Capability::Introspect, Capability::Revoke],
                audiences: None,
            }),
            Some(_) => Err(ClientAuthFailure::WrongSecret),
            None => Err(ClientAuthFailure::UnknownClient),
        }
    }

    fn record_failure(
        &self,
        credentials: &ClientCredentials,
        reason: ClientAuthFailure,
        ctx: &RequestContext,
    ) {
        let method = credentials.method();
        self.metrics
            .clients
            .auth_failures
            .with_label_values(&[method.as_str()])
            .inc();
        tracing::warn!(
            reason = reason.as_str(),
            method = method.as_str(),
            client_id = credentials.claimed_id(),
            request_id = ctx.request_id.as_deref(),
            "client authentication failed"
        );
    }
}
