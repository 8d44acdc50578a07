//! API tokens: the repository trait and the types it speaks, next to its
//! SQL implementation ([`sql`]).

mod rows;
mod sql;
mod usage;

pub use usage::{CreditSpend, DeviceBind, TokenUsage};

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use tessera_core::{
    api_token::{ApiToken, TokenState},
    audit::AuditEntry,
    event::OutboxEvent,
    token_format::TokenHash,
};

use crate::{error::StoreError, page::Page};

/// Filters for listing tokens.
#[derive(Debug, Clone, Default)]
pub struct TokenQuery {
    pub state: Option<TokenState>,
    pub owner: Option<String>,
    pub include_deleted: bool,
    /// Only tokens whose id sorts before this one (ids are UUIDv7, so: older).
    pub cursor: Option<String>,
    pub limit: u32,
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

/// The result of applying a lifecycle rule to a locked token: what to write
/// with [`crate::WriteTx::write_token_change`].
#[derive(Debug, Clone)]
pub struct TokenChange {
    pub token: ApiToken,
    pub secrets: SecretChange,
    pub audit: AuditEntry,
    pub events: Vec<OutboxEvent>,
}

/// A successor issued by automatic rotation, to be linked from `old_id`,
/// with its secret sealed for a one-time claim, and what to log with it.
#[derive(Debug, Clone)]
pub struct Succession {
    pub old_id: String,
    pub successor: NewToken,
    pub sealed_secret: String,
    pub audit: AuditEntry,
    pub events: Vec<OutboxEvent>,
}

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

    /// States (active, expired) are judged at `now`.
    async fn list_tokens(
        &self,
        query: &TokenQuery,
        now: DateTime<Utc>,
    ) -> Result<Page<ApiToken>, StoreError>;

    /// Applies batched `last_used_at`/use-count updates from verifications.
    async fn record_token_usage(&self, updates: &[UsageUpdate]) -> Result<(), StoreError>;

    /// Ids of tokens past expiry and not yet revoked, soonest-expired first.
    async fn expired_unrevoked(
        &self,
        now: DateTime<Utc>,
        limit: u32,
    ) -> Result<Vec<String>, StoreError>;

    /// Active tokens that opted into automatic rotation, have no successor
    /// yet, expire before `window_end`, and are past half their lifetime.
    async fn due_for_rotation(
        &self,
        now: DateTime<Utc>,
        window_end: DateTime<Utc>,
        limit: u32,
    ) -> Result<Vec<ApiToken>, StoreError>;

    /// Inserts `successor` and links it from `old_id`, keeping the
    /// successor's secret (sealed) for a one-time claim, with audit row and
    /// events, in one transaction. `false` if `old_id` already has one.
    async fn attach_successor(&self, succession: &Succession) -> Result<bool, StoreError>;

    /// Takes the sealed successor secret of `old_id`, at most once:
    /// `(successor id, sealed secret)`.
    async fn take_successor_secret(
        &self,
        old_id: &str,
    ) -> Result<Option<(String, String)>, StoreError>;
}
