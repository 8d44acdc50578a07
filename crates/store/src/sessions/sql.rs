//! Session rows: reads, creation, refresh bookkeeping and revocation.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use tessera_core::{
    session::{RevokeReason, Session},
    token_format::TokenHash,
};

use super::{signing_keys::StoredSigningKey, PresentedDevice, SessionQuery, SessionRepository};
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
pub(crate) struct SessionRow {
    id: String,
    subject: String,
    user_id: Option<String>,
    client_id: Option<String>,
    scope: String,
    amr: String,
    created_at: i64,
    updated_at: i64,
    last_refreshed_at: Option<i64>,
    idle_expires_at: i64,
    expires_at: i64,
    revoked_at: Option<i64>,
    revoke_reason: Option<String>,
    ip_enc: Option<String>,
    user_agent_enc: Option<String>,
    device_hash: Option<String>,
}

impl TableRow for SessionRow {
    type Domain = Session;
    const TABLE: &'static str = "sessions";
    const COLUMNS: &'static str = "t.id, t.subject, t.user_id, t.client_id, t.scope, t.amr, \
        t.created_at, t.updated_at, t.last_refreshed_at, t.idle_expires_at, t.expires_at, \
        t.revoked_at, t.revoke_reason, t.ip_enc, t.user_agent_enc, t.device_hash";
}

impl TryFrom<SessionRow> for Session {
    type Error = StoreError;

    fn try_from(r: SessionRow) -> Result<Self, StoreError> {
        let revoke_reason = r
            .revoke_reason
            .map(|s| {
                RevokeReason::parse(&s)
                    .ok_or_else(|| StoreError::Corrupt("sessions.revoke_reason".into()))
            })
            .transpose()?;
        Ok(Session {
            id: r.id,
            subject: r.subject,
            user_id: r.user_id,
            client_id: r.client_id,
            scope: r.scope.split_whitespace().map(str::to_string).collect(),
            amr: from_json(&r.amr, "sessions.amr")?,
            created_at: from_millis(r.created_at)?,
            updated_at: from_millis(r.updated_at)?,
            last_refreshed_at: from_opt_millis(r.last_refreshed_at)?,
            idle_expires_at: from_millis(r.idle_expires_at)?,
            expires_at: from_millis(r.expires_at)?,
            revoked_at: from_opt_millis(r.revoked_at)?,
            revoke_reason,
            ip_sealed: r.ip_enc,
            user_agent_sealed: r.user_agent_enc,
            device_hash: r.device_hash,
        })
    }
}

#[async_trait]
impl SessionRepository for SqlStore {
    async fn get_session(&self, id: &str) -> Result<Option<Session>, StoreError> {
        get_by_id::<SessionRow>(&self.pool, id).await
    }

    async fn list_sessions(&self, q: &SessionQuery) -> Result<Page<Session>, StoreError> {
        let now = q.active_at.map(to_millis).unwrap_or(0);
        let mut listing = Listing::<SessionRow>::new(now);
        listing
            .text_eq("t.subject", q.subject.as_deref())
            .text_eq("t.user_id", q.user_id.as_deref());
        if q.active_at.is_some() {
            listing.condition(
                "t.revoked_at IS NULL AND t.expires_at > {now} AND t.idle_expires_at > {now}",
            );
        }
        listing
            .fetch(&self.pool, q.cursor.as_deref(), q.limit, |s| &s.id)
            .await
    }

    async fn refresh_token_session(&self, hash: &TokenHash) -> Result<Option<String>, StoreError> {
        let row: Option<(String,)> =
            sqlx::query_as("SELECT session_id FROM refresh_tokens WHERE token_hash = $1")
                .bind(hash.to_hex())
                .fetch_optional(&self.pool)
                .await?;
        Ok(row.map(|(sid,)| sid))
    }

