//! WebSocket tickets kept in the database (when no Redis is configured) and
//! the connections redeemed tickets open. A ticket is keyed by its SHA-256
//! and taken by one `DELETE … RETURNING`, so of any number of concurrent
//! redemptions exactly one gets the row. Changes are [`WriteTx`] methods,
//! so a redemption is one transaction with its audit row and its event.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use tessera_core::ws_ticket::{WsConnection, WsTicket};

use crate::{
    error::StoreError,
    sql::{
        columns::{Millis, OptMillis},
        opt_millis, to_millis,
        write_tx::WriteTx,
        SqlStore,
    },
};

/// A ticket row as stored.
#[derive(sqlx::FromRow)]
struct TicketRow {
    session_id: String,
    subject: String,
    scope: String,
    audience: Option<String>,
    ip_hash: Option<String>,
    #[sqlx(try_from = "Millis")]
    issued_at: DateTime<Utc>,
    #[sqlx(try_from = "Millis")]
    expires_at: DateTime<Utc>,
}

impl From<TicketRow> for WsTicket {
    fn from(r: TicketRow) -> Self {
        Self {
            session_id: r.session_id,
            subject: r.subject,
            scope: r.scope,
            audience: r.audience,
            ip_hash: r.ip_hash,
            issued_at: r.issued_at,
            expires_at: r.expires_at,
        }
    }
}

/// A connection row as stored.
#[derive(sqlx::FromRow)]
struct ConnectionRow {
    id: String,
    session_id: String,
    subject: String,
    user_id: Option<String>,
    client_id: String,
    audience: Option<String>,
    #[sqlx(try_from = "Millis")]
    opened_at: DateTime<Utc>,
    #[sqlx(try_from = "OptMillis")]
    closed_at: Option<DateTime<Utc>>,
    close_code: Option<i64>,
    close_reason: Option<String>,
}

impl TryFrom<ConnectionRow> for WsConnection {
    type Error = StoreError;

    fn try_from(r: ConnectionRow) -> Result<Self, StoreError> {
        let close_code = r
            .close_code
            .map(|c| u16::try_from(c).map_err(|_| StoreError::Corrupt(format!("close code {c}"))))
            .transpose()?;
        Ok(Self {
            id: r.id,
            session_id: r.session_id,
            subject: r.subject,
            user_id: r.user_id,
            client_id: r.client_id,
            audience: r.audience,
            opened_at: r.opened_at,
            closed_at: r.closed_at,
            close_code,
            close_reason: r.close_reason,
        })
    }
}

const TICKET_COLUMNS: &str = "session_id, subject, scope, audience, ip_hash, issued_at, expires_at";
const CONNECTION_COLUMNS: &str = "id, session_id, subject, user_id, client_id, audience, \
     opened_at, closed_at, close_code, close_reason";

/// Ticket and connection changes inside a [`WriteTx`].
impl WriteTx {
    /// Stores a ticket under `hash` (the hex SHA-256 of the raw ticket).
    pub async fn insert_ws_ticket(&mut self, hash: &str, t: &WsTicket) -> Result<(), StoreError> {
        sqlx::query(&format!(
            "INSERT INTO ws_tickets (ticket_hash, {TICKET_COLUMNS}) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8)"
        ))
        .bind(hash)
        .bind(&t.session_id)
        .bind(&t.subject)
        .bind(&t.scope)
        .bind(&t.audience)
        .bind(&t.ip_hash)
        .bind(to_millis(t.issued_at))
        .bind(to_millis(t.expires_at))
        .execute(&mut **self)
        .await?;
        Ok(())
    }

    /// Deletes the expired tickets of one session (done at each issue, so a
    /// session's leftovers never outgrow what it issued within a TTL; the
    /// maintenance job takes those of sessions that stopped asking).
    pub async fn delete_expired_ws_tickets(
        &mut self,
        session_id: &str,
        now: DateTime<Utc>,
    ) -> Result<u64, StoreError> {
        let n = sqlx::query("DELETE FROM ws_tickets WHERE session_id = $1 AND expires_at <= $2")
            .bind(session_id)
            .bind(to_millis(now))
            .execute(&mut **self)
            .await?
            .rows_affected();
        Ok(n)
    }

