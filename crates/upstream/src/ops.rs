//! Operations for an HTTP or CLI layer: inspect, delete and clear cached
//! tokens, health, the upstream list and metrics. Every result is a plain
//! serde-serializable struct without the token itself.

use std::sync::PoisonError;

use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::{
    cache::TokenCache,
    config::{Upstream, UpstreamKind},
    error::UpstreamError,
    login::LoginOutcome,
    record::{self, now_ms},
    redis_tier::BreakerState,
    token::Tier,
};

/// Everything about a cached token but the token.
#[derive(Debug, Clone, Serialize)]
pub struct TokenInfo {
    pub api: String,
    pub user: String,
    /// `memory` or `redis`: where it was found (no login is made for this).
    pub tier: Tier,
    pub expires_at: DateTime<Utc>,
    pub created_at: DateTime<Utc>,
    /// Seconds it will still be served (until `expires_at` minus the margin).
    pub remaining_seconds: i64,
}

#[derive(Debug, Clone, Copy, Serialize)]
pub struct DeleteOutcome {
    pub memory: bool,
    pub redis: bool,
}

#[derive(Debug, Clone, Copy, Serialize)]
pub struct ClearOutcome {
    pub memory: usize,
    pub redis: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum RedisState {
    NotConfigured,
    Up,
    Down,
}

#[derive(Debug, Clone, Serialize)]
pub struct RedisHealth {
    pub state: RedisState,
    /// The circuit breaker, when Redis is configured: `closed` (in use),
    /// `open` (skipped) or `half_open` (skipped while a probe runs).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub breaker: Option<BreakerState>,
    /// While open: milliseconds until the next probe.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub probe_in_ms: Option<u64>,
}

#[derive(Debug, Clone, Serialize)]
pub struct UpstreamHealth {
    pub name: String,
    pub kind: UpstreamKind,
    pub last_login: Option<LoginOutcome>,
}

#[derive(Debug, Clone, Serialize)]
pub struct HealthReport {
    /// False only while a configured Redis is down (the cache still serves).
    pub healthy: bool,
    pub memory_entries: usize,
    pub redis: RedisHealth,
    pub upstreams: Vec<UpstreamHealth>,
}

#[derive(Debug, Clone, Serialize)]
pub struct UpstreamSummary {
    pub name: String,
    pub kind: UpstreamKind,
    pub default_user: String,
    /// The users it may log in as (names or `*` globs).
    pub users: Vec<String>,
    pub margin_seconds: i64,
}

impl TokenCache {
    fn known(&self, api: &str) -> Result<&Upstream, UpstreamError> {
        self.inner
            .upstreams
            .get(api)
            .map(|s| &s.upstream)
            .ok_or_else(|| UpstreamError::UnknownUpstream(api.into()))
    }

    /// [`Self::known`], and `user` is one the upstream may log in as.
    fn known_user(&self, api: &str, user: &str) -> Result<&Upstream, UpstreamError> {
        let up = self.known(api)?;
        if up.users.allows(user) {
            Ok(up)
        } else {
            Err(UpstreamError::UserNotAllowed(api.into()))
        }
    }

    /// What is cached for `user` at `api` (memory, else Redis), without logging in.
    pub async fn get_token_info(
        &self,
        api: &str,
        user: &str,
    ) -> Result<Option<TokenInfo>, UpstreamError> {
        let up = self.known_user(api, user)?;
        let info = |tier, expires_at: DateTime<Utc>, created_at| {
            let remaining = (expires_at - up.margin - Utc::now()).num_seconds();
            (remaining > 0).then(|| TokenInfo {
                api: api.into(),
                user: user.into(),
                tier,
                expires_at,
                created_at,
                remaining_seconds: remaining,
            })
        };
        let in_memory = {
            let map = self.inner.read_memory();
            map.get(api)
                .and_then(|m| m.get(user))
                .map(|e| (e.token.expires_at, e.token.created_at))
        };
        if let Some(found) = in_memory.and_then(|(e, c)| info(Tier::Memory, e, c)) {
            return Ok(Some(found));
        }
        let Some(redis) = &self.inner.redis else {
            return Ok(None);
        };
        let Some(raw) = redis.get(&record::key(api, user)).await else {
            return Ok(None);
        };
        Ok(self
            .inner
            .sealing
            .decode(api, user, &raw)
            .and_then(|r| info(Tier::Redis, r.expires_at, r.created_at)))
    }

