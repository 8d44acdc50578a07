//! The managed registry of OAuth2 clients: the read side as a trait, the
//! changes as [`crate::WriteTx`] methods (each change of a client commits
//! with its audit row and outbox event), next to the SQL (`sql`).

mod sql;

use async_trait::async_trait;
use tessera_core::client_registry::RegisteredClient;

use crate::{error::StoreError, page::Page};

/// Listing clients, newest first.
#[derive(Debug, Clone, Default)]
pub struct ClientQuery {
    pub include_deleted: bool,
    pub cursor: Option<String>,
    pub limit: u32,
}

#[async_trait]
pub trait ClientRepository: Send + Sync {
    /// A client by id, deleted or not.
    async fn get_client(&self, id: &str) -> Result<Option<RegisteredClient>, StoreError>;

    async fn list_clients(&self, query: &ClientQuery)
        -> Result<Page<RegisteredClient>, StoreError>;
}
