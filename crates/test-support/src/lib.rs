//! Test support: a fresh, migrated database per test on either backend, so
//! one suite runs against both and tests can run in parallel.
//!
//! A dev-only crate (`tessera-test-support`), so the production store crate
//! carries neither this module nor `tempfile`. `backend_tests!` runs every
//! storage test on SQLite and on PostgreSQL; [`harness`] runs the tests and
//! says which could not run for want of a service, and why.
//!
//! PostgreSQL: `TESSERA_TEST_POSTGRES_URL` if set, otherwise the local
//! default (see [`probe::local_postgres`]); the harness probes it once and
//! creates its database when missing. Each test gets its own schema.

pub mod harness;
mod macros;
pub mod probe;
mod recap;
pub mod timing;

use std::sync::Arc;

use sqlx::{Connection, Executor};

use tessera_store::{connect, Store};

pub use probe::{POSTGRES_ENV, REDIS_ENV};

/// A migrated test database. Keep it alive for the test's duration.
pub struct TestDb {
    pub store: Arc<dyn Store>,
    /// The URL the store was opened with (a server under test can reuse it).
    pub url: String,
    _dir: Option<tempfile::TempDir>,
}

impl TestDb {
    /// A new SQLite file in a temporary directory.
    pub async fn sqlite() -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let url = format!("sqlite://{}/test.db", dir.path().display());
        let store = connect(&url).await.expect("open sqlite");
        store.migrate().await.expect("migrate sqlite");
        Self {
            store,
            url,
            _dir: Some(dir),
        }
    }

    /// A store on an existing, already migrated database (e.g. through a proxy).
    pub async fn open(url: &str) -> Self {
        Self {
            store: connect(url).await.expect("open database"),
            url: url.to_string(),
            _dir: None,
        }
    }

    /// A new schema on the test PostgreSQL. The test must declare
    /// [`harness::Need::Postgres`], so it runs only when the server is there.
    pub async fn postgres() -> Self {
        let url = postgres_schema_url().await;
        let store = connect(&url).await.expect("open postgres");
        store.migrate().await.expect("migrate postgres");
        Self {
            store,
            url,
            _dir: None,
        }
    }
}

impl TestDb {
    /// Everything the database holds, as text, for tests that prove a secret
    /// was never stored: the raw SQLite files, or every row of every table in
    /// the test's PostgreSQL schema.
    pub async fn all_text(&self) -> String {
        if let Some(path) = self.url.strip_prefix("sqlite://") {
            let mut text = String::new();
            for suffix in ["", "-wal"] {
                if let Ok(bytes) = std::fs::read(format!("{path}{suffix}")) {
                    text.push_str(&String::from_utf8_lossy(&bytes));
                }
            }
            return text;
        }
        let mut conn = sqlx::PgConnection::connect(&self.url)
            .await
            .expect("connect postgres");
        let tables: Vec<String> = sqlx::query_scalar(
            "SELECT table_name::text FROM information_schema.tables WHERE table_schema = current_schema()",
        )
        .fetch_all(&mut conn)
        .await
        .expect("list tables");
        let mut text = String::new();
        for table in tables {
            let rows: Vec<String> = sqlx::query_scalar(&format!("SELECT t::text FROM {table} t"))
                .fetch_all(&mut conn)
                .await
                .expect("dump table");
            text.extend(rows);
        }
        text
    }
}

/// The base URL of the test PostgreSQL, its database created. Panics with
/// the reason when it is unreachable: a test that calls this declares
/// [`harness::Need::Postgres`], so the harness has skipped it (or, in CI,
/// failed it) already when the server is missing.
pub async fn postgres_base_url() -> String {
    probe::postgres()
        .await
        .unwrap_or_else(|m| panic!("{}", m.reason))
}

/// Creates a fresh schema and returns a URL whose connections use it.
pub async fn postgres_schema_url() -> String {
    let base = postgres_base_url().await;
    let schema = format!("tessera_t_{}", uuid_like());
    let mut conn = sqlx::PgConnection::connect(&base)
        .await
        .expect("connect postgres");
    conn.execute(format!("CREATE SCHEMA {schema}").as_str())
        .await
        .expect("create schema");
    let sep = if base.contains('?') { '&' } else { '?' };
    format!("{base}{sep}options=-c%20search_path%3D{schema}")
}

/// The test Redis's URL. Panics with the reason when it is unreachable: a
/// test that calls this declares [`harness::Need::Redis`].
pub async fn redis_url() -> String {
    probe::redis()
        .await
        .unwrap_or_else(|m| panic!("{}", m.reason))
}

fn uuid_like() -> String {
    tessera_core::ids::new_id().replace('-', "")
}
