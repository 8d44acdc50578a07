//! Test support: a fresh, migrated database per test on either backend, so
//! one suite runs against both and tests can run in parallel.
//!
//! A dev-only crate (`tessera-test-support`), so the production store crate
//! carries neither this module nor `tempfile`. `backend_tests!` is kept as
//! it was: every storage test runs on SQLite and on PostgreSQL.
//!
//! PostgreSQL: `TESSERA_TEST_POSTGRES_URL` if set (then an unreachable server
//! is a failure, as in CI); otherwise the local default, and a test is skipped
//! with a printed reason when it cannot connect. Each test gets its own schema.

use std::sync::Arc;

use sqlx::{Connection, Executor};

use tessera_store::{connect, Store};

pub const POSTGRES_ENV: &str = "TESSERA_TEST_POSTGRES_URL";
const LOCAL_POSTGRES: &str = "postgres://postgres@127.0.0.1:5432/test";

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

    /// A new schema on the test PostgreSQL, or `None` (after printing why)
    /// when no server is configured and the local one is unreachable.
    pub async fn postgres() -> Option<Self> {
        let url = postgres_schema_url().await?;
        let store = connect(&url).await.expect("open postgres");
        store.migrate().await.expect("migrate postgres");
        Some(Self {
            store,
            url,
            _dir: None,
        })
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

/// The base URL of the test server, or `None` when tests should skip.
pub async fn postgres_base_url() -> Option<String> {
    match std::env::var(POSTGRES_ENV) {
        Ok(url) => {
            if let Err(e) = sqlx::PgConnection::connect(&url).await {
                panic!("{POSTGRES_ENV} is set but PostgreSQL is unreachable: {e}");
            }
            Some(url)
        }
        Err(_) => match sqlx::PgConnection::connect(LOCAL_POSTGRES).await {
            Ok(_) => Some(LOCAL_POSTGRES.to_string()),
            Err(e) => {
                eprintln!("skipping PostgreSQL test: {POSTGRES_ENV} unset and {LOCAL_POSTGRES} unreachable ({e})");
                None
            }
        },
    }
}

/// Creates a fresh schema and returns a URL whose connections use it.
pub async fn postgres_schema_url() -> Option<String> {
    let base = postgres_base_url().await?;
    let schema = format!("tessera_t_{}", uuid_like());
    let mut conn = sqlx::PgConnection::connect(&base)
        .await
        .expect("connect postgres");
    conn.execute(format!("CREATE SCHEMA {schema}").as_str())
        .await
        .expect("create schema");
    let sep = if base.contains('?') { '&' } else { '?' };
    Some(format!("{base}{sep}options=-c%20search_path%3D{schema}"))
}

fn uuid_like() -> String {
    tessera_core::ids::new_id().replace('-', "")
}

/// Generates one `#[tokio::test]` per backend for each listed async test
/// function `async fn name(db: TestDb)`.
#[macro_export]
macro_rules! backend_tests {
    ($($name:ident),* $(,)?) => {
        mod on_sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name($crate::TestDb::sqlite().await).await;
                }
            )*
        }
        mod on_postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    if let Some(db) = $crate::TestDb::postgres().await {
                        super::$name(db).await;
                    }
                }
            )*
        }
    };
}
