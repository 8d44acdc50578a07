//! Tessera's storage interface and its SQLite and PostgreSQL backends.
//!
//! This file is the index: each repository trait lives next to its SQL
//! implementation (`tokens/`, `invites/`, `webhooks/`, `mfa/`, `audit/`,
//! `events.rs`, `jobs.rs`, `schema.rs`) and is re-exported here, so callers
//! keep using `tessera_store::X`. Callers see the traits and domain types
//! only.
//!
//! What is deliberately kept:
//! - One body of portable SQL, run through sqlx's `Any` driver on both
//!   backends; what genuinely differs between them (how a write transaction
//!   starts, row locks, how migrations are serialised, connection set-up) is
//!   data in a `sql::Dialect` (`sqlite.rs`, `postgres.rs`), so no query
//!   carries an `if postgres` branch.
//! - One migration tree (`migrations/`), one list (`migrate.rs`).
//! - Audit and outbox rows are written inside the transaction of the change
//!   they describe, so they commit (or roll back) with it; so is the
//!   invalidation row of every change that ends or alters a credential.
//! - Every storage test runs on both backends (`backend_tests!`).

mod audit;
mod backend;
mod clients;
pub mod error;
mod events;
mod invalidations;
mod invites;
mod jobs;
mod links;
pub mod mfa;
mod migrate;
mod page;
mod postgres;
mod schema;
pub mod sessions;
mod sql;
mod sqlite;
mod tokens;
pub mod users;
mod webhooks;
mod ws_tickets;

use std::sync::Arc;

pub use audit::{
    AuditAggregate, AuditLog, AuditQuery, AuditRecord, EventPayload, Outbox, StoredEvent,
};
pub use backend::Backend;
pub use clients::{ClientQuery, ClientRepository};
pub use error::StoreError;
pub use events::{EventFeed, FeedEvent};
pub use invalidations::{
    Invalidation, InvalidationFeed, InvalidationKind, InvalidationListener, InvalidationLog,
};
pub use invites::{
    InviteQuery, InviteQuota, InviteRepository, InviteUsageRecord, NewInvite, Redemption,
};
pub use jobs::{JobLease, JobRepository, JobRun, JobSummary};
pub use links::UserLinkRepository;
pub use mfa::{AuthCodeRepository, MfaMaintenance, RecoveryCodeRepository, TotpRepository};
pub use migrate::SchemaStatus;
pub use page::Page;
pub use schema::SchemaAdmin;
pub use sessions::{
    AttemptKey, LoginChallenge, PresentedDevice, RefreshSuccession, SessionQuery,
    SessionRepository, StoredSigningKey, ThrottleRule,
};
pub use sql::write_tx::{BeginWrite, WriteTx};
pub use tokens::{
    CreditSpend, DeviceBind, NewToken, SecretChange, SecretMatch, Succession, TokenChange,
    TokenQuery, TokenRepository, TokenUsage, UsageUpdate,
};
pub use users::{SecondFactorsErased, UserQuery, UserRepository};
pub use webhooks::{
    AttemptRecord, AttemptResult, DeliveryQuery, DueDelivery, EndpointSecrets, NewEndpoint,
    SecretRotation, WebhookRepository,
};
pub use ws_tickets::WsTicketRepository;

/// Opens a store. The URL decides the backend; nothing is migrated here.
pub async fn connect(url: &str) -> Result<Arc<dyn Store>, StoreError> {
    let store = match Backend::of_url(url) {
        Some(Backend::Sqlite) => sqlite::connect(url).await?,
        Some(Backend::Postgres) => postgres::connect(url).await?,
        None => return Err(StoreError::BadUrl),
    };
    Ok(Arc::new(store))
}

/// Declares `Store` as the sum of the listed traits, with the blanket impl,
/// from one list.
macro_rules! store_of {
    ($($repository:ident),+ $(,)?) => {
        /// Everything the service needs from storage.
        pub trait Store: $($repository +)+ {}
        impl<T> Store for T where T: $($repository +)+ {}
    };
}

store_of!(
    BeginWrite,
    TokenRepository,
    TokenUsage,
    InviteRepository,
    TotpRepository,
    RecoveryCodeRepository,
    AuthCodeRepository,
    MfaMaintenance,
    WebhookRepository,
    JobRepository,
    UserRepository,
    SessionRepository,
    ClientRepository,
    AuditLog,
    Outbox,
    EventFeed,
    SchemaAdmin,
    WsTicketRepository,
    UserLinkRepository,
    InvalidationLog,
);
