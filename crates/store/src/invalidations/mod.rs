//! The invalidation log: one row per committed change that ends or alters a
//! credential, so that every process can drop what it cached about that
//! record within a second, whichever process (a replica, the CLI) made the
//! change.
//!
//! Why a table and not only pub/sub: a row is written in the change's own
//! transaction, so it exists exactly when the change does; a message
//! published after the commit is lost when the process dies in between.
//! Readers poll it ([`InvalidationFeed`]); on PostgreSQL a NOTIFY sent in
//! the same transaction wakes them at once ([`InvalidationListener`]), but
//! the table stays the source of truth.
//!
//! The rows are written by the [`WriteTx`] methods that make such changes
//! (`update_token`, `revoke_session`, `update_client`, …), so no use case,
//! HTTP or CLI, can forget one.

mod feed;
mod sql;

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use crate::{error::StoreError, sql::write_tx::WriteTx};

pub use feed::InvalidationFeed;

/// What kind of record an invalidation names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum InvalidationKind {
    /// An API token (revoked, rotated, deleted, restored, updated).
    Token,
    /// A session (revoked, or deleted with its user).
    Session,
    /// A user disabled, deleted or erased: everything about them.
    User,
    /// A registry client (created, changed, rotated, deleted).
    Client,
}

impl InvalidationKind {
    pub const ALL: [Self; 4] = [Self::Token, Self::Session, Self::User, Self::Client];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Token => "token",
            Self::Session => "session",
            Self::User => "user",
            Self::Client => "client",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.as_str() == s)
    }
}

/// One committed change, as the log holds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Invalidation {
    /// Assigned by the database when the row is written, so numbers are
    /// unique and increasing in write order, but a transaction may commit
    /// after one that took a higher number (see [`InvalidationFeed`]).
    pub seq: i64,
    pub kind: InvalidationKind,
    /// The id of the token, session, user or client.
    pub target_id: String,
    pub created_at: DateTime<Utc>,
}

/// Reading and pruning the invalidation log.
#[async_trait]
pub trait InvalidationLog: Send + Sync {
    /// The rows numbered above `after` or listed in `also`, by number, at
    /// most `limit` of them: one indexed range read (plus point reads).
    async fn invalidations_after(
        &self,
        after: i64,
        also: &[i64],
        limit: u32,
    ) -> Result<Vec<Invalidation>, StoreError>;

    /// The newest `limit` rows, newest first: where a new reader starts.
    async fn latest_invalidations(&self, limit: u32) -> Result<Vec<Invalidation>, StoreError>;

    /// Deletes rows written before `before`; returns how many.
    async fn purge_invalidations(&self, before: DateTime<Utc>) -> Result<u64, StoreError>;

    /// A dedicated connection that wakes its holder when an invalidation
    /// commits anywhere; `None` on a backend without notifications
    /// (SQLite), where polling alone finds them.
    async fn listen_invalidations(&self) -> Result<Option<InvalidationListener>, StoreError>;
}

/// Woken by every committed invalidation (PostgreSQL `LISTEN`). Hold it in
/// one task and call [`Self::wait`] in a loop.
pub struct InvalidationListener {
    inner: sqlx::postgres::PgListener,
    /// This store's schema: the payload of its notifications (others are
    /// another deployment's in the same database).
    schema: String,
}

impl InvalidationListener {
    /// Returns when an invalidation has committed, or when the connection
    /// was lost and re-established (notifications may have been missed:
    /// the caller polls either way). An error means it could not
    /// reconnect; the caller waits and opens a new listener.
    pub async fn wait(&mut self) -> Result<(), StoreError> {
        loop {
            match self.inner.try_recv().await? {
                Some(n) if n.payload() != self.schema => continue,
                _ => return Ok(()),
            }
        }
    }
}

/// Invalidations inside a [`WriteTx`].
impl WriteTx {
    /// Records, in this transaction, that `kind` `id` changed: once it
    /// commits, every process drops what it cached about it. Written once
    /// per record and transaction; on PostgreSQL the first one also sends
    /// the NOTIFY that wakes the readers at commit.
    pub async fn invalidate(&mut self, kind: InvalidationKind, id: &str) -> Result<(), StoreError> {
        if !self.note_invalidated(kind.as_str(), id) {
            return Ok(());
        }
        sql::insert(self, kind, id).await?;
        if self.first_invalidated() {
            if let Some(notify) = &self.dialect().invalidation_notify {
                sqlx::query(notify.statement).execute(&mut **self).await?;
            }
        }
        Ok(())
    }
}
