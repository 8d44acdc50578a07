//! The production backend: PostgreSQL, where many replicas share one database.

use sqlx::any::{install_default_drivers, AnyPoolOptions};

use crate::{
    error::StoreError,
    sql::{Dialect, SqlStore},
};

pub(crate) async fn connect(url: &str) -> Result<SqlStore, StoreError> {
    install_default_drivers();
    let pool = AnyPoolOptions::new()
        .max_connections(16)
        .min_connections(0)
        // Fail fast when the database is down: a request gets a 503 in
        // seconds instead of hanging, and the pool reconnects when it returns.
        .acquire_timeout(std::time::Duration::from_secs(3))
        .connect_lazy(url)?;
    Ok(SqlStore {
        pool,
        dialect: &Dialect::POSTGRES,
        writers: None,
    })
}
