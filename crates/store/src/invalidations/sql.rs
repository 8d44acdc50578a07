//! The invalidation log's SQL: the insert every credential change runs, the
//! range read every process polls with, the purge, and the PostgreSQL
//! listener.

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use super::{Invalidation, InvalidationKind, InvalidationListener, InvalidationLog};
use crate::{
    error::StoreError,
    sql::{from_millis, placeholders, to_millis, write_tx::WriteTx, SqlStore},
};

const COLUMNS: &str = "seq, kind, target_id, created_at";

#[derive(sqlx::FromRow)]
struct InvalidationRow {
    seq: i64,
    kind: String,
    target_id: String,
    created_at: i64,
}

impl TryFrom<InvalidationRow> for Invalidation {
    type Error = StoreError;

    fn try_from(r: InvalidationRow) -> Result<Self, StoreError> {
        Ok(Invalidation {
            seq: r.seq,
            kind: InvalidationKind::parse(&r.kind)
                .ok_or_else(|| StoreError::Corrupt(format!("invalidations.kind {}", r.kind)))?,
            target_id: r.target_id,
            created_at: from_millis(r.created_at)?,
        })
    }
}

fn decode(rows: Vec<InvalidationRow>) -> Result<Vec<Invalidation>, StoreError> {
    rows.into_iter().map(Invalidation::try_from).collect()
}

/// The row itself; the database numbers it.
pub(super) async fn insert(
    tx: &mut WriteTx,
    kind: InvalidationKind,
    id: &str,
) -> Result<(), StoreError> {
    sqlx::query("INSERT INTO invalidations (kind, target_id, created_at) VALUES ($1, $2, $3)")
        .bind(kind.as_str())
        .bind(id)
        .bind(to_millis(Utc::now()))
        .execute(&mut **tx)
        .await?;
    Ok(())
}

#[async_trait]
impl InvalidationLog for SqlStore {
    async fn invalidations_after(
        &self,
        after: i64,
        also: &[i64],
        limit: u32,
    ) -> Result<Vec<Invalidation>, StoreError> {
        let extra = if also.is_empty() {
            String::new()
        } else {
            format!(" OR seq IN ({})", placeholders(3, also.len()))
        };
        let sql = format!(
            "SELECT {COLUMNS} FROM invalidations WHERE seq > $1{extra} ORDER BY seq LIMIT $2"
        );
        let mut query = sqlx::query_as::<_, InvalidationRow>(&sql)
            .bind(after)
            .bind(i64::from(limit));
        for seq in also {
            query = query.bind(*seq);
        }
        decode(query.fetch_all(&self.pool).await?)
    }

    async fn latest_invalidations(&self, limit: u32) -> Result<Vec<Invalidation>, StoreError> {
        let rows = sqlx::query_as::<_, InvalidationRow>(&format!(
            "SELECT {COLUMNS} FROM invalidations ORDER BY seq DESC LIMIT $1"
        ))
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await?;
        decode(rows)
    }

    async fn purge_invalidations(&self, before: DateTime<Utc>) -> Result<u64, StoreError> {
        let mut tx = self.begin_write().await?;
        let n = sqlx::query("DELETE FROM invalidations WHERE created_at < $1")
            .bind(to_millis(before))
            .execute(&mut *tx)
            .await?
            .rows_affected();
        tx.commit().await?;
        Ok(n)
    }

    async fn listen_invalidations(&self) -> Result<Option<InvalidationListener>, StoreError> {
        let Some(notify) = &self.dialect.invalidation_notify else {
            return Ok(None);
        };
        // The `Any` driver has no LISTEN: a PostgreSQL connection of its
        // own, to the same URL (schema options included).
        let url = self.pool.connect_options().database_url.clone();
        let mut inner = sqlx::postgres::PgListener::connect(url.as_str()).await?;
        inner.listen(notify.channel).await?;
        let schema: String = sqlx::query_scalar("SELECT current_schema()::text")
            .fetch_one(&mut inner)
            .await?;
        Ok(Some(InvalidationListener { inner, schema }))
    }
}
