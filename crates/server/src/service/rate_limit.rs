//! Rate limiters behind one interface, keyed by what they limit.
//!
//! [`RateLimiter`] is what a service asks ("may this key go on?", "count one
//! more"); [`MemoryLimiter`] answers from this process alone, so with several
//! replicas a limit holds per replica. A limiter shared by replicas (Redis)
//! implements the same trait. Limits that must hold exactly across replicas
//! today (the invite quota, the auth-code limits) are counted by the store
//! inside the write transaction that adds the row, and decide with the same
//! [`Limit::decide`], so every `429` means the same thing.

use std::{
    collections::{HashMap, VecDeque},
    sync::Mutex,
};

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use tessera_core::rate_limit::{Decision, Limit, LimitKey};

/// A limiter could not be asked (a shared store is down). Callers decide
/// whether to fail open or closed; the memory limiter never fails.
#[derive(Debug, thiserror::Error)]
#[error("the rate limiter is unavailable")]
pub struct LimiterUnavailable;

/// Counts events per key in a sliding window.
#[async_trait]
pub trait RateLimiter: Send + Sync {
    /// Whether one more event on `key` is allowed now; counts nothing.
    async fn check(&self, key: &LimitKey, limit: Limit) -> Result<Decision, LimiterUnavailable>;

    /// Counts one event on `key`.
    async fn record(&self, key: &LimitKey, limit: Limit) -> Result<(), LimiterUnavailable>;
}

/// Bound on tracked keys; past it, keys with no event in their window are
/// forgotten first, so a flood of distinct keys cannot grow memory forever.
const MAX_KEYS: usize = 100_000;

/// Per-replica counts in memory. A std mutex is held only for a map
/// operation, never across an `.await`.
#[derive(Default)]
pub struct MemoryLimiter {
    events: Mutex<HashMap<LimitKey, VecDeque<DateTime<Utc>>>>,
}

impl MemoryLimiter {
    pub fn new() -> Self {
        Self::default()
    }

    fn decide(&self, key: &LimitKey, limit: Limit, now: DateTime<Utc>) -> Decision {
        if limit.is_off() {
            return Decision::Allow;
        }
        let mut map = self.events.lock().unwrap_or_else(|p| p.into_inner());
        let Some(times) = map.get_mut(key) else {
            return Decision::Allow;
        };
        let start = limit.window_start(now);
        while times.front().is_some_and(|t| *t <= start) {
            times.pop_front();
        }
        limit.decide(times.len() as i64, times.front().copied(), now)
    }

    fn count(&self, key: &LimitKey, limit: Limit, now: DateTime<Utc>) {
        if limit.is_off() {
            return;
        }
        let mut map = self.events.lock().unwrap_or_else(|p| p.into_inner());
        if map.len() >= MAX_KEYS && !map.contains_key(key) {
            let start = limit.window_start(now);
            map.retain(|_, t| t.back().is_some_and(|last| *last > start));
        }
        let times = map.entry(key.clone()).or_default();
        times.push_back(now);
        // Only the newest `max` events matter for a decision.
        while times.len() as i64 > limit.max {
            times.pop_front();
        }
    }
}

#[async_trait]
impl RateLimiter for MemoryLimiter {
    async fn check(&self, key: &LimitKey, limit: Limit) -> Result<Decision, LimiterUnavailable> {
        Ok(self.decide(key, limit, Utc::now()))
    }

    async fn record(&self, key: &LimitKey, limit: Limit) -> Result<(), LimiterUnavailable> {
        self.count(key, limit, Utc::now());
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::net::IpAddr;

    use chrono::Duration;

    use super::*;

    fn ip(s: &str) -> LimitKey {
        LimitKey::client(s.parse::<IpAddr>().unwrap())
    }

    #[tokio::test]
    async fn blocks_after_the_limit_per_key() {
        let l = MemoryLimiter::new();
        let per_minute = Limit::new(3, Duration::seconds(60));
        let (a, b) = (ip("203.0.113.1"), ip("203.0.113.2"));
        for _ in 0..3 {
            assert!(l.check(&a, per_minute).await.unwrap().is_allowed());
            l.record(&a, per_minute).await.unwrap();
        }
        let wait = l
            .check(&a, per_minute)
            .await
            .unwrap()
            .into_result()
            .unwrap_err();
        assert!((1..=60).contains(&wait));
        assert!(l.check(&b, per_minute).await.unwrap().is_allowed());
        let off = Limit::new(0, Duration::seconds(60));
        assert!(l.check(&a, off).await.unwrap().is_allowed());
    }

    #[tokio::test]
    async fn ipv6_addresses_of_one_64_share_a_limit() {
        let l = MemoryLimiter::new();
        let limit = Limit::new(2, Duration::seconds(60));
        l.record(&ip("2001:db8:1:2::1"), limit).await.unwrap();
        l.record(&ip("2001:db8:1:2:ffff::7"), limit).await.unwrap();
        let same_64 = ip("2001:db8:1:2:1234::1");
        assert!(!l.check(&same_64, limit).await.unwrap().is_allowed());
        let next_64 = ip("2001:db8:1:3::1");
        assert!(l.check(&next_64, limit).await.unwrap().is_allowed());
    }

    #[test]
    fn events_leave_the_window() {
        let l = MemoryLimiter::new();
        let limit = Limit::new(2, Duration::seconds(60));
        let key = LimitKey::Account("alice".into());
        let t0 = Utc::now();
        l.count(&key, limit, t0);
        l.count(&key, limit, t0 + Duration::seconds(30));
        assert!(!l
            .decide(&key, limit, t0 + Duration::seconds(59))
            .is_allowed());
        assert!(l
            .decide(&key, limit, t0 + Duration::seconds(60))
            .is_allowed());
    }

    #[test]
    fn keys_of_different_kinds_do_not_share_counts() {
        let l = MemoryLimiter::new();
        let limit = Limit::new(1, Duration::seconds(60));
        let now = Utc::now();
        l.count(&LimitKey::Token("x".into()), limit, now);
        assert!(!l
            .decide(&LimitKey::Token("x".into()), limit, now)
            .is_allowed());
        assert!(l
            .decide(&LimitKey::Account("x".into()), limit, now)
            .is_allowed());
    }
}
