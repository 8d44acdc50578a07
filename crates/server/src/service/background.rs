//! Work that verification hands off so it never writes synchronously:
//! `last_used_at`/use counts, failed verifications (aggregated per client,
//! code and minute, see [`super::failure_audit`]), other audit rows, and the
//! invite usage log, accumulated in memory and flushed in batches by one
//! background task (every flush interval, and once more at shutdown).

use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
    time::Duration,
};

use chrono::{DateTime, Utc};
use tessera_core::{
    audit::{AuditEntry, RequestContext},
    crypto::KeyedHasher,
};
use tessera_store::{InviteUsageRecord, Store, StoreError, UsageUpdate};

use super::failure_audit::{AggregateKey, FailureAggregates, FailureKind, VerifyFailureEvent};
use crate::metrics::Metrics;

/// Bound on buffered rows of each kind between flushes: a flood of bad
/// tokens must not grow memory without limit. Dropped rows are counted.
const MAX_BUFFERED_ROWS: usize = 50_000;

#[derive(Default)]
struct Pending {
    usage: HashMap<String, (DateTime<Utc>, i64)>,
    audit: Vec<AuditEntry>,
    failures: FailureAggregates,
    invite_usage: Vec<InviteUsageRecord>,
}

/// Appends `rows` to `buf` up to the bound; returns how many did not fit.
fn push_bounded<T>(buf: &mut Vec<T>, rows: impl IntoIterator<Item = T>) -> u64 {
    let mut dropped = 0;
    for row in rows {
        if buf.len() >= MAX_BUFFERED_ROWS {
            dropped += 1;
        } else {
            buf.push(row);
        }
    }
    dropped
}

pub struct BackgroundWriter {
    pending: Mutex<Pending>,
    store: Arc<dyn Store>,
    metrics: Arc<Metrics>,
    /// Keys the aggregated audit rows by client without storing the address.
    row_keys: KeyedHasher,
}

impl BackgroundWriter {
    /// `row_keys` must be the same on every replica (derive it from
    /// `TESSERA_ENC_KEY`), so replicas add to the same aggregated rows.
    pub fn new(store: Arc<dyn Store>, metrics: Arc<Metrics>, row_keys: KeyedHasher) -> Self {
        Self {
            pending: Mutex::new(Pending::default()),
            store,
            metrics,
            row_keys,
        }
    }

    /// Counts a failed verification into its (client, code, minute)
    /// aggregate. O(1), no I/O; `context` (sealing the IP and user agent) is
    /// called only for the first failure of an aggregate, outside the lock.
    pub fn record_verify_failure(
        &self,
        event: VerifyFailureEvent<'_>,
        context: &(dyn Fn() -> RequestContext + Send + Sync),
    ) {
        self.record_failure(FailureKind::TokenVerify, event, context);
    }

    /// Counts a failure of `kind` into its (client, code, minute)
    /// aggregate, like [`Self::record_verify_failure`]; `event.token_id`
    /// is the aggregate's sample (for a client, the claimed client id).
    pub fn record_failure(
        &self,
        kind: FailureKind,
        event: VerifyFailureEvent<'_>,
        context: &(dyn Fn() -> RequestContext + Send + Sync),
    ) {
        let key = AggregateKey::new(kind, &event);
        let wants_context = {
            let mut p = self.pending.lock().unwrap_or_else(|e| e.into_inner());
            if p.failures.add_existing(&key, event.token_id) {
                return;
            }
            p.failures.wants_context(&key)
        };
        // Sealed outside the lock, and only for the row that keeps it.
        let context = if wants_context {
            context()
        } else {
            RequestContext::default()
        };
        let mut p = self.pending.lock().unwrap_or_else(|e| e.into_inner());
        if !p
            .failures
            .insert(key, event.token_id, context, MAX_BUFFERED_ROWS)
        {
            self.metrics.audit_dropped.inc();
        }
    }

    /// Notes one successful use of a token. O(1), no I/O.
    pub fn record_use(&self, token_id: &str, at: DateTime<Utc>) {
        let mut p = self.pending.lock().unwrap_or_else(|e| e.into_inner());
        match p.usage.get_mut(token_id) {
            Some((last, count)) => {
                *last = (*last).max(at);
                *count += 1;
            }
            None => {
                p.usage.insert(token_id.to_string(), (at, 1));
            }
        }
    }

