//! Webhook endpoint management and delivery inspection. The sending itself
//! is the webhook dispatcher in `jobs/dispatcher.rs`, which uses this module;
//! the dependency runs that way only. Endpoint URLs whose host is an
//! internal IP address are refused here unless the operator allows private
//! networks; host names are checked when a delivery resolves them.

use super::ServiceError;
use std::sync::Arc;
use tessera_core::error::Entity;

use chrono::{DateTime, Utc};
use serde_json::json;
use tessera_core::{
    audit::{Actor, AuditEntry, RequestContext},
    crypto::Keyring,
    ids::{is_valid_id, new_id},
    webhook::{
        generate_secret, is_internal_address, validate_description, validate_event_types,
        validate_url, Delivery, DeliveryAttempt, DeliveryStatus, WebhookEndpoint,
    },
    DomainError, SecretString,
};
use tessera_store::{DeliveryQuery, NewEndpoint, Page, SecretRotation, Store};

/// The encryption context of stored endpoint secrets.
pub const SECRET_CONTEXT: &str = "webhook_endpoints.secret";

#[derive(Debug, Default)]
pub struct EndpointInput {
    pub url: Option<String>,
    pub description: Option<Option<String>>,
    pub event_types: Option<Vec<String>>,
    /// `Some(true)` re-enables (e.g. after a 410), `Some(false)` disables.
    pub enabled: Option<bool>,
}

pub struct WebhookService {
    store: Arc<dyn Store>,
    keyring: Keyring,
    /// How long a replaced secret keeps signing after a rotation.
    rotation_overlap: chrono::Duration,
    /// `webhooks.allow_private_networks`: accept internal addresses.
    allow_private_networks: bool,
}

/// The internal IP address `url` names literally, in whatever spelling the
/// URL parser understands (`http://2130706433/` and `http://[::ffff:7f00:1]/`
/// are 127.0.0.1). `None` for a host name or a public address.
pub fn literal_internal_ip(url: &reqwest::Url) -> Option<std::net::IpAddr> {
    let host = url.host_str()?;
    let ip: std::net::IpAddr = host
        .trim_start_matches('[')
        .trim_end_matches(']')
        .parse()
        .ok()?;
    is_internal_address(ip).then_some(ip)
}

impl WebhookService {
    pub fn new(store: Arc<dyn Store>, keyring: Keyring) -> Self {
        Self {
            store,
            keyring,
            rotation_overlap: chrono::Duration::hours(24),
            allow_private_networks: false,
        }
    }

    /// Accept endpoint URLs on internal addresses (development only).
    pub fn allowing_private_networks(mut self, allow: bool) -> Self {
        self.allow_private_networks = allow;
        self
    }

    /// [`validate_url`], then the SSRF rule: no literal internal address
    /// unless allowed (`422 webhook_url_forbidden`, the URL not echoed).
    fn endpoint_url(&self, raw: &str) -> Result<String, DomainError> {
        let url = validate_url(raw)?;
        if !self.allow_private_networks {
            let parsed = reqwest::Url::parse(&url)
                .map_err(|_| DomainError::invalid("url", "is not a valid URL"))?;
            if literal_internal_ip(&parsed).is_some() {
                return Err(DomainError::WebhookUrlForbidden);
            }
        }
        Ok(url)
    }

    pub fn keyring(&self) -> &Keyring {
        &self.keyring
    }

    fn not_found() -> ServiceError {
        DomainError::NotFound(Entity::Endpoint).into()
    }

