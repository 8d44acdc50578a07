//! The webhook pipeline's storage: endpoints, fan-out of outbox events into
//! deliveries, leased claims, and attempt records.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use tessera_core::error::Entity;
use tessera_core::{
    audit::AuditEntry,
    ids::new_id,
    webhook::{Delivery, DeliveryAttempt, WebhookEndpoint},
    DomainError,
};

use super::{
    rows::{AttemptRow, DeliveryRow, DueDeliveryRow, EndpointRow, SecretsRow},
    AttemptRecord, AttemptResult, DeliveryQuery, DueDelivery, EndpointSecrets, NewEndpoint,
    SecretRotation, WebhookRepository,
};
use crate::sql::write_tx::WriteTx;
use crate::{
    error::StoreError,
    page::Page,
    sql::{
        get_by_id, json_text, listing::Listing, lock_row, opt_millis, placeholders, to_millis,
        update_then_read, SqlStore, TableRow,
    },
};

/// The one insert of an endpoint, with its sealed signing secret.
async fn insert_endpoint(
    tx: &mut WriteTx,
    e: &WebhookEndpoint,
    secret_sealed: &str,
) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO webhook_endpoints (id, url, description, event_types, secret_enc, \
         is_default, created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
    )
    .bind(&e.id)
    .bind(&e.url)
    .bind(&e.description)
    .bind(json_text(&e.event_types))
    .bind(secret_sealed)
    .bind(i64::from(e.is_default))
    .bind(to_millis(e.created_at))
    .bind(to_millis(e.updated_at))
    .execute(&mut **tx)
    .await?;
    Ok(())
}

#[async_trait]
impl WebhookRepository for SqlStore {
    async fn create_endpoint(
        &self,
        new: &NewEndpoint,
        audit: &AuditEntry,
    ) -> Result<(), StoreError> {
        let mut tx = self.begin_write().await?;
        insert_endpoint(&mut tx, &new.endpoint, &new.secret_sealed).await?;
        tx.commit_logged(audit, &[]).await
    }

    async fn list_endpoints(
        &self,
        include_deleted: bool,
    ) -> Result<Vec<WebhookEndpoint>, StoreError> {
        let filter = if include_deleted {
            ""
        } else {
            " WHERE t.deleted_at IS NULL"
        };
        let rows: Vec<EndpointRow> = sqlx::query_as(&format!(
            "SELECT {} FROM webhook_endpoints t{filter} ORDER BY t.id",
            EndpointRow::COLUMNS
        ))
        .fetch_all(&self.pool)
        .await?;
        rows.into_iter().map(WebhookEndpoint::try_from).collect()
    }

    async fn get_endpoint(&self, id: &str) -> Result<Option<WebhookEndpoint>, StoreError> {
        get_by_id::<EndpointRow>(&self.pool, id).await
    }

    async fn rotate_endpoint_secret(&self, rotation: &SecretRotation) -> Result<(), StoreError> {
        let mut tx = self.begin_write().await?;
        let n = sqlx::query(
            "UPDATE webhook_endpoints SET previous_secret_enc = secret_enc, \
             previous_secret_until = $3, secret_enc = $2, updated_at = $4 \
             WHERE id = $1 AND deleted_at IS NULL",
        )
        .bind(&rotation.endpoint_id)
        .bind(&rotation.new_sealed)
        .bind(to_millis(rotation.previous_until))
        .bind(to_millis(tessera_core::ids::now()))
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if n == 0 {
            return Err(DomainError::NotFound(Entity::Endpoint).into());
        }
        tx.commit_logged(&rotation.audit, &[]).await
    }

    async fn endpoint_secrets(&self, id: &str) -> Result<Option<EndpointSecrets>, StoreError> {
        sqlx::query_as::<_, SecretsRow>(
            "SELECT secret_enc, previous_secret_enc, previous_secret_until FROM webhook_endpoints WHERE id = $1",
        )
        .bind(id)
        .fetch_optional(&self.pool)
        .await?
        .map(EndpointSecrets::try_from)
        .transpose()
    }

