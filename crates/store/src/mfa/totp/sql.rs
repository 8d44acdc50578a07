//! TOTP queries: devices, the replay record and the attempt counter.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use tessera_core::{
    audit::AuditEntry,
    event::OutboxEvent,
    mfa::{
        lockout::{AttemptCounter, LockoutPolicy, Reservation},
        totp::{Algorithm, TotpParams},
        DeviceStatus, TotpDevice,
    },
};

use super::{NewTotpDevice, SealedDevice, TotpAttempt, TotpMatch, TotpOutcome, TotpRepository};
use crate::sql::write_tx::WriteTx;
use crate::{
    error::StoreError,
    sql::{from_millis, from_opt_millis, opt_millis, to_millis, SqlStore},
};

const DEVICE_COLUMNS: &str = "t.id, t.subject, t.name, t.status, t.algorithm, t.digits, \
     t.period, t.created_at, t.confirmed_at, t.last_used_at, t.secret_enc";

#[derive(sqlx::FromRow)]
struct DeviceRow {
    id: String,
    subject: String,
    name: String,
    status: String,
    algorithm: String,
    digits: i64,
    period: i64,
    created_at: i64,
    confirmed_at: Option<i64>,
    last_used_at: Option<i64>,
    secret_enc: String,
}

impl TryFrom<DeviceRow> for SealedDevice {
    type Error = StoreError;

    fn try_from(r: DeviceRow) -> Result<Self, StoreError> {
        let corrupt = |what: &str| StoreError::Corrupt(format!("totp_devices.{what}"));
        Ok(SealedDevice {
            device: TotpDevice {
                id: r.id,
                subject: r.subject,
                name: r.name,
                status: DeviceStatus::parse(&r.status).ok_or_else(|| corrupt("status"))?,
                params: TotpParams {
                    algorithm: Algorithm::parse(&r.algorithm)
                        .ok_or_else(|| corrupt("algorithm"))?,
                    digits: u32::try_from(r.digits).map_err(|_| corrupt("digits"))?,
                    period: r.period,
                },
                created_at: from_millis(r.created_at)?,
                confirmed_at: from_opt_millis(r.confirmed_at)?,
                last_used_at: from_opt_millis(r.last_used_at)?,
            },
            secret_sealed: r.secret_enc,
        })
    }
}

/// The attempt counter as stored (`mfa_attempts`).
#[derive(sqlx::FromRow)]
struct CounterRow {
    failures: i64,
    locked_until: Option<i64>,
    updated_at: i64,
}

impl TryFrom<CounterRow> for AttemptCounter {
    type Error = StoreError;

    fn try_from(r: CounterRow) -> Result<Self, StoreError> {
        Ok(AttemptCounter {
            failures: r.failures,
            locked_until: from_opt_millis(r.locked_until)?,
            updated_at: from_millis(r.updated_at)?,
        })
    }
}

/// Reads devices with `sql` (one bound parameter per `binds`).
async fn query_devices(
    store: &SqlStore,
    sql: &str,
    binds: &[&str],
) -> Result<Vec<SealedDevice>, StoreError> {
    let mut q = sqlx::query_as::<_, DeviceRow>(sql);
    for b in binds {
        q = q.bind(*b);
    }
    q.fetch_all(&store.pool)
        .await?
        .into_iter()
        .map(SealedDevice::try_from)
        .collect()
}

/// Locks the subject's attempt counter for the rest of `tx` and reads it,
/// creating it on first use: one upsert whose (no-op) update takes the row
/// lock on PostgreSQL (SQLite's `BEGIN IMMEDIATE` already serialises writers).
async fn lock_attempts(
    tx: &mut WriteTx,
    subject: &str,
    factor: &str,
    now: DateTime<Utc>,
) -> Result<AttemptCounter, StoreError> {
    let row: CounterRow = sqlx::query_as(
        "INSERT INTO mfa_attempts (subject, factor, failures, updated_at) \
         VALUES ($1, $2, 0, $3) ON CONFLICT (subject, factor) \
         DO UPDATE SET failures = mfa_attempts.failures \
         RETURNING failures, locked_until, updated_at",
    )
    .bind(subject)
    .bind(factor)
    .bind(to_millis(now))
    .fetch_one(&mut **tx)
    .await?;
    row.try_into()
}