    async fn refresh_token_subject(
        &self,
        hash: &TokenHash,
        now: DateTime<Utc>,
    ) -> Result<Option<String>, StoreError> {
        let now = to_millis(now);
        let row: Option<(String,)> = sqlx::query_as(
            "SELECT s.subject FROM refresh_tokens r JOIN sessions s ON s.id = r.session_id \
             WHERE r.token_hash = $1 AND r.used_at IS NULL AND r.revoked_at IS NULL \
             AND r.expires_at > $2 AND s.revoked_at IS NULL AND s.expires_at > $2 \
             AND s.idle_expires_at > $2",
        )
        .bind(hash.to_hex())
        .bind(now)
        .fetch_optional(&self.pool)
        .await?;
        Ok(row.map(|(user,)| user))
    }

    async fn refresh_token_with_successor(
        &self,
        hash: &tessera_core::token_format::TokenHash,
    ) -> Result<
        Option<(
            tessera_core::session::RefreshToken,
            Option<tessera_core::session::RefreshToken>,
        )>,
        StoreError,
    > {
        super::refresh::with_successor(&self.pool, hash).await
    }

    async fn signing_keys(&self) -> Result<Vec<StoredSigningKey>, StoreError> {
        super::signing_keys::all(&self.pool).await
    }
}

