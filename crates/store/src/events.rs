//! The outbox read as a stream in commit order, for the event stream
//! (`GET /v1/events/stream`). Outbox ids are UUIDv7s taken before commit, so
//! two transactions can commit out of id order, and a reader that resumed
//! "after id B" would skip an event A < B committed later. Positions fix
//! that: a numbering pass ([`EventFeed::sequence_events`]) gives each
//! *committed* event that has none the next number, under the lock of the
//! one `outbox_sequence` row, and commits the numbers with the new head.
//!
//! Why no event is ever skipped: a pass sees only committed rows, and passes
//! run one at a time (the row lock; SQLite's single writer), each committing
//! before the next can read the head. So the positions visible to any reader
//! are always 1..=head with no hole a later commit could fill, and every
//! event committed after a pass gets a number above that pass's head. A
//! reader that has seen everything up to its cursor `c` finds every event it
//! has not seen at positions above `c`. No clock and no assumption about
//! how long a transaction lasts is involved.

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use crate::{
    audit::{EventPayload, PayloadColumns},
    error::StoreError,
    sql::{columns::Millis, SqlStore},
};

/// An outbox event with its stream position.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct FeedEvent {
    /// The position: increasing in the order events became readable.
    pub seq: i64,
    /// The outbox id (the `webhook-id` of its deliveries).
    pub id: String,
    pub event_type: String,
    #[sqlx(flatten, try_from = "PayloadColumns")]
    pub payload: EventPayload,
    #[sqlx(try_from = "Millis")]
    pub created_at: DateTime<Utc>,
}

/// Most events one numbering transaction takes; a pass runs several.
const SEQUENCE_BATCH: i64 = 500;
/// Most numbering transactions in one pass, so a large backlog (events from
/// before the migration) is numbered over a few passes, not in one long one.
const MAX_BATCHES: usize = 20;

/// The outbox in commit order.
#[async_trait]
pub trait EventFeed: Send + Sync {
    /// Numbers the committed events that have no position yet (oldest id
    /// first) and returns the head: the highest position given so far.
    /// Cheap (one indexed read) when there is nothing to number.
    async fn sequence_events(&self) -> Result<i64, StoreError>;

    /// The events at positions in `(after, upto]`, in position order, at
    /// most `limit`, only of `types` unless it is empty. `upto` must be a
    /// head this store returned, so every position up to it is readable.
    async fn events_between(
        &self,
        after: i64,
        upto: i64,
        types: &[String],
        limit: u32,
    ) -> Result<Vec<FeedEvent>, StoreError>;
}

impl SqlStore {
    async fn head(&self) -> Result<i64, StoreError> {
        Ok(
            sqlx::query_scalar("SELECT last_seq FROM outbox_sequence WHERE id = 1")
                .fetch_one(&self.pool)
                .await?,
        )
    }

    /// One numbering transaction; returns how many events it numbered and
    /// the head after it.
    async fn sequence_batch(&self) -> Result<(usize, i64), StoreError> {
        let mut tx = self.begin_write().await?;
        // The row lock that serialises passes (a no-op under SQLite's
        // write lock). Taken before reading anything, so the reads below see
        // every pass that committed before this one.
        sqlx::query("UPDATE outbox_sequence SET last_seq = last_seq WHERE id = 1")
            .execute(&mut *tx)
            .await?;
        let head: i64 = sqlx::query_scalar("SELECT last_seq FROM outbox_sequence WHERE id = 1")
            .fetch_one(&mut *tx)
            .await?;
        let ids: Vec<String> = sqlx::query_scalar(
            "SELECT id FROM outbox_events WHERE seq IS NULL ORDER BY id LIMIT $1",
        )
        .bind(SEQUENCE_BATCH)
        .fetch_all(&mut *tx)
        .await?;
        if ids.is_empty() {
            tx.rollback().await?;
            return Ok((0, head));
        }
        let mut next = head;
        for id in &ids {
            next += 1;
            sqlx::query("UPDATE outbox_events SET seq = $1 WHERE id = $2")
                .bind(next)
                .bind(id)
                .execute(&mut *tx)
                .await?;
        }
        sqlx::query("UPDATE outbox_sequence SET last_seq = $1 WHERE id = 1")
            .bind(next)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok((ids.len(), next))
    }
}

#[async_trait]
impl EventFeed for SqlStore {
    async fn sequence_events(&self) -> Result<i64, StoreError> {
        let waiting: Option<String> =
            sqlx::query_scalar("SELECT id FROM outbox_events WHERE seq IS NULL LIMIT 1")
                .fetch_optional(&self.pool)
                .await?;
        if waiting.is_none() {
            return self.head().await;
        }
        let mut head = 0;
        for _ in 0..MAX_BATCHES {
            let (numbered, now) = self.sequence_batch().await?;
            head = now;
            if (numbered as i64) < SEQUENCE_BATCH {
                break;
            }
        }
        Ok(head)
    }

    async fn events_between(
        &self,
        after: i64,
        upto: i64,
        types: &[String],
        limit: u32,
    ) -> Result<Vec<FeedEvent>, StoreError> {
        let mut sql = String::from(
            "SELECT seq, id, event_type, payload, payload_sealed, created_at FROM outbox_events \
             WHERE seq > $1 AND seq <= $2",
        );
        if !types.is_empty() {
            let marks: Vec<String> = (0..types.len()).map(|i| format!("${}", i + 4)).collect();
            sql.push_str(&format!(" AND event_type IN ({})", marks.join(", ")));
        }
        sql.push_str(" ORDER BY seq LIMIT $3");
        let mut query = sqlx::query_as::<_, FeedEvent>(&sql)
            .bind(after)
            .bind(upto)
            .bind(i64::from(limit.clamp(1, 10_000)));
        for t in types {
            query = query.bind(t);
        }
        Ok(query.fetch_all(&self.pool).await?)
    }
}
