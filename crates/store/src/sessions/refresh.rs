//! Refresh-token rows: one family per session. A token is used by one
//! conditional update checked by its row count, so of two concurrent
//! refreshes with one token exactly one rotates it, on every backend.

use chrono::{DateTime, Utc};
use tessera_core::{session::RefreshToken, token_format::TokenHash};

use crate::{
    error::StoreError,
    sql::{from_millis, from_opt_millis, opt_millis, to_millis, write_tx::WriteTx},
};

const COLUMNS: &str = "id, session_id, parent_id, created_at, expires_at, used_at, revoked_at, \
     successor_id, successor_sealed, successor_until";

#[derive(sqlx::FromRow)]
struct RefreshRow {
    id: String,
    session_id: String,
    parent_id: Option<String>,
    created_at: i64,
    expires_at: i64,
    used_at: Option<i64>,
    revoked_at: Option<i64>,
    successor_id: Option<String>,
    successor_sealed: Option<String>,
    successor_until: Option<i64>,
}

impl TryFrom<RefreshRow> for RefreshToken {
    type Error = StoreError;

    fn try_from(r: RefreshRow) -> Result<Self, StoreError> {
        Ok(RefreshToken {
            id: r.id,
            session_id: r.session_id,
            parent_id: r.parent_id,
            created_at: from_millis(r.created_at)?,
            expires_at: from_millis(r.expires_at)?,
            used_at: from_opt_millis(r.used_at)?,
            revoked_at: from_opt_millis(r.revoked_at)?,
            successor_id: r.successor_id,
            successor_sealed: r.successor_sealed,
            successor_until: from_opt_millis(r.successor_until)?,
        })
    }
}

/// The successor written when a token is used: its id, and (inside a
/// reuse grace window) its raw value sealed until `until`.
#[derive(Debug, Clone)]
pub struct Succession<'a> {
    pub successor_id: &'a str,
    pub sealed: Option<&'a str>,
    pub until: Option<DateTime<Utc>>,
}

/// A refresh token and, once used, its immediate successor, read outside
/// any transaction (introspection judges them; nothing is written).
pub(super) async fn with_successor(
    pool: &sqlx::AnyPool,
    hash: &TokenHash,
) -> Result<Option<(RefreshToken, Option<RefreshToken>)>, StoreError> {
    let read = |sql: String, key: String| async move {
        sqlx::query_as::<_, RefreshRow>(&sql)
            .bind(key)
            .fetch_optional(pool)
            .await?
            .map(RefreshToken::try_from)
            .transpose()
    };
    let by_hash = format!("SELECT {COLUMNS} FROM refresh_tokens WHERE token_hash = $1");
    let Some(token) = read(by_hash, hash.to_hex()).await? else {
        return Ok(None);
    };
    let successor = match &token.successor_id {
        Some(id) => {
            let by_id = format!("SELECT {COLUMNS} FROM refresh_tokens WHERE id = $1");
            read(by_id, id.clone()).await?
        }
        None => None,
    };
    Ok(Some((token, successor)))
}

/// Refresh-token changes inside a [`WriteTx`].
impl WriteTx {
    pub async fn insert_refresh_token(
        &mut self,
        t: &RefreshToken,
        hash: &TokenHash,
    ) -> Result<(), StoreError> {
        sqlx::query(&format!(
            "INSERT INTO refresh_tokens ({COLUMNS}, token_hash) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)"
        ))
        .bind(&t.id)
        .bind(&t.session_id)
        .bind(&t.parent_id)
        .bind(to_millis(t.created_at))
        .bind(to_millis(t.expires_at))
        .bind(opt_millis(t.used_at))
        .bind(opt_millis(t.revoked_at))
        .bind(&t.successor_id)
        .bind(&t.successor_sealed)
        .bind(opt_millis(t.successor_until))
        .bind(hash.to_hex())
        .execute(&mut **self)
        .await?;
        Ok(())
    }

    /// The token with this hash, read inside the transaction.
    pub async fn find_refresh_token(
        &mut self,
        hash: &TokenHash,
    ) -> Result<Option<RefreshToken>, StoreError> {
        sqlx::query_as::<_, RefreshRow>(&format!(
            "SELECT {COLUMNS} FROM refresh_tokens WHERE token_hash = $1"
        ))
        .bind(hash.to_hex())
        .fetch_optional(&mut **self)
        .await?
        .map(RefreshToken::try_from)
        .transpose()
    }

    pub async fn get_refresh_token(
        &mut self,
        id: &str,
    ) -> Result<Option<RefreshToken>, StoreError> {
        sqlx::query_as::<_, RefreshRow>(&format!(
            "SELECT {COLUMNS} FROM refresh_tokens WHERE id = $1"
        ))
        .bind(id)
        .fetch_optional(&mut **self)
        .await?
        .map(RefreshToken::try_from)
        .transpose()
    }

    /// Marks the token used, naming its successor, only if it is still
    /// unused, unrevoked and unexpired: `true` when this call used it.
    pub async fn use_refresh_token(
        &mut self,
        id: &str,
        now: DateTime<Utc>,
        next: &Succession<'_>,
    ) -> Result<bool, StoreError> {
        let n = sqlx::query(
            "UPDATE refresh_tokens SET used_at = $2, successor_id = $3, successor_sealed = $4, \
             successor_until = $5 \
             WHERE id = $1 AND used_at IS NULL AND revoked_at IS NULL AND expires_at > $2",
        )
        .bind(id)
        .bind(to_millis(now))
        .bind(next.successor_id)
        .bind(next.sealed)
        .bind(opt_millis(next.until))
        .execute(&mut **self)
        .await?
        .rows_affected();
        Ok(n == 1)
    }

    /// Uses the token with this hash, naming its successor, if it is still
    /// unused, unrevoked and unexpired, and returns it as it now is: the
    /// conditional update of [`WriteTx::use_refresh_token`], by hash, for
    /// the fast path (run after the session is locked).
    pub async fn use_refresh_token_by_hash(
        &mut self,
        hash: &TokenHash,
        now: DateTime<Utc>,
        next: &Succession<'_>,
    ) -> Result<Option<RefreshToken>, StoreError> {
        sqlx::query_as::<_, RefreshRow>(&format!(
            "UPDATE refresh_tokens SET used_at = $2, successor_id = $3, successor_sealed = $4, \
             successor_until = $5 \
             WHERE token_hash = $1 AND used_at IS NULL AND revoked_at IS NULL AND expires_at > $2 \
             RETURNING {COLUMNS}"
        ))
        .bind(hash.to_hex())
        .bind(to_millis(now))
        .bind(next.successor_id)
        .bind(next.sealed)
        .bind(opt_millis(next.until))
        .fetch_optional(&mut **self)
        .await?
        .map(RefreshToken::try_from)
        .transpose()
    }

    /// Revokes every token of the family (the session's) and drops any
    /// sealed successor still kept for a grace window.
    pub async fn revoke_refresh_family(
        &mut self,
        session_id: &str,
        now: DateTime<Utc>,
    ) -> Result<u64, StoreError> {
        let n = sqlx::query(
            "UPDATE refresh_tokens SET revoked_at = COALESCE(revoked_at, $2), \
             successor_sealed = NULL, successor_until = NULL WHERE session_id = $1",
        )
        .bind(session_id)
        .bind(to_millis(now))
        .execute(&mut **self)
        .await?
        .rows_affected();
        Ok(n)
    }
}
