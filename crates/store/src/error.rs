//! Storage errors, classified by what the caller should do about them.
//!
//! The raw driver error is kept as a source for logging; it is never meant to
//! be shown to a client (the server maps these to safe problem bodies).

use tessera_core::DomainError;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// A lifecycle rule rejected the change (raised inside a transaction).
    #[error(transparent)]
    Domain(#[from] DomainError),
    /// The database cannot be reached or is overloaded: retry later (503).
    #[error("the database is unavailable")]
    Unavailable(#[source] sqlx::Error),
    /// A uniqueness rule was violated.
    #[error("a record with the same key already exists")]
    Conflict(#[source] sqlx::Error),
    /// The schema is older than this binary expects.
    #[error("the database schema is behind: run `tessera migrate`")]
    SchemaBehind,
    /// The URL names no supported backend.
    #[error("the database URL must start with sqlite: or postgres://")]
    BadUrl,
    /// Stored data that cannot be decoded: a bug or manual tampering.
    #[error("stored data is corrupt: {0}")]
    Corrupt(String),
    /// Anything else from the driver.
    #[error("database error")]
    Other(#[source] sqlx::Error),
}

impl From<sqlx::Error> for StoreError {
    fn from(e: sqlx::Error) -> Self {
        // A column the store's own decoders refused (`sql::columns`): stored
        // data that does not decode, reported as `from_millis`/`from_json` do.
        let e = match e {
            sqlx::Error::ColumnDecode { index, source } => match source.downcast::<StoreError>() {
                Ok(corrupt) => return *corrupt,
                Err(source) => match source.downcast::<serde_json::Error>() {
                    Ok(json) => return Self::Corrupt(format!("{index}: {json}")),
                    Err(source) => sqlx::Error::ColumnDecode { index, source },
                },
            },
            e => e,
        };
        match &e {
            sqlx::Error::Io(_)
            | sqlx::Error::PoolTimedOut
            | sqlx::Error::PoolClosed
            | sqlx::Error::Tls(_)
            | sqlx::Error::WorkerCrashed => Self::Unavailable(e),
            sqlx::Error::Database(db) if db.is_unique_violation() => Self::Conflict(e),
            // SQLITE_BUSY after the busy timeout, or PostgreSQL shutting down /
            // refusing connections: the database is there but not serving.
            sqlx::Error::Database(db)
                if matches!(
                    db.code().as_deref(),
                    Some("5" | "517" | "57P01" | "57P02" | "57P03" | "53300")
                ) =>
            {
                Self::Unavailable(e)
            }
            _ => Self::Other(e),
        }
    }
}
