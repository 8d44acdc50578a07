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
mod error;
mod login;
mod metrics;
mod ops;
mod record;
mod redis_tier;
mod token;
mod users;

pub use builder::{BuildError, TokenCacheBuilder};
pub use cache::TokenCache;
pub use config::{
    CacheSettings, ConfigError, Upstream, UpstreamConfig, UpstreamKind, UpstreamsConfig,
};
pub use error::{CallError, Unauthorized, UpstreamError};
pub use login::{LoginError, LoginOutcome};
pub use ops::{
    ClearOutcome, DeleteOutcome, HealthReport, RedisHealth, RedisState, TokenInfo, UpstreamHealth,
    UpstreamSummary,
};
pub use record::KEYRING_PURPOSE;
pub use redis_tier::BreakerState;
pub use token::{Tier, Token};
pub use users::UserPolicy;
