//! The embedded default: a SQLite file, WAL mode, write transactions that take
//! the write lock up front.

use std::str::FromStr;

use sqlx::{
    any::{install_default_drivers, AnyPoolOptions},
    sqlite::{SqliteConnectOptions, SqliteJournalMode},
    ConnectOptions,
};

use crate::{
    error::StoreError,
    sql::{Dialect, SqlStore},
};

pub(crate) async fn connect(url: &str) -> Result<SqlStore, StoreError> {
    install_default_drivers();
    // Switch the file to WAL once, on a single connection: changing the journal
    // mode needs an exclusive lock that the busy timeout cannot wait for, so
    // pool connections must not race to do it. WAL lets readers run beside the
    // single writer.
    let opts = SqliteConnectOptions::from_str(url)
        .map_err(|_| StoreError::BadUrl)?
        .create_if_missing(true)
        .journal_mode(SqliteJournalMode::Wal);
    let conn = opts.connect().await?;
    sqlx::Connection::close(conn).await?;

    let pool = AnyPoolOptions::new()
        .max_connections(8)
        .acquire_timeout(std::time::Duration::from_secs(5))
        .after_connect(|conn, _| {
            Box::pin(async move {
                // NORMAL is durable against process crashes in WAL mode and
                // avoids an fsync per commit.
                sqlx::query("PRAGMA synchronous = NORMAL")
                    .execute(&mut *conn)
                    .await?;
                sqlx::query("PRAGMA foreign_keys = ON")
                    .execute(&mut *conn)
                    .await?;
                Ok(())
            })
        })
        .connect(url)
        .await?;
    Ok(SqlStore {
        pool,
        dialect: &Dialect::SQLITE,
    })
}
