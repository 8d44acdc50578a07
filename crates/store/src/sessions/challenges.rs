//! Login challenges: a password was right and a second factor is due. A
//! challenge completes once (one conditional update).

use chrono::{DateTime, Utc};

use crate::{
    error::StoreError,
    sql::{to_millis, write_tx::WriteTx},
};

/// An open (or completed) second-factor step of a login.
#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct LoginChallenge {
    pub id: String,
    pub user_id: String,
    pub client_id: Option<String>,
    /// The scopes the client asked for at login (space-separated), if any.
    pub scope: Option<String>,
    #[sqlx(try_from = "crate::sql::columns::Millis")]
    pub created_at: DateTime<Utc>,
    #[sqlx(try_from = "crate::sql::columns::Millis")]
    pub expires_at: DateTime<Utc>,
    #[sqlx(try_from = "crate::sql::columns::OptMillis")]
    pub used_at: Option<DateTime<Utc>>,
}

impl LoginChallenge {
    pub fn is_open_at(&self, now: DateTime<Utc>) -> bool {
        self.used_at.is_none() && now < self.expires_at
    }
}

/// Challenge changes inside a [`WriteTx`].
impl WriteTx {
    pub async fn insert_login_challenge(&mut self, c: &LoginChallenge) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO login_challenges (id, user_id, client_id, scope, created_at, \
             expires_at, used_at) VALUES ($1, $2, $3, $4, $5, $6, NULL)",
        )
        .bind(&c.id)
        .bind(&c.user_id)
        .bind(&c.client_id)
        .bind(&c.scope)
        .bind(to_millis(c.created_at))
        .bind(to_millis(c.expires_at))
        .execute(&mut **self)
        .await?;
        Ok(())
    }

    pub async fn get_login_challenge(
        &mut self,
        id: &str,
    ) -> Result<Option<LoginChallenge>, StoreError> {
        let c = sqlx::query_as::<_, LoginChallenge>(
            "SELECT id, user_id, client_id, scope, created_at, expires_at, used_at \
             FROM login_challenges WHERE id = $1",
        )
        .bind(id)
        .fetch_optional(&mut **self)
        .await?;
        Ok(c)
    }

    /// Closes every open challenge of a user (their password changed, or
    /// they were disabled or deleted): a login half done cannot finish.
    pub async fn close_login_challenges(
        &mut self,
        user_id: &str,
        now: DateTime<Utc>,
    ) -> Result<u64, StoreError> {
        let n = sqlx::query(
            "UPDATE login_challenges SET used_at = $2 WHERE user_id = $1 AND used_at IS NULL",
        )
        .bind(user_id)
        .bind(to_millis(now))
        .execute(&mut **self)
        .await?
        .rows_affected();
        Ok(n)
    }

    /// Completes the challenge if it is still open: `true` for this call.
    pub async fn complete_login_challenge(
        &mut self,
        id: &str,
        now: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        let n = sqlx::query(
            "UPDATE login_challenges SET used_at = $2 \
             WHERE id = $1 AND used_at IS NULL AND expires_at > $2",
        )
        .bind(id)
        .bind(to_millis(now))
        .execute(&mut **self)
        .await?
        .rows_affected();
        Ok(n == 1)
    }
}
