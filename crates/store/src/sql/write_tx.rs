//! The composable write transaction. A use case opens one with
//! [`BeginWrite::begin_write`], calls repository operations on it (they are
//! methods on [`WriteTx`], defined next to each repository's SQL: lock and
//! read a row, update it, insert secrets, append audit rows and outbox
//! events), and commits. Several steps of one use case (redeem an invite and
//! create a user; rotate a token and write its audit row and events) thus
//! commit or roll back together. Dropping a `WriteTx` without committing
//! rolls it back.
//!
//! How a write transaction starts is data in the [`super::Dialect`]: `BEGIN
//! IMMEDIATE` on SQLite (so a transaction that reads before it writes never
//! fails to upgrade its lock), a plain `BEGIN` on PostgreSQL, where the row
//! locks taken by `lock_*` serialise concurrent changes of one record.

use std::ops::{Deref, DerefMut};

use async_trait::async_trait;
use sqlx::{Any, AnyConnection, Transaction};
use tokio::sync::OwnedMutexGuard;

use super::Dialect;
use crate::error::StoreError;

/// An open write transaction on either backend.
pub struct WriteTx {
    // Declared before `_turn`, so a dropped transaction rolls back before
    // the next writer's turn begins.
    tx: Transaction<'static, Any>,
    /// This process's turn to write, on SQLite (see `SqlStore::writers`).
    _turn: Option<OwnedMutexGuard<()>>,
    dialect: &'static Dialect,
    /// The invalidations this transaction has written (kind, id), so each
    /// record is named once however many steps change it.
    invalidated: Vec<(&'static str, String)>,
}

impl WriteTx {
    pub(crate) fn new(
        tx: Transaction<'static, Any>,
        turn: Option<OwnedMutexGuard<()>>,
        dialect: &'static Dialect,
    ) -> Self {
        Self {
            tx,
            _turn: turn,
            dialect,
            invalidated: Vec::new(),
        }
    }

    /// The backend this transaction runs on, for statements that differ.
    pub(crate) fn dialect(&self) -> &'static Dialect {
        self.dialect
    }

    /// Notes that `(kind, id)` is invalidated by this transaction: `false`
    /// when it already was. The first one of a transaction is
    /// [`Self::first_invalidated`].
    pub(crate) fn note_invalidated(&mut self, kind: &'static str, id: &str) -> bool {
        if self.invalidated.iter().any(|(k, i)| *k == kind && i == id) {
            return false;
        }
        self.invalidated.push((kind, id.to_string()));
        true
    }

    /// Whether exactly one invalidation has been noted (the one just noted
    /// is the transaction's first).
    pub(crate) fn first_invalidated(&self) -> bool {
        self.invalidated.len() == 1
    }

    /// Makes every change of this transaction durable, at once.
    pub async fn commit(self) -> Result<(), StoreError> {
        self.tx.commit().await?;
        Ok(())
    }

    /// Undoes every change of this transaction now (dropping it does the
    /// same, but only when the connection is next used).
    pub async fn rollback(self) -> Result<(), StoreError> {
        self.tx.rollback().await?;
        Ok(())
    }

    /// The bare transaction, for the migration runner. It gives up this
    /// process's writer turn, which migrations (run at start-up, before any
    /// request) do not need: the database's own write lock still holds.
    pub(crate) fn into_transaction(self) -> Transaction<'static, Any> {
        self.tx
    }
}

/// Queries inside the crate run on the transaction's connection (`&mut *tx`).
impl Deref for WriteTx {
    type Target = AnyConnection;

    fn deref(&self) -> &AnyConnection {
        &self.tx
    }
}

impl DerefMut for WriteTx {
    fn deref_mut(&mut self) -> &mut AnyConnection {
        &mut self.tx
    }
}

/// Opens write transactions; part of every [`crate::Store`].
#[async_trait]
pub trait BeginWrite: Send + Sync {
    async fn begin_write(&self) -> Result<WriteTx, StoreError>;
}