    pub async fn create_endpoint(
        &self,
        input: EndpointInput,
        actor: &Actor,
        ctx: &RequestContext,
    ) -> Result<(WebhookEndpoint, SecretString), ServiceError> {
        let now = tessera_core::ids::now();
        let url = self.endpoint_url(input.url.as_deref().unwrap_or_default())?;
        let endpoint = WebhookEndpoint {
            id: new_id(),
            url,
            description: validate_description(input.description.flatten())?,
            event_types: validate_event_types(&input.event_types.unwrap_or_default())?,
            is_default: false,
            disabled_at: (input.enabled == Some(false)).then_some(now),
            disabled_reason: (input.enabled == Some(false))
                .then(|| "disabled by an operator".into()),
            created_at: now,
            updated_at: now,
            deleted_at: None,
        };
        let secret = generate_secret();
        let new = NewEndpoint {
            secret_sealed: self
                .keyring
                .seal(secret.expose().as_bytes(), SECRET_CONTEXT),
            endpoint: endpoint.clone(),
        };
        let audit = AuditEntry::success(
            actor,
            "webhook.endpoint.create",
            "webhook_endpoint",
            &endpoint.id,
            json!({ "url": endpoint.url, "event_types": endpoint.event_types }),
            ctx,
        );
        self.store.create_endpoint(&new, &audit).await?;
        Ok((endpoint, secret))
    }

    pub async fn list_endpoints(&self) -> Result<Vec<WebhookEndpoint>, ServiceError> {
        Ok(self.store.list_endpoints(false).await?)
    }

    pub async fn get_endpoint(&self, id: &str) -> Result<WebhookEndpoint, ServiceError> {
        if !is_valid_id(id) {
            return Err(Self::not_found());
        }
        self.store
            .get_endpoint(id)
            .await?
            .ok_or_else(Self::not_found)
    }

    /// Changes an endpoint's settings.
    pub async fn update_endpoint(
        &self,
        id: &str,
        input: EndpointInput,
        actor: &Actor,
        ctx: &RequestContext,
    ) -> Result<WebhookEndpoint, ServiceError> {
        if !is_valid_id(id) {
            return Err(Self::not_found());
        }
        let url = input
            .url
            .as_deref()
            .map(|u| self.endpoint_url(u))
            .transpose()?;
        let description = input.description.map(validate_description).transpose()?;
        let types = input
            .event_types
            .as_deref()
            .map(validate_event_types)
            .transpose()?;
        self.change_endpoint(id, actor, ctx, move |e, now| {
            if let Some(u) = url {
                e.url = u;
            }
            if let Some(d) = description {
                e.description = d;
            }
            if let Some(t) = types {
                e.event_types = t;
            }
            match input.enabled {
                Some(true) => {
                    e.disabled_at = None;
                    e.disabled_reason = None;
                }
                Some(false) if e.disabled_at.is_none() => {
                    e.disabled_at = Some(now);
                    e.disabled_reason = Some("disabled by an operator".into());
                }
                _ => {}
            }
            "webhook.endpoint.update"
        })
        .await
    }

    /// Soft-deletes an endpoint: it stops receiving deliveries.
    pub async fn delete_endpoint(
        &self,
        id: &str,
        actor: &Actor,
        ctx: &RequestContext,
    ) -> Result<WebhookEndpoint, ServiceError> {
        self.change_endpoint(id, actor, ctx, |e, now| {
            e.deleted_at = Some(now);
            "webhook.endpoint.delete"
        })
        .await
    }

    /// One write transaction: lock the endpoint (a deleted one is not found),
    /// let `rule` change it and name the audit action, write it with its
    /// audit row, commit.
    async fn change_endpoint(
        &self,
        id: &str,
        actor: &Actor,
        ctx: &RequestContext,
        rule: impl FnOnce(&mut WebhookEndpoint, DateTime<Utc>) -> &'static str + Send,
    ) -> Result<WebhookEndpoint, ServiceError> {
        if !is_valid_id(id) {
            return Err(Self::not_found());
        }
        let now = tessera_core::ids::now();
        let mut tx = self.store.begin_write().await?;
        let mut e = tx.lock_endpoint(id).await?.ok_or_else(Self::not_found)?;
        if e.deleted_at.is_some() {
            return Err(Self::not_found());
        }
        let action = rule(&mut e, now);
        e.updated_at = now;
        tx.update_endpoint(&e).await?;
        let details = json!({ "url": e.url });
        let audit = AuditEntry::success(actor, action, "webhook_endpoint", &e.id, details, ctx);
        tx.append_audit(&[audit]).await?;
        tx.commit().await?;
        Ok(e)
    }