/// Session changes inside a [`WriteTx`].
impl WriteTx {
    pub async fn insert_session(&mut self, s: &Session) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO sessions (id, subject, user_id, client_id, scope, amr, created_at, \
             updated_at, last_refreshed_at, idle_expires_at, expires_at, revoked_at, \
             revoke_reason, ip_enc, user_agent_enc, device_hash) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16)",
        )
        .bind(&s.id)
        .bind(&s.subject)
        .bind(&s.user_id)
        .bind(&s.client_id)
        .bind(s.scope.join(" "))
        .bind(json_text(&s.amr))
        .bind(to_millis(s.created_at))
        .bind(to_millis(s.updated_at))
        .bind(opt_millis(s.last_refreshed_at))
        .bind(to_millis(s.idle_expires_at))
        .bind(to_millis(s.expires_at))
        .bind(opt_millis(s.revoked_at))
        .bind(s.revoke_reason.map(RevokeReason::as_str))
        .bind(&s.ip_sealed)
        .bind(&s.user_agent_sealed)
        .bind(&s.device_hash)
        .execute(&mut **self)
        .await?;
        Ok(())
    }

    /// Locks the session for the rest of the transaction and reads it: every
    /// refresh of one family starts here, so they run one after another.
    pub async fn lock_session(&mut self, id: &str) -> Result<Option<Session>, StoreError> {
        lock_row::<SessionRow>(self, id).await
    }

    /// The first step of a refresh's fast path: if the token with this hash
    /// belongs to a live session (not revoked, before both deadlines) that
    /// `device` may refresh, records the refresh on it (activity now, the
    /// idle deadline renewed to `idle_candidate` but never past the
    /// absolute one) and returns it as it now is. Being an update, it also
    /// locks the session for the rest of the transaction, like
    /// [`WriteTx::lock_session`]: the lock every writer of a session takes
    /// first. One statement, where the slow path needs a lookup, a lock, a
    /// read and a touch. A refresh from another device matches no row, so
    /// it changes nothing.
    pub async fn touch_live_session_of_refresh(
        &mut self,
        hash: &TokenHash,
        now: DateTime<Utc>,
        idle_candidate: DateTime<Utc>,
        device: &PresentedDevice<'_>,
    ) -> Result<Option<Session>, StoreError> {
        // RETURNING names the updated table's columns bare.
        let columns = SessionRow::COLUMNS.replace("t.", "");
        let (set_device, device_matches) = device.sql(4);
        let query = format!(
            "UPDATE sessions SET last_refreshed_at = $2, updated_at = $2, \
             idle_expires_at = CASE WHEN expires_at < $3 THEN expires_at ELSE $3 END\
             {set_device} \
             WHERE id = (SELECT session_id FROM refresh_tokens WHERE token_hash = $1) \
             AND revoked_at IS NULL AND expires_at > $2 AND idle_expires_at > $2 \
             AND {device_matches} RETURNING {columns}"
        );
        let q = sqlx::query_as::<_, SessionRow>(&query)
            .bind(hash.to_hex())
            .bind(to_millis(now))
            .bind(to_millis(idle_candidate));
        device
            .bind_all(q)
            .fetch_optional(&mut **self)
            .await?
            .map(Session::try_from)
            .transpose()
    }

    /// Records a refresh: activity now, the idle deadline renewed, and a
    /// bound device's hash brought to the current key (the caller checked
    /// the device under the session's lock).
    pub async fn touch_session(
        &mut self,
        id: &str,
        now: DateTime<Utc>,
        idle_expires_at: DateTime<Utc>,
        device: &PresentedDevice<'_>,
    ) -> Result<(), StoreError> {
        let device = device.current();
        let (set_device, _) = device.sql(4);
        let query = format!(
            "UPDATE sessions SET last_refreshed_at = $2, idle_expires_at = $3, updated_at = $2\
             {set_device} WHERE id = $1"
        );
        let q = sqlx::query(&query)
            .bind(id)
            .bind(to_millis(now))
            .bind(to_millis(idle_expires_at));
        device.bind_all(q).execute(&mut **self).await?;
        Ok(())
    }

    /// Revokes one session and its refresh tokens, with its invalidation;
    /// `false` when it was already revoked (or does not exist).
    pub async fn revoke_session(
        &mut self,
        id: &str,
        now: DateTime<Utc>,
        reason: RevokeReason,
    ) -> Result<bool, StoreError> {
        let n = sqlx::query(
            "UPDATE sessions SET revoked_at = $2, revoke_reason = $3, updated_at = $2 \
             WHERE id = $1 AND revoked_at IS NULL",
        )
        .bind(id)
        .bind(to_millis(now))
        .bind(reason.as_str())
        .execute(&mut **self)
        .await?
        .rows_affected();
        self.revoke_refresh_family(id, now).await?;
        if n > 0 {
            self.invalidate(InvalidationKind::Session, id).await?;
        }
        Ok(n > 0)
    }

    /// Revokes every live session of a user (but `keep`, if given) and their
    /// refresh tokens; returns the ids revoked.
    pub async fn revoke_user_sessions(
        &mut self,
        user_id: &str,
        keep: Option<&str>,
        now: DateTime<Utc>,
        reason: RevokeReason,
    ) -> Result<Vec<String>, StoreError> {
        let ids: Vec<(String,)> = sqlx::query_as(
            "SELECT id FROM sessions WHERE user_id = $1 AND revoked_at IS NULL ORDER BY id",
        )
        .bind(user_id)
        .fetch_all(&mut **self)
        .await?;
        let mut revoked = Vec::new();
        for (id,) in ids {
            if keep == Some(id.as_str()) {
                continue;
            }
            if self.revoke_session(&id, now, reason).await? {
                revoked.push(id);
            }
        }
        Ok(revoked)
    }

    /// Every session of a user, oldest first, read inside the transaction
    /// (a data export; a person has few).
    pub async fn user_sessions(&mut self, user_id: &str) -> Result<Vec<Session>, StoreError> {
        sqlx::query_as::<_, SessionRow>(&format!(
            "SELECT {} FROM sessions t WHERE t.user_id = $1 ORDER BY t.id",
            SessionRow::COLUMNS
        ))
        .bind(user_id)
        .fetch_all(&mut **self)
        .await?
        .into_iter()
        .map(Session::try_from)
        .collect()
    }

    /// Removes a user's sessions and refresh tokens outright (erasure),
    /// invalidating everything cached about the user's sessions.
    pub async fn delete_user_sessions(&mut self, user_id: &str) -> Result<u64, StoreError> {
        sqlx::query(
            "DELETE FROM refresh_tokens WHERE session_id IN \
             (SELECT id FROM sessions WHERE user_id = $1)",
        )
        .bind(user_id)
        .execute(&mut **self)
        .await?;
        let n = sqlx::query("DELETE FROM sessions WHERE user_id = $1")
            .bind(user_id)
            .execute(&mut **self)
            .await?
            .rows_affected();
        if n > 0 {
            self.invalidate(InvalidationKind::User, user_id).await?;
        }
        Ok(n)
    }
}
