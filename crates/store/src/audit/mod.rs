//! The audit log and the transactional outbox: the traits that read them
//! back, and their row types. Rows are appended inside the write transaction
//! of the change they describe ([`crate::WriteTx`]), so they commit with it.

pub(crate) mod sql;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use tessera_core::audit::AuditEntry;

use crate::error::StoreError;

/// One stored audit row, as read back (client details still sealed).
#[derive(Debug, Clone)]
pub struct AuditRecord {
    pub id: String,
    pub at: DateTime<Utc>,
    pub actor: String,
    pub action: String,
    pub target_type: String,
    pub target_id: Option<String>,
    pub request_id: Option<String>,
    pub outcome: String,
    pub details: serde_json::Value,
    pub ip_sealed: Option<String>,
    pub user_agent_sealed: Option<String>,
}

/// An outbox payload as stored: clear JSON, or sealed (it carries a secret).
#[derive(Debug, Clone, PartialEq)]
pub enum EventPayload {
    Clear(serde_json::Value),
    /// `Keyring::seal` output under the context `SEALED_PAYLOAD_CONTEXT`.
    Sealed(String),
}

/// One outbox row.
#[derive(Debug, Clone)]
pub struct StoredEvent {
    pub id: String,
    pub event_type: String,
    pub payload: EventPayload,
    pub created_at: DateTime<Utc>,
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
