//! Client registry queries: one row type, reads, and the locked
//! read-modify-write.

use async_trait::async_trait;
use tessera_core::{client::Capability, client_registry::RegisteredClient};

use super::{ClientQuery, ClientRepository};
use crate::{
    error::StoreError,
    invalidations::InvalidationKind,
    page::Page,
    sql::{
        from_json, from_millis, from_opt_millis, get_by_id, json_text, listing::Listing, lock_row,
        opt_millis, to_millis, write_tx::WriteTx, SqlStore, TableRow,
    },
};

#[derive(sqlx::FromRow)]
pub(crate) struct ClientRow {
    id: String,
    name: String,
    secret_hash: String,
    previous_secret_hash: Option<String>,
    previous_secret_expires_at: Option<i64>,
    capabilities: String,
    audiences: Option<String>,
    created_at: i64,
    updated_at: i64,
    deleted_at: Option<i64>,
    ip_allow: String,
    ip_deny: String,
}

impl TableRow for ClientRow {
    type Domain = RegisteredClient;
    const TABLE: &'static str = "clients";
    const COLUMNS: &'static str = "t.id, t.name, t.secret_hash, t.previous_secret_hash, \
        t.previous_secret_expires_at, t.capabilities, t.audiences, t.created_at, t.updated_at, \
        t.deleted_at, t.ip_allow, t.ip_deny";
}

impl TryFrom<ClientRow> for RegisteredClient {
    type Error = StoreError;

    fn try_from(r: ClientRow) -> Result<Self, StoreError> {
        let names: Vec<String> = from_json(&r.capabilities, "clients.capabilities")?;
        let capabilities = names
            .iter()
            .map(|n| Capability::parse(n))
            .collect::<Option<Vec<_>>>()
            .ok_or_else(|| StoreError::Corrupt("clients.capabilities".into()))?;
        Ok(RegisteredClient {
            id: r.id,
            name: r.name,
            secret_hash: r.secret_hash,
            previous_secret_hash: r.previous_secret_hash,
            previous_secret_expires_at: from_opt_millis(r.previous_secret_expires_at)?,
            capabilities,
            audiences: r
                .audiences
                .as_deref()
                .map(|a| from_json(a, "clients.audiences"))
                .transpose()?,
            created_at: from_millis(r.created_at)?,
            updated_at: from_millis(r.updated_at)?,
            deleted_at: from_opt_millis(r.deleted_at)?,
            ip_allow: from_json(&r.ip_allow, "clients.ip_allow")?,
            ip_deny: from_json(&r.ip_deny, "clients.ip_deny")?,
        })
    }
}

fn capability_names(c: &RegisteredClient) -> String {
    let names: Vec<&str> = c.capabilities.iter().map(|c| c.as_str()).collect();
    json_text(&names)
}

#[async_trait]
impl ClientRepository for SqlStore {
    async fn get_client(&self, id: &str) -> Result<Option<RegisteredClient>, StoreError> {
        get_by_id::<ClientRow>(&self.pool, id).await
    }

    async fn list_clients(&self, q: &ClientQuery) -> Result<Page<RegisteredClient>, StoreError> {
        let mut listing = Listing::<ClientRow>::new(0);
        if !q.include_deleted {
            listing.condition("t.deleted_at IS NULL");
        }
        listing
            .fetch(&self.pool, q.cursor.as_deref(), q.limit, |c| &c.id)
            .await
    }
}

/// Client changes inside a [`WriteTx`].
impl WriteTx {
    pub async fn insert_client(&mut self, c: &RegisteredClient) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO clients (id, name, secret_hash, previous_secret_hash, \
             previous_secret_expires_at, capabilities, audiences, created_at, updated_at, \
             deleted_at, ip_allow, ip_deny) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)",
        )
        .bind(&c.id)
        .bind(&c.name)
        .bind(&c.secret_hash)
        .bind(&c.previous_secret_hash)
        .bind(opt_millis(c.previous_secret_expires_at))
        .bind(capability_names(c))
        .bind(c.audiences.as_ref().map(json_text))
        .bind(to_millis(c.created_at))
        .bind(to_millis(c.updated_at))
        .bind(opt_millis(c.deleted_at))
        .bind(json_text(&c.ip_allow))
        .bind(json_text(&c.ip_deny))
        .execute(&mut **self)
        .await?;
        // A replica may have cached "no such client" for this id.
        self.invalidate(InvalidationKind::Client, &c.id).await
    }

    /// Locks the client for the rest of the transaction and reads it.
    pub async fn lock_client(&mut self, id: &str) -> Result<Option<RegisteredClient>, StoreError> {
        lock_row::<ClientRow>(self, id).await
    }

    /// Writes every mutable field of a (locked) client, with its
    /// invalidation.
    pub async fn update_client(&mut self, c: &RegisteredClient) -> Result<(), StoreError> {
        sqlx::query(
            "UPDATE clients SET name = $2, secret_hash = $3, previous_secret_hash = $4, \
             previous_secret_expires_at = $5, capabilities = $6, audiences = $7, \
             updated_at = $8, deleted_at = $9, ip_allow = $10, ip_deny = $11 WHERE id = $1",
        )
        .bind(&c.id)
        .bind(&c.name)
        .bind(&c.secret_hash)
        .bind(&c.previous_secret_hash)
        .bind(opt_millis(c.previous_secret_expires_at))
        .bind(capability_names(c))
        .bind(c.audiences.as_ref().map(json_text))
        .bind(to_millis(c.updated_at))
        .bind(opt_millis(c.deleted_at))
        .bind(json_text(&c.ip_allow))
        .bind(json_text(&c.ip_deny))
        .execute(&mut **self)
        .await?;
        self.invalidate(InvalidationKind::Client, &c.id).await
    }
}
