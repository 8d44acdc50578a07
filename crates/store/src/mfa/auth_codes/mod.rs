//! One-time auth codes: the repository trait and its types, next to its SQL
//! implementation (`sql.rs`).

mod sql;

use async_trait::async_trait;
use chrono::{DateTime, Duration, Utc};
use tessera_core::{
    audit::AuditEntry,
    event::OutboxEvent,
    mfa::{auth_code::AuthCode, MfaFailure},
};

use crate::error::StoreError;

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

/// What a check of a presented auth code decided, to be written atomically
/// with [`crate::WriteTx::write_auth_code_verdict`].
#[derive(Debug, Clone)]
pub struct AuthCodeVerdict {
    pub outcome: Result<(), MfaFailure>,
    /// Whether this guess used one of the code's attempts.
    pub count_attempt: bool,
    pub audit: AuditEntry,
    pub events: Vec<OutboxEvent>,
}

/// Auth codes sent by e-mail or SMS: creation under rate limits, delivery
/// bookkeeping, and the locked check of a presented code.
#[async_trait]
pub trait AuthCodeRepository: Send + Sync {
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
}

impl AuthCodeVerdict {
    /// What the caller is told, given the code the check was about (as
    /// locked, before the verdict was written).
    pub fn result(
        &self,
        locked: Option<AuthCode>,
        now: DateTime<Utc>,
    ) -> Result<AuthCode, MfaFailure> {
        match (self.outcome, locked) {
            (Ok(()), Some(mut code)) => {
                code.attempts += i64::from(self.count_attempt);
                code.consumed_at = Some(now);
                Ok(code)
            }
            (Ok(()), None) => Err(MfaFailure::NoCode),
            (Err(f), _) => Err(f),
        }
    }
}
