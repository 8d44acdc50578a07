//! Password-reset and e-mail verification links in storage: one table per
//! kind, the same columns and the same SQL (the table name is the only part
//! that differs, and it comes from [`LinkKind`], never from input).
//!
//! Issuing a link supersedes the user's earlier unused links of that kind
//! and inserts the new one in the caller's [`WriteTx`]; using one is a single
//! conditional `UPDATE` whose row count says whether this caller won, so of
//! any number of concurrent confirmations exactly one succeeds.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use tessera_core::user_link::{LinkKind, UserLink};

use crate::{
    error::StoreError,
    sql::{
        columns::{Millis, OptMillis},
        opt_millis, to_millis,
        write_tx::WriteTx,
        SqlStore,
    },
};

/// The table that keeps links of `kind`.
fn table(kind: LinkKind) -> &'static str {
    match kind {
        LinkKind::PasswordReset => "password_resets",
        LinkKind::EmailVerification => "email_verifications",
    }
}

const COLUMNS: &str = "id, user_id, secret_hash, created_at, expires_at, used_at, \
     superseded_at, requester_ip_sealed";

#[derive(sqlx::FromRow)]
struct LinkRow {
    id: String,
    user_id: String,
    secret_hash: String,
    #[sqlx(try_from = "Millis")]
    created_at: DateTime<Utc>,
    #[sqlx(try_from = "Millis")]
    expires_at: DateTime<Utc>,
    #[sqlx(try_from = "OptMillis")]
    used_at: Option<DateTime<Utc>>,
    #[sqlx(try_from = "OptMillis")]
    superseded_at: Option<DateTime<Utc>>,
    requester_ip_sealed: Option<String>,
}

impl LinkRow {
    fn into_link(self, kind: LinkKind) -> UserLink {
        UserLink {
            id: self.id,
            kind,
            user_id: self.user_id,
            secret_hash: self.secret_hash,
            created_at: self.created_at,
            expires_at: self.expires_at,
            used_at: self.used_at,
            superseded_at: self.superseded_at,
            requester_ip_sealed: self.requester_ip_sealed,
        }
    }
}

/// Link changes inside a [`WriteTx`], so each goes with its audit row and event.
impl WriteTx {
    /// Marks the user's unused, not yet superseded links of `kind` as
    /// superseded. Returns how many.
    pub async fn supersede_user_links(
        &mut self,
        kind: LinkKind,
        user_id: &str,
        now: DateTime<Utc>,
    ) -> Result<u64, StoreError> {
        let n = sqlx::query(&format!(
            "UPDATE {} SET superseded_at = $2 \
             WHERE user_id = $1 AND used_at IS NULL AND superseded_at IS NULL",
            table(kind)
        ))
        .bind(user_id)
        .bind(to_millis(now))
        .execute(&mut **self)
        .await?
        .rows_affected();
        Ok(n)
    }

    pub async fn insert_user_link(&mut self, link: &UserLink) -> Result<(), StoreError> {
        sqlx::query(&format!(
            "INSERT INTO {} ({COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
            table(link.kind)
        ))
        .bind(&link.id)
        .bind(&link.user_id)
        .bind(&link.secret_hash)
        .bind(to_millis(link.created_at))
        .bind(to_millis(link.expires_at))
        .bind(opt_millis(link.used_at))
        .bind(opt_millis(link.superseded_at))
        .bind(&link.requester_ip_sealed)
        .execute(&mut **self)
        .await?;
        Ok(())
    }

    /// Uses the link: `true` only for the one caller whose update found it
    /// unused, not superseded and not expired at `now`.
    pub async fn use_user_link(
        &mut self,
        kind: LinkKind,
        id: &str,
        now: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        let n = sqlx::query(&format!(
            "UPDATE {} SET used_at = $2 WHERE id = $1 AND used_at IS NULL \
             AND superseded_at IS NULL AND expires_at > $2",
            table(kind)
        ))
        .bind(id)
        .bind(to_millis(now))
        .execute(&mut **self)
        .await?
        .rows_affected();
        Ok(n == 1)
    }
}

/// Reads and maintenance outside a change.
#[async_trait]
pub trait UserLinkRepository: Send + Sync {
    /// One link by id, whatever its state.
    async fn get_user_link(&self, kind: LinkKind, id: &str)
        -> Result<Option<UserLink>, StoreError>;

    /// Deletes links of both kinds used, superseded or expired before
    /// `before`. Returns rows deleted.
    async fn purge_user_links(&self, before: DateTime<Utc>) -> Result<u64, StoreError>;
}

#[async_trait]
impl UserLinkRepository for SqlStore {
    async fn get_user_link(
        &self,
        kind: LinkKind,
        id: &str,
    ) -> Result<Option<UserLink>, StoreError> {
        let row: Option<LinkRow> = sqlx::query_as(&format!(
            "SELECT {COLUMNS} FROM {} WHERE id = $1",
            table(kind)
        ))
        .bind(id)
        .fetch_optional(&self.pool)
        .await?;
        Ok(row.map(|r| r.into_link(kind)))
    }

    async fn purge_user_links(&self, before: DateTime<Utc>) -> Result<u64, StoreError> {
        let mut tx = self.begin_write().await?;
        let mut deleted = 0;
        for kind in [LinkKind::PasswordReset, LinkKind::EmailVerification] {
            deleted += sqlx::query(&format!(
                "DELETE FROM {} WHERE used_at < $1 OR superseded_at < $1 OR expires_at < $1",
                table(kind)
            ))
            .bind(to_millis(before))
            .execute(&mut *tx)
            .await?
            .rows_affected();
        }
        tx.commit().await?;
        Ok(deleted)
    }
}
