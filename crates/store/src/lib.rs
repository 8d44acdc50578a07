//! Tessera's storage interface and its SQLite and PostgreSQL backends.
//!
//! Callers see the traits below and domain types only. Both backends share one
//! body of portable SQL ([`sql`]); what genuinely differs between them (how a
//! write transaction starts, how migrations are serialised, connection set-up)
//! lives in [`sqlite`] and [`postgres`] as a [`sql::Dialect`], so no query
//! carries an `if postgres` branch.

pub mod error;
pub mod mfa;
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
    webhook::{Delivery, DeliveryAttempt, DeliveryStatus, WebhookEndpoint},
    DomainError,
};

pub use error::StoreError;
pub use mfa::MfaRepository;
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
    async fn attach_successor(
        &self,
        old_id: &str,
        successor: &NewToken,
        sealed_secret: &str,
        audit: &AuditEntry,
        events: &[OutboxEvent],
    ) -> Result<bool, StoreError>;

    /// Takes the sealed successor secret of `old_id`, at most once:
    /// `(successor id, sealed secret)`.
    async fn take_successor_secret(
        &self,
        old_id: &str,
    ) -> Result<Option<(String, String)>, StoreError>;
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

/// A new webhook endpoint and its sealed signing secret.
#[derive(Debug, Clone)]
pub struct NewEndpoint {
    pub endpoint: WebhookEndpoint,
    pub secret_sealed: String,
}

/// The sealed secrets an endpoint is signed with: the current one, and
/// during a rotation the previous one until it lapses.
#[derive(Debug, Clone)]
pub struct EndpointSecrets {
    pub current: String,
    pub previous: Option<(String, DateTime<Utc>)>,
}

/// A delivery claimed for sending, with everything needed to send it.
#[derive(Debug, Clone)]
pub struct DueDelivery {
    pub delivery: Delivery,
    pub url: String,
    pub secrets: EndpointSecrets,
    pub payload: EventPayload,
}

/// What an attempt decided.
#[derive(Debug, Clone, PartialEq)]
pub enum AttemptResult {
    Succeeded,
    RetryAt(DateTime<Utc>),
    /// The schedule is exhausted: the delivery is kept as `failed`.
    Failed,
    /// The receiver answered 410: the delivery fails and the endpoint is disabled.
    EndpointGone,
}

#[derive(Debug, Clone)]
pub struct AttemptRecord {
    pub delivery_id: String,
    pub endpoint_id: String,
    pub at: DateTime<Utc>,
    pub status_code: Option<i64>,
    pub latency_ms: i64,
    pub error: Option<String>,
    pub result: AttemptResult,
}

#[derive(Debug, Clone, Default)]
pub struct DeliveryQuery {
    pub status: Option<DeliveryStatus>,
    pub event_type: Option<String>,
    pub endpoint_id: Option<String>,
    pub cursor: Option<String>,
    pub limit: u32,
}

pub type EndpointMutation<'a> = dyn FnOnce(&WebhookEndpoint) -> Result<Option<(WebhookEndpoint, AuditEntry)>, DomainError>
    + Send
    + 'a;

