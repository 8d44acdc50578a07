//! The upstream token cache: services that call third-party APIs get a valid
//! token from memory, then Redis, then a login, instead of logging in before
//! every request. Usable on its own; Tessera's server and CLI embed it.
//!
//! ```no_run
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! use tessera_upstream::{TokenCache, UpstreamsConfig};
//! let config = UpstreamsConfig::from_toml_str(&std::fs::read_to_string("tessera.toml")?)?;
//! let cache = TokenCache::builder(config.resolve()?)
//!     .redis_url(std::env::var("REDIS_URI").ok())
//!     .store_tokens_in_clear() // or .keyring(...) to encrypt them in Redis
//!     .build()
//!     .await?;
//! let token = cache.get_token("cpj", "api").await?;
//! println!("valid until {}", token.expires_at);
//! # Ok(()) }
//! ```

mod builder;
mod cache;
pub mod config;
mod login;
mod metrics;
mod ops;
mod record;
mod redis_tier;

use std::sync::Arc;

use chrono::{DateTime, Utc};
use serde::Serialize;
use tessera_core::SecretString;

pub use builder::{BuildError, TokenCacheBuilder};
pub use cache::TokenCache;
pub use config::{
    CacheSettings, ConfigError, Upstream, UpstreamConfig, UpstreamKind, UpstreamsConfig,
};
pub use login::{LoginError, LoginOutcome};
pub use ops::{
    ClearOutcome, DeleteOutcome, HealthReport, RedisHealth, RedisState, TokenInfo, UpstreamHealth,
    UpstreamSummary,
};
pub use record::KEYRING_PURPOSE;

/// Why a token could not be had. Redis problems never appear here: they
/// degrade the cache to memory + login instead of failing a request.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UpstreamError {
    #[error("no upstream named {0:?} is configured")]
    UnknownUpstream(String),
    #[error("invalid user name: {0}")]
    InvalidUser(&'static str),
    #[error("login to upstream {upstream:?} failed: {source}")]
    Login {
        upstream: String,
        #[source]
        source: LoginError,
    },
}

/// Which tier served a token.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Tier {
    Memory,
    Redis,
    Login,
}

/// A valid upstream token. Cheap to clone (the secret is shared); `Debug`
/// never prints the secret.
#[derive(Clone)]
pub struct Token {
    secret: Arc<SecretString>,
    pub expires_at: DateTime<Utc>,
    pub created_at: DateTime<Utc>,
    pub tier: Tier,
}

impl Token {
    /// The raw token, to put in the upstream request and nowhere else.
    pub fn expose(&self) -> &str {
        self.secret.expose()
    }

    fn same_secret(&self, other: &Token) -> bool {
        Arc::ptr_eq(&self.secret, &other.secret) || self.expose() == other.expose()
    }
}

impl std::fmt::Debug for Token {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Token")
            .field("secret", &"[redacted]")
            .field("expires_at", &self.expires_at)
            .field("created_at", &self.created_at)
            .field("tier", &self.tier)
            .finish()
    }
}

/// An error that may mean "the upstream rejected this token" (HTTP 401), for
/// [`TokenCache::call_with_token`].
pub trait Unauthorized {
    fn is_unauthorized(&self) -> bool;
}

impl Unauthorized for reqwest::Error {
    fn is_unauthorized(&self) -> bool {
        self.status() == Some(reqwest::StatusCode::UNAUTHORIZED)
    }
}

/// The outcome of [`TokenCache::call_with_token`]: no token, or the call's own error.
#[derive(Debug)]
pub enum CallError<E> {
    Token(UpstreamError),
    Call(E),
}

impl<E: std::fmt::Display> std::fmt::Display for CallError<E> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            CallError::Token(e) => e.fmt(f),
            CallError::Call(e) => write!(f, "the upstream call failed: {e}"),
        }
    }
}

impl<E: std::error::Error + 'static> std::error::Error for CallError<E> {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            CallError::Token(e) => Some(e),
            CallError::Call(e) => Some(e),
        }
    }
}
