//! The portable SQL shared by both backends, run through sqlx's `Any` driver.
//!
//! Why one body of SQL rather than two copies: the schema is deliberately
//! portable (text ids, BIGINT millisecond timestamps, JSON in TEXT), so the
//! queries are identical on SQLite and PostgreSQL; two copies would only drift.
//! The few real differences are data in [`Dialect`].
//!
//! Rows are read into `#[derive(FromRow)]` structs (timestamps as BIGINT
//! milliseconds, JSON as TEXT, booleans as BIGINT 0/1) and turned into domain
//! types by one `TryFrom` each, next to the repository that reads them; each
//! such row names its table and columns once ([`TableRow`]). Types the store
//! owns derive `FromRow` themselves through the decoders in [`columns`].

pub(crate) mod columns;
pub(crate) mod listing;
pub(crate) mod write_tx;

use std::{borrow::Cow, sync::Arc, time::Duration};

use chrono::{DateTime, Utc};
use serde::{de::DeserializeOwned, Serialize};
use sqlx::{any::AnyRow, AnyPool, FromRow};
use tessera_core::rate_limit::{Decision, Limit};
use tokio::sync::Mutex;

use self::write_tx::{BeginWrite, WriteTx};
use crate::{backend::Backend, error::StoreError};

/// What differs between the backends, as data.
#[derive(Debug)]
pub(crate) struct Dialect {
    pub backend: Backend,
    /// How a write transaction starts. SQLite needs `BEGIN IMMEDIATE`: a
    /// deferred transaction that reads before it writes cannot upgrade its lock
    /// once another connection has committed, and fails instead of waiting.
    pub begin_write: Option<&'static str>,
    /// Appended to the `SELECT` that claims outbox events or deliveries, so
    /// that on PostgreSQL concurrent replicas skip rows another one is
    /// claiming instead of waiting for it (SQLite has one writer anyway).
    pub skip_locked: &'static str,
    /// Run first inside the migration transaction so that concurrent
    /// `tessera migrate` runs (several replicas) apply each migration once.
    pub migration_lock: Option<&'static str>,
    /// The column type of an auto-incrementing primary key (`{serial_key}`
    /// in a migration): the one piece of DDL the backends spell differently.
    pub serial_key: &'static str,
    /// How a committed invalidation wakes the other processes at once, where
    /// the database can (PostgreSQL's NOTIFY, delivered at commit); without
    /// it they find the row at their next poll.
    pub invalidation_notify: Option<Notify>,
}

/// A notification sent inside a transaction and the channel it goes to.
#[derive(Debug)]
pub(crate) struct Notify {
    /// Run in the transaction; the database delivers it when that commits.
    pub statement: &'static str,
    /// What a listener subscribes to.
    pub channel: &'static str,
}

/// The two backends' differences, side by side.
impl Dialect {
    pub const POSTGRES: Dialect = Dialect {
        backend: Backend::Postgres,
        skip_locked: " FOR UPDATE SKIP LOCKED",
        begin_write: None,
        // Replicas may run `tessera migrate` at the same moment; a
        // transaction-level advisory lock makes the second wait and then find
        // nothing to do.
        migration_lock: Some("SELECT pg_advisory_xact_lock(7362836110)"),
        serial_key: "BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY",
        invalidation_notify: Some(Notify {
            // The payload is the schema, so deployments that share a
            // database in different schemas do not wake each other.
            statement: "SELECT pg_notify('tessera_invalidations', current_schema())",
            channel: "tessera_invalidations",
        }),
    };

    pub const SQLITE: Dialect = Dialect {
        backend: Backend::Sqlite,
        skip_locked: "",
        begin_write: Some("BEGIN IMMEDIATE"),
        // BEGIN IMMEDIATE already excludes every other writer.
        migration_lock: None,
        // AUTOINCREMENT: never reuse a number, even after the newest rows
        // are deleted, so a reader's "after N" stays meaningful.
        serial_key: "INTEGER PRIMARY KEY AUTOINCREMENT",
        // No channel: other processes find new rows by polling.
        invalidation_notify: None,
    };
}

