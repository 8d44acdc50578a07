//! Request-rate limits: one GCRA engine ([`RateLimits`]) with two stores,
//! process memory (the default, exact for one replica) and Redis (when
//! `REDIS_URI` is set, exact across replicas; see [`redis`]). A Redis that
//! is down or slow never fails a request: the check is decided in memory
//! (each replica then limits on its own) until Redis answers again.
//!
//! Two kinds of limit use it. A *request rate* counts every request
//! ([`RateLimits::admit`]: login, refresh, link requests, invite use, auth
//! codes; the per-token limits). A *failure limit* is checked before an
//! attempt ([`RateLimits::failures_allowed`]) and settled after it
//! ([`RateLimits::settle`]): only failures count (verify, invite guesses,
//! client authentication). While a key has failures counted, the check
//! reserves one and a success gives it back, so concurrent attempts cannot
//! all slip through the one unit that drained. With Redis, only keys this
//! process has seen fail recently are checked there before the attempt
//! (the failure hints): a caller that does not fail, the common case,
//! costs Redis nothing, and a failure costs one call. The price: a caller
//! whose failures other replicas counted gets, on a replica that has not
//! seen it fail, the attempts that replica admits before the first of them
//! fails there (one, or as many as it sends at once), and the same again
//! whenever that replica's hint has lapsed. The failures themselves are
//! all counted in Redis, so the caller is refused everywhere a hint holds. Attempt counters that must be exact and that a
//! success resets (login throttling, TOTP attempts, the invite and
//! auth-code quotas) are counted in the database, not here.
//!
//! Every refusal counts in `tokens_rate_limited_total{limiter}`. The
//! limiter's name (`login_ip`, `recovery_ip`, `token`, …) also namespaces
//! its keys, and names the policy in the `RateLimit` header fields.

pub mod memory;
pub mod redis;

use std::{sync::Arc, time::SystemTime};

use tessera_core::gcra::{Mode, RateDecision, RateRule};

use self::{memory::MemoryStore, redis::RedisStore};
use super::error::{Refusal, ServiceError};
use crate::{config::RateLimitSettings, metrics::Metrics};

/// A failure limit's admission of one attempt: whether the check already
/// counted it as a failure. Hand it to [`RateLimits::settle`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[must_use = "settle the attempt, or a reserved failure stays counted"]
pub struct Admission {
    counted: bool,
}

/// The rate-limit engine every service shares (held in `Services`).
pub struct RateLimits {
    memory: MemoryStore,
    shared: Option<Arc<RedisStore>>,
    /// With Redis: the failure-limit keys that Redis counts failures on,
    /// as far as this process has seen, each until its bucket would be
    /// full again. Kept in process so that checking a key without failures
    /// takes no round trip.
    failing: MemoryStore,
    metrics: Arc<Metrics>,
    classes: RateLimitSettings,
}

/// Microseconds since the Unix epoch: the in-process clock.
fn now_us() -> i64 {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_micros() as i64)
}

impl RateLimits {
    /// The engine with the route classes' rules; in Redis when `shared` is
    /// given, else in memory.
    pub fn new(
        classes: RateLimitSettings,
        shared: Option<RedisStore>,
        metrics: Arc<Metrics>,
    ) -> Self {
        Self {
            memory: MemoryStore::default(),
            shared: shared.map(Arc::new),
            failing: MemoryStore::default(),
            metrics,
            classes,
        }
    }

    /// In memory only, with the default classes (tests, tools).
    pub fn in_process(metrics: Arc<Metrics>) -> Self {
        Self::new(RateLimitSettings::default(), None, metrics)
    }

    /// The rules of the route classes (`[rate_limits]`).
    pub fn classes(&self) -> &RateLimitSettings {
        &self.classes
    }

    /// Whether checks are shared through Redis right now.
    pub fn is_shared(&self) -> bool {
        self.shared.as_ref().is_some_and(|s| s.is_up())
    }

    /// Checks sent to Redis so far (0 without it): how the failure hints
    /// are seen to spare it.
    pub fn shared_round_trips(&self) -> u64 {
        self.shared.as_ref().map_or(0, |s| s.round_trips())
    }

    /// Counts `cost` units on `key` when they are within `rule`, and says
    /// so. A refusal counts nothing and counts in
    /// `tokens_rate_limited_total{limiter}`. `limiter` names the limit (a
    /// metric label and the keys' namespace); `key` what it is counted per.
    pub async fn check(
        &self,
        limiter: &'static str,
        key: &str,
        rule: &RateRule,
        cost: u32,
    ) -> RateDecision {
        let d = self.decide(limiter, key, rule, cost, Mode::Consume).await;
        if !d.allowed {
            self.count_refusal(limiter);
        }
        d
    }

    /// Whether `cost` units would be admitted now; counts nothing (neither
    /// the units nor a refusal).
    pub async fn peek(
        &self,
        limiter: &'static str,
        key: &str,
        rule: &RateRule,
        cost: u32,
    ) -> RateDecision {
        self.decide(limiter, key, rule, cost, Mode::Peek).await
    }

