//! Scheduled jobs: leases that make each job run once per interval across
//! replicas, the record of runs, and the purge of old logs and webhook
//! history. Trait, types and SQL in one file because all three are short.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use tessera_core::ids::new_id;

use crate::{
    error::StoreError,
    sql::{columns::Millis, from_opt_millis, to_millis, SqlStore},
};

/// One recorded run of a scheduled job (read straight from `job_runs`).
#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct JobRun {
    pub job: String,
    pub holder: String,
    #[sqlx(try_from = "Millis")]
    pub started_at: DateTime<Utc>,
    #[sqlx(try_from = "Millis")]
    pub finished_at: DateTime<Utc>,
    /// `success` or `failure`.
    pub outcome: String,
    pub items: i64,
    pub error: Option<String>,
}

/// A replica's bid for a job's lease: `holder` runs `job` until `until`,
/// if the lease is free at `now`.
#[derive(Debug, Clone, Copy)]
pub struct JobLease<'a> {
    pub job: &'a str,
    pub holder: &'a str,
    pub now: DateTime<Utc>,
    pub until: DateTime<Utc>,
}

#[derive(Debug, Clone)]
pub struct JobSummary {
    pub job: String,
    pub last_run: Option<JobRun>,
    pub last_success_at: Option<DateTime<Utc>>,
}

/// Leases that make each job run once per interval across replicas, the
/// record of runs, and the log purge.
#[async_trait]
pub trait JobRepository: Send + Sync {
    /// Takes the job's lease if it is free; `true` if this bid won it.
    async fn try_acquire_job(&self, lease: &JobLease<'_>) -> Result<bool, StoreError>;
    async fn record_job_run(&self, run: &JobRun) -> Result<(), StoreError>;
    async fn job_summary(&self, job: &str) -> Result<JobSummary, StoreError>;
    /// Deletes log rows older than the cut-offs; returns rows deleted.
    async fn purge_logs(
        &self,
        audit_before: DateTime<Utc>,
        usage_before: DateTime<Utc>,
    ) -> Result<u64, StoreError>;
    /// Deletes finished webhook deliveries (succeeded or failed) last
    /// changed before `before`, with their attempts, then outbox events
    /// dispatched before `before` that no remaining delivery needs. Pending
    /// deliveries and undispatched events are kept whatever their age.
    /// Returns rows deleted.
    async fn purge_webhook_history(&self, before: DateTime<Utc>) -> Result<u64, StoreError>;
}

#[async_trait]
impl JobRepository for SqlStore {
    async fn try_acquire_job(&self, lease: &JobLease<'_>) -> Result<bool, StoreError> {
        let mut tx = self.begin_write().await?;
        sqlx::query("INSERT INTO job_leases (job, holder, lease_until) VALUES ($1, NULL, NULL) ON CONFLICT (job) DO NOTHING")
            .bind(lease.job)
            .execute(&mut *tx)
            .await?;
        // A conditional UPDATE is atomic on both backends: of several replicas
        // racing for a free lease, exactly one matches the row.
        let taken = sqlx::query(
            "UPDATE job_leases SET holder = $2, lease_until = $4 \
             WHERE job = $1 AND (lease_until IS NULL OR lease_until <= $3)",
        )
        .bind(lease.job)
        .bind(lease.holder)
        .bind(to_millis(lease.now))
        .bind(to_millis(lease.until))
        .execute(&mut *tx)
        .await?
        .rows_affected();
        tx.commit().await?;
        Ok(taken == 1)
    }

    async fn record_job_run(&self, run: &JobRun) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO job_runs (id, job, holder, started_at, finished_at, outcome, items, error) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        )
        .bind(new_id())
        .bind(&run.job)
        .bind(&run.holder)
        .bind(to_millis(run.started_at))
        .bind(to_millis(run.finished_at))
        .bind(&run.outcome)
        .bind(run.items)
        .bind(&run.error)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn job_summary(&self, job: &str) -> Result<JobSummary, StoreError> {
        let last: Option<JobRun> = sqlx::query_as(
            "SELECT job, holder, started_at, finished_at, outcome, items, error FROM job_runs \
             WHERE job = $1 ORDER BY started_at DESC LIMIT 1",
        )
        .bind(job)
        .fetch_optional(&self.pool)
        .await?;
        let success: Option<i64> = sqlx::query_scalar(
            "SELECT MAX(finished_at) AS at FROM job_runs WHERE job = $1 AND outcome = 'success'",
        )
        .bind(job)
        .fetch_one(&self.pool)
        .await?;
        Ok(JobSummary {
            job: job.to_string(),
            last_run: last,
            last_success_at: from_opt_millis(success)?,
        })
    }

    async fn purge_logs(
        &self,
        audit_before: DateTime<Utc>,
        usage_before: DateTime<Utc>,
    ) -> Result<u64, StoreError> {
        let mut tx = self.begin_write().await?;
        let mut n = 0;
        for (sql, cutoff) in [
            ("DELETE FROM audit_log WHERE at < $1", audit_before),
            ("DELETE FROM invite_usage_log WHERE at < $1", usage_before),
            ("DELETE FROM webhook_attempts WHERE at < $1", usage_before),
            ("DELETE FROM job_runs WHERE started_at < $1", usage_before),
        ] {
            n += sqlx::query(sql)
                .bind(to_millis(cutoff))
                .execute(&mut *tx)
                .await?
                .rows_affected();
        }
        tx.commit().await?;
        Ok(n)
    }

    async fn purge_webhook_history(&self, before: DateTime<Utc>) -> Result<u64, StoreError> {
        let mut tx = self.begin_write().await?;
        let mut n = 0;
        // Order matters: attempts before their deliveries, and events only
        // once no delivery refers to them (a failed delivery can be retried
        // by an operator, which needs its event's payload).
        for sql in [
            "DELETE FROM webhook_attempts WHERE delivery_id IN \
             (SELECT id FROM webhook_deliveries WHERE status <> 'pending' AND updated_at < $1)",
            "DELETE FROM webhook_deliveries WHERE status <> 'pending' AND updated_at < $1",
            "DELETE FROM outbox_events WHERE dispatched_at IS NOT NULL AND dispatched_at < $1 \
             AND NOT EXISTS (SELECT 1 FROM webhook_deliveries d WHERE d.event_id = outbox_events.id)",
        ] {
            n += sqlx::query(sql)
                .bind(to_millis(before))
                .execute(&mut *tx)
                .await?
                .rows_affected();
        }
        tx.commit().await?;
        Ok(n)
    }
}