/// A query under construction, as the bind helpers take and return it.
pub(crate) type Query<'q> = sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments<'q>>;

/// A store on either backend.
pub(crate) struct SqlStore {
    pub pool: AnyPool,
    pub dialect: &'static Dialect,
    /// SQLite has one writer. Without this, writers of this process that
    /// find the write lock taken poll for it (SQLite's busy handler sleeps,
    /// up to 100 ms at a time), so under load the lock sits free while
    /// they sleep and the slowest wait seconds. With it they queue here
    /// first, in order, and each starts the moment the last one ends.
    /// Another process (an admin command) still meets the busy handler.
    /// `None` on PostgreSQL, whose row locks already queue writers of one
    /// record and let the others run side by side.
    pub writers: Option<Arc<Mutex<()>>>,
}

/// The longest a writer waits for its turn: SQLite's busy timeout, so a
/// stuck writer is a 503 here as it would be there, never a hang.
const WRITE_TURN_TIMEOUT: Duration = Duration::from_secs(5);

impl SqlStore {
    /// Opens a write transaction the way this backend needs (see [`Dialect`]).
    pub async fn begin_write(&self) -> Result<WriteTx, StoreError> {
        let turn = match &self.writers {
            Some(writers) => Some(
                tokio::time::timeout(WRITE_TURN_TIMEOUT, writers.clone().lock_owned())
                    .await
                    .map_err(|_| StoreError::Unavailable(sqlx::Error::PoolTimedOut))?,
            ),
            None => None,
        };
        let tx = match self.dialect.begin_write {
            Some(stmt) => self.pool.begin_with(Cow::Borrowed(stmt)).await?,
            None => self.pool.begin().await?,
        };
        Ok(WriteTx::new(tx, turn, self.dialect))
    }
}

#[async_trait::async_trait]
impl BeginWrite for SqlStore {
    async fn begin_write(&self) -> Result<WriteTx, StoreError> {
        SqlStore::begin_write(self).await
    }
}

/// A table's stored row: the table, the columns the row reads (aliased
/// `t`), and the domain type it becomes. One place per table says all three,
/// so every generic read below ([`get_by_id`], [`lock_row`]) agrees.
pub(crate) trait TableRow: for<'r> FromRow<'r, AnyRow> + Send + Unpin {
    const TABLE: &'static str;
    const COLUMNS: &'static str;
    type Domain: TryFrom<Self, Error = StoreError>;
}

/// One row by id, as its domain type: the read behind every `get_*`.
pub(crate) async fn get_by_id<'c, R: TableRow>(
    conn: impl sqlx::Executor<'c, Database = sqlx::Any>,
    id: &str,
) -> Result<Option<R::Domain>, StoreError> {
    let (table, columns) = (R::TABLE, R::COLUMNS);
    sqlx::query_as::<_, R>(&format!("SELECT {columns} FROM {table} t WHERE t.id = $1"))
        .bind(id)
        .fetch_optional(conn)
        .await?
        .map(R::Domain::try_from)
        .transpose()
}

/// Locks one row for the rest of `tx` and reads it: the start of every
/// read-modify-write. The no-op `UPDATE` is a row lock on PostgreSQL (and a
/// no-op under SQLite's `BEGIN IMMEDIATE` write lock), so concurrent changes
/// to one record are serialised and each sees the previous one's result.
/// `None` when no row has this id.
pub(crate) async fn lock_row<R: TableRow>(
    tx: &mut WriteTx,
    id: &str,
) -> Result<Option<R::Domain>, StoreError> {
    let lock = format!(
        "UPDATE {} SET updated_at = updated_at WHERE id = $1",
        R::TABLE
    );
    update_then_read::<R>(tx, sqlx::query(&lock).bind(id), id).await
}

