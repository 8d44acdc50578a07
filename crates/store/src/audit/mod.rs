//! The audit log and the transactional outbox: the traits that read them
//! back, and their row types. Rows are appended inside the write transaction
//! of the change they describe ([`crate::WriteTx`]), so they commit with it.

pub(crate) mod sql;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use tessera_core::audit::AuditEntry;

use crate::{
    error::StoreError,
    sql::columns::{JsonText, Millis, OptMillis},
};

/// One stored audit row, as read back (client details still sealed).
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct AuditRecord {
    pub id: String,
    #[sqlx(try_from = "Millis")]
    pub at: DateTime<Utc>,
    pub actor: String,
    pub action: String,
    pub target_type: String,
    pub target_id: Option<String>,
    pub request_id: Option<String>,
    pub outcome: String,
    #[sqlx(try_from = "JsonText")]
    pub details: serde_json::Value,
    #[sqlx(rename = "ip_enc")]
    pub ip_sealed: Option<String>,
    #[sqlx(rename = "user_agent_enc")]
    pub user_agent_sealed: Option<String>,
}

/// An outbox payload as stored: clear JSON, or sealed (it carries a secret).
#[derive(Debug, Clone, PartialEq)]
pub enum EventPayload {
    Clear(serde_json::Value),
    /// `Keyring::seal` output under the context `SEALED_PAYLOAD_CONTEXT`.
    Sealed(String),
}

/// The two columns an outbox payload is stored in.
#[derive(sqlx::FromRow)]
pub(crate) struct PayloadColumns {
    payload: String,
    payload_sealed: i64,
}

impl TryFrom<PayloadColumns> for EventPayload {
    type Error = StoreError;

    fn try_from(c: PayloadColumns) -> Result<Self, StoreError> {
        Ok(if c.payload_sealed != 0 {
            EventPayload::Sealed(c.payload)
        } else {
            EventPayload::Clear(
                serde_json::from_str(&c.payload)
                    .map_err(|e| StoreError::Corrupt(format!("outbox payload: {e}")))?,
            )
        })
    }
}

/// One outbox row.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct StoredEvent {
    pub id: String,
    pub event_type: String,
    #[sqlx(flatten, try_from = "PayloadColumns")]
    pub payload: EventPayload,
    #[sqlx(try_from = "Millis")]
    pub created_at: DateTime<Utc>,
    #[sqlx(try_from = "OptMillis")]
    pub dispatched_at: Option<DateTime<Utc>>,
}

/// The append-only audit log.
#[async_trait]
pub trait AuditLog: Send + Sync {
    /// Appends entries that are not part of a state change (failed verifications).
    async fn append_audit(&self, entries: &[AuditEntry]) -> Result<(), StoreError>;

    /// Entries about one target, newest first.
    async fn audit_for_target(
        &self,
        target_id: &str,
        limit: u32,
    ) -> Result<Vec<AuditRecord>, StoreError>;
}

/// The transactional outbox (events are written by the repositories above).
#[async_trait]
pub trait Outbox: Send + Sync {
    /// Events not yet dispatched, oldest first.
    async fn pending_events(&self, limit: u32) -> Result<Vec<StoredEvent>, StoreError>;
}
