//! The cache's Prometheus metrics. They exist from the cache's creation (so
//! counting never depends on registration) and are registered into the
//! embedder's registry on request.

use prometheus::{Histogram, HistogramOpts, IntCounter, IntCounterVec, IntGauge, Opts, Registry};

pub(crate) struct Metrics {
    hits: IntCounterVec,
    /// Resolved once: `with_label_values` hashes the labels, too slow for the memory hit path.
    pub hit_memory: IntCounter,
    pub hit_redis: IntCounter,
    pub misses: IntCounter,
    pub logins: IntCounterVec,
    pub login_failures: IntCounterVec,
    pub login_duration: Histogram,
    pub background_refreshes: IntCounter,
    pub redis_errors: IntCounter,
    pub redis_degraded: IntGauge,
    pub redis_transitions: IntCounterVec,
    pub redis_skipped: IntCounter,
}

fn valid<T>(r: prometheus::Result<T>) -> T {
    r.expect("metric definitions are static and valid")
}

fn counter(name: &str, help: &str) -> IntCounter {
    valid(IntCounter::new(name, help))
}

fn counter_vec(name: &str, help: &str, label: &str) -> IntCounterVec {
    valid(IntCounterVec::new(Opts::new(name, help), &[label]))
}

impl Metrics {
    pub fn new<'a>(upstreams: impl Iterator<Item = &'a str>) -> Self {
        let hits = counter_vec(
            "tokens_upstream_hits_total",
            "Upstream tokens served from a cache tier.",
            "tier",
        );
        let m = Self {
            hit_memory: hits.with_label_values(&["memory"]),
            hit_redis: hits.with_label_values(&["redis"]),
            hits,
            misses: counter(
                "tokens_upstream_misses_total",
                "Upstream token requests that no cache tier could serve (a login followed).",
            ),
            logins: counter_vec(
                "tokens_upstream_logins_total",
                "Successful logins to upstreams.",
                "upstream",
            ),
            login_failures: counter_vec(
                "tokens_upstream_login_failures_total",
                "Failed logins to upstreams.",
                "upstream",
            ),
            login_duration: valid(Histogram::with_opts(
                HistogramOpts::new(
                    "tokens_upstream_login_duration_seconds",
                    "Time to log in to an upstream, successful or not.",
                )
                .buckets(vec![
                    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
                ]),
            )),
            background_refreshes: counter(
                "tokens_upstream_background_refreshes_total",
                "Tokens refreshed in the background before their margin.",
            ),
            redis_errors: counter(
                "tokens_upstream_redis_errors_total",
                "Redis operations that failed or timed out.",
            ),
            redis_degraded: valid(IntGauge::new(
                "tokens_upstream_redis_degraded",
                "1 while Redis is configured but unreachable and the cache runs without it.",
            )),
            redis_transitions: counter_vec(
                "tokens_upstream_redis_transitions_total",
                "Times Redis was found down (state=down) or back (state=up).",
                "state",
            ),
            redis_skipped: counter(
                "tokens_upstream_redis_skipped_total",
                "Redis operations skipped at once because the circuit breaker was open.",
            ),
        };
        // Create every known series up front so dashboards see zeros, not gaps.
        for name in upstreams {
            m.logins.with_label_values(&[name]);
            m.login_failures.with_label_values(&[name]);
        }
        for state in ["down", "up"] {
            m.redis_transitions.with_label_values(&[state]);
        }
        m
    }

    pub fn register(&self, registry: &Registry) -> prometheus::Result<()> {
        registry.register(Box::new(self.hits.clone()))?;
        registry.register(Box::new(self.misses.clone()))?;
        registry.register(Box::new(self.logins.clone()))?;
        registry.register(Box::new(self.login_failures.clone()))?;
        registry.register(Box::new(self.login_duration.clone()))?;
        registry.register(Box::new(self.background_refreshes.clone()))?;
        registry.register(Box::new(self.redis_errors.clone()))?;
        registry.register(Box::new(self.redis_degraded.clone()))?;
        registry.register(Box::new(self.redis_transitions.clone()))?;
        registry.register(Box::new(self.redis_skipped.clone()))?;
        Ok(())
    }
}
