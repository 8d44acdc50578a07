//! Tessera's storage interface and its SQLite and PostgreSQL backends.
//!
//! Callers see the traits below and domain types only. Both backends share one
//! body of portable SQL ([`sql`]); what genuinely differs between them (how a
//! write transaction starts, how migrations are serialised, connection set-up)
//! lives in [`sqlite`] and [`postgres`] as a [`sql::Dialect`], so no query
//! carries an `if postgres` branch.

pub mod error;
mod migrate;
mod postgres;
mod sql;
mod sqlite;
pub mod testing;

use std::sync::Arc;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use tessera_core::{
    api_token::{ApiToken, TokenState},
    audit::{AuditEntry, RequestContext},
    event::OutboxEvent,
    invite::{Invite, InviteFailure, InviteState},
    token_format::TokenHash,
    DomainError,
};

pub use error::StoreError;
pub use migrate::SchemaStatus;

/// Which database a URL points at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

impl Backend {
    pub fn of_url(url: &str) -> Option<Self> {
        if url.starts_with("sqlite:") {
            Some(Self::Sqlite)
        } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            Some(Self::Postgres)
        } else {
            None
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Self::Sqlite => "sqlite",
            Self::Postgres => "postgres",
        }
    }
}

/// Opens a store. The URL decides the backend; nothing is migrated here.
pub async fn connect(url: &str) -> Result<Arc<dyn Store>, StoreError> {
    let store = match Backend::of_url(url) {
        Some(Backend::Sqlite) => sqlite::connect(url).await?,
        Some(Backend::Postgres) => postgres::connect(url).await?,
        None => return Err(StoreError::BadUrl),
    };
    Ok(Arc::new(store))
}

/// A page of results, newest first, with the cursor for the next page.
#[derive(Debug, Clone)]
pub struct Page<T> {
    pub items: Vec<T>,
    pub next_cursor: Option<String>,
}

/// Filters for listing tokens.
#[derive(Debug, Clone, Default)]
pub struct TokenQuery {
    pub state: Option<TokenState>,
    pub owner: Option<String>,
    pub include_deleted: bool,
    /// Only tokens whose id sorts before this one (ids are UUIDv7, so: older).
    pub cursor: Option<String>,
    pub limit: u32,
    pub now: DateTime<Utc>,
}

/// A new token as it is stored: the record plus the hash of its first secret.
#[derive(Debug, Clone)]
pub struct NewToken {
    pub token: ApiToken,
    pub secret_hash: TokenHash,
}

/// How a change affects the token's secrets.
#[derive(Debug, Clone, PartialEq)]
pub enum SecretChange {
    Keep,
    /// A rotation: `new_hash` becomes the current secret; every older secret
    /// stops working at `old_valid_until` (or at once when `None`).
    Rotate {
        new_hash: TokenHash,
        old_valid_until: Option<DateTime<Utc>>,
    },
}

/// The result of applying a lifecycle rule to a locked token: what to write.
#[derive(Debug, Clone)]
pub struct TokenChange {
    pub token: ApiToken,
    pub secrets: SecretChange,
    pub audit: AuditEntry,
    pub events: Vec<OutboxEvent>,
}

/// Decides, from the current (locked) record, what to change. `Ok(None)` means
/// "nothing to do" (e.g. revoking a revoked token) and writes nothing.
pub type TokenMutation<'a> =
    dyn FnOnce(&ApiToken) -> Result<Option<TokenChange>, DomainError> + Send + 'a;

/// A token found by one of its secrets.
#[derive(Debug, Clone)]
pub struct SecretMatch {
    pub token: ApiToken,
    /// Set when the secret was replaced by a rotation and only has grace left.
    pub valid_until: Option<DateTime<Utc>>,
}

/// Usage seen by verifications since the last flush, for one token.
#[derive(Debug, Clone, PartialEq)]
pub struct UsageUpdate {
    pub token_id: String,
    pub last_used_at: DateTime<Utc>,
    pub uses: i64,
}

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

/// The lifecycle of API tokens. Every write also writes its audit row and
/// outbox events in the same transaction.
#[async_trait]
pub trait TokenRepository: Send + Sync {
    async fn create_token(
        &self,
        new: &NewToken,
        audit: &AuditEntry,
        events: &[OutboxEvent],
    ) -> Result<(), StoreError>;

    async fn get_token(&self, id: &str) -> Result<Option<ApiToken>, StoreError>;

    /// The hot-path lookup: one indexed read by secret hash.
    async fn find_token_by_secret(
        &self,
        hash: &TokenHash,
    ) -> Result<Option<SecretMatch>, StoreError>;

    async fn list_tokens(&self, query: &TokenQuery) -> Result<Page<ApiToken>, StoreError>;

