//! The managed registry: create, list, read, change, delete a client and
//! rotate its secret. Each change is one write transaction with its audit
//! row and outbox event; none of them ever carries a secret or its digest.
//! A committed change replaces this replica's cache entry at once, so a
//! deleted client or a rotated-out secret stops working here immediately.

use serde_json::{json, Value};
use tessera_core::{
    audit::{Actor, AuditEntry, RequestContext},
    client::{parse_capabilities, Capability, ClientSource},
    client_registry::{
        is_registry_client_id, new_client_id, validate_audiences, validate_client_name,
        validate_grace, ClientView, RegisteredClient,
    },
    error::Entity,
    event::OutboxEvent,
    token_controls::parse_ip_list,
    token_format::TokenFormat,
    DomainError, SecretString,
};
use tessera_store::{ClientQuery, Page, WriteTx};

use super::ClientService;
use crate::service::ServiceError;

/// A new client.
#[derive(Debug, Default)]
pub struct CreateClient {
    pub name: String,
    pub capabilities: Vec<String>,
    pub audiences: Option<Vec<String>>,
    /// Networks it may authenticate from (empty or `None`: any).
    pub ip_allow: Option<Vec<String>>,
    /// Networks it may never authenticate from.
    pub ip_deny: Option<Vec<String>>,
}

/// A partial change; `None` leaves a field as it is. `audiences:
/// Some(None)` lets the client see every audience.
#[derive(Debug, Default)]
pub struct UpdateClient {
    pub name: Option<String>,
    pub capabilities: Option<Vec<String>>,
    pub audiences: Option<Option<Vec<String>>>,
    /// Replaces the allow list (`[]`: any address).
    pub ip_allow: Option<Vec<String>>,
    /// Replaces the deny list.
    pub ip_deny: Option<Vec<String>>,
}

/// A client with a secret that was just generated: shown once.
#[derive(Debug)]
pub struct IssuedSecret {
    pub client: RegisteredClient,
    pub secret: SecretString,
}

/// A listing of clients: the environment's first (on the first page only),
/// then the registry's, newest first.
#[derive(Debug)]
pub struct ClientPage {
    pub items: Vec<ClientView>,
    pub next_cursor: Option<String>,
}

fn not_found() -> ServiceError {
    DomainError::NotFound(Entity::Client).into()
}

/// One audit row and one event about a client.
fn record(
    action: &'static str,
    event: &'static str,
    client: &RegisteredClient,
    actor: &Actor,
    ctx: &RequestContext,
    extra: Value,
) -> (AuditEntry, OutboxEvent) {
    let mut details = json!({
        "client_id": client.id,
        "name": client.name,
        "capabilities": client.capabilities,
        "request_id": ctx.request_id,
    });
    if let (Some(map), Value::Object(extra)) = (details.as_object_mut(), extra) {
        map.extend(extra);
    }
    let audit = AuditEntry::success(actor, action, "client", &client.id, details.clone(), ctx);
    (audit, OutboxEvent::client(event, details))
}

/// The view of a client of `INTROSPECTION_CLIENTS`.
fn environment_view(id: &str) -> ClientView {
    ClientView {
        id: id.to_string(),
        name: id.to_string(),
        capabilities: vec![Capability::Introspect, Capability::Revoke],
        audiences: None,
        source: ClientSource::Environment,
        created_at: None,
        updated_at: None,
        previous_secret_expires_at: None,
        ip_allow: Vec::new(),
        ip_deny: Vec::new(),
    }
}

impl ClientService {
    /// The end of every registry change: its audit row and event in the
    /// same transaction (the store writes its invalidation too), the
    /// commit, and this replica's cache updated at once (other processes
    /// follow within a second, from the invalidation log).
    async fn commit_change(
        &self,
        mut tx: WriteTx,
        client: &RegisteredClient,
        (action, event): (&'static str, &'static str),
        actor: &Actor,
        ctx: &RequestContext,
        extra: Value,
    ) -> Result<(), ServiceError> {
        let (audit, event) = record(action, event, client, actor, ctx, extra);
        tx.append_audit(&[audit]).await?;
        tx.append_events(&[event]).await?;
        tx.commit().await?;
        self.cache.changed(client);
        Ok(())
    }