    async fn ensure_default_endpoint(
        &self,
        url: &str,
        secret_sealed: &str,
        now: DateTime<Utc>,
    ) -> Result<(WebhookEndpoint, bool), StoreError> {
        let mut tx = self.begin_write().await?;
        let existing = sqlx::query_as::<_, EndpointRow>(&format!(
            "SELECT {} FROM webhook_endpoints t WHERE t.is_default = 1 AND t.deleted_at IS NULL",
            EndpointRow::COLUMNS
        ))
        .fetch_optional(&mut *tx)
        .await?;
        let result = match existing.map(WebhookEndpoint::try_from).transpose()? {
            Some(e) if e.url == url => (e, false),
            Some(e) => {
                sqlx::query("UPDATE webhook_endpoints SET url = $2, updated_at = $3 WHERE id = $1")
                    .bind(&e.id)
                    .bind(url)
                    .bind(to_millis(now))
                    .execute(&mut *tx)
                    .await?;
                (
                    WebhookEndpoint {
                        url: url.to_string(),
                        updated_at: now,
                        ..e
                    },
                    false,
                )
            }
            None => {
                let e = WebhookEndpoint {
                    id: new_id(),
                    url: url.to_string(),
                    description: Some("TOKENS_WEBHOOK_URL".into()),
                    event_types: Vec::new(),
                    is_default: true,
                    disabled_at: None,
                    disabled_reason: None,
                    created_at: now,
                    updated_at: now,
                    deleted_at: None,
                };
                insert_endpoint(&mut tx, &e, secret_sealed).await?;
                (e, true)
            }
        };
        tx.commit().await?;
        Ok(result)
    }

    async fn fan_out(&self, now: DateTime<Utc>, limit: u32) -> Result<usize, StoreError> {
        let mut tx = self.begin_write().await?;
        let events: Vec<(String, String)> = sqlx::query_as(&format!(
            "SELECT id, event_type FROM outbox_events WHERE dispatched_at IS NULL \
             ORDER BY id LIMIT $1{}",
            self.dialect.skip_locked
        ))
        .bind(i64::from(limit))
        .fetch_all(&mut *tx)
        .await?;
        if events.is_empty() {
            return Ok(0);
        }
        let endpoints = sqlx::query_as::<_, EndpointRow>(&format!(
            "SELECT {} FROM webhook_endpoints t \
             WHERE t.deleted_at IS NULL AND t.disabled_at IS NULL",
            EndpointRow::COLUMNS
        ))
        .fetch_all(&mut *tx)
        .await?
        .into_iter()
        .map(WebhookEndpoint::try_from)
        .collect::<Result<Vec<_>, _>>()?;
        let now_ms = to_millis(now);
        let mut ids = Vec::with_capacity(events.len());
        for (id, event_type) in events {
            for ep in endpoints.iter().filter(|e| e.accepts(&event_type)) {
                sqlx::query(
                    "INSERT INTO webhook_deliveries (id, event_id, endpoint_id, event_type, status, \
                     attempts, next_attempt_at, created_at, updated_at) \
                     VALUES ($1, $2, $3, $4, 'pending', 0, $5, $5, $5) \
                     ON CONFLICT (event_id, endpoint_id) DO NOTHING",
                )
                .bind(new_id())
                .bind(&id)
                .bind(&ep.id)
                .bind(&event_type)
                .bind(now_ms)
                .execute(&mut *tx)
                .await?;
            }
            ids.push(id);
        }
        let sql = format!(
            "UPDATE outbox_events SET dispatched_at = $1 WHERE id IN ({})",
            placeholders(2, ids.len())
        );
        let mut q = sqlx::query(&sql).bind(now_ms);
        for id in &ids {
            q = q.bind(id.as_str());
        }
        q.execute(&mut *tx).await?;
        tx.commit().await?;
        Ok(ids.len())
    }

