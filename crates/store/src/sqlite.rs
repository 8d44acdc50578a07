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
    restrict_to_owner(opts.get_filename());

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
        writers: Some(Default::default()),
    })
}

/// The database holds hashes, sealed secrets and the audit log: only the
/// service's own user may read it. SQLite creates the file (and its `-wal`
/// and `-shm` companions, which then copy the main file's mode) with the
/// process umask, often 0644; tighten what exists, never loosen. A file that
/// cannot be changed (not ours) is left as it is, with a warning.
#[cfg(unix)]
fn restrict_to_owner(db: &std::path::Path) {
    use std::os::unix::fs::PermissionsExt;
    for suffix in ["", "-wal", "-shm"] {
        let mut name = db.as_os_str().to_owned();
        name.push(suffix);
        let path = std::path::Path::new(&name);
        let Ok(meta) = std::fs::metadata(path) else {
            continue; // not created (yet), or an in-memory database
        };
        if meta.permissions().mode() & 0o077 == 0 {
            continue;
        }
        if let Err(e) = std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)) {
            tracing::warn!(file = %path.display(), error = %e, "could not make the database file private (0600)");
        }
    }
}

#[cfg(not(unix))]
fn restrict_to_owner(_db: &std::path::Path) {}
