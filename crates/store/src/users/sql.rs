//! User queries: one row type, reads, and the locked read-modify-write.

use async_trait::async_trait;
use tessera_core::user::{User, UserStatus};

use super::{UserQuery, UserRepository};
use crate::{
    error::StoreError,
    invalidations::InvalidationKind,
    page::Page,
    sql::{
        from_json, from_millis, from_opt_millis, get_by_id, json_text, listing::Listing, lock_row,
        opt_millis, to_millis, write_tx::WriteTx, SqlStore, TableRow,
    },
};

#[derive(sqlx::FromRow)]
pub(crate) struct UserRow {
    id: String,
    email: String,
    email_verified_at: Option<i64>,
    password_hash: Option<String>,
    display_name: Option<String>,
    locale: Option<String>,
    roles: String,
    status: String,
    created_at: i64,
    updated_at: i64,
    deleted_at: Option<i64>,
    last_login_at: Option<i64>,
    erased_at: Option<i64>,
}

impl TableRow for UserRow {
    type Domain = User;
    const TABLE: &'static str = "users";
    const COLUMNS: &'static str = "t.id, t.email, t.email_verified_at, t.password_hash, \
        t.display_name, t.locale, t.roles, t.status, t.created_at, t.updated_at, t.deleted_at, \
        t.last_login_at, t.erased_at";
}

impl TryFrom<UserRow> for User {
    type Error = StoreError;

    fn try_from(r: UserRow) -> Result<Self, StoreError> {
        Ok(User {
            id: r.id,
            email: r.email,
            email_verified_at: from_opt_millis(r.email_verified_at)?,
            password_hash: r.password_hash,
            display_name: r.display_name,
            locale: r.locale,
            roles: from_json(&r.roles, "users.roles")?,
            status: UserStatus::parse(&r.status)
                .ok_or_else(|| StoreError::Corrupt("users.status".into()))?,
            created_at: from_millis(r.created_at)?,
            updated_at: from_millis(r.updated_at)?,
            deleted_at: from_opt_millis(r.deleted_at)?,
            last_login_at: from_opt_millis(r.last_login_at)?,
            erased_at: from_opt_millis(r.erased_at)?,
        })
    }
}

fn by_email_sql() -> String {
    format!(
        "SELECT {} FROM users t WHERE t.email = $1 AND t.deleted_at IS NULL",
        UserRow::COLUMNS
    )
}

#[async_trait]
impl UserRepository for SqlStore {
    async fn get_user(&self, id: &str) -> Result<Option<User>, StoreError> {
        get_by_id::<UserRow>(&self.pool, id).await
    }

    async fn find_user_by_email(&self, email: &str) -> Result<Option<User>, StoreError> {
        sqlx::query_as::<_, UserRow>(&by_email_sql())
            .bind(email)
            .fetch_optional(&self.pool)
            .await?
            .map(User::try_from)
            .transpose()
    }

    async fn list_users(&self, q: &UserQuery) -> Result<Page<User>, StoreError> {
        let mut listing = Listing::<UserRow>::new(0);
        listing
            .text_eq("t.email", q.email.as_deref())
            .text_eq("t.status", q.status.map(UserStatus::as_str));
        if !q.include_deleted {
            listing.condition("t.deleted_at IS NULL");
        }
        listing
            .fetch(&self.pool, q.cursor.as_deref(), q.limit, |u| &u.id)
            .await
    }
}

/// User changes inside a [`WriteTx`].
impl WriteTx {
    /// Inserts a new user. A live user with the same e-mail is a
    /// [`StoreError::Conflict`] (the unique index decides, on every replica).
    pub async fn insert_user(&mut self, u: &User) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO users (id, email, email_verified_at, password_hash, display_name, \
             locale, roles, status, created_at, updated_at, deleted_at, last_login_at, erased_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)",
        )
        .bind(&u.id)
        .bind(&u.email)
        .bind(opt_millis(u.email_verified_at))
        .bind(&u.password_hash)
        .bind(&u.display_name)
        .bind(&u.locale)
        .bind(json_text(&u.roles))
        .bind(u.status.as_str())
        .bind(to_millis(u.created_at))
        .bind(to_millis(u.updated_at))
        .bind(opt_millis(u.deleted_at))
        .bind(opt_millis(u.last_login_at))
        .bind(opt_millis(u.erased_at))
        .execute(&mut **self)
        .await?;
        Ok(())
    }

    /// Locks the user for the rest of the transaction and reads it.
    pub async fn lock_user(&mut self, id: &str) -> Result<Option<User>, StoreError> {
        lock_row::<UserRow>(self, id).await
    }

    /// The live user with this e-mail, read inside the transaction.
    pub async fn find_user_by_email(&mut self, email: &str) -> Result<Option<User>, StoreError> {
        sqlx::query_as::<_, UserRow>(&by_email_sql())
            .bind(email)
            .fetch_optional(&mut **self)
            .await?
            .map(User::try_from)
            .transpose()
    }

    /// Writes every mutable field of a (locked) user. A user who may no
    /// longer sign in (disabled, deleted, erased) is invalidated too.
    pub async fn update_user(&mut self, u: &User) -> Result<(), StoreError> {
        sqlx::query(
            "UPDATE users SET email = $2, email_verified_at = $3, password_hash = $4, \
             display_name = $5, locale = $6, roles = $7, status = $8, updated_at = $9, \
             deleted_at = $10, last_login_at = $11, erased_at = $12 WHERE id = $1",
        )
        .bind(&u.id)
        .bind(&u.email)
        .bind(opt_millis(u.email_verified_at))
        .bind(&u.password_hash)
        .bind(&u.display_name)
        .bind(&u.locale)
        .bind(json_text(&u.roles))
        .bind(u.status.as_str())
        .bind(to_millis(u.updated_at))
        .bind(opt_millis(u.deleted_at))
        .bind(opt_millis(u.last_login_at))
        .bind(opt_millis(u.erased_at))
        .execute(&mut **self)
        .await?;
        if u.status != UserStatus::Active || u.deleted_at.is_some() || u.erased_at.is_some() {
            self.invalidate(InvalidationKind::User, &u.id).await?;
        }
        Ok(())
    }
}
