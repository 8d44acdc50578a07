//! OAuth2 client authentication: who is asking about a token. A client
//! proves itself with a certificate whose CN is allowed (mutual TLS), or
//! with an id and secret (HTTP Basic or form fields) checked against
//! `INTROSPECTION_CLIENTS` or the managed registry. Secrets are compared as
//! HMAC-SHA-256 digests under a server key, in constant time: client
//! secrets are high-entropy, so a slow hash would only make introspection
//! slow (the bcrypt-per-call trap of other servers). Every failure is the
//! same `401 invalid_client` to the caller; the reason goes to the log, the
//! audit record and the `tokens_client_auth_failures_total` metric.

mod cache;
mod credentials;
mod failures;
mod registry;

use std::{collections::HashMap, sync::Arc};

use tessera_core::{
    audit::RequestContext,
    client::{AuthMethod, Capability, ClientAuthFailure, ClientIdentity, ClientSource},
    client_registry::is_registry_client_id,
    crypto::{constant_time_eq, KeyedHasher},
};
use tessera_store::Store;

pub use credentials::{ClientCredentials, ClientSecret, PresentedSecret};
pub use registry::{ClientPage, CreateClient, IssuedSecret, UpdateClient};

use self::cache::{Lookup, RegistryCache};
use super::{background::BackgroundWriter, rate_limit::RateLimits};
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
    store: Arc<dyn Store>,
    /// Registry clients as authentication needs them (see `cache`).
    cache: RegistryCache,
    /// Failed authentications per client IP (a failure limit).
    limits: Arc<RateLimits>,
    /// Writes the aggregated audit rows of failed authentications.
    background: Arc<BackgroundWriter>,
}

/// What a [`ClientService`] is built from besides its settings.
pub struct ClientDeps {
    pub hasher: Arc<KeyedHasher>,
    pub store: Arc<dyn Store>,
    pub background: Arc<BackgroundWriter>,
    pub metrics: Arc<Metrics>,
    /// The shared rate-limit engine (the failure limit per client IP).
    pub rate_limits: Arc<RateLimits>,
    /// How long a registry client is trusted from memory (the verify
    /// cache's TTL): the bound on how late another replica's change is
    /// seen while the invalidation log cannot be read.
    pub cache_ttl: std::time::Duration,
}

impl ClientService {
    pub fn new(settings: ClientSettings, deps: ClientDeps) -> Self {
        let static_clients = settings
            .static_clients
            .iter()
            .map(|c| {
                let digest = deps.hasher.hash_hex(c.secret.expose().as_bytes());
                (c.id.clone(), digest)
            })
            .collect();
        Self {
            settings,
            static_clients,
            hasher: deps.hasher,
            metrics: deps.metrics,
            store: deps.store,
            cache: RegistryCache::new(deps.cache_ttl),
            limits: deps.rate_limits,
            background: deps.background,
        }
    }

    pub fn settings(&self) -> &ClientSettings {
        &self.settings
    }

    /// Registry client `id` changed in a transaction committed elsewhere
    /// (another replica, the CLI): the next authentication reads it again.
    pub fn forget_cached(&self, id: &str) {
        self.cache.forget(id);
    }

    /// Drops every cached registry client (the invalidation log cannot be read).
    pub fn forget_all_cached(&self) {
        self.cache.clear();
    }

    /// Authenticates the caller as a client that holds `needed`. A caller
    /// over the per-IP failure limit fails (`Throttled`) without its secret
    /// being looked at. Any failure is logged with its reason, counted, and
    /// aggregated into the audit log; the caller answers every one alike.
    pub async fn authenticate(
        &self,
        credentials: &ClientCredentials,
        needed: Capability,
        ctx: &RequestContext,
    ) -> Result<ClientIdentity, ClientAuthFailure> {
        let result = match self.admit(credentials).await {
            None => Err(ClientAuthFailure::Throttled),
            Some(admission) => {
                let result = self.identify(credentials).await.and_then(|client| {
                    if client.can(needed) {
                        Ok(client)
                    } else {
                        Err(ClientAuthFailure::NotPermitted)
                    }
                });
                self.settle(credentials, admission, &result).await;
                result
            }
        };
        match result {
            // Not the client's failure; logged where it happened.
            Err(ClientAuthFailure::Unavailable) => {}
            Err(reason) => self.record_failure(credentials, reason, ctx).await,
            Ok(_) => {}
        }
        result
    }

