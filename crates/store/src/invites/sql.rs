//! Invite queries: quota-checked creation, atomic redemption, listing, and
//! the locked read-modify-write for revoke and delete.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use sqlx::AnyConnection;
use tessera_core::{
    audit::AuditEntry,
    event::OutboxEvent,
    ids::new_id,
    invite::{Invite, InviteFailure, InviteState},
    DomainError,
};

use super::{
    rows::InviteRow, InviteQuery, InviteQuota, InviteRepository, InviteUsageRecord, NewInvite,
    Redemption,
};
use crate::sql::write_tx::WriteTx;
use crate::{
    audit::sql::bind_context,
    error::StoreError,
    page::Page,
    sql::{
        count_in_window, get_by_id, json_text, listing::Listing, lock_key, lock_row, opt_millis,
        placeholders, to_millis, SqlStore, TableRow,
    },
};

/// SQL for each state; `{now}` is "now". Must agree with `Invite::state_at`.
fn state_condition(state: InviteState) -> &'static str {
    match state {
        InviteState::Active => {
            "t.revoked_at IS NULL AND t.uses < t.max_uses AND t.expires_at > {now}"
        }
        InviteState::Used => "t.revoked_at IS NULL AND t.uses >= t.max_uses",
        InviteState::Expired => {
            "t.revoked_at IS NULL AND t.uses < t.max_uses AND t.expires_at <= {now}"
        }
        InviteState::Revoked => "t.revoked_at IS NOT NULL",
    }
}

async fn find_by_code(
    conn: &mut AnyConnection,
    hashes: &[String],
) -> Result<Option<Invite>, StoreError> {
    if hashes.is_empty() {
        return Ok(None);
    }
    let sql = format!(
        "SELECT {} FROM invites t WHERE t.code_hash IN ({})",
        InviteRow::COLUMNS,
        placeholders(1, hashes.len())
    );
    let mut q = sqlx::query_as::<_, InviteRow>(&sql);
    for h in hashes {
        q = q.bind(h.as_str());
    }
    q.fetch_optional(conn)
        .await?
        .map(Invite::try_from)
        .transpose()
}

async fn insert_usage(
    tx: &mut WriteTx,
    rows: &[InviteUsageRecord],
    at: i64,
) -> Result<(), StoreError> {
    for r in rows {
        let insert = sqlx::query(
            "INSERT INTO invite_usage_log (id, at, invite_id, action, outcome, subject, \
             request_id, ip_enc, user_agent_enc) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
        )
        .bind(new_id())
        .bind(at)
        .bind(&r.invite_id)
        .bind(r.action)
        .bind(r.outcome)
        .bind(&r.subject);
        bind_context(insert, &r.context).execute(&mut **tx).await?;
    }
    Ok(())
}

#[async_trait]
impl InviteRepository for SqlStore {
    async fn create_invite(
        &self,
        new: &NewInvite,
        quota: Option<InviteQuota>,
        audit: &AuditEntry,
        events: &[OutboxEvent],
    ) -> Result<(), StoreError> {
        let i = &new.invite;
        let mut tx = self.begin_write().await?;
        if let Some(q) = quota {
            // Quota checks for one issuer run one at a time.
            lock_key(&mut tx, "invite_issuers", "subject", &i.issuer.subject).await?;
            let rows = ("invites", "issuer_subject", i.issuer.subject.as_str());
            let decision = count_in_window(&mut tx, rows, q, i.created_at).await?;
            if let Err(retry) = decision.into_result() {
                return Err(DomainError::InviteQuotaExceeded {
                    limit: q.max,
                    retry_after_secs: retry,
                }
                .into());
            }
        }
        sqlx::query(
            "INSERT INTO invites (id, code_hash, issuer_subject, issuer_role, grant_role, \
             grant_scopes, email, max_uses, uses, expires_at, created_at, updated_at, metadata) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, 0, $9, $10, $11, $12)",
        )
        .bind(&i.id)
        .bind(&new.code_hash)
        .bind(&i.issuer.subject)
        .bind(&i.issuer.role)
        .bind(&i.grants.role)
        .bind(json_text(&i.grants.scopes))
        .bind(&i.email)
        .bind(i.max_uses)
        .bind(to_millis(i.expires_at))
        .bind(to_millis(i.created_at))
        .bind(to_millis(i.updated_at))
        .bind(json_text(&i.metadata))
        .execute(&mut *tx)
        .await?;
        tx.commit_logged(audit, events).await
    }