async fn store_attempts(
    tx: &mut WriteTx,
    subject: &str,
    factor: &str,
    c: &AttemptCounter,
) -> Result<(), StoreError> {
    sqlx::query(
        "UPDATE mfa_attempts SET failures = $3, locked_until = $4, updated_at = $5 \
         WHERE subject = $1 AND factor = $2",
    )
    .bind(subject)
    .bind(factor)
    .bind(c.failures)
    .bind(opt_millis(c.locked_until))
    .bind(to_millis(c.updated_at))
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// Locks the matched device for the rest of `tx`: `false` if the subject no
/// longer has it in the expected state (pending when confirming, else active).
async fn lock_device(
    tx: &mut WriteTx,
    subject: &str,
    device_id: &str,
    confirming: bool,
) -> Result<bool, StoreError> {
    let affected = sqlx::query(
        "UPDATE totp_devices SET updated_at = updated_at \
         WHERE subject = $1 AND id = $2 AND status = $3",
    )
    .bind(subject)
    .bind(device_id)
    .bind(if confirming { "pending" } else { "active" })
    .execute(&mut **tx)
    .await?
    .rows_affected();
    Ok(affected == 1)
}

/// The replay check-and-record: one conditional upsert that changes a row
/// only when the step is later than the subject's last accepted one. Under
/// concurrency exactly one of two requests with the same code sees a row
/// affected, even without the counter's lock. `false`: a replay.
async fn record_step(tx: &mut WriteTx, subject: &str, m: &TotpMatch) -> Result<bool, StoreError> {
    let affected = sqlx::query(
        "INSERT INTO totp_replay (subject, last_step, expires_at) VALUES ($1, $2, $3) \
         ON CONFLICT (subject) DO UPDATE \
         SET last_step = excluded.last_step, expires_at = excluded.expires_at \
         WHERE totp_replay.last_step < excluded.last_step",
    )
    .bind(subject)
    .bind(m.step)
    .bind(to_millis(m.replay_until))
    .execute(&mut **tx)
    .await?
    .rows_affected();
    Ok(affected == 1)
}

#[async_trait]
impl TotpRepository for SqlStore {
    async fn create_totp_device(
        &self,
        new: &NewTotpDevice,
        audit: &AuditEntry,
        events: &[OutboxEvent],
    ) -> Result<(), StoreError> {
        let d = &new.device;
        let mut tx = self.begin_write().await?;
        sqlx::query(
            "INSERT INTO totp_devices (id, subject, name, status, algorithm, digits, period, \
             secret_enc, secret_key_id, created_at, updated_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $10)",
        )
        .bind(&d.id)
        .bind(&d.subject)
        .bind(&d.name)
        .bind(d.status.as_str())
        .bind(d.params.algorithm.as_str())
        .bind(i64::from(d.params.digits))
        .bind(d.params.period)
        .bind(&new.secret_sealed)
        .bind(&new.secret_key_id)
        .bind(to_millis(d.created_at))
        .execute(&mut *tx)
        .await?;
        tx.commit_logged(audit, events).await
    }

    async fn list_totp_devices(&self, subject: &str) -> Result<Vec<TotpDevice>, StoreError> {
        let sql = format!(
            "SELECT {DEVICE_COLUMNS} FROM totp_devices t WHERE t.subject = $1 ORDER BY t.id"
        );
        let devices = query_devices(self, &sql, &[subject]).await?;
        Ok(devices.into_iter().map(|d| d.device).collect())
    }

    async fn sealed_totp_devices(
        &self,
        subject: &str,
        device_id: Option<&str>,
    ) -> Result<Vec<SealedDevice>, StoreError> {
        match device_id {
            Some(id) => {
                let sql = format!(
                    "SELECT {DEVICE_COLUMNS} FROM totp_devices t WHERE t.subject = $1 AND t.id = $2"
                );
                query_devices(self, &sql, &[subject, id]).await
            }
            None => {
                let sql = format!(
                    "SELECT {DEVICE_COLUMNS} FROM totp_devices t \
                     WHERE t.subject = $1 AND t.status = 'active' ORDER BY t.id"
                );
                query_devices(self, &sql, &[subject]).await
            }
        }
    }

    async fn delete_totp_device(
        &self,
        subject: &str,
        device_id: &str,
        audit: &AuditEntry,
        events: &[OutboxEvent],
    ) -> Result<bool, StoreError> {
        let delete = sqlx::query("DELETE FROM totp_devices WHERE subject = $1 AND id = $2")
            .bind(subject)
            .bind(device_id);
        let tx = self.begin_write().await?;
        tx.apply_logged(delete, audit, events).await
    }

    async fn unlock_totp(&self, subject: &str, audit: &AuditEntry) -> Result<bool, StoreError> {
        let clear = sqlx::query(
            "DELETE FROM mfa_attempts WHERE subject = $1 AND factor = 'totp' AND failures > 0",
        )
        .bind(subject);
        let tx = self.begin_write().await?;
        tx.apply_logged(clear, audit, &[]).await
    }

    async fn totp_key_ids(&self) -> Result<Vec<String>, StoreError> {
        Ok(sqlx::query_scalar(
            "SELECT DISTINCT secret_key_id FROM totp_devices ORDER BY secret_key_id",
        )
        .fetch_all(&self.pool)
        .await?)
    }

    async fn totp_secrets_not_under(
        &self,
        key_id: &str,
        limit: u32,
    ) -> Result<Vec<(String, String)>, StoreError> {
        Ok(sqlx::query_as(
            "SELECT id, secret_enc FROM totp_devices WHERE secret_key_id <> $1 \
             ORDER BY id LIMIT $2",
        )
        .bind(key_id)
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await?)
    }

    async fn reseal_totp_secret(
        &self,
        device_id: &str,
        old: &str,
        new: &str,
        new_key_id: &str,
    ) -> Result<bool, StoreError> {
        let n = sqlx::query(
            "UPDATE totp_devices SET secret_enc = $3, secret_key_id = $4 \
             WHERE id = $1 AND secret_enc = $2",
        )
        .bind(device_id)
        .bind(old)
        .bind(new)
        .bind(new_key_id)
        .execute(&self.pool)
        .await?
        .rows_affected();
        Ok(n == 1)
    }
}

/// The factor name of TOTP rows in `mfa_attempts`.
const FACTOR: &str = "totp";

/// A TOTP check in a [`WriteTx`], in two steps around the comparison:
/// reserve an attempt under the locked counter, compare the code (in the
/// service, and only when granted), then finish. Checks for one subject are
/// serialised by the counter's row lock, so parallel guesses get at most
/// `policy.max_failures` comparisons and one step is accepted once, across
/// any number of replicas. The caller appends the outcome's audit rows and
/// events and commits; when locked it writes nothing (drop the transaction).
impl WriteTx {
    /// Locks the subject's attempt counter and reserves an attempt, or says
    /// until when the subject is locked.
    pub async fn reserve_totp_attempt(
        &mut self,
        subject: &str,
        now: DateTime<Utc>,
        policy: &LockoutPolicy,
    ) -> Result<Result<TotpAttempt, DateTime<Utc>>, StoreError> {
        let before = lock_attempts(self, subject, FACTOR, now).await?;
        Ok(match before.reserve(now, policy) {
            Reservation::Locked { until } => Err(until),
            Reservation::Granted { counter, last } => Ok(TotpAttempt {
                subject: subject.to_string(),
                now,
                before,
                reserved: counter,
                last,
            }),
        })
    }

    /// Finishes a reserved check with the device and step the code matched
    /// (`None`: no device): locks the device (it must still be pending when
    /// `activate`, else active), runs the replay check-and-record, marks the
    /// device used (and active), and writes the counter.
    pub async fn finish_totp_check(
        &mut self,
        attempt: TotpAttempt,
        matched: Option<TotpMatch>,
        activate: bool,
    ) -> Result<TotpOutcome, StoreError> {
        let (subject, now, last) = (attempt.subject.as_str(), attempt.now, attempt.last);
        let outcome = match matched {
            None => TotpOutcome::Invalid { locks_now: last },
            // The device was removed (or confirmed) since it was read: its
            // codes stop working at once.
            Some(m) if !lock_device(self, subject, &m.device_id, activate).await? => {
                TotpOutcome::Invalid { locks_now: last }
            }
            Some(m) if !record_step(self, subject, &m).await? => TotpOutcome::Replayed {
                device_id: m.device_id,
            },
            Some(m) => {
                mark_used(self, subject, &m.device_id, now, activate).await?;
                TotpOutcome::Accepted {
                    device_id: m.device_id,
                }
            }
        };
        // A success clears the count and a wrong code keeps its attempt. A
        // replay gives its attempt back: it is a right code sent twice (a
        // double submit, a retry), never a guess, and must not lock the user.
        let counter = match outcome {
            TotpOutcome::Accepted { .. } => AttemptCounter::fresh(now),
            TotpOutcome::Replayed { .. } => attempt.before,
            _ => attempt.reserved,
        };
        store_attempts(self, subject, FACTOR, &counter).await?;
        Ok(outcome)
    }
}

/// Records a device's use (and, confirming, its activation).
async fn mark_used(
    tx: &mut WriteTx,
    subject: &str,
    device_id: &str,
    now: DateTime<Utc>,
    activate: bool,
) -> Result<(), StoreError> {
    let activation = if activate {
        ", status = 'active', confirmed_at = $3"
    } else {
        ""
    };
    sqlx::query(&format!(
        "UPDATE totp_devices SET last_used_at = $3, updated_at = $3{activation} \
         WHERE subject = $1 AND id = $2"
    ))
    .bind(subject)
    .bind(device_id)
    .bind(to_millis(now))
    .execute(&mut **tx)
    .await?;
    Ok(())
}