    fn new_secret(&self) -> (SecretString, String) {
        let secret = TokenFormat::client_secret().generate().raw;
        let digest = self.hasher.hash_hex(secret.expose().as_bytes());
        (secret, digest)
    }

    /// Refuses a change to a client of the environment (409), else checks
    /// the id's shape (404 without a query).
    fn registry_id(&self, id: &str) -> Result<(), ServiceError> {
        if self.static_clients.contains_key(id) {
            return Err(DomainError::ClientFromEnvironment.into());
        }
        if !is_registry_client_id(id) {
            return Err(not_found());
        }
        Ok(())
    }

    pub async fn create(
        &self,
        input: CreateClient,
        actor: &Actor,
        ctx: &RequestContext,
    ) -> Result<IssuedSecret, ServiceError> {
        let name = validate_client_name(&input.name)?;
        let capabilities = parse_capabilities(&input.capabilities)?;
        let audiences = validate_audiences(input.audiences)?;
        let ip_allow = parse_ip_list("ip_allow", &input.ip_allow.unwrap_or_default())?;
        let ip_deny = parse_ip_list("ip_deny", &input.ip_deny.unwrap_or_default())?;
        let id = new_client_id();
        if self.static_clients.contains_key(&id) {
            return Err(DomainError::ClientIdTaken.into());
        }
        let (secret, secret_hash) = self.new_secret();
        let now = tessera_core::ids::now();
        let client = RegisteredClient {
            id,
            name,
            secret_hash,
            previous_secret_hash: None,
            previous_secret_expires_at: None,
            capabilities,
            audiences,
            created_at: now,
            updated_at: now,
            deleted_at: None,
            ip_allow,
            ip_deny,
        };
        let mut tx = self.store.begin_write().await?;
        tx.insert_client(&client).await?;
        let extra = json!({ "audiences": client.audiences });
        self.commit_change(
            tx,
            &client,
            ("client.create", "client.created"),
            actor,
            ctx,
            extra,
        )
        .await?;
        tracing::info!(client_id = %client.id, "client created");
        Ok(IssuedSecret { client, secret })
    }

    /// A client by id: a live registry client, or one of the environment.
    pub async fn get(&self, id: &str) -> Result<ClientView, ServiceError> {
        if self.static_clients.contains_key(id) {
            return Ok(environment_view(id));
        }
        Ok(self.get_registered(id).await?.view())
    }

    async fn get_registered(&self, id: &str) -> Result<RegisteredClient, ServiceError> {
        if !is_registry_client_id(id) {
            return Err(not_found());
        }
        self.store
            .get_client(id)
            .await?
            .filter(|c| c.deleted_at.is_none())
            .ok_or_else(not_found)
    }

    pub async fn list(
        &self,
        cursor: Option<String>,
        limit: u32,
    ) -> Result<ClientPage, ServiceError> {
        if cursor.as_deref().is_some_and(|c| !is_registry_client_id(c)) {
            return Err(
                DomainError::invalid_query("cursor", "is not a cursor this API returned").into(),
            );
        }
        let first_page = cursor.is_none();
        let page: Page<RegisteredClient> = self
            .store
            .list_clients(&ClientQuery {
                include_deleted: false,
                cursor,
                limit,
            })
            .await?;
        let mut items: Vec<ClientView> = Vec::new();
        if first_page {
            let mut ids: Vec<&String> = self.static_clients.keys().collect();
            ids.sort();
            items.extend(ids.into_iter().map(|id| environment_view(id)));
        }
        items.extend(page.items.iter().map(RegisteredClient::view));
        Ok(ClientPage {
            items,
            next_cursor: page.next_cursor,
        })
    }

    /// Locks a live registry client, lets `rule` change it and writes it.
    async fn change<F>(
        &self,
        id: &str,
        rule: F,
    ) -> Result<(WriteTx, RegisteredClient), ServiceError>
    where
        F: FnOnce(&mut RegisteredClient),
    {
        self.registry_id(id)?;
        let mut tx = self.store.begin_write().await?;
        let mut client = tx
            .lock_client(id)
            .await?
            .filter(|c| c.deleted_at.is_none())
            .ok_or_else(not_found)?;
        rule(&mut client);
        client.updated_at = tessera_core::ids::now();
        tx.update_client(&client).await?;
        Ok((tx, client))
    }

