//! The audit log and the transactional outbox: the traits that read them
//! back, and their row types. Rows are appended inside the write transaction
//! of the change they describe ([`crate::WriteTx`]), so they commit with it.
//! Failures anyone can cause are written as aggregates instead
//! ([`AuditAggregate`]): one row per client, code and minute with a count.

pub(crate) mod sql;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use tessera_core::audit::AuditEntry;

use crate::{
    error::StoreError,
    page::Page,
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
    /// How many events the row stands for: 1 for an ordinary row, the count
    /// for an aggregate (its `details` say what was counted).
    pub occurrences: i64,
    /// The log the row also belongs to (`audit` for security events), if any.
    pub channel: Option<String>,
}

/// Filters for reading the audit log, newest first. Text filters match the
/// stored value exactly; `since` is inclusive, `until` exclusive.
#[derive(Debug, Clone, PartialEq)]
pub struct AuditQuery {
    pub actor: Option<String>,
    pub action: Option<String>,
    pub target_type: Option<String>,
    pub target_id: Option<String>,
    pub outcome: Option<String>,
    pub channel: Option<String>,
    pub since: Option<DateTime<Utc>>,
    pub until: Option<DateTime<Utc>>,
    /// 1..=[`AuditQuery::MAX_LIMIT`]; the store clamps anything else.
    pub limit: u32,
    /// The id of the last row of the previous page.
    pub cursor: Option<String>,
}

impl AuditQuery {
    pub const DEFAULT_LIMIT: u32 = 50;
    pub const MAX_LIMIT: u32 = 500;
}

impl Default for AuditQuery {
    fn default() -> Self {
        Self {
            actor: None,
            action: None,
            target_type: None,
            target_id: None,
            outcome: None,
            channel: None,
            since: None,
            until: None,
            limit: Self::DEFAULT_LIMIT,
            cursor: None,
        }
    }
}

/// Some occurrences of one aggregated audit row, e.g. failed verifications
/// from one client with one code in one minute. Rows with the same `key`
/// are one row: the first write inserts `entry`, later writes (from any
/// replica) add their `occurrences`, and replace `details` only with a
/// longer one (more samples), so the stored samples never shrink.
#[derive(Debug, Clone)]
pub struct AuditAggregate {
    /// Deterministic across replicas (e.g. a keyed hash of the client, the
    /// code and the minute); never a client address in clear.
    pub key: String,
    pub entry: AuditEntry,
    pub occurrences: i64,
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
    /// Appends entries that are not part of a state change.
    async fn append_audit(&self, entries: &[AuditEntry]) -> Result<(), StoreError>;

    /// Adds to aggregated rows (see [`AuditAggregate`]), in one transaction.
    async fn upsert_audit_aggregates(&self, rows: &[AuditAggregate]) -> Result<(), StoreError>;

    /// Entries about one target, newest first.
    async fn audit_for_target(
        &self,
        target_id: &str,
        limit: u32,
    ) -> Result<Vec<AuditRecord>, StoreError>;

    /// Entries matching `query`, newest first (by time, then id), a page at
    /// a time. A cursor no row has gives an empty page.
    async fn list_audit(&self, query: &AuditQuery) -> Result<Page<AuditRecord>, StoreError>;

    /// One entry by id.
    async fn get_audit(&self, id: &str) -> Result<Option<AuditRecord>, StoreError>;
}

/// The transactional outbox (events are written by the repositories above).
#[async_trait]
pub trait Outbox: Send + Sync {
    /// Events not yet dispatched, oldest first.
    async fn pending_events(&self, limit: u32) -> Result<Vec<StoredEvent>, StoreError>;
}
