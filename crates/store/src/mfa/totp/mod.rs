//! TOTP devices: the repository trait and its types, next to its SQL
//! implementation (`sql.rs`).

mod sql;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use tessera_core::{
    audit::AuditEntry,
    event::OutboxEvent,
    mfa::{lockout::AttemptCounter, TotpDevice},
};

use crate::error::StoreError;

/// A device as created: the record and its secret, sealed.
#[derive(Debug, Clone)]
pub struct NewTotpDevice {
    pub device: TotpDevice,
    pub secret_sealed: String,
    /// The key id the secret is sealed under (kept apart for rotation queries).
    pub secret_key_id: String,
}

/// A device with its sealed secret, for checking a code.
#[derive(Debug, Clone)]
pub struct SealedDevice {
    pub device: TotpDevice,
    pub secret_sealed: String,
}

/// A code that matched one of the subject's devices.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TotpMatch {
    pub device_id: String,
    /// The time step the code belongs to.
    pub step: i64,
    /// Keep the replay record at least until then.
    pub replay_until: DateTime<Utc>,
}

/// How a TOTP check ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TotpOutcome {
    /// Too many failures: the code was not even compared.
    Locked {
        until: DateTime<Utc>,
    },
    /// The code matched no device; `locks_now` when this used the last attempt.
    Invalid {
        locks_now: bool,
    },
    /// The code matched, but its step (or a later one) was already accepted.
    Replayed {
        device_id: String,
    },
    Accepted {
        device_id: String,
    },
}

/// An attempt reserved by `WriteTx::reserve_totp_attempt`: the subject's
/// attempt counter stays locked until the transaction ends, so reserving in
/// memory, comparing, and writing the counter once at the end is as atomic
/// as writing the reservation first.
#[derive(Debug)]
pub struct TotpAttempt {
    pub(crate) subject: String,
    pub(crate) now: DateTime<Utc>,
    /// The counter as it was, and with this attempt counted.
    pub(crate) before: AttemptCounter,
    pub(crate) reserved: AttemptCounter,
    /// This attempt used up the allowance: if it fails, the subject is locked.
    pub(crate) last: bool,
}

/// TOTP devices, the replay record and the attempt counter.
#[async_trait]
pub trait TotpRepository: Send + Sync {
    async fn create_totp_device(
        &self,
        new: &NewTotpDevice,
        audit: &AuditEntry,
        events: &[OutboxEvent],
    ) -> Result<(), StoreError>;

    /// A subject's devices, oldest first.
    async fn list_totp_devices(&self, subject: &str) -> Result<Vec<TotpDevice>, StoreError>;

    /// One device (`Some(id)`, any status) or every active device, with secrets.
    async fn sealed_totp_devices(
        &self,
        subject: &str,
        device_id: Option<&str>,
    ) -> Result<Vec<SealedDevice>, StoreError>;

    /// Deletes at once; `false` if the subject has no such device.
    async fn delete_totp_device(
        &self,
        subject: &str,
        device_id: &str,
        audit: &AuditEntry,
        events: &[OutboxEvent],
    ) -> Result<bool, StoreError>;

    /// Clears the subject's TOTP attempt counter (an operator unlocking a
    /// locked-out user), with its audit row. `false` if there was nothing to
    /// clear.
    async fn unlock_totp(&self, subject: &str, audit: &AuditEntry) -> Result<bool, StoreError>;

    /// The distinct key ids TOTP secrets are sealed under.
    async fn totp_key_ids(&self) -> Result<Vec<String>, StoreError>;

    /// Up to `limit` `(device id, sealed secret)` not sealed under `key_id`.
    async fn totp_secrets_not_under(
        &self,
        key_id: &str,
        limit: u32,
    ) -> Result<Vec<(String, String)>, StoreError>;

    /// Replaces a sealed secret if it is still `old` (a concurrent rekey wins once).
    async fn reseal_totp_secret(
        &self,
        device_id: &str,
        old: &str,
        new: &str,
        new_key_id: &str,
    ) -> Result<bool, StoreError>;
}