/// Webhook endpoints and the delivery pipeline: outbox → deliveries
/// (fan-out) → leased claims → attempts.
#[async_trait]
pub trait WebhookRepository: Send + Sync {
    async fn create_endpoint(
        &self,
        new: &NewEndpoint,
        audit: &AuditEntry,
    ) -> Result<(), StoreError>;
    async fn list_endpoints(
        &self,
        include_deleted: bool,
    ) -> Result<Vec<WebhookEndpoint>, StoreError>;
    async fn get_endpoint(&self, id: &str) -> Result<Option<WebhookEndpoint>, StoreError>;
    /// Locked read-modify-write of an endpoint's settings.
    async fn update_endpoint(
        &self,
        id: &str,
        mutation: Box<EndpointMutation<'_>>,
    ) -> Result<WebhookEndpoint, StoreError>;
    /// Replaces the secret; the old one keeps signing until `previous_until`.
    async fn rotate_endpoint_secret(
        &self,
        id: &str,
        new_sealed: &str,
        previous_until: DateTime<Utc>,
        audit: &AuditEntry,
    ) -> Result<(), StoreError>;
    async fn endpoint_secrets(&self, id: &str) -> Result<Option<EndpointSecrets>, StoreError>;
    /// The `TOKENS_WEBHOOK_URL` endpoint: created (with `secret_sealed`) if
    /// no default exists, its URL updated otherwise. `true` if created.
    async fn ensure_default_endpoint(
        &self,
        url: &str,
        secret_sealed: &str,
        now: DateTime<Utc>,
    ) -> Result<(WebhookEndpoint, bool), StoreError>;
    /// Turns up to `limit` undispatched outbox events into one delivery per
    /// subscribed endpoint, and marks them dispatched. Returns events handled.
    async fn fan_out(&self, now: DateTime<Utc>, limit: u32) -> Result<usize, StoreError>;
    /// Leases up to `limit` due deliveries until `lease_until`.
    async fn claim_due(
        &self,
        now: DateTime<Utc>,
        lease_until: DateTime<Utc>,
        limit: u32,
    ) -> Result<Vec<DueDelivery>, StoreError>;
    async fn record_attempts(&self, attempts: &[AttemptRecord]) -> Result<(), StoreError>;
    async fn list_deliveries(&self, q: &DeliveryQuery) -> Result<Page<Delivery>, StoreError>;
    async fn get_delivery(&self, id: &str) -> Result<Option<Delivery>, StoreError>;
    async fn delivery_attempts(
        &self,
        delivery_id: &str,
    ) -> Result<Vec<DeliveryAttempt>, StoreError>;
    /// Makes a delivery due now again, with a fresh schedule.
    async fn retry_delivery(
        &self,
        id: &str,
        now: DateTime<Utc>,
    ) -> Result<Option<Delivery>, StoreError>;
    /// Clears leases that lapsed (a replica died mid-delivery); returns how many.
    async fn release_stale_leases(&self, now: DateTime<Utc>) -> Result<u64, StoreError>;
}

/// One recorded run of a scheduled job.
#[derive(Debug, Clone, PartialEq)]
pub struct JobRun {
    pub job: String,
    pub holder: String,
    pub started_at: DateTime<Utc>,
    pub finished_at: DateTime<Utc>,
    /// `success` or `failure`.
    pub outcome: String,
    pub items: i64,
    pub error: Option<String>,
}

#[derive(Debug, Clone)]
pub struct JobSummary {
    pub job: String,
    pub last_run: Option<JobRun>,
    pub last_success_at: Option<DateTime<Utc>>,
}

/// Leases that make each job run once per interval across replicas, the
/// record of runs, and the log purge.
#[async_trait]
pub trait JobRepository: Send + Sync {
    /// Takes the job's lease until `lease_until` if it is free at `now`.
    async fn try_acquire_job(
        &self,
        job: &str,
        holder: &str,
        now: DateTime<Utc>,
        lease_until: DateTime<Utc>,
    ) -> Result<bool, StoreError>;
    async fn record_job_run(&self, run: &JobRun) -> Result<(), StoreError>;
    async fn job_summary(&self, job: &str) -> Result<JobSummary, StoreError>;
    /// Deletes log rows older than the cut-offs; returns rows deleted.
    async fn purge_logs(
        &self,
        audit_before: DateTime<Utc>,
        usage_before: DateTime<Utc>,
    ) -> Result<u64, StoreError>;
}

/// Everything the service needs from storage.
pub trait Store:
    TokenRepository
    + InviteRepository
    + MfaRepository
    + WebhookRepository
    + JobRepository
    + AuditLog
    + Outbox
    + SchemaAdmin
{
}
impl<T> Store for T where
    T: TokenRepository
        + InviteRepository
        + MfaRepository
        + WebhookRepository
        + JobRepository
        + AuditLog
        + Outbox
        + SchemaAdmin
{
}