    pub async fn update(
        &self,
        id: &str,
        input: UpdateClient,
        actor: &Actor,
        ctx: &RequestContext,
    ) -> Result<ClientView, ServiceError> {
        self.registry_id(id)?;
        let name = input
            .name
            .as_deref()
            .map(validate_client_name)
            .transpose()?;
        let capabilities = input
            .capabilities
            .as_deref()
            .map(parse_capabilities)
            .transpose()?;
        let audiences = input.audiences.map(validate_audiences).transpose()?;
        let ip_allow = input
            .ip_allow
            .map(|l| parse_ip_list("ip_allow", &l))
            .transpose()?;
        let ip_deny = input
            .ip_deny
            .map(|l| parse_ip_list("ip_deny", &l))
            .transpose()?;
        let mut changed: Vec<&'static str> = Vec::new();
        let (tx, client) = self
            .change(id, |c| {
                if let Some(n) = name.filter(|n| *n != c.name) {
                    c.name = n;
                    changed.push("name");
                }
                if let Some(caps) = capabilities.filter(|caps| *caps != c.capabilities) {
                    c.capabilities = caps;
                    changed.push("capabilities");
                }
                if let Some(a) = audiences.filter(|a| *a != c.audiences) {
                    c.audiences = a;
                    changed.push("audiences");
                }
                if let Some(l) = ip_allow.filter(|l| *l != c.ip_allow) {
                    c.ip_allow = l;
                    changed.push("ip_allow");
                }
                if let Some(l) = ip_deny.filter(|l| *l != c.ip_deny) {
                    c.ip_deny = l;
                    changed.push("ip_deny");
                }
            })
            .await?;
        if changed.is_empty() {
            // Nothing to record; the lock and the touched `updated_at` roll back.
            drop(tx);
            return Ok(self.get_registered(id).await?.view());
        }
        let extra = json!({ "changed": changed, "audiences": client.audiences });
        self.commit_change(
            tx,
            &client,
            ("client.update", "client.updated"),
            actor,
            ctx,
            extra,
        )
        .await?;
        Ok(client.view())
    }

    /// Soft-deletes the client: it stops authenticating on this replica at
    /// once, on the others within a second.
    pub async fn delete(
        &self,
        id: &str,
        actor: &Actor,
        ctx: &RequestContext,
    ) -> Result<(), ServiceError> {
        let now = tessera_core::ids::now();
        let (tx, client) = self
            .change(id, |c| {
                c.deleted_at = Some(now);
                c.previous_secret_hash = None;
                c.previous_secret_expires_at = None;
            })
            .await?;
        self.commit_change(
            tx,
            &client,
            ("client.delete", "client.deleted"),
            actor,
            ctx,
            json!({}),
        )
        .await?;
        tracing::info!(client_id = %client.id, "client deleted");
        Ok(())
    }

    /// A new secret; the current one keeps working for `grace_seconds`
    /// (0-604800, default 0). A secret still in an earlier grace is dropped.
    pub async fn rotate_secret(
        &self,
        id: &str,
        grace_seconds: Option<i64>,
        actor: &Actor,
        ctx: &RequestContext,
    ) -> Result<IssuedSecret, ServiceError> {
        self.registry_id(id)?;
        let grace = validate_grace(grace_seconds)?;
        let (secret, digest) = self.new_secret();
        let now = tessera_core::ids::now();
        let (tx, client) = self
            .change(id, |c| {
                let old = std::mem::replace(&mut c.secret_hash, digest);
                (c.previous_secret_hash, c.previous_secret_expires_at) = if grace > 0 {
                    (Some(old), Some(now + chrono::Duration::seconds(grace)))
                } else {
                    (None, None)
                };
            })
            .await?;
        let extra = json!({
            "grace_seconds": grace,
            "previous_secret_expires_at": client.previous_secret_expires_at,
        });
        self.commit_change(
            tx,
            &client,
            ("client.rotate_secret", "client.secret_rotated"),
            actor,
            ctx,
            extra,
        )
        .await?;
        tracing::info!(client_id = %client.id, grace_seconds = grace, "client secret rotated");
        Ok(IssuedSecret { client, secret })
    }
}
