//! The storage interface for second factors: TOTP devices, the replay record
//! and attempt counters, recovery codes and one-time auth codes.
//!
//! Every check that must hold across replicas (a code accepted once, a
//! limited number of guesses, a recovery code used once) is a single atomic
//! statement or a locked transaction here, never a read-then-write in the
//! service.

use async_trait::async_trait;
use chrono::{DateTime, Duration, Utc};
use tessera_core::{
    audit::AuditEntry,
    event::OutboxEvent,
    mfa::{auth_code::AuthCode, lockout::LockoutPolicy, MfaFailure, TotpDevice},
};

use crate::StoreError;

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

/// Audit rows and events to write for an outcome.
pub type TotpLog<'a> =
    dyn Fn(&TotpOutcome) -> (Vec<AuditEntry>, Vec<OutboxEvent>) + Send + Sync + 'a;

/// One TOTP check, run by [`MfaRepository::check_totp`] in one transaction.
pub struct TotpCheck<'a> {
    pub subject: String,
    pub now: DateTime<Utc>,
    pub policy: LockoutPolicy,
    /// Confirming a pending device: make it active on success.
    pub activate: bool,
    /// Compares the code. Pure and fast (a few HMACs): it runs while the
    /// subject's attempt counter is locked.
    pub matcher: Box<dyn FnOnce() -> Option<TotpMatch> + Send + 'a>,
    /// What to record for the outcome (nothing is written when locked).
    pub log: Box<TotpLog<'a>>,
}

/// A new auth code: the record, its keyed hash, and its destination (sealed,
/// plus a keyed hash for per-destination rate limits).
#[derive(Debug, Clone)]
pub struct NewAuthCode {
    pub code: AuthCode,
    pub code_hash: String,
    pub destination_sealed: String,
    pub destination_hash: String,
}

/// Auth codes allowed per subject and per destination in a rolling window.
#[derive(Debug, Clone, Copy)]
pub struct AuthCodeLimits {
    pub per_subject: i64,
    pub per_destination: i64,
    pub window: Duration,
}

/// Which code a verification is about.
#[derive(Debug, Clone)]
pub struct AuthCodeLookup {
    pub subject: String,
    pub purpose: String,
    /// When given, it must be the current code for subject and purpose.
    pub id: Option<String>,
}

/// What a check of a presented auth code decided, to be written atomically.
#[derive(Debug, Clone)]
pub struct AuthCodeVerdict {
    pub outcome: Result<(), MfaFailure>,
    /// Whether this guess used one of the code's attempts.
    pub count_attempt: bool,
    pub audit: AuditEntry,
    pub events: Vec<OutboxEvent>,
}

/// Called with the locked current code and its stored hash (or `None`).
pub type AuthCodeCheck<'a> = dyn FnOnce(Option<(&AuthCode, &str)>) -> AuthCodeVerdict + Send + 'a;

#[async_trait]
pub trait MfaRepository: Send + Sync {
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

    /// Checks a TOTP code in one transaction: lock the subject's attempt
    /// counter and reserve an attempt (or answer `Locked`), compare the code,
    /// then either record the failure, or run the replay check-and-record
    /// (one conditional upsert on the subject's last accepted step) and reset
    /// the counter, with the outcome's audit rows and events. Checks for one
    /// subject are serialised by the counter's row lock, so parallel guesses
    /// get at most `policy.max_failures` comparisons and one step is accepted
    /// once, across any number of replicas.
    async fn check_totp(&self, check: TotpCheck<'_>) -> Result<TotpOutcome, StoreError>;

    /// Clears the subject's TOTP attempt counter (an operator unlocking a
    /// locked-out user), with its audit row. `false` if there was nothing to
    /// clear.
    async fn unlock_totp(&self, subject: &str, audit: &AuditEntry) -> Result<bool, StoreError>;

    /// Audit rows and events for checks that changed nothing else (failures).
    async fn record_mfa_activity(
        &self,
        audit: &[AuditEntry],
        events: &[OutboxEvent],
    ) -> Result<(), StoreError>;

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

    /// Inserts a code under the subject's and destination's rate limits
    /// (`DomainError::RateLimited`), superseding the pending code for the
    /// same subject and purpose.
    async fn create_auth_code(
        &self,
        new: &NewAuthCode,
        limits: &AuthCodeLimits,
        audit: &AuditEntry,
    ) -> Result<(), StoreError>;

    /// After delivery: `Some(at)` marks it sent (usable) and writes the
    /// events; `None` (delivery failed) retires it.
    async fn finish_auth_code_delivery(
        &self,
        id: &str,
        sent_at: Option<DateTime<Utc>>,
        audit: &AuditEntry,
        events: &[OutboxEvent],
    ) -> Result<(), StoreError>;

    /// Locks the current code, lets `check` decide, and writes the verdict
    /// (attempt, consumption, audit, events) in one transaction.
    async fn check_auth_code(
        &self,
        lookup: &AuthCodeLookup,
        now: DateTime<Utc>,
        check: Box<AuthCodeCheck<'_>>,
    ) -> Result<Result<AuthCode, MfaFailure>, StoreError>;

    /// Deletes lapsed replay records and attempt counters, auth codes and
    /// unconfirmed TOTP enrolments created before `codes_before`, and lock
    /// rows with nothing left to guard. Returns rows deleted.
    async fn purge_mfa_state(
        &self,
        now: DateTime<Utc>,
        codes_before: DateTime<Utc>,
    ) -> Result<u64, StoreError>;
}