    /// Counts `cost` units whether or not they are within `rule` (never
    /// beyond a full burst): an event counted after the fact, such as a
    /// failure. `allowed` says whether it was within the limit.
    pub async fn record(
        &self,
        limiter: &'static str,
        key: &str,
        rule: &RateRule,
        cost: u32,
    ) -> RateDecision {
        self.decide(limiter, key, rule, cost, Mode::Force).await
    }

    /// Counts one refusal under `limiter` (for a limit decided elsewhere).
    pub fn count_refusal(&self, limiter: &str) {
        self.metrics
            .rate_limited
            .with_label_values(&[limiter])
            .inc();
    }

    async fn decide(
        &self,
        limiter: &'static str,
        key: &str,
        rule: &RateRule,
        cost: u32,
        mode: Mode,
    ) -> RateDecision {
        self.decide_where(limiter, key, rule, cost, mode).await.0
    }

    /// [`Self::decide`], and whether Redis answered (`false`: process memory).
    async fn decide_where(
        &self,
        limiter: &'static str,
        key: &str,
        rule: &RateRule,
        cost: u32,
        mode: Mode,
    ) -> (RateDecision, bool) {
        if let Some(shared) = &self.shared {
            if let Some(d) = shared.decide(limiter, key, rule, cost, mode).await {
                return (d, true);
            }
            self.metrics.rate_limiter_fallback_total.inc();
        }
        let d = self
            .memory
            .decide(&bucket(limiter, key), rule, cost, mode, now_us());
        (d, false)
    }

    /// A request-rate limit of a route: counts one request on `key`, or
    /// refuses it (`429 rate_limited` with the `RateLimit` fields). A
    /// limit that is off (`None`) admits everything.
    pub async fn admit(
        &self,
        limiter: &'static str,
        key: &str,
        rule: Option<&RateRule>,
    ) -> Result<(), ServiceError> {
        let Some(rule) = rule else { return Ok(()) };
        let d = self.check(limiter, key, rule, 1).await;
        if d.allowed {
            Ok(())
        } else {
            Err(Refusal::rate(limiter, rule, &d).into())
        }
    }

    /// Gives back `cost` units counted earlier (never below a full bucket).
    pub async fn refund(&self, limiter: &'static str, key: &str, rule: &RateRule, cost: u32) {
        self.decide(limiter, key, rule, cost, Mode::Refund).await;
    }

    /// A failure limit, before the attempt: `Err` (counted as a refusal)
    /// when one more failure would be over `rule`; else the admission to
    /// settle after the attempt. A limit that is off admits everything.
    pub async fn failures_allowed(
        &self,
        limiter: &'static str,
        key: &str,
        rule: Option<&RateRule>,
    ) -> Result<Admission, Box<Refusal>> {
        let Some(rule) = rule else {
            return Ok(Admission::default());
        };
        if self.shared.is_some() && !self.failing.holds(&bucket(limiter, key), now_us()) {
            // No failure seen: Reserve on a clean key admits and counts
            // nothing, so the round trip would only confirm it.
            return Ok(Admission::default());
        }
        let (d, shared) = self
            .decide_where(limiter, key, rule, 1, Mode::Reserve)
            .await;
        self.note_failures(limiter, key, &d, shared);
        if d.allowed {
            // Reserve counted the unit exactly when the bucket now holds some.
            return Ok(Admission {
                counted: d.reset > 0,
            });
        }
        self.count_refusal(limiter);
        Err(Box::new(Refusal::rate(limiter, rule, &d)))
    }

    /// A failure limit, after the attempt: counts a failure its admission
    /// did not count yet, or gives back the unit of an attempt that did not
    /// fail (or whose failure does not count).
    pub async fn settle(
        &self,
        limiter: &'static str,
        key: &str,
        rule: Option<&RateRule>,
        admission: Admission,
        failed: bool,
    ) {
        let Some(rule) = rule else { return };
        let mode = match (admission.counted, failed) {
            (false, true) => Mode::Force,
            (true, false) => Mode::Refund,
            _ => return,
        };
        let (d, shared) = self.decide_where(limiter, key, rule, 1, mode).await;
        self.note_failures(limiter, key, &d, shared);
    }

    /// From a Redis answer (`shared`), remembers until when `key` has
    /// failures counted (its bucket's `reset`), or forgets it when it has
    /// none. An answer from process memory (Redis down) says nothing about
    /// Redis's buckets, so it leaves the hints as they are.
    fn note_failures(&self, limiter: &str, key: &str, d: &RateDecision, shared: bool) {
        if shared {
            let now = now_us();
            let until = now.saturating_add((d.reset as i64).saturating_mul(1_000_000));
            self.failing.mark(&bucket(limiter, key), until, now);
        }
    }
}

/// The in-process name of `key`'s bucket under `limiter`.
fn bucket(limiter: &str, key: &str) -> String {
    format!("{limiter}:{key}")
}

#[cfg(test)]
mod tests;
