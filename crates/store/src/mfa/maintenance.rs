//! What spans the second-factor aggregates: audit rows for failed checks
//! and the purge of lapsed state. Trait and SQL in one file.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use tessera_core::{audit::AuditEntry, event::OutboxEvent};

use crate::{
    error::StoreError,
    sql::{to_millis, SqlStore},
};

/// Bookkeeping across TOTP devices, recovery codes and auth codes.
#[async_trait]
pub trait MfaMaintenance: Send + Sync {
    /// Audit rows and events for checks that changed nothing else (failures).
    async fn record_mfa_activity(
        &self,
        audit: &[AuditEntry],
        events: &[OutboxEvent],
    ) -> Result<(), StoreError>;

    /// Deletes lapsed replay records and attempt counters, auth codes and
    /// unconfirmed TOTP enrolments created before `codes_before`, and lock
    /// rows with nothing left to guard. Returns rows deleted.
    async fn purge_mfa_state(
        &self,
        now: DateTime<Utc>,
        codes_before: DateTime<Utc>,
    ) -> Result<u64, StoreError>;
}

#[async_trait]
impl MfaMaintenance for SqlStore {
    async fn record_mfa_activity(
        &self,
        audit: &[AuditEntry],
        events: &[OutboxEvent],
    ) -> Result<(), StoreError> {
        let mut tx = self.begin_write().await?;
        tx.append_audit(audit).await?;
        tx.append_events(events).await?;
        tx.commit().await
    }

    async fn purge_mfa_state(
        &self,
        now: DateTime<Utc>,
        codes_before: DateTime<Utc>,
    ) -> Result<u64, StoreError> {
        // Each delete commits on its own: one transaction would lock replay
        // records and counters in the opposite order to a TOTP check and
        // could deadlock with one on PostgreSQL.
        let now_ms = to_millis(now);
        let mut n = 0;
        for (sql, at) in [
            ("DELETE FROM totp_replay WHERE expires_at < $1", now_ms),
            (
                "DELETE FROM auth_codes WHERE created_at < $1",
                to_millis(codes_before),
            ),
            // Enrolments never confirmed within the auth-code horizon (a day).
            (
                "DELETE FROM totp_devices WHERE status = 'pending' AND created_at < $1",
                to_millis(codes_before),
            ),
            // Counters idle for a day and not locked carry nothing worth keeping.
            (
                "DELETE FROM mfa_attempts WHERE updated_at < $1 \
                 AND (locked_until IS NULL OR locked_until < $1)",
                now_ms - 86_400_000,
            ),
        ] {
            n += sqlx::query(sql)
                .bind(at)
                .execute(&self.pool)
                .await?
                .rows_affected();
        }
        // Lock rows of destinations and subjects with nothing left to guard
        // (a concurrent create simply inserts its row again).
        for sql in [
            "DELETE FROM auth_code_destinations \
             WHERE destination_hash NOT IN (SELECT destination_hash FROM auth_codes)",
            "DELETE FROM mfa_subjects WHERE subject NOT IN (SELECT subject FROM auth_codes) \
             AND subject NOT IN (SELECT subject FROM recovery_codes)",
        ] {
            n += sqlx::query(sql).execute(&self.pool).await?.rows_affected();
        }
        Ok(n)
    }
}
