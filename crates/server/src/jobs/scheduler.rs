//! Scheduled maintenance jobs, run in-process on every replica but, through
//! a lease row per job, once per interval across all of them.
//!
//! Each replica checks every `check_interval` whether a job's lease is free;
//! whoever takes it holds it for the job's interval and runs the job. Every
//! run is recorded (start, end, outcome, items touched) and exported.

use std::{sync::Arc, time::Duration};

use chrono::Utc;
use tessera_store::{JobLease, JobRun, StoreError};

use crate::{config::JobSettings, runtime::Services, service::ServiceError};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Job {
    RevokeExpiredTokens,
    PurgeOldLogs,
    RotateExpiringTokens,
    ResendPendingWebhooks,
}

impl Job {
    pub const ALL: [Self; 4] = [
        Self::RevokeExpiredTokens,
        Self::PurgeOldLogs,
        Self::RotateExpiringTokens,
        Self::ResendPendingWebhooks,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Self::RevokeExpiredTokens => "revoke_expired_tokens",
            Self::PurgeOldLogs => "purge_old_logs",
            Self::RotateExpiringTokens => "rotate_expiring_tokens",
            Self::ResendPendingWebhooks => "resend_pending_webhooks",
        }
    }

    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|j| j.name() == name)
    }

    pub fn interval(self, s: &JobSettings) -> Duration {
        match self {
            Self::RevokeExpiredTokens => s.revoke_expired_tokens,
            Self::PurgeOldLogs => s.purge_old_logs,
            Self::RotateExpiringTokens => s.rotate_expiring_tokens,
            Self::ResendPendingWebhooks => s.resend_pending_webhooks,
        }
    }

    /// The work itself; returns how many items it touched.
    async fn execute(self, services: &Services, s: &JobSettings) -> Result<i64, ServiceError> {
        const BATCH: u32 = 500;
        let now = Utc::now();
        match self {
            Self::RevokeExpiredTokens => services.tokens.revoke_expired(BATCH).await,
            Self::PurgeOldLogs => {
                let logs = services
                    .store
                    .purge_logs(now - s.audit_retention, now - s.usage_retention)
                    .await?;
                // Dispatched outbox events and finished deliveries.
                let webhooks = services
                    .store
                    .purge_webhook_history(now - s.webhook_event_retention)
                    .await?;
                // Second-factor state is short-lived: lapsed replay records
                // and counters, and auth codes a day past their creation.
                let mfa = services
                    .store
                    .purge_mfa_state(now, now - chrono::Duration::days(1))
                    .await?;
                // Expired WebSocket tickets (a redemption deletes the ones
                // it finds) and connections closed before the audit horizon.
                let ws = services
                    .store
                    .purge_ws_state(now, now - s.audit_retention)
                    .await?;
                // Reset and verification links a day after they were used,
                // superseded or expired.
                let links = services
                    .store
                    .purge_user_links(now - chrono::Duration::days(1))
                    .await?;
                // Invalidations every process has long read.
                let invalidations = services
                    .store
                    .purge_invalidations(now - super::invalidations::RETENTION)
                    .await?;
                Ok((logs + webhooks + mfa + ws + links + invalidations) as i64)
            }
            Self::RotateExpiringTokens => {
                services
                    .tokens
                    .rotate_expiring(s.rotation_window, BATCH)
                    .await
            }
            Self::ResendPendingWebhooks => {
                Ok(services.store.release_stale_leases(now).await? as i64)
            }
        }
    }
}

/// Runs `job` now (whoever holds its lease), records and exports the run.
pub async fn run_now(
    services: &Services,
    settings: &JobSettings,
    job: Job,
    holder: &str,
) -> Result<JobRun, StoreError> {
    let started_at = tessera_core::ids::now();
    let result = job.execute(services, settings).await;
    let run = JobRun {
        job: job.name().to_string(),
        holder: holder.to_string(),
        started_at,
        finished_at: tessera_core::ids::now(),
        outcome: if result.is_ok() { "success" } else { "failure" }.to_string(),
        items: *result.as_ref().unwrap_or(&0),
        error: result.as_ref().err().map(|e| e.to_string()),
    };
    services.store.record_job_run(&run).await?;
    let m = &services.metrics;
    m.job_runs
        .with_label_values(&[job.name(), &run.outcome])
        .inc();
    m.job_items
        .with_label_values(&[job.name()])
        .inc_by(run.items.max(0) as u64);
    match &result {
        Ok(items) => tracing::info!(job = job.name(), items, "job finished"),
        Err(e) => tracing::warn!(job = job.name(), error = %e, "job failed"),
    }
    Ok(run)
}

/// Takes the lease if free and runs the job; `None` if another replica
/// holds it.
pub async fn run_if_due(
    services: &Services,
    settings: &JobSettings,
    job: Job,
    holder: &str,
) -> Result<Option<JobRun>, StoreError> {
    let now = Utc::now();
    let lease =
        chrono::Duration::from_std(job.interval(settings)).unwrap_or(chrono::Duration::hours(1));
    if !services
        .store
        .try_acquire_job(&JobLease {
            job: job.name(),
            holder,
            now,
            until: now + lease,
        })
        .await?
    {
        return Ok(None);
    }
    run_now(services, settings, job, holder).await.map(Some)
}

/// Exports the shared last-success time, so every replica reports the same.
async fn export_last_success(services: &Services, job: Job) {
    if let Ok(summary) = services.store.job_summary(job.name()).await {
        let at = summary
            .last_success_at
            .map_or(0.0, |t| t.timestamp() as f64);
        services
            .metrics
            .job_last_success
            .with_label_values(&[job.name()])
            .set(at);
    }
}

/// One task per job on this replica.
pub fn spawn(services: Arc<Services>, settings: JobSettings) -> Vec<tokio::task::JoinHandle<()>> {
    let holder = format!(
        "{}-{}",
        std::process::id(),
        &tessera_core::ids::new_id()[24..]
    );
    Job::ALL
        .into_iter()
        .map(|job| {
            let services = services.clone();
            let settings = settings.clone();
            let holder = holder.clone();
            services
                .metrics
                .job_interval
                .with_label_values(&[job.name()])
                .set(job.interval(&settings).as_secs_f64());
            tokio::spawn(async move {
                let check = settings.check_interval.min(job.interval(&settings));
                loop {
                    if let Err(e) = run_if_due(&services, &settings, job, &holder).await {
                        tracing::warn!(job = job.name(), error = %e, "could not run the job; will retry");
                    }
                    export_last_success(&services, job).await;
                    tokio::time::sleep(check).await;
                }
            })
        })
        .collect()
}
