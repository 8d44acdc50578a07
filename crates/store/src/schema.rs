//! Schema management and health: migrations (run by [`crate::migrate`] from
//! one list, with backend differences as data) and a readiness ping.

use async_trait::async_trait;

use crate::{
    backend::Backend,
    error::StoreError,
    migrate::{self, SchemaStatus},
    sql::SqlStore,
};

/// Schema management and health.
#[async_trait]
pub trait SchemaAdmin: Send + Sync {
    fn backend(&self) -> Backend;
    /// Applies pending migrations; returns the versions applied.
    async fn migrate(&self) -> Result<Vec<i64>, StoreError>;
    async fn schema_status(&self) -> Result<SchemaStatus, StoreError>;
    /// A cheap round trip, for readiness checks.
    async fn ping(&self) -> Result<(), StoreError>;
    async fn close(&self);
}

#[async_trait]
impl SchemaAdmin for SqlStore {
    fn backend(&self) -> Backend {
        self.dialect.backend
    }

    async fn migrate(&self) -> Result<Vec<i64>, StoreError> {
        let begin = async { Ok(self.begin_write().await?.into_transaction()) };
        migrate::apply(&self.pool, &migration_plan(self), begin).await
    }

    async fn schema_status(&self) -> Result<SchemaStatus, StoreError> {
        migrate::status(&self.pool, &migration_plan(self)).await
    }

    async fn ping(&self) -> Result<(), StoreError> {
        sqlx::query("SELECT 1").execute(&self.pool).await?;
        Ok(())
    }

    async fn close(&self) {
        self.pool.close().await;
    }
}

/// The one list of migrations, with this backend's lock statement and serial key.
fn migration_plan(store: &SqlStore) -> migrate::MigrationPlan {
    migrate::MigrationPlan {
        migrations: migrate::MIGRATIONS,
        lock: store.dialect.migration_lock,
        serial_key: store.dialect.serial_key,
    }
}
