//! A small migration runner: numbered SQL files, embedded in the binary,
//! recorded in `schema_migrations`.
//!
//! One tree of migrations (`crates/store/migrations/`) serves both backends:
//! the schema is portable. The one column type that is not (an
//! auto-incrementing key: SQLite's `INTEGER PRIMARY KEY AUTOINCREMENT`,
//! PostgreSQL's identity column) is written `{serial_key}` in the file and
//! filled in from the backend's dialect. The runner takes what it runs as
//! data (a [`MigrationPlan`]: the list, the backend's lock statement and its
//! serial key), so it does not depend on the store that calls it.
//!
//! We keep our own runner (instead of sqlx's) because `serve` on PostgreSQL
//! must *refuse* to start on an old schema rather than change it, and the
//! status check for that is a two-line query here.

use std::future::Future;

use chrono::Utc;
use sqlx::{Any, AnyPool, Transaction};

use crate::error::StoreError;

/// One migration: a version number, a name and its SQL (several statements).
#[derive(Debug)]
pub(crate) struct Migration {
    pub version: i64,
    pub name: &'static str,
    pub sql: &'static str,
}

/// Migration `version` named `name`, embedded from `migrations/<file>`.
macro_rules! migration {
    ($version:literal, $name:literal, $file:literal) => {
        Migration {
            version: $version,
            name: $name,
            sql: include_str!(concat!("../migrations/", $file)),
        }
    };
}

/// Every migration, in order. Versions and names are what existing databases
/// recorded: never renumber or rename one.
pub(crate) static MIGRATIONS: &[Migration] = &[
    migration!(1, "api_tokens", "0001_api_tokens.sql"),
    migration!(2, "invites", "0002_invites.sql"),
    migration!(3, "webhooks_jobs", "0003_webhooks_jobs.sql"),
    migration!(4, "mfa", "0004_mfa.sql"),
    migration!(5, "audit_aggregates", "0005_audit_aggregates.sql"),
    migration!(6, "sessions", "0006_sessions.sql"),
    migration!(7, "audit_channel", "0007_audit_channel.sql"),
    migration!(8, "clients", "0008_clients.sql"),
    migration!(9, "ws_tickets", "0009_ws_tickets.sql"),
    migration!(10, "user_links", "0010_user_links.sql"),
    migration!(11, "invalidations", "0011_invalidations.sql"),
    migration!(12, "outbox_sequence", "0012_outbox_sequence.sql"),
    migration!(13, "token_controls", "0013_token_controls.sql"),
    migration!(14, "session_devices", "0014_session_devices.sql"),
];

/// What to migrate and how to serialise concurrent runs, as data.
#[derive(Debug, Clone, Copy)]
pub(crate) struct MigrationPlan {
    pub migrations: &'static [Migration],
    /// Run first inside the migration transaction (e.g. an advisory lock), so
    /// that concurrent runs apply each migration once.
    pub lock: Option<&'static str>,
    /// What `{serial_key}` stands for in a migration: this backend's
    /// auto-incrementing primary key column type.
    pub serial_key: &'static str,
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

/// The statements of a migration file: comment lines dropped, split on `;`
/// at line ends, `{serial_key}` filled in. (Our migrations never put `;`
/// inside a literal.)
fn statements(sql: &str, serial_key: &str) -> Vec<String> {
    let without_comments: String = sql
        .lines()
        .filter(|l| !l.trim_start().starts_with("--"))
        .collect::<Vec<_>>()
        .join("\n")
        .replace("{serial_key}", serial_key);
    without_comments
        .split(";\n")
        .map(|s| s.trim().trim_end_matches(';').trim().to_string())
        .filter(|s| !s.is_empty())
        .collect()
}

pub(crate) async fn status(
    pool: &AnyPool,
    plan: &MigrationPlan,
) -> Result<SchemaStatus, StoreError> {
    sqlx::query(CREATE_TABLE).execute(pool).await?;
    let applied: Vec<i64> = sqlx::query_scalar(APPLIED).fetch_all(pool).await?;
    let pending = plan
        .migrations
        .iter()
        .map(|m| m.version)
        .filter(|v| !applied.contains(v))
        .collect();
    Ok(SchemaStatus { applied, pending })
}

/// Applies the pending migrations of `plan` in one write transaction, which
/// `begin` opens after the bookkeeping table exists.
pub(crate) async fn apply(
    pool: &AnyPool,
    plan: &MigrationPlan,
    begin: impl Future<Output = Result<Transaction<'static, Any>, StoreError>>,
) -> Result<Vec<i64>, StoreError> {
    sqlx::query(CREATE_TABLE).execute(pool).await?;
    let mut tx = begin.await?;
    if let Some(lock) = plan.lock {
        sqlx::query(lock).execute(&mut *tx).await?;
    }
    let applied: Vec<i64> = sqlx::query_scalar(APPLIED).fetch_all(&mut *tx).await?;
    let mut done = Vec::new();
    for m in plan.migrations {
        if applied.contains(&m.version) {
            continue;
        }
        tracing::info!(version = m.version, name = m.name, "applying migration");
        for stmt in statements(m.sql, plan.serial_key) {
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