    /// Who the credentials name, if they prove it. A certificate with an
    /// allowed CN wins; any other certificate falls back to the secret.
    async fn identify(
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
        let digests = self.digests(secret);
        if let Some(expected) = self.static_clients.get(&secret.client_id) {
            return if matches_any(expected, &digests) {
                Ok(ClientIdentity {
                    id: secret.client_id.clone(),
                    source: ClientSource::Environment,
                    method: secret.method,
                    capabilities: vec![Capability::Introspect, Capability::Revoke],
                    audiences: None,
                })
            } else {
                Err(ClientAuthFailure::WrongSecret)
            };
        }
        self.identify_registered(secret, &digests, credentials.client_ip)
            .await
    }

    /// The keyed digests of the secret `credentials` present (none for a
    /// certificate): the form the registry stores, which an event stream
    /// keeps to judge its opener again without keeping the secret.
    pub fn presented_digests(&self, credentials: &ClientCredentials) -> Vec<String> {
        match &credentials.secret {
            PresentedSecret::Valid(secret) => self.digests(secret),
            _ => Vec::new(),
        }
    }

    /// The keyed digests of the presented secret: as decoded, and (for
    /// Basic credentials a client did not form-encode) as sent.
    fn digests(&self, secret: &ClientSecret) -> Vec<String> {
        std::iter::once(&secret.secret)
            .chain(secret.as_sent.as_ref())
            .map(|s| self.hasher.hash_hex(s.expose().as_bytes()))
            .collect()
    }

    /// A registry client, from memory when it is known and fresh; one read
    /// of its row otherwise. The current digest and (while its grace lasts)
    /// the previous one are both compared in constant time.
    async fn identify_registered(
        &self,
        secret: &ClientSecret,
        digests: &[String],
        client_ip: Option<std::net::IpAddr>,
    ) -> Result<ClientIdentity, ClientAuthFailure> {
        if !is_registry_client_id(&secret.client_id) {
            return Err(ClientAuthFailure::UnknownClient);
        }
        let client = match self.cache.lookup(&secret.client_id) {
            Lookup::Known(client) => client,
            Lookup::Miss(generation) => {
                let found = match self.store.get_client(&secret.client_id).await {
                    Ok(found) => found,
                    Err(e) => {
                        // The client cannot be checked: the caller hears
                        // 503 (a dependency is down), as on every route.
                        tracing::error!(error = %e, "client registry unavailable");
                        return Err(ClientAuthFailure::Unavailable);
                    }
                };
                self.cache
                    .fill(&secret.client_id, found.as_ref(), generation)
            }
        };
        let client = client.ok_or(ClientAuthFailure::UnknownClient)?;
        let current = matches_any(&client.secret_hash, digests);
        let previous = client
            .previous_hash_at(chrono::Utc::now())
            .is_some_and(|h| matches_any(h, digests));
        if !(current | previous) {
            return Err(ClientAuthFailure::WrongSecret);
        }
        // The registry's IP lists, against the caller's address as the
        // trusted-proxy rules resolved it.
        let ips = (&client.ip_allow, &client.ip_deny);
        if !tessera_core::token_controls::ip_allowed(ips.0, ips.1, client_ip) {
            return Err(ClientAuthFailure::IpNotAllowed);
        }
        Ok(ClientIdentity {
            id: secret.client_id.clone(),
            source: ClientSource::Registry,
            method: secret.method,
            capabilities: client.capabilities.clone(),
            audiences: client.audiences.clone(),
        })
    }
}

/// Whether `expected` equals any of `digests`, each compared in constant
/// time (all of them, whatever the first one found).
fn matches_any(expected: &str, digests: &[String]) -> bool {
    digests
        .iter()
        .fold(false, |found, d| found | constant_time_eq(expected, d))
}