    /// Takes the ticket stored under `hash`: deletes it and returns what it
    /// was bound to, in one statement, so only one caller ever gets it. An
    /// expired ticket is taken too (the caller refuses it as `expired`, and
    /// knows whose it was); `None` for an unknown or already-taken one.
    pub async fn take_ws_ticket(&mut self, hash: &str) -> Result<Option<WsTicket>, StoreError> {
        let row: Option<TicketRow> = sqlx::query_as(&format!(
            "DELETE FROM ws_tickets WHERE ticket_hash = $1 RETURNING {TICKET_COLUMNS}"
        ))
        .bind(hash)
        .fetch_optional(&mut **self)
        .await?;
        Ok(row.map(WsTicket::from))
    }

    pub async fn insert_ws_connection(&mut self, c: &WsConnection) -> Result<(), StoreError> {
        sqlx::query(&format!(
            "INSERT INTO ws_connections ({CONNECTION_COLUMNS}) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)"
        ))
        .bind(&c.id)
        .bind(&c.session_id)
        .bind(&c.subject)
        .bind(&c.user_id)
        .bind(&c.client_id)
        .bind(&c.audience)
        .bind(to_millis(c.opened_at))
        .bind(opt_millis(c.closed_at))
        .bind(c.close_code.map(i64::from))
        .bind(&c.close_reason)
        .execute(&mut **self)
        .await?;
        Ok(())
    }

    /// Records the close of an open connection: `true` when this call
    /// closed it, `false` when it was already closed (or does not exist).
    pub async fn close_ws_connection(
        &mut self,
        id: &str,
        at: DateTime<Utc>,
        code: Option<u16>,
        reason: Option<&str>,
    ) -> Result<bool, StoreError> {
        let n = sqlx::query(
            "UPDATE ws_connections SET closed_at = $2, close_code = $3, close_reason = $4 \
             WHERE id = $1 AND closed_at IS NULL",
        )
        .bind(id)
        .bind(to_millis(at))
        .bind(code.map(i64::from))
        .bind(reason)
        .execute(&mut **self)
        .await?
        .rows_affected();
        Ok(n == 1)
    }
}

/// Reads and maintenance outside a redemption.
#[async_trait]
pub trait WsTicketRepository: Send + Sync {
    /// Whether a ticket is stored under `hash` (expired or not): a read, so
    /// that unknown tickets cost no write. Only the take decides.
    async fn ws_ticket_exists(&self, hash: &str) -> Result<bool, StoreError>;

    async fn get_ws_connection(&self, id: &str) -> Result<Option<WsConnection>, StoreError>;

    /// Deletes tickets expired before `now` and connections closed before
    /// `closed_before`. Returns rows deleted.
    async fn purge_ws_state(
        &self,
        now: DateTime<Utc>,
        closed_before: DateTime<Utc>,
    ) -> Result<u64, StoreError>;
}

#[async_trait]
impl WsTicketRepository for SqlStore {
    async fn ws_ticket_exists(&self, hash: &str) -> Result<bool, StoreError> {
        let row: Option<(i64,)> =
            sqlx::query_as("SELECT expires_at FROM ws_tickets WHERE ticket_hash = $1")
                .bind(hash)
                .fetch_optional(&self.pool)
                .await?;
        Ok(row.is_some())
    }

    async fn get_ws_connection(&self, id: &str) -> Result<Option<WsConnection>, StoreError> {
        let row: Option<ConnectionRow> = sqlx::query_as(&format!(
            "SELECT {CONNECTION_COLUMNS} FROM ws_connections WHERE id = $1"
        ))
        .bind(id)
        .fetch_optional(&self.pool)
        .await?;
        row.map(WsConnection::try_from).transpose()
    }

    async fn purge_ws_state(
        &self,
        now: DateTime<Utc>,
        closed_before: DateTime<Utc>,
    ) -> Result<u64, StoreError> {
        let mut tx = self.begin_write().await?;
        let tickets = sqlx::query("DELETE FROM ws_tickets WHERE expires_at <= $1")
            .bind(to_millis(now))
            .execute(&mut *tx)
            .await?
            .rows_affected();
        let connections = sqlx::query("DELETE FROM ws_connections WHERE closed_at < $1")
            .bind(to_millis(closed_before))
            .execute(&mut *tx)
            .await?
            .rows_affected();
        tx.commit().await?;
        Ok(tickets + connections)
    }
}
