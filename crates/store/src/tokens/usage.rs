//! The per-use state of API tokens that verification writes: spending
//! credits and binding a first device. Each is decided by one conditional
//! `UPDATE` (checked by what it returns or how many rows it matched), so it
//! is exact under concurrency on every replica and both backends: on
//! PostgreSQL the row lock serialises the updates and each re-checks its
//! condition against the committed row; on SQLite the writer turn and the
//! database's single writer do the same.

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use super::rows::CreditColumns;
use crate::{
    error::StoreError,
    sql::{to_millis, SqlStore},
};

/// What spending credits found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CreditSpend {
    /// Spent; this many are left.
    Spent { remaining: i64 },
    /// Not enough left (nothing spent); this many are left, refill applied.
    Insufficient { remaining: i64 },
    /// The token has no credits (any more) or is gone: nothing to spend.
    Unlimited,
}

/// What presenting a device to a `first_use` token found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeviceBind {
    /// The token was unbound and is now bound to this device.
    Bound,
    /// Already bound to this device.
    Same,
    /// Bound to another device.
    Other,
}

/// The balance as the update sees it: refilled to the amount when at least
/// one interval passed since `credits_refilled_at` (`$3` is now in ms).
const BALANCE: &str = "(CASE WHEN credits_refill_interval_ms IS NOT NULL \
     AND $3 - credits_refilled_at >= credits_refill_interval_ms \
     THEN credits_refill_amount ELSE credits_remaining END)";

/// The refill time the update writes: moved on by whole intervals.
const REFILLED_AT: &str = "(CASE WHEN credits_refill_interval_ms IS NOT NULL \
     AND $3 - credits_refilled_at >= credits_refill_interval_ms \
     THEN credits_refilled_at + (($3 - credits_refilled_at) / credits_refill_interval_ms) \
     * credits_refill_interval_ms ELSE credits_refilled_at END)";

#[async_trait]
pub trait TokenUsage: Send + Sync {
    /// Takes `cost` credits of token `id` if it has that many (a refill due
    /// at `now` applied first, in the same statement).
    async fn spend_credits(
        &self,
        id: &str,
        cost: i64,
        now: DateTime<Utc>,
    ) -> Result<CreditSpend, StoreError>;

    /// Binds token `id` to `device_hashes[0]` if it is unbound; otherwise
    /// says whether it is bound to that device, under any of the hashes
    /// (the device id's keyed hash under the current key, then under
    /// previous ones). Of concurrent first uses by different devices
    /// exactly one binds.
    async fn bind_device(
        &self,
        id: &str,
        device_hashes: &[String],
    ) -> Result<DeviceBind, StoreError>;
}

#[async_trait]
impl TokenUsage for SqlStore {
    async fn spend_credits(
        &self,
        id: &str,
        cost: i64,
        now: DateTime<Utc>,
    ) -> Result<CreditSpend, StoreError> {
        let mut tx = self.begin_write().await?;
        let spent: Option<i64> = sqlx::query_scalar(&format!(
            "UPDATE api_tokens SET credits_remaining = {BALANCE} - $2, \
             credits_refilled_at = {REFILLED_AT} \
             WHERE id = $1 AND credits_remaining IS NOT NULL AND {BALANCE} >= $2 \
             RETURNING credits_remaining"
        ))
        .bind(id)
        .bind(cost)
        .bind(to_millis(now))
        .fetch_optional(&mut *tx)
        .await?;
        if let Some(remaining) = spent {
            tx.commit().await?;
            return Ok(CreditSpend::Spent { remaining });
        }
        let row: Option<CreditColumns> = sqlx::query_as(
            "SELECT credits_remaining, credits_refill_amount, credits_refill_interval_ms, \
             credits_refilled_at FROM api_tokens WHERE id = $1",
        )
        .bind(id)
        .fetch_optional(&mut *tx)
        .await?;
        tx.rollback().await?;
        Ok(match row.map(|r| r.credits()).transpose()?.flatten() {
            Some(c) => CreditSpend::Insufficient {
                remaining: c.at(now).0,
            },
            None => CreditSpend::Unlimited,
        })
    }

    async fn bind_device(
        &self,
        id: &str,
        device_hashes: &[String],
    ) -> Result<DeviceBind, StoreError> {
        let Some(device_hash) = device_hashes.first() else {
            return Ok(DeviceBind::Other);
        };
        // A read first: once bound (the usual case), deciding needs no write.
        let bound = self.bound_device(id).await?;
        if let Some(bound) = bound {
            return Ok(compare(&bound, device_hashes));
        }
        let mut tx = self.begin_write().await?;
        let won = sqlx::query(
            "UPDATE api_tokens SET bound_device = $2 WHERE id = $1 AND bound_device IS NULL",
        )
        .bind(id)
        .bind(device_hash)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if won == 1 {
            tx.commit().await?;
            return Ok(DeviceBind::Bound);
        }
        tx.rollback().await?;
        // Another device bound it first (or the token is gone).
        Ok(match self.bound_device(id).await? {
            Some(bound) => compare(&bound, device_hashes),
            None => DeviceBind::Other,
        })
    }
}

impl SqlStore {
    async fn bound_device(&self, id: &str) -> Result<Option<String>, StoreError> {
        let row: Option<Option<String>> =
            sqlx::query_scalar("SELECT bound_device FROM api_tokens WHERE id = $1")
                .bind(id)
                .fetch_optional(&self.pool)
                .await?;
        Ok(row.flatten())
    }
}

fn compare(bound: &str, presented: &[String]) -> DeviceBind {
    let same = presented.iter().fold(false, |found, h| {
        found | tessera_core::crypto::constant_time_eq(bound, h)
    });
    if same {
        DeviceBind::Same
    } else {
        DeviceBind::Other
    }
}