    /// Forgets the token of `user` at `api` in memory and Redis.
    pub async fn delete_token(
        &self,
        api: &str,
        user: &str,
    ) -> Result<DeleteOutcome, UpstreamError> {
        self.known_user(api, user)?;
        let memory = self.evict_from_memory(api, user);
        let redis = match &self.inner.redis {
            Some(r) => r.del(&record::key(api, user)).await,
            None => false,
        };
        tracing::info!(upstream = api, user, memory, redis, "cached token deleted");
        Ok(DeleteOutcome { memory, redis })
    }

    /// Drops the memory copy only, so the next lookup reads Redis again
    /// (e.g. after another tool rewrote the entry). Returns whether one was there.
    pub fn evict_from_memory(&self, api: &str, user: &str) -> bool {
        let mut map = self.inner.write_memory();
        map.get_mut(api).and_then(|m| m.remove(user)).is_some()
    }

    /// Forgets every token of `api`, or of every upstream with `None`, in
    /// memory and Redis (`token:{api}:*` / `token:*`, walked with SCAN).
    pub async fn clear_all_tokens(&self, api: Option<&str>) -> Result<ClearOutcome, UpstreamError> {
        if let Some(api) = api {
            self.known(api)?;
        }
        let memory = {
            let mut map = self.inner.write_memory();
            map.iter_mut()
                .filter(|(name, _)| api.is_none_or(|a| a == name.as_str()))
                .map(|(_, users)| users.drain().count())
                .sum()
        };
        // Upstream names are validated to [A-Za-z0-9_-]: nothing to escape in the pattern.
        let pattern = match api {
            Some(a) => format!("token:{a}:*"),
            None => "token:*".to_string(),
        };
        let redis = match &self.inner.redis {
            Some(r) => r.delete_matching(&pattern).await,
            None => 0,
        };
        tracing::info!(
            upstream = api.unwrap_or("*"),
            memory,
            redis,
            "cached tokens cleared"
        );
        Ok(ClearOutcome { memory, redis })
    }

    /// Memory entries, Redis state and each upstream's last login. Redis is
    /// pinged while the breaker is closed (at most one timeout); while it is
    /// open the answer is immediate.
    pub async fn health_check(&self) -> HealthReport {
        let state = match &self.inner.redis {
            None => RedisState::NotConfigured,
            Some(r) if r.health_check().await => RedisState::Up,
            Some(_) => RedisState::Down,
        };
        let breaker = self.inner.redis.as_ref().map(|r| r.breaker_state());
        let probe_in_ms = self.inner.redis.as_ref().and_then(|r| r.probe_in_ms());
        let now = now_ms();
        let memory_entries = {
            let map = self.inner.read_memory();
            map.values()
                .flat_map(|m| m.values())
                .filter(|e| e.serve_until_ms > now)
                .count()
        };
        let upstreams = self
            .inner
            .upstreams
            .values()
            .map(|s| UpstreamHealth {
                name: s.upstream.name.clone(),
                kind: s.upstream.kind,
                last_login: s
                    .last_login
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .clone(),
            })
            .collect();
        HealthReport {
            healthy: state != RedisState::Down,
            memory_entries,
            redis: RedisHealth {
                state,
                breaker,
                probe_in_ms,
            },
            upstreams,
        }
    }

    /// The configured upstreams, sorted by name.
    pub fn upstreams(&self) -> Vec<UpstreamSummary> {
        self.inner
            .upstreams
            .values()
            .map(|s| UpstreamSummary {
                name: s.upstream.name.clone(),
                kind: s.upstream.kind,
                default_user: s.upstream.default_user.clone(),
                users: s.upstream.users.patterns().to_vec(),
                margin_seconds: s.upstream.margin.num_seconds(),
            })
            .collect()
    }

    /// Registers the `tokens_upstream_*` metrics in `registry` (once per registry).
    pub fn register_metrics(&self, registry: &prometheus::Registry) -> prometheus::Result<()> {
        self.inner.metrics.register(registry)
    }

    /// Whether Redis is configured and currently used (false while degraded).
    pub fn redis_up(&self) -> bool {
        self.inner.redis.as_ref().is_some_and(|r| r.is_up())
    }
}
