//! The audit log and the outbox: appended to inside the transactions of the
//! changes they describe, and read back for operators and the dispatcher.

use async_trait::async_trait;
use chrono::Utc;
use tessera_core::{
    audit::{AuditEntry, RequestContext},
    event::OutboxEvent,
    ids::new_id,
};

use super::{AuditAggregate, AuditLog, AuditQuery, AuditRecord, Outbox, StoredEvent};
use crate::sql::write_tx::WriteTx;
use crate::{
    error::StoreError,
    page::Page,
    sql::{get_by_id, listing::Listing, opt_millis, to_millis, Query, SqlStore, TableRow},
};

/// An audit row as the generic reads take it: the record is its own domain
/// type, so this wrapper only gives it a fallible conversion.
#[derive(sqlx::FromRow)]
pub(crate) struct AuditRow {
    #[sqlx(flatten)]
    record: AuditRecord,
}

impl TableRow for AuditRow {
    type Domain = AuditRecord;
    const TABLE: &'static str = "audit_log";
    const COLUMNS: &'static str =
        "t.id, t.at, t.actor, t.action, t.target_type, t.target_id, t.request_id, t.outcome, \
         t.details, t.ip_enc, t.user_agent_enc, t.occurrences, t.channel";
}

impl TryFrom<AuditRow> for AuditRecord {
    type Error = StoreError;

    fn try_from(row: AuditRow) -> Result<Self, StoreError> {
        Ok(row.record)
    }
}

/// Binds a request's sealed context as the logs store it, in the column
/// order `request_id, ip_enc, user_agent_enc` (audit log, invite usage log).
pub(crate) fn bind_context<'q>(query: Query<'q>, ctx: &'q RequestContext) -> Query<'q> {
    query
        .bind(&ctx.request_id)
        .bind(&ctx.ip_sealed)
        .bind(&ctx.user_agent_sealed)
}

/// Audit and outbox rows inside a [`WriteTx`]: they commit with the change
/// they describe, or not at all.
impl WriteTx {
    pub async fn append_audit(&mut self, entries: &[AuditEntry]) -> Result<(), StoreError> {
        let now = to_millis(Utc::now());
        for e in entries {
            let insert = sqlx::query(
                "INSERT INTO audit_log (id, at, actor, action, target_type, target_id, outcome, \
                 details, request_id, ip_enc, user_agent_enc, channel) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)",
            )
            .bind(new_id())
            .bind(now)
            .bind(&e.actor)
            .bind(e.action)
            .bind(e.target_type)
            .bind(&e.target_id)
            .bind(e.outcome)
            .bind(e.details.to_string());
            bind_context(insert, &e.context)
                .bind(e.channel)
                .execute(&mut **self)
                .await?;
        }
        Ok(())
    }

    /// Inserts each aggregate, or adds its occurrences to the row already
    /// stored under its key. The details are replaced only by longer ones:
    /// a writer's samples only grow, so "longer" is "more samples".
    pub async fn upsert_audit_aggregates(
        &mut self,
        rows: &[AuditAggregate],
    ) -> Result<(), StoreError> {
        let now = to_millis(Utc::now());
        for row in rows {
            let e = &row.entry;
            let upsert = sqlx::query(
                "INSERT INTO audit_log (id, at, actor, action, target_type, target_id, outcome, \
                 details, request_id, ip_enc, user_agent_enc, occurrences, dedup_key, channel) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14) \
                 ON CONFLICT (dedup_key) DO UPDATE SET \
                 occurrences = audit_log.occurrences + excluded.occurrences, \
                 details = CASE WHEN length(excluded.details) > length(audit_log.details) \
                 THEN excluded.details ELSE audit_log.details END",
            )
            .bind(new_id())
            .bind(now)
            .bind(&e.actor)
            .bind(e.action)
            .bind(e.target_type)
            .bind(&e.target_id)
            .bind(e.outcome)
            .bind(e.details.to_string());
            bind_context(upsert, &e.context)
                .bind(row.occurrences)
                .bind(&row.key)
                .bind(e.channel)
                .execute(&mut **self)
                .await?;
        }
        Ok(())
    }

