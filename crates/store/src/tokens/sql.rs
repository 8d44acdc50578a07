//! API token queries: create, look up by secret, list, and the locked
//! read-modify-write that every lifecycle change goes through.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use tessera_core::{
    api_token::{ApiToken, TokenState},
    audit::AuditEntry,
    event::OutboxEvent,
    token_format::TokenHash,
};

use super::{
    rows::{SecretMatchRow, TokenRow},
    NewToken, SecretChange, SecretMatch, Succession, TokenChange, TokenQuery, TokenRepository,
    UsageUpdate,
};
use crate::sql::write_tx::WriteTx;
use crate::{
    error::StoreError,
    invalidations::InvalidationKind,
    page::Page,
    sql::{
        from_opt_millis, get_by_id, json_text, listing::Listing, lock_row, opt_millis,
        placeholders, to_millis, Query, SqlStore, TableRow,
    },
};

/// SQL for each derived state; `{now}` is "now" in milliseconds. Must agree with
/// `ApiToken::state_at`.
fn state_condition(state: TokenState) -> &'static str {
    match state {
        TokenState::Active => {
            "t.purged_at IS NULL AND t.revoked_at IS NULL AND (t.expires_at IS NULL OR t.expires_at >= {now})"
        }
        TokenState::Expired => {
            "t.purged_at IS NULL AND t.revoked_at IS NULL AND t.expires_at < {now}"
        }
        TokenState::Revoked => "t.purged_at IS NULL AND t.revoked_at IS NOT NULL",
        TokenState::Purged => "t.purged_at IS NOT NULL",
    }
}

async fn insert_secret(
    tx: &mut WriteTx,
    hash: &TokenHash,
    token_id: &str,
    now_ms: i64,
) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO api_token_secrets (secret_hash, token_id, created_at, valid_until) \
         VALUES ($1, $2, $3, NULL)",
    )
    .bind(hash.to_hex())
    .bind(token_id)
    .bind(now_ms)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// The columns `bind_token` binds as `$1`…`$16`, in its order.
const BOUND_COLUMNS: [&str; 16] = [
    "id",
    "name",
    "description",
    "owner",
    "scopes",
    "hint",
    "metadata",
    "updated_at",
    "expires_at",
    "auto_rotate",
    "controls",
    "bound_device",
    "credits_remaining",
    "credits_refill_amount",
    "credits_refill_interval_ms",
    "credits_refilled_at",
];

/// Binds `$1`…`$16`, the columns both the insert and the update write
/// ([`BOUND_COLUMNS`]). One bind list, so the two statements cannot drift
/// apart. The update writes the credits and bound device too: it runs on a
/// locked row, so it writes back what it read unless the change set them.
fn bind_token<'q>(query: Query<'q>, t: &'q ApiToken) -> Query<'q> {
    let credits = t.credits.as_ref();
    let refill = credits.and_then(|c| c.refill);
    query
        .bind(&t.id)
        .bind(&t.name)
        .bind(&t.description)
        .bind(&t.owner)
        .bind(json_text(&t.scopes))
        .bind(&t.hint)
        .bind(json_text(&t.metadata))
        .bind(to_millis(t.updated_at))
        .bind(opt_millis(t.expires_at))
        .bind(i64::from(t.auto_rotate))
        .bind(json_text(&t.controls))
        .bind(&t.bound_device)
        .bind(credits.map(|c| c.remaining))
        .bind(refill.map(|r| r.amount))
        .bind(refill.map(|r| r.interval.seconds() * 1000))
        .bind(credits.map(|c| to_millis(c.refilled_at)))
}

async fn insert_token(tx: &mut WriteTx, new: &NewToken) -> Result<(), StoreError> {
    let t = &new.token;
    let sql = format!(
        "INSERT INTO api_tokens ({}, created_at, use_count) VALUES ({}, $17, 0)",
        BOUND_COLUMNS.join(", "),
        placeholders(1, BOUND_COLUMNS.len())
    );
    let insert = sqlx::query(&sql);
    bind_token(insert, t)
        .bind(to_millis(t.created_at))
        .execute(&mut **tx)
        .await?;
    insert_secret(tx, &new.secret_hash, &t.id, to_millis(t.created_at)).await
}

#[async_trait]
impl TokenRepository for SqlStore {
    async fn create_token(
        &self,
        new: &NewToken,
        audit: &AuditEntry,
        events: &[OutboxEvent],
    ) -> Result<(), StoreError> {
        let mut tx = self.begin_write().await?;
        insert_token(&mut tx, new).await?;
        tx.commit_logged(audit, events).await
    }