    /// Queues an audit row to be written with the next flush.
    pub fn queue_audit(&self, entry: AuditEntry) {
        let mut p = self.pending.lock().unwrap_or_else(|e| e.into_inner());
        let dropped = push_bounded(&mut p.audit, [entry]);
        self.metrics.audit_dropped.inc_by(dropped);
    }

    /// Queues an invite usage-log row to be written with the next flush.
    pub fn queue_invite_usage(&self, row: InviteUsageRecord) {
        let mut p = self.pending.lock().unwrap_or_else(|e| e.into_inner());
        let dropped = push_bounded(&mut p.invite_usage, [row]);
        self.metrics.audit_dropped.inc_by(dropped);
    }

    /// Writes everything pending. On failure the usage counts are put back
    /// (they are additive), the rows too, within the buffer bound.
    pub async fn flush(&self) {
        let (usage, audit, invite_usage) = {
            let mut p = self.pending.lock().unwrap_or_else(|e| e.into_inner());
            (
                std::mem::take(&mut p.usage),
                std::mem::take(&mut p.audit),
                std::mem::take(&mut p.invite_usage),
            )
        };
        if !usage.is_empty() {
            let updates: Vec<UsageUpdate> = usage
                .iter()
                .map(|(id, (at, n))| UsageUpdate {
                    token_id: id.clone(),
                    last_used_at: *at,
                    uses: *n,
                })
                .collect();
            if let Err(e) = self.store.record_token_usage(&updates).await {
                tracing::warn!(error = %e, "could not record token usage; will retry");
                self.metrics.background_flush_errors.inc();
                for u in updates {
                    let at = u.last_used_at;
                    let mut p = self.pending.lock().unwrap_or_else(|e| e.into_inner());
                    let slot = p.usage.entry(u.token_id).or_insert((at, 0));
                    slot.0 = slot.0.max(at);
                    slot.1 += u.uses;
                }
            }
        }
        if !audit.is_empty() {
            let written = self.store.append_audit(&audit).await;
            self.requeue(written, audit, "audit", |p| &mut p.audit);
        }
        self.flush_failures().await;
        if !invite_usage.is_empty() {
            let written = self.store.append_invite_usage(&invite_usage).await;
            self.requeue(written, invite_usage, "invite usage", |p| {
                &mut p.invite_usage
            });
        }
    }

    /// Upserts the failed-verification aggregates; on failure puts their
    /// counts back for the next flush.
    async fn flush_failures(&self) {
        let batch = {
            let mut p = self.pending.lock().unwrap_or_else(|e| e.into_inner());
            p.failures.take(&self.row_keys, Utc::now())
        };
        if batch.is_empty() {
            return;
        }
        let rows: Vec<_> = batch.iter().map(|(.., row)| row.clone()).collect();
        if let Err(e) = self.store.upsert_audit_aggregates(&rows).await {
            tracing::warn!(error = %e, rows = rows.len(), "could not write failed-verification audit rows; will retry");
            self.metrics.background_flush_errors.inc();
            let mut p = self.pending.lock().unwrap_or_else(|e| e.into_inner());
            p.failures.restore(batch);
        }
    }

    /// After a failed write, puts the rows back in their buffer (within its
    /// bound, counting what does not fit) for the next flush.
    fn requeue<T>(
        &self,
        written: Result<(), StoreError>,
        rows: Vec<T>,
        what: &str,
        buffer: impl FnOnce(&mut Pending) -> &mut Vec<T>,
    ) {
        let Err(e) = written else {
            return;
        };
        tracing::warn!(error = %e, rows = rows.len(), "could not write {what} rows; will retry");
        self.metrics.background_flush_errors.inc();
        let mut p = self.pending.lock().unwrap_or_else(|e| e.into_inner());
        let dropped = push_bounded(buffer(&mut p), rows);
        self.metrics.audit_dropped.inc_by(dropped);
    }

    /// Flushes every `interval` until the process ends.
    pub fn spawn(self: &Arc<Self>, interval: Duration) -> tokio::task::JoinHandle<()> {
        let me = Arc::clone(self);
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(interval);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tick.tick().await;
                me.flush().await;
            }
        })
    }
}