    async fn get_invite(&self, id: &str) -> Result<Option<Invite>, StoreError> {
        get_by_id::<InviteRow>(&self.pool, id).await
    }

    async fn find_invite_by_code(
        &self,
        code_hashes: &[String],
    ) -> Result<Option<Invite>, StoreError> {
        let mut conn = self.pool.acquire().await?;
        find_by_code(&mut conn, code_hashes).await
    }

    async fn list_invites(
        &self,
        q: &InviteQuery,
        now: DateTime<Utc>,
    ) -> Result<Page<Invite>, StoreError> {
        let mut listing = Listing::<InviteRow>::new(to_millis(now));
        listing
            .lifecycle(q.state.map(state_condition), q.include_deleted)
            .text_eq("t.issuer_subject", q.issuer.as_deref());
        listing
            .fetch(&self.pool, q.cursor.as_deref(), q.limit, |i| &i.id)
            .await
    }

    async fn redeem_invite(
        &self,
        r: &Redemption,
    ) -> Result<Result<Invite, (InviteFailure, Option<String>)>, StoreError> {
        let mut tx = self.begin_write().await?;
        let result = tx.redeem_invite(r).await?;
        if result.is_ok() {
            tx.commit().await?;
        }
        Ok(result)
    }

    async fn append_invite_usage(&self, rows: &[InviteUsageRecord]) -> Result<(), StoreError> {
        if rows.is_empty() {
            return Ok(());
        }
        let mut tx = self.begin_write().await?;
        insert_usage(&mut tx, rows, to_millis(tessera_core::ids::now())).await?;
        tx.commit().await
    }
}

/// Invite operations inside a [`WriteTx`].
impl WriteTx {
    /// Consumes one use if the invite is usable, inside this transaction
    /// (so a redemption can create the account it is for in the same one);
    /// the caller commits. On failure returns why, and the invite id when
    /// the code matched one.
    pub async fn redeem_invite(
        &mut self,
        r: &Redemption,
    ) -> Result<Result<Invite, (InviteFailure, Option<String>)>, StoreError> {
        let now = to_millis(r.now);
        let Some(invite) = find_by_code(self, &r.code_hashes).await? else {
            return Ok(Err((InviteFailure::NotFound, None)));
        };
        if let Err(f) = invite.check_usable(r.email.as_deref(), r.now) {
            return Ok(Err((f, Some(invite.id))));
        }
        // The guard repeats the usability rules so that, under PostgreSQL's
        // READ COMMITTED, a concurrent redemption that took the last use makes
        // this UPDATE match nothing instead of over-consuming.
        let updated = sqlx::query(
            "UPDATE invites SET uses = uses + 1, updated_at = $2 WHERE id = $1 \
             AND uses < max_uses AND revoked_at IS NULL AND deleted_at IS NULL AND expires_at > $2",
        )
        .bind(&invite.id)
        .bind(now)
        .execute(&mut **self)
        .await?
        .rows_affected();
        if updated == 0 {
            // Lost the race: report the state as it is now.
            let current = find_by_code(self, &r.code_hashes).await?;
            let failure = current
                .as_ref()
                .and_then(|i| i.check_usable(r.email.as_deref(), r.now).err())
                .unwrap_or(InviteFailure::UsedUp);
            return Ok(Err((failure, Some(invite.id))));
        }
        let mut usage = r.usage.clone();
        usage.invite_id = Some(invite.id.clone());
        insert_usage(self, &[usage], now).await?;
        self.append_events(&[OutboxEvent::invite_used(&invite.id)])
            .await?;
        Ok(Ok(Invite {
            uses: invite.uses + 1,
            updated_at: r.now,
            ..invite
        }))
    }

    /// Locks the invite for the rest of the transaction and reads it; `None`
    /// if no invite has this id.
    pub async fn lock_invite(&mut self, id: &str) -> Result<Option<Invite>, StoreError> {
        lock_row::<InviteRow>(self, id).await
    }

    /// Writes the lifecycle fields of a (locked) invite.
    pub async fn update_invite(&mut self, i: &Invite) -> Result<(), StoreError> {
        sqlx::query(
            "UPDATE invites SET revoked_at = $2, updated_at = $3, deleted_at = $4, metadata = $5 \
             WHERE id = $1",
        )
        .bind(&i.id)
        .bind(opt_millis(i.revoked_at))
        .bind(to_millis(i.updated_at))
        .bind(opt_millis(i.deleted_at))
        .bind(json_text(&i.metadata))
        .execute(&mut **self)
        .await?;
        Ok(())
    }
}
