//! One-time auth codes: creation under per-subject and per-destination rate
//! limits, delivery bookkeeping, and the locked check of a presented code.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use tessera_core::{
    audit::AuditEntry,
    event::OutboxEvent,
    mfa::auth_code::{AuthCode, Channel},
    rate_limit::Limit,
    DomainError,
};

use super::{AuthCodeLimits, AuthCodeLookup, AuthCodeRepository, AuthCodeVerdict, NewAuthCode};
use crate::sql::write_tx::WriteTx;
use crate::{
    error::StoreError,
    mfa::common::lock_subject,
    sql::{
        count_in_window, from_millis, from_opt_millis, lock_key, lock_row, opt_millis, to_millis,
        SqlStore, TableRow,
    },
};

impl TableRow for AuthCodeRow {
    type Domain = StoredCode;
    const TABLE: &'static str = "auth_codes";
    const COLUMNS: &'static str =
        "t.id, t.subject, t.purpose, t.channel, t.code_hash, t.attempts, \
        t.max_attempts, t.expires_at, t.consumed_at, t.sent_at, t.created_at, t.superseded_at";
}

#[derive(sqlx::FromRow)]
struct AuthCodeRow {
    id: String,
    subject: String,
    purpose: String,
    channel: String,
    code_hash: String,
    attempts: i64,
    max_attempts: i64,
    expires_at: i64,
    consumed_at: Option<i64>,
    sent_at: Option<i64>,
    created_at: i64,
    superseded_at: Option<i64>,
}

/// A locked code: the record, its stored hash, and whether it was replaced.
struct StoredCode {
    code: AuthCode,
    code_hash: String,
    superseded: bool,
}

impl TryFrom<AuthCodeRow> for StoredCode {
    type Error = StoreError;

    fn try_from(r: AuthCodeRow) -> Result<Self, StoreError> {
        Ok(StoredCode {
            code: AuthCode {
                id: r.id,
                subject: r.subject,
                purpose: r.purpose,
                channel: Channel::parse(&r.channel)
                    .ok_or_else(|| StoreError::Corrupt("auth_codes.channel".into()))?,
                attempts: r.attempts,
                max_attempts: r.max_attempts,
                expires_at: from_millis(r.expires_at)?,
                consumed_at: from_opt_millis(r.consumed_at)?,
                sent_at: from_opt_millis(r.sent_at)?,
                created_at: from_millis(r.created_at)?,
            },
            code_hash: r.code_hash,
            superseded: r.superseded_at.is_some(),
        })
    }
}

async fn create(
    store: &SqlStore,
    new: &NewAuthCode,
    limits: &AuthCodeLimits,
    audit: &AuditEntry,
) -> Result<(), StoreError> {
    let c = &new.code;
    let mut tx = store.begin_write().await?;
    // Serialise creations per subject and per destination, so concurrent
    // requests cannot slip past either limit. Always subject first, then
    // destination: every transaction takes them in that order.
    lock_subject(&mut tx, &c.subject).await?;
    lock_key(
        &mut tx,
        "auth_code_destinations",
        "destination_hash",
        &new.destination_hash,
    )
    .await?;
    for (column, value, limit) in [
        ("subject", &c.subject, limits.per_subject),
        (
            "destination_hash",
            &new.destination_hash,
            limits.per_destination,
        ),
    ] {
        let rows = ("auth_codes", column, value.as_str());
        let limit = Limit::new(limit, limits.window);
        let decision = count_in_window(&mut tx, rows, limit, c.created_at).await?;
        if let Err(retry) = decision.into_result() {
            return Err(DomainError::RateLimited {
                retry_after_secs: retry,
            }
            .into());
        }
    }
    sqlx::query(
        "UPDATE auth_codes SET superseded_at = $3, updated_at = $3 WHERE subject = $1 \
         AND purpose = $2 AND superseded_at IS NULL AND consumed_at IS NULL",
    )
    .bind(&c.subject)
    .bind(&c.purpose)
    .bind(to_millis(c.created_at))
    .execute(&mut *tx)
    .await?;
    sqlx::query(
        "INSERT INTO auth_codes (id, subject, purpose, channel, destination_enc, \
         destination_hash, code_hash, attempts, max_attempts, expires_at, created_at, updated_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, 0, $8, $9, $10, $10)",
    )
    .bind(&c.id)
    .bind(&c.subject)
    .bind(&c.purpose)
    .bind(c.channel.as_str())
    .bind(&new.destination_sealed)
    .bind(&new.destination_hash)
    .bind(&new.code_hash)
    .bind(c.max_attempts)
    .bind(to_millis(c.expires_at))
    .bind(to_millis(c.created_at))
    .execute(&mut *tx)
    .await?;
    tx.commit_logged(audit, &[]).await
}

