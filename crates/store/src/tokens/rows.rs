//! The stored form of a token (`api_tokens`) and its one conversion into the
//! domain type.

use tessera_core::{
    api_token::ApiToken,
    token_controls::{Credits, Period, Refill},
};

use crate::{
    error::StoreError,
    sql::{from_json, from_millis, from_opt_millis, TableRow},
};

/// The table, and every column the domain type needs.
impl TableRow for TokenRow {
    type Domain = ApiToken;
    const TABLE: &'static str = "api_tokens";
    const COLUMNS: &'static str = "t.id, t.name, t.description, t.owner, t.scopes, t.hint, \
        t.metadata, t.created_at, t.updated_at, t.expires_at, t.last_used_at, t.use_count, \
        t.revoked_at, t.revoked_by, t.revoke_reason, t.purged_at, t.deleted_at, t.auto_rotate, \
        t.successor_id, t.controls, t.bound_device, t.credits_remaining, t.credits_refill_amount, \
        t.credits_refill_interval_ms, t.credits_refilled_at";
}

#[derive(sqlx::FromRow)]
pub(super) struct TokenRow {
    id: String,
    name: String,
    description: Option<String>,
    owner: Option<String>,
    scopes: String,
    hint: String,
    metadata: String,
    created_at: i64,
    updated_at: i64,
    expires_at: Option<i64>,
    last_used_at: Option<i64>,
    use_count: i64,
    revoked_at: Option<i64>,
    revoked_by: Option<String>,
    revoke_reason: Option<String>,
    purged_at: Option<i64>,
    deleted_at: Option<i64>,
    auto_rotate: i64,
    successor_id: Option<String>,
    controls: String,
    bound_device: Option<String>,
    #[sqlx(flatten)]
    credits: CreditColumns,
}

/// The credit columns of a token, as one conditional update returns them too.
#[derive(sqlx::FromRow)]
pub(super) struct CreditColumns {
    pub credits_remaining: Option<i64>,
    pub credits_refill_amount: Option<i64>,
    pub credits_refill_interval_ms: Option<i64>,
    pub credits_refilled_at: Option<i64>,
}

impl CreditColumns {
    /// `None` for a token without credits.
    pub fn credits(&self) -> Result<Option<Credits>, StoreError> {
        let Some(remaining) = self.credits_remaining else {
            return Ok(None);
        };
        let refill = match (self.credits_refill_amount, self.credits_refill_interval_ms) {
            (Some(amount), Some(ms)) => Some(Refill {
                amount,
                interval: Period::from_seconds(ms / 1000),
            }),
            _ => None,
        };
        Ok(Some(Credits {
            remaining,
            refill,
            refilled_at: from_millis(self.credits_refilled_at.unwrap_or(0))?,
        }))
    }
}

/// A token found by one of its secrets: the token and the secret's grace end.
#[derive(sqlx::FromRow)]
pub(super) struct SecretMatchRow {
    #[sqlx(flatten)]
    pub token: TokenRow,
    pub valid_until: Option<i64>,
}

impl TryFrom<TokenRow> for ApiToken {
    type Error = StoreError;

    fn try_from(r: TokenRow) -> Result<Self, StoreError> {
        Ok(ApiToken {
            id: r.id,
            name: r.name,
            description: r.description,
            owner: r.owner,
            scopes: from_json(&r.scopes, "scopes")?,
            hint: r.hint,
            metadata: from_json(&r.metadata, "metadata")?,
            created_at: from_millis(r.created_at)?,
            updated_at: from_millis(r.updated_at)?,
            expires_at: from_opt_millis(r.expires_at)?,
            last_used_at: from_opt_millis(r.last_used_at)?,
            use_count: r.use_count,
            revoked_at: from_opt_millis(r.revoked_at)?,
            revoked_by: r.revoked_by,
            revoke_reason: r.revoke_reason,
            purged_at: from_opt_millis(r.purged_at)?,
            deleted_at: from_opt_millis(r.deleted_at)?,
            auto_rotate: r.auto_rotate != 0,
            successor_id: r.successor_id,
            controls: from_json(&r.controls, "controls")?,
            bound_device: r.bound_device,
            credits: r.credits.credits()?,
        })
    }
}
