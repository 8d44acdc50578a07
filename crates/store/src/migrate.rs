//! A small migration runner: numbered SQL files per backend, embedded in the
//! binary, recorded in `schema_migrations`.
//!
//! We keep our own runner (instead of sqlx's) because `serve` on PostgreSQL
//! must *refuse* to start on an old schema rather than change it, and the
//! status check for that is a two-line query here.

use chrono::Utc;
use sqlx::Row;

use crate::{sql::SqlStore, StoreError};

/// One migration: a version number, a name and its SQL (several statements).
#[derive(Debug)]
pub(crate) struct Migration {
    pub version: i64,
    pub name: &'static str,
    pub sql: &'static str,
}

/// Which migrations the database has, against the ones this binary knows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SchemaStatus {
    pub applied: Vec<i64>,
    pub pending: Vec<i64>,
}

impl SchemaStatus {
    pub fn is_current(&self) -> bool {
        self.pending.is_empty()
    }
}

const CREATE_TABLE: &str = "CREATE TABLE IF NOT EXISTS schema_migrations (\
     version BIGINT PRIMARY KEY, name TEXT NOT NULL, applied_at BIGINT NOT NULL)";

const APPLIED: &str = "SELECT version FROM schema_migrations ORDER BY version";

fn versions(rows: &[sqlx::any::AnyRow]) -> Result<Vec<i64>, StoreError> {
    rows.iter()
        .map(|r| r.try_get::<i64, _>("version").map_err(StoreError::from))
        .collect()
}

/// The statements of a migration file: comment lines dropped, split on `;`
/// at line ends. (Our migrations never put `;` inside a literal.)
fn statements(sql: &str) -> Vec<String> {
    let without_comments: String = sql
        .lines()
        .filter(|l| !l.trim_start().starts_with("--"))
        .collect::<Vec<_>>()
        .join("\n");
    without_comments
        .split(";\n")
        .map(|s| s.trim().trim_end_matches(';').trim().to_string())
        .filter(|s| !s.is_empty())
        .collect()
}

pub(crate) async fn status(store: &SqlStore) -> Result<SchemaStatus, StoreError> {
    sqlx::query(CREATE_TABLE).execute(&store.pool).await?;
    let applied = versions(&sqlx::query(APPLIED).fetch_all(&store.pool).await?)?;
    let pending = store
        .dialect
        .migrations
        .iter()
        .map(|m| m.version)
        .filter(|v| !applied.contains(v))
        .collect();
    Ok(SchemaStatus { applied, pending })
}

pub(crate) async fn apply(store: &SqlStore) -> Result<Vec<i64>, StoreError> {
    sqlx::query(CREATE_TABLE).execute(&store.pool).await?;
    let mut tx = store.begin_write().await?;
    if let Some(lock) = store.dialect.migration_lock {
        sqlx::query(lock).execute(&mut *tx).await?;
    }
    let applied = versions(&sqlx::query(APPLIED).fetch_all(&mut *tx).await?)?;
    let mut done = Vec::new();
    for m in store.dialect.migrations {
        if applied.contains(&m.version) {
            continue;
        }
        tracing::info!(version = m.version, name = m.name, "applying migration");
        for stmt in statements(m.sql) {
            sqlx::query(&stmt).execute(&mut *tx).await?;
        }
        sqlx::query(
            "INSERT INTO schema_migrations (version, name, applied_at) VALUES ($1, $2, $3)",
        )
        .bind(m.version)
        .bind(m.name)
        .bind(Utc::now().timestamp_millis())
        .execute(&mut *tx)
        .await?;
        done.push(m.version);
    }
    tx.commit().await?;
    Ok(done)
}