async fn finish_delivery(
    store: &SqlStore,
    id: &str,
    sent_at: Option<DateTime<Utc>>,
    audit: &AuditEntry,
    events: &[OutboxEvent],
) -> Result<(), StoreError> {
    let now = to_millis(tessera_core::ids::now());
    let mut tx = store.begin_write().await?;
    // A failed delivery retires the code, so it can never be used.
    let (sql, at) = match sent_at {
        Some(at) => (
            "UPDATE auth_codes SET sent_at = $2, updated_at = $3 WHERE id = $1",
            to_millis(at),
        ),
        None => (
            "UPDATE auth_codes SET superseded_at = $2, updated_at = $3 WHERE id = $1",
            now,
        ),
    };
    sqlx::query(sql)
        .bind(id)
        .bind(at)
        .bind(now)
        .execute(&mut *tx)
        .await?;
    tx.commit_logged(audit, events).await
}

#[async_trait]
impl AuthCodeRepository for SqlStore {
    async fn create_auth_code(
        &self,
        new: &NewAuthCode,
        limits: &AuthCodeLimits,
        audit: &AuditEntry,
    ) -> Result<(), StoreError> {
        create(self, new, limits, audit).await
    }

    async fn finish_auth_code_delivery(
        &self,
        id: &str,
        sent_at: Option<DateTime<Utc>>,
        audit: &AuditEntry,
        events: &[OutboxEvent],
    ) -> Result<(), StoreError> {
        finish_delivery(self, id, sent_at, audit, events).await
    }
}

/// Auth-code checks inside a [`WriteTx`]: lock the current code, decide (in
/// the service), write the verdict with its audit row and events, commit.
impl WriteTx {
    /// Locks the subject's current code for `lookup.purpose` and reads it
    /// with its stored hash; `None` if there is none, or `lookup.id` names a
    /// replaced one.
    pub async fn lock_current_auth_code(
        &mut self,
        lookup: &AuthCodeLookup,
    ) -> Result<Option<(AuthCode, String)>, StoreError> {
        let current: Option<String> = sqlx::query_scalar(
            "SELECT id FROM auth_codes WHERE subject = $1 AND purpose = $2 \
             AND superseded_at IS NULL ORDER BY created_at DESC, id DESC LIMIT 1",
        )
        .bind(&lookup.subject)
        .bind(&lookup.purpose)
        .fetch_optional(&mut **self)
        .await?;
        // A stale id (a replaced code) finds nothing: only the current code counts.
        let Some(id) = current.filter(|id| lookup.id.as_ref().is_none_or(|want| want == id)) else {
            return Ok(None);
        };
        Ok(lock_row::<AuthCodeRow>(self, &id)
            .await?
            // A newer code may have replaced this one between the read and
            // the lock (PostgreSQL): then it is no longer the current code.
            .filter(|stored| !stored.superseded)
            .map(|stored| (stored.code, stored.code_hash)))
    }

    /// Writes a verdict about the code locked by
    /// [`WriteTx::lock_current_auth_code`] (`None` when there was none): the
    /// attempt it used and its consumption, its audit row and events.
    pub async fn write_auth_code_verdict(
        &mut self,
        locked: Option<&AuthCode>,
        verdict: &AuthCodeVerdict,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        if let Some(code) = locked {
            if verdict.count_attempt || verdict.outcome.is_ok() {
                sqlx::query(
                    "UPDATE auth_codes SET attempts = attempts + $2, consumed_at = $3, \
                     updated_at = $4 WHERE id = $1",
                )
                .bind(&code.id)
                .bind(i64::from(verdict.count_attempt))
                .bind(
                    verdict
                        .outcome
                        .is_ok()
                        .then(|| to_millis(now))
                        .or(opt_millis(code.consumed_at)),
                )
                .bind(to_millis(now))
                .execute(&mut **self)
                .await?;
            }
        }
        self.append_audit(std::slice::from_ref(&verdict.audit))
            .await?;
        self.append_events(&verdict.events).await
    }
}