    async fn claim_due(
        &self,
        now: DateTime<Utc>,
        lease_until: DateTime<Utc>,
        limit: u32,
    ) -> Result<Vec<DueDelivery>, StoreError> {
        let mut tx = self.begin_write().await?;
        let now_ms = to_millis(now);
        let claimed: Vec<String> = sqlx::query_scalar(&format!(
            "SELECT d.id FROM webhook_deliveries d \
             WHERE d.status = 'pending' AND d.next_attempt_at <= $1 \
             AND (d.locked_until IS NULL OR d.locked_until <= $1) \
             AND d.endpoint_id IN (SELECT id FROM webhook_endpoints \
                 WHERE disabled_at IS NULL AND deleted_at IS NULL) \
             ORDER BY d.next_attempt_at LIMIT $2{}",
            self.dialect.skip_locked
        ))
        .bind(now_ms)
        .bind(i64::from(limit))
        .fetch_all(&mut *tx)
        .await?;
        if claimed.is_empty() {
            return Ok(Vec::new());
        }
        let lease_sql = format!(
            "UPDATE webhook_deliveries SET locked_until = $1, updated_at = $2 WHERE id IN ({})",
            placeholders(3, claimed.len())
        );
        let mut q = sqlx::query(&lease_sql)
            .bind(to_millis(lease_until))
            .bind(now_ms);
        for id in &claimed {
            q = q.bind(id.as_str());
        }
        q.execute(&mut *tx).await?;
        let select_sql = format!(
            "SELECT {}, e.url, e.secret_enc, e.previous_secret_enc, \
             e.previous_secret_until, o.payload, o.payload_sealed \
             FROM webhook_deliveries t JOIN webhook_endpoints e ON e.id = t.endpoint_id \
             JOIN outbox_events o ON o.id = t.event_id WHERE t.id IN ({})",
            DeliveryRow::COLUMNS,
            placeholders(1, claimed.len())
        );
        let mut q = sqlx::query_as::<_, DueDeliveryRow>(&select_sql);
        for id in &claimed {
            q = q.bind(id.as_str());
        }
        let rows = q.fetch_all(&mut *tx).await?;
        tx.commit().await?;
        rows.into_iter().map(DueDelivery::try_from).collect()
    }

    async fn record_attempts(&self, attempts: &[AttemptRecord]) -> Result<(), StoreError> {
        if attempts.is_empty() {
            return Ok(());
        }
        let mut tx = self.begin_write().await?;
        for AttemptRecord {
            attempt: a,
            endpoint_id,
            result,
        } in attempts
        {
            let at = to_millis(a.at);
            sqlx::query(
                "INSERT INTO webhook_attempts (id, delivery_id, at, status_code, latency_ms, error) \
                 VALUES ($1, $2, $3, $4, $5, $6)",
            )
            .bind(&a.id)
            .bind(&a.delivery_id)
            .bind(at)
            .bind(a.status_code)
            .bind(a.latency_ms)
            .bind(&a.error)
            .execute(&mut *tx)
            .await?;
            let (status, next) = match result {
                AttemptResult::Succeeded => ("succeeded", None),
                AttemptResult::RetryAt(t) => ("pending", Some(to_millis(*t))),
                AttemptResult::Failed | AttemptResult::EndpointGone => ("failed", None),
            };
            sqlx::query(
                "UPDATE webhook_deliveries SET status = $2, attempts = attempts + 1, \
                 next_attempt_at = $3, locked_until = NULL, last_status_code = $4, \
                 last_latency_ms = $5, last_error = $6, updated_at = $7 WHERE id = $1",
            )
            .bind(&a.delivery_id)
            .bind(status)
            .bind(next)
            .bind(a.status_code)
            .bind(a.latency_ms)
            .bind(&a.error)
            .bind(at)
            .execute(&mut *tx)
            .await?;
            if *result == AttemptResult::EndpointGone {
                sqlx::query(
                    "UPDATE webhook_endpoints SET disabled_at = $2, disabled_reason = $3, updated_at = $2 \
                     WHERE id = $1 AND disabled_at IS NULL",
                )
                .bind(endpoint_id)
                .bind(at)
                .bind("the receiver answered 410 Gone")
                .execute(&mut *tx)
                .await?;
            }
        }
        tx.commit().await
    }