    /// A new signing secret, shown once; the old one keeps signing (as a
    /// second signature) for 24 hours so receivers can switch over.
    pub async fn rotate_secret(
        &self,
        id: &str,
        actor: &Actor,
        ctx: &RequestContext,
    ) -> Result<SecretString, ServiceError> {
        if !is_valid_id(id) {
            return Err(Self::not_found());
        }
        let secret = generate_secret();
        let sealed = self
            .keyring
            .seal(secret.expose().as_bytes(), SECRET_CONTEXT);
        let audit = AuditEntry::success(
            actor,
            "webhook.endpoint.rotate_secret",
            "webhook_endpoint",
            id,
            json!({}),
            ctx,
        );
        self.store
            .rotate_endpoint_secret(&SecretRotation {
                endpoint_id: id.to_string(),
                new_sealed: sealed,
                previous_until: tessera_core::ids::now() + self.rotation_overlap,
                audit,
            })
            .await?;
        Ok(secret)
    }

    /// Creates or updates the `TOKENS_WEBHOOK_URL` endpoint at start-up.
    pub async fn ensure_default(
        &self,
        url: &str,
        secret: Option<&SecretString>,
    ) -> Result<WebhookEndpoint, ServiceError> {
        let generated;
        let secret = match secret {
            Some(s) => s,
            None => {
                generated = generate_secret();
                &generated
            }
        };
        let sealed = self
            .keyring
            .seal(secret.expose().as_bytes(), SECRET_CONTEXT);
        let (endpoint, created) = self
            .store
            .ensure_default_endpoint(url, &sealed, tessera_core::ids::now())
            .await?;
        if created {
            tracing::info!(endpoint_id = %endpoint.id, "created the default webhook endpoint from TOKENS_WEBHOOK_URL");
        }
        Ok(endpoint)
    }

    pub async fn list_deliveries(&self, q: DeliveryQuery) -> Result<Page<Delivery>, ServiceError> {
        if q.cursor.as_deref().is_some_and(|c| !is_valid_id(c)) {
            return Err(DomainError::invalid("cursor", "is not a cursor this API returned").into());
        }
        Ok(self.store.list_deliveries(&q).await?)
    }

    pub async fn attempts(&self, delivery_id: &str) -> Result<Vec<DeliveryAttempt>, ServiceError> {
        Ok(self.store.delivery_attempts(delivery_id).await?)
    }

    pub async fn get_delivery(&self, id: &str) -> Result<Delivery, ServiceError> {
        let not_found = || ServiceError::from(DomainError::NotFound(Entity::Delivery));
        if !is_valid_id(id) {
            return Err(not_found());
        }
        self.store.get_delivery(id).await?.ok_or_else(not_found)
    }

    /// Sends a delivery again now, with a fresh retry schedule. The audit
    /// row (`webhook.delivery.retry`) commits with the retry.
    pub async fn retry(
        &self,
        id: &str,
        actor: &Actor,
        ctx: &RequestContext,
    ) -> Result<Delivery, ServiceError> {
        let not_found = || ServiceError::from(DomainError::NotFound(Entity::Delivery));
        if !is_valid_id(id) {
            return Err(not_found());
        }
        let mut tx = self.store.begin_write().await?;
        let delivery = tx
            .retry_delivery(id, tessera_core::ids::now())
            .await?
            .ok_or_else(not_found)?;
        let details =
            json!({ "endpoint_id": delivery.endpoint_id, "event_type": delivery.event_type });
        let audit = AuditEntry::success(
            actor,
            "webhook.delivery.retry",
            "webhook_delivery",
            &delivery.id,
            details,
            ctx,
        );
        tx.append_audit(&[audit]).await?;
        tx.commit().await?;
        Ok(delivery)
    }
}

/// Parses a delivery status filter.
pub fn parse_status(s: &str) -> Result<DeliveryStatus, DomainError> {
    DeliveryStatus::parse(s)
        .ok_or_else(|| DomainError::invalid("status", "must be pending, succeeded or failed"))
}
