//! Building a cache: the builder (which checks Redis once and refuses to
//! store tokens unencrypted unless asked to) and the background task that
//! watches Redis and prunes memory.

use std::{
    collections::{BTreeMap, HashMap},
    sync::{Arc, Mutex, RwLock, Weak},
    time::Duration,
};

use tessera_core::crypto::Keyring;

use crate::{
    cache::{Inner, TokenCache, UpstreamState},
    config::{CacheSettings, Upstream},
    metrics::Metrics,
    record::Sealing,
    redis_tier::RedisTier,
};

#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    #[error("upstream {0:?} is configured twice")]
    DuplicateUpstream(String),
    // The URL is not echoed: it may hold the Redis password.
    #[error("the Redis URL is invalid ({0})")]
    InvalidRedisUrl(String),
    #[error("tokens are encrypted in Redis by default: give a keyring, or choose store_tokens_in_clear()")]
    NoKeyring,
    #[error("invalid setting: {0}")]
    InvalidSettings(&'static str),
    #[error("cannot build the HTTP client")]
    Http,
}

pub struct TokenCacheBuilder {
    upstreams: Vec<Upstream>,
    settings: CacheSettings,
    redis_url: Option<String>,
    sealing: Option<Sealing>,
}

impl TokenCache {
    pub fn builder(upstreams: Vec<Upstream>) -> TokenCacheBuilder {
        TokenCacheBuilder {
            upstreams,
            settings: CacheSettings::default(),
            redis_url: None,
            sealing: None,
        }
    }
}

impl TokenCacheBuilder {
    pub fn settings(mut self, settings: CacheSettings) -> Self {
        self.settings = settings;
        self
    }

    /// `redis://[:password@]host:port/db` or `rediss://` (TLS). `None` or an
    /// empty string: no Redis (memory and logins only).
    pub fn redis_url(mut self, url: Option<String>) -> Self {
        self.redis_url = url.filter(|u| !u.trim().is_empty());
        self
    }

    /// Encrypt tokens in Redis with this keyring (derive it with [`crate::KEYRING_PURPOSE`]).
    pub fn keyring(mut self, keyring: Keyring) -> Self {
        self.sealing = Some(Sealing::Keyring(keyring));
        self
    }

    /// Store tokens in clear in Redis, for readers of the old Python format.
    pub fn store_tokens_in_clear(mut self) -> Self {
        self.sealing = Some(Sealing::Clear);
        self
    }

    /// Builds the cache, checks Redis once (a failure only degrades it) and
    /// starts the background health task. Needs a Tokio runtime.
    pub async fn build(self) -> Result<TokenCache, BuildError> {
        let s = &self.settings;
        if !(0.0..1.0).contains(&s.early_refresh) {
            return Err(BuildError::InvalidSettings(
                "early_refresh must be in [0, 1)",
            ));
        }
        if s.redis_timeout.is_zero()
            || s.redis_breaker.is_zero()
            || s.health_interval.is_zero()
            || s.login_timeout.is_zero()
        {
            return Err(BuildError::InvalidSettings(
                "timeouts and intervals must be positive",
            ));
        }
        let metrics = Arc::new(Metrics::new(self.upstreams.iter().map(|u| u.name.as_str())));
        let mut upstreams = BTreeMap::new();
        let mut memory = HashMap::new();
        for u in self.upstreams {
            memory.insert(u.name.clone(), HashMap::new());
            let name = u.name.clone();
            let state = UpstreamState {
                upstream: u,
                last_login: Mutex::new(None),
            };
            if upstreams.insert(name.clone(), state).is_some() {
                return Err(BuildError::DuplicateUpstream(name));
            }
        }
        let (redis, sealing) = match &self.redis_url {
            None => (None, self.sealing.unwrap_or(Sealing::Clear)),
            Some(url) => {
                let tier = RedisTier::new(url, s.redis_timeout, s.redis_breaker, metrics.clone())
                    .map_err(|e| BuildError::InvalidRedisUrl(e.category().to_string()))?;
                (
                    Some(Arc::new(tier)),
                    self.sealing.ok_or(BuildError::NoKeyring)?,
                )
            }
        };
        let http = reqwest::Client::builder()
            .timeout(s.login_timeout)
            .connect_timeout(s.login_timeout.min(Duration::from_secs(5)))
            .build()
            .map_err(|_| BuildError::Http)?;
        let inner = Arc::new(Inner {
            upstreams,
            memory: RwLock::new(memory),
            flights: Mutex::default(),
            redis,
            sealing,
            http,
            metrics,
            settings: self.settings,
        });
        if let Some(r) = &inner.redis {
            r.health_check().await;
        }
        tokio::spawn(background(Arc::downgrade(&inner)));
        Ok(TokenCache { inner })
    }
}

/// Health check and memory pruning. Holds only a `Weak`: it ends once the
/// last `TokenCache` clone is dropped.
async fn background(inner: Weak<Inner>) {
    let Some(period) = inner.upgrade().map(|i| i.settings.health_interval) else {
        return;
    };
    let mut tick = tokio::time::interval(period);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    tick.tick().await; // the first tick is immediate; build() just checked
    loop {
        tick.tick().await;
        let Some(inner) = inner.upgrade() else { return };
        if let Some(r) = &inner.redis {
            r.health_check().await;
        }
        inner.prune();
    }
}