    async fn list_deliveries(&self, q: &DeliveryQuery) -> Result<Page<Delivery>, StoreError> {
        // No condition here refers to "now".
        let mut listing = Listing::<DeliveryRow>::new(0);
        listing
            .text_eq("t.status", q.status.map(|s| s.as_str()))
            .text_eq("t.event_type", q.event_type.as_deref())
            .text_eq("t.endpoint_id", q.endpoint_id.as_deref());
        listing
            .fetch(&self.pool, q.cursor.as_deref(), q.limit, |d| &d.id)
            .await
    }

    async fn delivery_attempts(
        &self,
        delivery_id: &str,
    ) -> Result<Vec<DeliveryAttempt>, StoreError> {
        let rows: Vec<AttemptRow> = sqlx::query_as(
            "SELECT id, delivery_id, at, status_code, latency_ms, error FROM webhook_attempts \
             WHERE delivery_id = $1 ORDER BY at, id",
        )
        .bind(delivery_id)
        .fetch_all(&self.pool)
        .await?;
        rows.into_iter().map(DeliveryAttempt::try_from).collect()
    }

    async fn get_delivery(&self, id: &str) -> Result<Option<Delivery>, StoreError> {
        get_by_id::<DeliveryRow>(&self.pool, id).await
    }

    async fn release_stale_leases(&self, now: DateTime<Utc>) -> Result<u64, StoreError> {
        Ok(sqlx::query(
            "UPDATE webhook_deliveries SET locked_until = NULL \
             WHERE status = 'pending' AND locked_until IS NOT NULL AND locked_until <= $1",
        )
        .bind(to_millis(now))
        .execute(&self.pool)
        .await?
        .rows_affected())
    }
}

/// Endpoint and delivery operations inside a [`WriteTx`].
impl WriteTx {
    /// Locks the endpoint for the rest of the transaction and reads it;
    /// `None` if no endpoint has this id.
    pub async fn lock_endpoint(&mut self, id: &str) -> Result<Option<WebhookEndpoint>, StoreError> {
        lock_row::<EndpointRow>(self, id).await
    }

    /// Writes the settings of a (locked) endpoint.
    pub async fn update_endpoint(&mut self, e: &WebhookEndpoint) -> Result<(), StoreError> {
        sqlx::query(
            "UPDATE webhook_endpoints SET url = $2, description = $3, event_types = $4, \
             disabled_at = $5, disabled_reason = $6, updated_at = $7, deleted_at = $8 WHERE id = $1",
        )
        .bind(&e.id)
        .bind(&e.url)
        .bind(&e.description)
        .bind(json_text(&e.event_types))
        .bind(opt_millis(e.disabled_at))
        .bind(&e.disabled_reason)
        .bind(to_millis(e.updated_at))
        .bind(opt_millis(e.deleted_at))
        .execute(&mut **self)
        .await?;
        Ok(())
    }

    /// Makes a delivery due now again, with a fresh schedule; `None` if no
    /// delivery has this id.
    pub async fn retry_delivery(
        &mut self,
        id: &str,
        now: DateTime<Utc>,
    ) -> Result<Option<Delivery>, StoreError> {
        let retry = sqlx::query(
            "UPDATE webhook_deliveries SET status = 'pending', attempts = 0, next_attempt_at = $2, \
             locked_until = NULL, updated_at = $2 WHERE id = $1",
        )
        .bind(id)
        .bind(to_millis(now));
        update_then_read::<DeliveryRow>(self, retry, id).await
    }
}
