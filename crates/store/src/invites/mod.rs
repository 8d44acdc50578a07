//! Invites: the repository trait and its types, next to its SQL
//! implementation ([`sql`]).

mod rows;
mod sql;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use tessera_core::{
    audit::{AuditEntry, RequestContext},
    event::OutboxEvent,
    invite::{Invite, InviteFailure, InviteState},
};

use crate::{error::StoreError, page::Page};

/// A new invite as stored: the record and the keyed hash of its code.
#[derive(Debug, Clone)]
pub struct NewInvite {
    pub invite: Invite,
    pub code_hash: String,
}

/// The issuer's rolling quota (invites per window), checked inside the
/// create transaction so that it holds across replicas.
pub type InviteQuota = tessera_core::rate_limit::Limit;

/// Filters for listing invites.
#[derive(Debug, Clone, Default)]
pub struct InviteQuery {
    pub state: Option<InviteState>,
    pub issuer: Option<String>,
    pub include_deleted: bool,
    pub cursor: Option<String>,
    pub limit: u32,
}

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

    /// States (active, expired) are judged at `now`.
    async fn list_invites(
        &self,
        query: &InviteQuery,
        now: DateTime<Utc>,
    ) -> Result<Page<Invite>, StoreError>;

    /// Consumes one use if the invite is usable; exactly `max_uses`
    /// concurrent redemptions can succeed. On failure returns why, and the
    /// invite id when the code matched one.
    async fn redeem_invite(
        &self,
        redemption: &Redemption,
    ) -> Result<Result<Invite, (InviteFailure, Option<String>)>, StoreError>;

    /// Appends usage rows recorded outside a state change (validations,
    /// failed redemptions), in one batch.
    async fn append_invite_usage(&self, rows: &[InviteUsageRecord]) -> Result<(), StoreError>;
}