    async fn get_token(&self, id: &str) -> Result<Option<ApiToken>, StoreError> {
        get_by_id::<TokenRow>(&self.pool, id).await
    }

    async fn find_token_by_secret(
        &self,
        hash: &TokenHash,
    ) -> Result<Option<SecretMatch>, StoreError> {
        let row = sqlx::query_as::<_, SecretMatchRow>(&format!(
            "SELECT {}, s.valid_until FROM api_token_secrets s \
             JOIN api_tokens t ON t.id = s.token_id WHERE s.secret_hash = $1",
            TokenRow::COLUMNS
        ))
        .bind(hash.to_hex())
        .fetch_optional(&self.pool)
        .await?;
        row.map(|r| {
            Ok(SecretMatch {
                token: r.token.try_into()?,
                valid_until: from_opt_millis(r.valid_until)?,
            })
        })
        .transpose()
    }

    async fn list_tokens(
        &self,
        q: &TokenQuery,
        now: DateTime<Utc>,
    ) -> Result<Page<ApiToken>, StoreError> {
        let mut listing = Listing::<TokenRow>::new(to_millis(now));
        listing
            .lifecycle(q.state.map(state_condition), q.include_deleted)
            .text_eq("t.owner", q.owner.as_deref());
        listing
            .fetch(&self.pool, q.cursor.as_deref(), q.limit, |t| &t.id)
            .await
    }

    async fn expired_unrevoked(
        &self,
        now: DateTime<Utc>,
        limit: u32,
    ) -> Result<Vec<String>, StoreError> {
        Ok(sqlx::query_scalar(
            "SELECT id FROM api_tokens WHERE revoked_at IS NULL AND purged_at IS NULL \
             AND expires_at < $1 ORDER BY expires_at LIMIT $2",
        )
        .bind(to_millis(now))
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await?)
    }

    async fn due_for_rotation(
        &self,
        now: DateTime<Utc>,
        window_end: DateTime<Utc>,
        limit: u32,
    ) -> Result<Vec<ApiToken>, StoreError> {
        let rows: Vec<TokenRow> = sqlx::query_as(&format!(
            "SELECT {} FROM api_tokens t WHERE t.auto_rotate = 1 \
             AND t.successor_id IS NULL AND t.revoked_at IS NULL AND t.purged_at IS NULL \
             AND t.deleted_at IS NULL AND t.expires_at >= $1 AND t.expires_at < $2 \
             AND t.expires_at + t.created_at < $4 \
             ORDER BY t.expires_at LIMIT $3",
            TokenRow::COLUMNS
        ))
        .bind(to_millis(now))
        .bind(to_millis(window_end))
        .bind(i64::from(limit))
        // Past half of its lifetime (expires_at - now < (expires_at - created_at) / 2),
        // so a short-lived token, and a fresh successor, is not rotated at once.
        .bind(2 * to_millis(now))
        .fetch_all(&self.pool)
        .await?;
        rows.into_iter().map(ApiToken::try_from).collect()
    }

    async fn attach_successor(&self, s: &Succession) -> Result<bool, StoreError> {
        let mut tx = self.begin_write().await?;
        // Only one successor per token, even if two replicas race here.
        let linked = sqlx::query(
            "UPDATE api_tokens SET successor_id = $2, successor_secret_enc = $3, updated_at = $4 \
             WHERE id = $1 AND successor_id IS NULL",
        )
        .bind(&s.old_id)
        .bind(&s.successor.token.id)
        .bind(&s.sealed_secret)
        .bind(to_millis(s.successor.token.created_at))
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if linked == 0 {
            return Ok(false);
        }
        insert_token(&mut tx, &s.successor).await?;
        tx.commit_logged(&s.audit, &s.events).await?;
        Ok(true)
    }

    async fn take_successor_secret(
        &self,
        old_id: &str,
    ) -> Result<Option<(String, String)>, StoreError> {
        let mut tx = self.begin_write().await?;
        let row: Option<(String, String)> = sqlx::query_as(
            "SELECT successor_id, successor_secret_enc FROM api_tokens \
             WHERE id = $1 AND successor_secret_enc IS NOT NULL",
        )
        .bind(old_id)
        .fetch_optional(&mut *tx)
        .await?;
        let Some(row) = row else {
            return Ok(None);
        };
        let taken = sqlx::query(
            "UPDATE api_tokens SET successor_secret_enc = NULL \
             WHERE id = $1 AND successor_secret_enc IS NOT NULL",
        )
        .bind(old_id)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        tx.commit().await?;
        if taken == 0 {
            return Ok(None);
        }
        Ok(Some(row))
    }