/// Runs `update` (an `UPDATE … WHERE id = …` of `R`'s table) inside `tx`
/// and reads the row as it now is; `None` when the update matched no row.
pub(crate) async fn update_then_read<R: TableRow>(
    tx: &mut WriteTx,
    update: Query<'_>,
    id: &str,
) -> Result<Option<R::Domain>, StoreError> {
    let matched = update.execute(&mut **tx).await?.rows_affected();
    if matched == 0 {
        return Ok(None);
    }
    get_by_id::<R>(&mut **tx, id).await
}

/// Locks the row keyed `key` in a one-column lock table (creating it on first
/// use) for the rest of `tx`, to serialise read-then-write work per key:
/// quota and rate-limit counts, replacing a set of rows. The no-op `UPDATE`
/// is the row lock on PostgreSQL; SQLite's `BEGIN IMMEDIATE` already
/// serialises writers. Lock order matters: callers that take several keys
/// always take them in the same order.
pub(crate) async fn lock_key(
    tx: &mut WriteTx,
    table: &str,
    column: &str,
    key: &str,
) -> Result<(), StoreError> {
    sqlx::query(&format!(
        "INSERT INTO {table} ({column}) VALUES ($1) ON CONFLICT ({column}) DO NOTHING"
    ))
    .bind(key)
    .execute(&mut **tx)
    .await?;
    sqlx::query(&format!(
        "UPDATE {table} SET {column} = {column} WHERE {column} = $1"
    ))
    .bind(key)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// A rolling-window limit counted in the database (the invite quota, the
/// auth-code limits): the rows of `table` with `column = key` created inside
/// `limit`'s window before `now`, decided by [`Limit::decide`] like every
/// other limit. Callers hold the key's lock (see [`lock_key`]) so that
/// concurrent checks cannot both pass, on every replica.
pub(crate) async fn count_in_window(
    tx: &mut WriteTx,
    (table, column, key): (&str, &str, &str),
    limit: Limit,
    now: DateTime<Utc>,
) -> Result<Decision, StoreError> {
    let (n, oldest): (i64, Option<i64>) = sqlx::query_as(&format!(
        "SELECT COUNT(*) AS n, MIN(created_at) AS oldest FROM {table} \
         WHERE {column} = $1 AND created_at > $2"
    ))
    .bind(key)
    .bind(to_millis(limit.window_start(now)))
    .fetch_one(&mut **tx)
    .await?;
    Ok(limit.decide(n, from_opt_millis(oldest)?, now))
}

/// Milliseconds since the epoch: the stored form of every timestamp.
pub(crate) fn to_millis(t: DateTime<Utc>) -> i64 {
    t.timestamp_millis()
}

pub(crate) fn from_millis(ms: i64) -> Result<DateTime<Utc>, StoreError> {
    DateTime::from_timestamp_millis(ms)
        .ok_or_else(|| StoreError::Corrupt(format!("timestamp {ms} out of range")))
}

pub(crate) fn opt_millis(t: Option<DateTime<Utc>>) -> Option<i64> {
    t.map(to_millis)
}

pub(crate) fn from_opt_millis(ms: Option<i64>) -> Result<Option<DateTime<Utc>>, StoreError> {
    ms.map(from_millis).transpose()
}

/// Decodes a JSON column (stored as TEXT); `column` names it in the error.
pub(crate) fn from_json<T: DeserializeOwned>(text: &str, column: &str) -> Result<T, StoreError> {
    serde_json::from_str(text).map_err(|e| StoreError::Corrupt(format!("{column}: {e}")))
}

/// The stored (TEXT) form of a JSON column.
pub(crate) fn json_text<T: Serialize>(value: &T) -> String {
    serde_json::to_string(value).expect("stored JSON values always serialize")
}

/// `$first, $first+1, …` for an `IN (…)` list of `n` values.
pub(crate) fn placeholders(first: usize, n: usize) -> String {
    (first..first + n)
        .map(|i| format!("${i}"))
        .collect::<Vec<_>>()
        .join(", ")
}
