//! Recovery codes: single-use, replaced as a set. Trait and SQL in one file
//! because both are short.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use tessera_core::{audit::AuditEntry, event::OutboxEvent, ids::new_id};

use crate::{
    error::StoreError,
    mfa::common::lock_subject,
    sql::{placeholders, to_millis, SqlStore},
};

/// A subject's recovery codes.
#[async_trait]
pub trait RecoveryCodeRepository: Send + Sync {
    /// Replaces the subject's recovery codes with a new set.
    async fn replace_recovery_codes(
        &self,
        subject: &str,
        hashes: &[String],
        now: DateTime<Utc>,
        audit: &AuditEntry,
        events: &[OutboxEvent],
    ) -> Result<(), StoreError>;

    /// Marks the unused code matching one of `candidates` used, atomically,
    /// with its audit row and events. `false` if none matched.
    async fn use_recovery_code(
        &self,
        subject: &str,
        candidates: &[String],
        now: DateTime<Utc>,
        audit: &AuditEntry,
        events: &[OutboxEvent],
    ) -> Result<bool, StoreError>;

    async fn recovery_codes_left(&self, subject: &str) -> Result<i64, StoreError>;
}

#[async_trait]
impl RecoveryCodeRepository for SqlStore {
    async fn replace_recovery_codes(
        &self,
        subject: &str,
        hashes: &[String],
        now: DateTime<Utc>,
        audit: &AuditEntry,
        events: &[OutboxEvent],
    ) -> Result<(), StoreError> {
        let mut tx = self.begin_write().await?;
        // Without this lock, two concurrent regenerations on PostgreSQL each
        // delete only the rows they can see and both new sets survive.
        lock_subject(&mut tx, subject).await?;
        sqlx::query("DELETE FROM recovery_codes WHERE subject = $1")
            .bind(subject)
            .execute(&mut *tx)
            .await?;
        for hash in hashes {
            sqlx::query(
                "INSERT INTO recovery_codes (id, subject, code_hash, created_at) \
                 VALUES ($1, $2, $3, $4)",
            )
            .bind(new_id())
            .bind(subject)
            .bind(hash)
            .bind(to_millis(now))
            .execute(&mut *tx)
            .await?;
        }
        tx.commit_logged(audit, events).await
    }

    async fn use_recovery_code(
        &self,
        subject: &str,
        candidates: &[String],
        now: DateTime<Utc>,
        audit: &AuditEntry,
        events: &[OutboxEvent],
    ) -> Result<bool, StoreError> {
        if candidates.is_empty() {
            return Ok(false);
        }
        let tx = self.begin_write().await?;
        // One conditional update: two requests with one code cannot both
        // see it unused.
        let sql = format!(
            "UPDATE recovery_codes SET used_at = $2 WHERE subject = $1 AND used_at IS NULL \
             AND code_hash IN ({})",
            placeholders(3, candidates.len())
        );
        let mut q = sqlx::query(&sql).bind(subject).bind(to_millis(now));
        for c in candidates {
            q = q.bind(c);
        }
        tx.apply_logged(q, audit, events).await
    }

    async fn recovery_codes_left(&self, subject: &str) -> Result<i64, StoreError> {
        Ok(sqlx::query_scalar(
            "SELECT COUNT(*) AS n FROM recovery_codes WHERE subject = $1 AND used_at IS NULL",
        )
        .bind(subject)
        .fetch_one(&self.pool)
        .await?)
    }
}