    async fn record_token_usage(&self, updates: &[UsageUpdate]) -> Result<(), StoreError> {
        if updates.is_empty() {
            return Ok(());
        }
        let mut tx = self.begin_write().await?;
        for u in updates {
            sqlx::query(
                "UPDATE api_tokens SET use_count = use_count + $2, last_used_at = \
                 CASE WHEN last_used_at IS NULL OR last_used_at < $3 THEN $3 ELSE last_used_at END \
                 WHERE id = $1",
            )
            .bind(&u.token_id)
            .bind(u.uses)
            .bind(to_millis(u.last_used_at))
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await
    }
}

/// Token operations inside a [`WriteTx`], so a use case can combine them.
impl WriteTx {
    /// Locks the token for the rest of the transaction and reads it; `None`
    /// if no token has this id. Concurrent changes of one token are
    /// serialised by this lock, and each sees the previous one's result.
    pub async fn lock_token(&mut self, id: &str) -> Result<Option<ApiToken>, StoreError> {
        lock_row::<TokenRow>(self, id).await
    }

    /// Writes the mutable fields of a (locked) token, and its invalidation:
    /// every process drops what it cached about the token once this commits.
    pub async fn update_token(&mut self, t: &ApiToken) -> Result<(), StoreError> {
        let set: Vec<String> = BOUND_COLUMNS
            .iter()
            .enumerate()
            .skip(1)
            .map(|(i, c)| format!("{c} = ${}", i + 1))
            .collect();
        let sql = format!(
            "UPDATE api_tokens SET {}, revoked_at = $17, revoked_by = $18, \
             revoke_reason = $19, purged_at = $20, deleted_at = $21 WHERE id = $1",
            set.join(", ")
        );
        let update = sqlx::query(&sql);
        bind_token(update, t)
            .bind(opt_millis(t.revoked_at))
            .bind(&t.revoked_by)
            .bind(&t.revoke_reason)
            .bind(opt_millis(t.purged_at))
            .bind(opt_millis(t.deleted_at))
            .execute(&mut **self)
            .await?;
        self.invalidate(InvalidationKind::Token, &t.id).await
    }

    /// A rotation: `new_hash` becomes the token's current secret; every older
    /// secret stops working at `old_valid_until` (at once when `None`), but
    /// never later than a grace it already had. Invalidates the token.
    pub async fn rotate_token_secret(
        &mut self,
        token_id: &str,
        new_hash: &TokenHash,
        old_valid_until: Option<DateTime<Utc>>,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        self.invalidate(InvalidationKind::Token, token_id).await?;
        let now = to_millis(now);
        match old_valid_until {
            Some(until) => {
                sqlx::query(
                    "UPDATE api_token_secrets SET valid_until = $2 \
                     WHERE token_id = $1 AND (valid_until IS NULL OR valid_until > $2)",
                )
                .bind(token_id)
                .bind(to_millis(until))
                .execute(&mut **self)
                .await?;
                sqlx::query(
                    "DELETE FROM api_token_secrets WHERE token_id = $1 AND valid_until <= $2",
                )
                .bind(token_id)
                .bind(now)
                .execute(&mut **self)
                .await?;
            }
            None => {
                sqlx::query("DELETE FROM api_token_secrets WHERE token_id = $1")
                    .bind(token_id)
                    .execute(&mut **self)
                    .await?;
            }
        }
        insert_secret(self, new_hash, token_id, now).await
    }

    /// Writes a lifecycle change of a locked token: the record, its secrets,
    /// its audit row and its events.
    pub async fn write_token_change(&mut self, change: &TokenChange) -> Result<(), StoreError> {
        let t = &change.token;
        self.update_token(t).await?;
        if let SecretChange::Rotate {
            new_hash,
            old_valid_until,
        } = &change.secrets
        {
            self.rotate_token_secret(&t.id, new_hash, *old_valid_until, t.updated_at)
                .await?;
        }
        self.append_audit(std::slice::from_ref(&change.audit))
            .await?;
        self.append_events(&change.events).await
    }
}
