//! Failed-login counters, exact across replicas: an attempt is reserved (the
//! counter incremented) in a locked transaction *before* the password is
//! checked, so N parallel guesses make N reservations and only as many as
//! the limit get to a password check. A success gives its reservation back.

use chrono::{DateTime, Duration, Utc};

use crate::{
    error::StoreError,
    sql::{to_millis, write_tx::WriteTx},
};

/// A counter's key: the normalised e-mail (whether or not it has an
/// account) or the client IP.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AttemptKey {
    Account(String),
    Ip(String),
}

impl AttemptKey {
    fn stored(&self) -> String {
        match self {
            Self::Account(email) => format!("account:{email}"),
            Self::Ip(ip) => format!("ip:{ip}"),
        }
    }
}

/// At most `max_failures` in a window of `window`, counted from the window's
/// first failure.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ThrottleRule {
    pub max_failures: i64,
    pub window: Duration,
}

/// Login-attempt changes inside a [`WriteTx`].
impl WriteTx {
    /// Reserves one attempt under `key`: `Ok(None)` when reserved,
    /// `Ok(Some(seconds))` when the key is throttled for that long.
    pub async fn reserve_login_attempt(
        &mut self,
        key: &AttemptKey,
        rule: ThrottleRule,
        now: DateTime<Utc>,
    ) -> Result<Option<i64>, StoreError> {
        let stored = key.stored();
        let now_ms = to_millis(now);
        // Create the counter if needed, then lock it (the no-op UPDATE is the
        // row lock on PostgreSQL; SQLite's write lock is already held), so
        // concurrent reservations for one key run one after another.
        sqlx::query(
            "INSERT INTO login_attempts (key, failures, window_start, updated_at) \
             VALUES ($1, 0, $2, $2) ON CONFLICT (key) DO NOTHING",
        )
        .bind(&stored)
        .bind(now_ms)
        .execute(&mut **self)
        .await?;
        let (failures, start): (i64, i64) = sqlx::query_as(
            "UPDATE login_attempts SET updated_at = updated_at WHERE key = $1 \
             RETURNING failures, window_start",
        )
        .bind(&stored)
        .fetch_one(&mut **self)
        .await?;
        // `now` was read before this row's lock was had: a reservation that
        // held it meanwhile may have opened the window after `now`. Judge
        // from no earlier than the window's start, so Retry-After never
        // exceeds the window.
        let now_ms = now_ms.max(start);
        let row = Some((failures, start));
        let window_ms = rule.window.num_milliseconds();
        let (failures, start) = match row {
            Some((f, start)) if now_ms < start + window_ms => (f, start),
            _ => (0, now_ms),
        };
        if failures >= rule.max_failures {
            let left_ms = start + window_ms - now_ms;
            return Ok(Some((left_ms + 999) / 1000));
        }
        sqlx::query(
            "INSERT INTO login_attempts (key, failures, window_start, updated_at) \
             VALUES ($1, $2, $3, $4) ON CONFLICT (key) DO UPDATE SET \
             failures = excluded.failures, window_start = excluded.window_start, \
             updated_at = excluded.updated_at",
        )
        .bind(&stored)
        .bind(failures + 1)
        .bind(start)
        .bind(now_ms)
        .execute(&mut **self)
        .await?;
        Ok(None)
    }

    /// Gives back one reservation (the attempt succeeded).
    pub async fn release_login_attempt(&mut self, key: &AttemptKey) -> Result<(), StoreError> {
        sqlx::query(
            "UPDATE login_attempts SET failures = failures - 1 WHERE key = $1 AND failures > 0",
        )
        .bind(key.stored())
        .execute(&mut **self)
        .await?;
        Ok(())
    }

    /// Forgets every failure under `key` (a success, or an admin's unlock).
    pub async fn reset_login_attempts(&mut self, key: &AttemptKey) -> Result<(), StoreError> {
        sqlx::query("DELETE FROM login_attempts WHERE key = $1")
            .bind(key.stored())
            .execute(&mut **self)
            .await?;
        Ok(())
    }
}
