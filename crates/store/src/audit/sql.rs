//! The audit log and the outbox: appended to inside the transactions of the
//! changes they describe, and read back for operators and the dispatcher.

use async_trait::async_trait;
use chrono::Utc;
use sqlx::{Any, Row, Transaction};
use tessera_core::{audit::AuditEntry, event::OutboxEvent, ids::new_id};

use super::{AuditLog, AuditRecord, EventPayload, Outbox, StoredEvent};
use crate::{
    error::StoreError,
    sql::{get_json, get_opt_ts, get_ts, to_millis, SqlStore},
};

pub(crate) async fn insert_audit(
    tx: &mut Transaction<'static, Any>,
    entries: &[AuditEntry],
) -> Result<(), StoreError> {
    let now = to_millis(Utc::now());
    for e in entries {
        sqlx::query(
            "INSERT INTO audit_log (id, at, actor, action, target_type, target_id, request_id, \
             outcome, details, ip_enc, user_agent_enc) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
        )
        .bind(new_id())
        .bind(now)
        .bind(&e.actor)
        .bind(e.action)
        .bind(e.target_type)
        .bind(&e.target_id)
        .bind(&e.context.request_id)
        .bind(e.outcome)
        .bind(e.details.to_string())
        .bind(&e.context.ip_sealed)
        .bind(&e.context.user_agent_sealed)
        .execute(&mut **tx)
        .await?;
    }
    Ok(())
}

pub(crate) async fn insert_events(
    tx: &mut Transaction<'static, Any>,
    events: &[OutboxEvent],
) -> Result<(), StoreError> {
    let now = to_millis(Utc::now());
    for ev in events {
        sqlx::query(
            "INSERT INTO outbox_events (id, event_type, payload, payload_sealed, created_at) \
             VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(new_id())
        .bind(ev.event_type)
        .bind(ev.payload_text())
        .bind(i64::from(ev.sealed))
        .bind(now)
        .execute(&mut **tx)
        .await?;
    }
    Ok(())
}

#[async_trait]
impl AuditLog for SqlStore {
    async fn append_audit(&self, entries: &[AuditEntry]) -> Result<(), StoreError> {
        if entries.is_empty() {
            return Ok(());
        }
        let mut tx = self.begin_write().await?;
        insert_audit(&mut tx, entries).await?;
        tx.commit().await?;
        Ok(())
    }

    async fn audit_for_target(
        &self,
        target_id: &str,
        limit: u32,
    ) -> Result<Vec<AuditRecord>, StoreError> {
        let rows = sqlx::query(
            "SELECT id, at, actor, action, target_type, target_id, request_id, outcome, details, \
             ip_enc, user_agent_enc FROM audit_log WHERE target_id = $1 ORDER BY id DESC LIMIT $2",
        )
        .bind(target_id)
        .bind(i64::from(limit.clamp(1, 1000)))
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(AuditRecord {
                    id: r.try_get("id")?,
                    at: get_ts(r, "at")?,
                    actor: r.try_get("actor")?,
                    action: r.try_get("action")?,
                    target_type: r.try_get("target_type")?,
                    target_id: r.try_get("target_id")?,
                    request_id: r.try_get("request_id")?,
                    outcome: r.try_get("outcome")?,
                    details: get_json(r, "details")?,
                    ip_sealed: r.try_get("ip_enc")?,
                    user_agent_sealed: r.try_get("user_agent_enc")?,
                })
            })
            .collect()
    }
}

#[async_trait]
impl Outbox for SqlStore {
    async fn pending_events(&self, limit: u32) -> Result<Vec<StoredEvent>, StoreError> {
        let rows = sqlx::query(
            "SELECT id, event_type, payload, payload_sealed, created_at, dispatched_at FROM outbox_events \
             WHERE dispatched_at IS NULL ORDER BY id LIMIT $1",
        )
        .bind(i64::from(limit.clamp(1, 10_000)))
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                let sealed = r.try_get::<i64, _>("payload_sealed")? != 0;
                let text: String = r.try_get("payload")?;
                Ok(StoredEvent {
                    id: r.try_get("id")?,
                    event_type: r.try_get("event_type")?,
                    payload: if sealed {
                        EventPayload::Sealed(text)
                    } else {
                        EventPayload::Clear(
                            serde_json::from_str(&text)
                                .map_err(|e| StoreError::Corrupt(format!("outbox payload: {e}")))?,
                        )
                    },
                    created_at: get_ts(r, "created_at")?,
                    dispatched_at: get_opt_ts(r, "dispatched_at")?,
                })
            })
            .collect()
    }
}