    /// Locks the token, lets `mutation` apply the domain rules to the current
    /// record, and writes the result, all in one transaction. Concurrent
    /// modifications of one token are serialised. Returns the record as it is
    /// after the change (or unchanged when `mutation` returned `Ok(None)`).
    async fn modify_token(
        &self,
        id: &str,
        mutation: Box<TokenMutation<'_>>,
    ) -> Result<ApiToken, StoreError>;

    /// Applies batched `last_used_at`/use-count updates from verifications.
    async fn record_token_usage(&self, updates: &[UsageUpdate]) -> Result<(), StoreError>;
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

/// Schema management and health.
#[async_trait]
pub trait SchemaAdmin: Send + Sync {
    fn backend(&self) -> Backend;
    /// Applies pending migrations; returns the versions applied.
    async fn migrate(&self) -> Result<Vec<i64>, StoreError>;
    async fn schema_status(&self) -> Result<SchemaStatus, StoreError>;
    /// A cheap round trip, for readiness checks.
    async fn ping(&self) -> Result<(), StoreError>;
    async fn close(&self);
}

/// A new invite as stored: the record and the keyed hash of its code.
#[derive(Debug, Clone)]
pub struct NewInvite {
    pub invite: Invite,
    pub code_hash: String,
}

/// The issuer's rolling daily quota, checked inside the create transaction.
#[derive(Debug, Clone, Copy)]
pub struct InviteQuota {
    pub limit: i64,
    /// Invites created after this instant count against the limit.
    pub window_start: DateTime<Utc>,
    pub window: chrono::Duration,
}

/// Filters for listing invites.
#[derive(Debug, Clone, Default)]
pub struct InviteQuery {
    pub state: Option<InviteState>,
    pub issuer: Option<String>,
    pub include_deleted: bool,
    pub cursor: Option<String>,
    pub limit: u32,
    pub now: DateTime<Utc>,
}

/// What to write for a change to an invite (revoke, delete).
#[derive(Debug, Clone)]
pub struct InviteChange {
    pub invite: Invite,
    pub audit: AuditEntry,
    pub events: Vec<OutboxEvent>,
}

pub type InviteMutation<'a> =
    dyn FnOnce(&Invite) -> Result<Option<InviteChange>, DomainError> + Send + 'a;

/// One row of the invite usage log (every validation and redemption).
#[derive(Debug, Clone)]
pub struct InviteUsageRecord {
    pub invite_id: Option<String>,
    /// `validate` or `redeem`.
    pub action: &'static str,
    /// `ok` or an `InviteFailure` code.
    pub outcome: &'static str,
    pub subject: Option<String>,
    pub context: RequestContext,
}

/// A redemption request, checked and applied in one transaction.
#[derive(Debug, Clone)]
pub struct Redemption {
    /// Candidate keyed hashes of the presented code (one per readable key).
    pub code_hashes: Vec<String>,
    pub email: Option<String>,
    pub now: DateTime<Utc>,
    /// Written with the redemption when it succeeds.
    pub usage: InviteUsageRecord,
}

/// Invites: creation under a quota, atomic redemption, lifecycle changes.
#[async_trait]
pub trait InviteRepository: Send + Sync {
    /// Inserts the invite unless the issuer's quota is exhausted
    /// (`DomainError::InviteQuotaExceeded`), atomically with its audit row
    /// and events.
    async fn create_invite(
        &self,
        new: &NewInvite,
        quota: Option<InviteQuota>,
        audit: &AuditEntry,
        events: &[OutboxEvent],
    ) -> Result<(), StoreError>;

    async fn get_invite(&self, id: &str) -> Result<Option<Invite>, StoreError>;

    /// Looks an invite up by any of the candidate code hashes.
    async fn find_invite_by_code(
        &self,
        code_hashes: &[String],
    ) -> Result<Option<Invite>, StoreError>;

    async fn list_invites(&self, query: &InviteQuery) -> Result<Page<Invite>, StoreError>;

    /// Consumes one use if the invite is usable; exactly `max_uses`
    /// concurrent redemptions can succeed. On failure returns why, and the
    /// invite id when the code matched one.
    async fn redeem_invite(
        &self,
        redemption: &Redemption,
    ) -> Result<Result<Invite, (InviteFailure, Option<String>)>, StoreError>;

    async fn modify_invite(
        &self,
        id: &str,
        mutation: Box<InviteMutation<'_>>,
    ) -> Result<Invite, StoreError>;

    /// Appends usage rows recorded outside a state change (validations,
    /// failed redemptions), in one batch.
    async fn append_invite_usage(&self, rows: &[InviteUsageRecord]) -> Result<(), StoreError>;
}

/// Everything the service needs from storage.
pub trait Store: TokenRepository + InviteRepository + AuditLog + Outbox + SchemaAdmin {}
impl<T: TokenRepository + InviteRepository + AuditLog + Outbox + SchemaAdmin> Store for T {}
