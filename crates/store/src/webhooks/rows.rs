//! The stored forms of webhook endpoints, deliveries and attempts, and their
//! one conversion each into domain types.

use tessera_core::webhook::{Delivery, DeliveryAttempt, DeliveryStatus, WebhookEndpoint};

use super::{DueDelivery, EndpointSecrets};
use crate::{
    audit::PayloadColumns,
    error::StoreError,
    sql::{from_json, from_millis, from_opt_millis, TableRow},
};

/// The endpoint table, and every column the domain type needs.
impl TableRow for EndpointRow {
    type Domain = WebhookEndpoint;
    const TABLE: &'static str = "webhook_endpoints";
    const COLUMNS: &'static str = "t.id, t.url, t.description, t.event_types, \
        t.is_default, t.disabled_at, t.disabled_reason, t.created_at, t.updated_at, t.deleted_at";
}

/// The delivery table, and every column the domain type needs.
impl TableRow for DeliveryRow {
    type Domain = Delivery;
    const TABLE: &'static str = "webhook_deliveries";
    const COLUMNS: &'static str = "t.id, t.event_id, t.endpoint_id, t.event_type, \
        t.status, t.attempts, t.next_attempt_at, t.last_status_code, t.last_latency_ms, \
        t.last_error, t.created_at, t.updated_at";
}

#[derive(sqlx::FromRow)]
pub(super) struct EndpointRow {
    id: String,
    url: String,
    description: Option<String>,
    event_types: String,
    is_default: i64,
    disabled_at: Option<i64>,
    disabled_reason: Option<String>,
    created_at: i64,
    updated_at: i64,
    deleted_at: Option<i64>,
}

impl TryFrom<EndpointRow> for WebhookEndpoint {
    type Error = StoreError;

    fn try_from(r: EndpointRow) -> Result<Self, StoreError> {
        Ok(WebhookEndpoint {
            id: r.id,
            url: r.url,
            description: r.description,
            event_types: from_json(&r.event_types, "event_types")?,
            is_default: r.is_default != 0,
            disabled_at: from_opt_millis(r.disabled_at)?,
            disabled_reason: r.disabled_reason,
            created_at: from_millis(r.created_at)?,
            updated_at: from_millis(r.updated_at)?,
            deleted_at: from_opt_millis(r.deleted_at)?,
        })
    }
}

#[derive(sqlx::FromRow)]
pub(super) struct DeliveryRow {
    id: String,
    event_id: String,
    endpoint_id: String,
    event_type: String,
    status: String,
    attempts: i64,
    next_attempt_at: Option<i64>,
    last_status_code: Option<i64>,
    last_latency_ms: Option<i64>,
    last_error: Option<String>,
    created_at: i64,
    updated_at: i64,
}

impl TryFrom<DeliveryRow> for Delivery {
    type Error = StoreError;

    fn try_from(r: DeliveryRow) -> Result<Self, StoreError> {
        Ok(Delivery {
            status: DeliveryStatus::parse(&r.status)
                .ok_or_else(|| StoreError::Corrupt(format!("delivery status {:?}", r.status)))?,
            id: r.id,
            event_id: r.event_id,
            endpoint_id: r.endpoint_id,
            event_type: r.event_type,
            attempts: r.attempts,
            next_attempt_at: from_opt_millis(r.next_attempt_at)?,
            last_status_code: r.last_status_code,
            last_latency_ms: r.last_latency_ms,
            last_error: r.last_error,
            created_at: from_millis(r.created_at)?,
            updated_at: from_millis(r.updated_at)?,
        })
    }
}

/// An endpoint's sealed secrets (`secret_enc`, `previous_secret_*`).
#[derive(sqlx::FromRow)]
pub(super) struct SecretsRow {
    secret_enc: String,
    previous_secret_enc: Option<String>,
    previous_secret_until: Option<i64>,
}

impl TryFrom<SecretsRow> for EndpointSecrets {
    type Error = StoreError;

    fn try_from(r: SecretsRow) -> Result<Self, StoreError> {
        Ok(EndpointSecrets {
            current: r.secret_enc,
            previous: r
                .previous_secret_enc
                .zip(from_opt_millis(r.previous_secret_until)?),
        })
    }
}

/// A claimed delivery joined with its endpoint and its outbox event.
#[derive(sqlx::FromRow)]
pub(super) struct DueDeliveryRow {
    #[sqlx(flatten)]
    delivery: DeliveryRow,
    url: String,
    #[sqlx(flatten)]
    secrets: SecretsRow,
    #[sqlx(flatten)]
    payload: PayloadColumns,
}

impl TryFrom<DueDeliveryRow> for DueDelivery {
    type Error = StoreError;

    fn try_from(r: DueDeliveryRow) -> Result<Self, StoreError> {
        Ok(DueDelivery {
            delivery: r.delivery.try_into()?,
            url: r.url,
            secrets: r.secrets.try_into()?,
            payload: r.payload.try_into()?,
        })
    }
}

#[derive(sqlx::FromRow)]
pub(super) struct AttemptRow {
    id: String,
    delivery_id: String,
    at: i64,
    status_code: Option<i64>,
    latency_ms: i64,
    error: Option<String>,
}

impl TryFrom<AttemptRow> for DeliveryAttempt {
    type Error = StoreError;

    fn try_from(r: AttemptRow) -> Result<Self, StoreError> {
        Ok(DeliveryAttempt {
            id: r.id,
            delivery_id: r.delivery_id,
            at: from_millis(r.at)?,
            status_code: r.status_code,
            latency_ms: r.latency_ms,
            error: r.error,
        })
    }
}
