//! Webhook endpoints and deliveries: the repository trait and its types,
//! next to its SQL implementation ([`sql`]).

mod rows;
mod sql;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use tessera_core::{
    audit::AuditEntry,
    webhook::{Delivery, DeliveryAttempt, DeliveryStatus, WebhookEndpoint},
};

use crate::{audit::EventPayload, error::StoreError, page::Page};

/// A new webhook endpoint and its sealed signing secret.
#[derive(Debug, Clone)]
pub struct NewEndpoint {
    pub endpoint: WebhookEndpoint,
    pub secret_sealed: String,
}

/// The sealed secrets an endpoint is signed with: the current one, and
/// during a rotation the previous one until it lapses.
#[derive(Debug, Clone)]
pub struct EndpointSecrets {
    pub current: String,
    pub previous: Option<(String, DateTime<Utc>)>,
}

/// A new signing secret for an endpoint; the old one keeps signing until
/// `previous_until`. With the audit row it is written with.
#[derive(Debug, Clone)]
pub struct SecretRotation {
    pub endpoint_id: String,
    pub new_sealed: String,
    pub previous_until: DateTime<Utc>,
    pub audit: AuditEntry,
}

/// A delivery claimed for sending, with everything needed to send it.
#[derive(Debug, Clone)]
pub struct DueDelivery {
    pub delivery: Delivery,
    pub url: String,
    pub secrets: EndpointSecrets,
    pub payload: EventPayload,
}

/// What an attempt decided.
#[derive(Debug, Clone, PartialEq)]
pub enum AttemptResult {
    Succeeded,
    RetryAt(DateTime<Utc>),
    /// The schedule is exhausted: the delivery is kept as `failed`.
    Failed,
    /// The receiver answered 410: the delivery fails and the endpoint is disabled.
    EndpointGone,
}

/// An attempt to record: the attempt itself, the endpoint it went to, and
/// what it decided for the delivery.
#[derive(Debug, Clone)]
pub struct AttemptRecord {
    pub attempt: DeliveryAttempt,
    pub endpoint_id: String,
    pub result: AttemptResult,
}

#[derive(Debug, Clone, Default)]
pub struct DeliveryQuery {
    pub status: Option<DeliveryStatus>,
    pub event_type: Option<String>,
    pub endpoint_id: Option<String>,
    pub cursor: Option<String>,
    pub limit: u32,
}

/// Webhook endpoints and the delivery pipeline: outbox → deliveries
/// (fan-out) → leased claims → attempts.
#[async_trait]
pub trait WebhookRepository: Send + Sync {
    async fn create_endpoint(
        &self,
        new: &NewEndpoint,
        audit: &AuditEntry,
    ) -> Result<(), StoreError>;
    async fn list_endpoints(
        &self,
        include_deleted: bool,
    ) -> Result<Vec<WebhookEndpoint>, StoreError>;
    async fn get_endpoint(&self, id: &str) -> Result<Option<WebhookEndpoint>, StoreError>;
    /// Replaces the secret; the old one keeps signing until `previous_until`.
    async fn rotate_endpoint_secret(&self, rotation: &SecretRotation) -> Result<(), StoreError>;
    async fn endpoint_secrets(&self, id: &str) -> Result<Option<EndpointSecrets>, StoreError>;
    /// The `TOKENS_WEBHOOK_URL` endpoint: created (with `secret_sealed`) if
    /// no default exists, its URL updated otherwise. `true` if created.
    async fn ensure_default_endpoint(
        &self,
        url: &str,
        secret_sealed: &str,
        now: DateTime<Utc>,
    ) -> Result<(WebhookEndpoint, bool), StoreError>;
    /// Turns up to `limit` undispatched outbox events into one delivery per
    /// subscribed endpoint, and marks them dispatched. Returns events handled.
    async fn fan_out(&self, now: DateTime<Utc>, limit: u32) -> Result<usize, StoreError>;
    /// Leases up to `limit` due deliveries until `lease_until`.
    async fn claim_due(
        &self,
        now: DateTime<Utc>,
        lease_until: DateTime<Utc>,
        limit: u32,
    ) -> Result<Vec<DueDelivery>, StoreError>;
    async fn record_attempts(&self, attempts: &[AttemptRecord]) -> Result<(), StoreError>;
    async fn list_deliveries(&self, q: &DeliveryQuery) -> Result<Page<Delivery>, StoreError>;
    async fn get_delivery(&self, id: &str) -> Result<Option<Delivery>, StoreError>;
    async fn delivery_attempts(
        &self,
        delivery_id: &str,
    ) -> Result<Vec<DeliveryAttempt>, StoreError>;
    /// Clears leases that lapsed (a replica died mid-delivery); returns how many.
    async fn release_stale_leases(&self, now: DateTime<Utc>) -> Result<u64, StoreError>;
}
