//! Sessions, their refresh-token families, login throttling counters, login
//! challenges and JWT signing keys. Reads are the [`SessionRepository`]
//! trait; every change is a [`crate::WriteTx`] method so that a login, a
//! refresh or a reuse detection is one transaction with its audit row and
//! its events.

mod challenges;
mod devices;
mod refresh;
mod signing_keys;
mod sql;
mod throttle;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use tessera_core::session::{RefreshToken, Session};

use crate::{error::StoreError, page::Page};

pub use challenges::LoginChallenge;
pub use devices::PresentedDevice;
pub use refresh::Succession as RefreshSuccession;
pub use signing_keys::StoredSigningKey;
pub use throttle::{AttemptKey, ThrottleRule};

/// Filters for listing sessions (newest first).
#[derive(Debug, Clone, Default)]
pub struct SessionQuery {
    pub subject: Option<String>,
    pub user_id: Option<String>,
    /// Only sessions live at this instant.
    pub active_at: Option<DateTime<Utc>>,
    pub cursor: Option<String>,
    pub limit: u32,
}

#[async_trait]
pub trait SessionRepository: Send + Sync {
    async fn get_session(&self, id: &str) -> Result<Option<Session>, StoreError>;

    async fn list_sessions(&self, query: &SessionQuery) -> Result<Page<Session>, StoreError>;

    /// The session a refresh token belongs to (logout by refresh token).
    async fn refresh_token_session(
        &self,
        hash: &tessera_core::token_format::TokenHash,
    ) -> Result<Option<String>, StoreError>;

    /// The subject (the user, or an application's subject) of the live
    /// session a live, unused refresh token belongs to: the per-user refresh
    /// rate, counted before the rotation's transaction. A used, revoked or
    /// expired token names nobody, so replaying an old one cannot use up
    /// its owner's rate.
    async fn refresh_token_subject(
        &self,
        hash: &tessera_core::token_format::TokenHash,
        now: DateTime<Utc>,
    ) -> Result<Option<String>, StoreError>;

    /// A refresh token by the hash of its raw value, with its immediate
    /// successor when it has one (introspection).
    async fn refresh_token_with_successor(
        &self,
        hash: &tessera_core::token_format::TokenHash,
    ) -> Result<Option<(RefreshToken, Option<RefreshToken>)>, StoreError>;

    /// Every signing key, oldest first (few: one per rotation).
    async fn signing_keys(&self) -> Result<Vec<StoredSigningKey>, StoreError>;
}