    pub async fn append_events(&mut self, events: &[OutboxEvent]) -> Result<(), StoreError> {
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
            .execute(&mut **self)
            .await?;
        }
        Ok(())
    }

    /// A single-step change that may find nothing to do: runs `change` and,
    /// when it matched rows, commits it with its audit row and events;
    /// otherwise rolls back. `true` if it changed something.
    pub(crate) async fn apply_logged(
        mut self,
        change: Query<'_>,
        audit: &AuditEntry,
        events: &[OutboxEvent],
    ) -> Result<bool, StoreError> {
        if change.execute(&mut *self).await?.rows_affected() == 0 {
            return Ok(false);
        }
        self.commit_logged(audit, events).await?;
        Ok(true)
    }

    /// How a single-step change ends: its audit row, its events, the commit.
    pub(crate) async fn commit_logged(
        mut self,
        audit: &AuditEntry,
        events: &[OutboxEvent],
    ) -> Result<(), StoreError> {
        self.append_audit(std::slice::from_ref(audit)).await?;
        self.append_events(events).await?;
        self.commit().await
    }
}

#[async_trait]
impl AuditLog for SqlStore {
    async fn append_audit(&self, entries: &[AuditEntry]) -> Result<(), StoreError> {
        if entries.is_empty() {
            return Ok(());
        }
        let mut tx = self.begin_write().await?;
        tx.append_audit(entries).await?;
        tx.commit().await
    }

    async fn upsert_audit_aggregates(&self, rows: &[AuditAggregate]) -> Result<(), StoreError> {
        if rows.is_empty() {
            return Ok(());
        }
        let mut tx = self.begin_write().await?;
        tx.upsert_audit_aggregates(rows).await?;
        tx.commit().await
    }

    async fn audit_for_target(
        &self,
        target_id: &str,
        limit: u32,
    ) -> Result<Vec<AuditRecord>, StoreError> {
        let rows: Vec<AuditRow> = sqlx::query_as(&format!(
            "SELECT {} FROM audit_log t WHERE t.target_id = $1 ORDER BY t.id DESC LIMIT $2",
            AuditRow::COLUMNS
        ))
        .bind(target_id)
        .bind(i64::from(limit.clamp(1, 1000)))
        .fetch_all(&self.pool)
        .await?;
        Ok(rows.into_iter().map(|r| r.record).collect())
    }

    async fn list_audit(&self, q: &AuditQuery) -> Result<Page<AuditRecord>, StoreError> {
        let mut listing = Listing::<AuditRow>::new(0);
        listing
            .by_time("at")
            .text_eq("t.actor", q.actor.as_deref())
            .text_eq("t.action", q.action.as_deref())
            .text_eq("t.target_type", q.target_type.as_deref())
            .text_eq("t.target_id", q.target_id.as_deref())
            .text_eq("t.outcome", q.outcome.as_deref())
            .text_eq("t.channel", q.channel.as_deref())
            .int_cmp("t.at", ">=", opt_millis(q.since))
            .int_cmp("t.at", "<", opt_millis(q.until));
        let limit = q.limit.clamp(1, AuditQuery::MAX_LIMIT);
        listing
            .fetch(&self.pool, q.cursor.as_deref(), limit, |r| &r.id)
            .await
    }

    async fn get_audit(&self, id: &str) -> Result<Option<AuditRecord>, StoreError> {
        get_by_id::<AuditRow>(&self.pool, id).await
    }
}

#[async_trait]
impl Outbox for SqlStore {
    async fn pending_events(&self, limit: u32) -> Result<Vec<StoredEvent>, StoreError> {
        sqlx::query_as(
            "SELECT id, event_type, payload, payload_sealed, created_at, dispatched_at FROM outbox_events \
             WHERE dispatched_at IS NULL ORDER BY id LIMIT $1",
        )
        .bind(i64::from(limit.clamp(1, 10_000)))
        .fetch_all(&self.pool)
        .await
        .map_err(StoreError::from)
    }
}
