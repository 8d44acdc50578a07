//! Prometheus metrics. Names are a public contract (dashboards and the alert
//! rules in `prometheus/` use them); counters start at zero in each process.

use prometheus::{
    Encoder, Histogram, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, Opts, Registry,
    TextEncoder,
};

/// Buckets from 50 µs to 2.5 s: verification lives at the low end, the
/// promised 100 ms sits in the middle.
const LATENCY_BUCKETS: &[f64] = &[
    0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0,
    2.5,
];

pub struct Metrics {
    pub registry: Registry,
    pub api_tokens_created: IntCounter,
    pub api_tokens_revoked: IntCounter,
    pub api_tokens_rotated: IntCounter,
    pub validation_fail: IntCounterVec,
    pub validation_latency: Histogram,
    pub api_latency: HistogramVec,
    pub rate_limited: IntCounter,
    pub invites_created: IntCounter,
    pub invites_used: IntCounter,
    pub invites_revoked: IntCounter,
    pub verify_cache_hits: IntCounter,
    pub verify_cache_misses: IntCounter,
    pub audit_dropped: IntCounter,
    pub webhooks_sent: IntCounter,
    pub webhooks_failed: IntCounter,
    pub webhook_latency: Histogram,
    pub job_runs: IntCounterVec,
    pub job_items: IntCounterVec,
    pub job_last_success: prometheus::GaugeVec,
    pub job_interval: prometheus::GaugeVec,
    pub background_flush_errors: IntCounter,
    pub mfa: MfaMetrics,
}

/// Second factors: enrolments, checks by outcome, replays, codes sent.
pub struct MfaMetrics {
    /// `stage`: started, completed, removed.
    pub enrollments: IntCounterVec,
    /// `factor`: totp, recovery_code, auth_code; `outcome`: valid or an `MfaFailure` code.
    pub verifications: IntCounterVec,
    pub replays: IntCounter,
    /// `channel`: email, sms; `outcome`: sent, failed.
    pub codes_sent: IntCounterVec,
    pub recovery_codes_generated: IntCounter,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    pub fn new() -> Self {
        let registry = Registry::new();
        let counter = |name: &str, help: &str| {
            let c = IntCounter::new(name, help).expect("valid metric");
            registry
                .register(Box::new(c.clone()))
                .expect("unique metric");
            c
        };
        let api_tokens_created = counter("tokens_api_tokens_created_total", "API tokens created.");
        let api_tokens_revoked = counter("tokens_api_tokens_revoked_total", "API tokens revoked.");
        let api_tokens_rotated = counter("tokens_api_tokens_rotated_total", "API tokens rotated.");
        let rate_limited = counter(
            "tokens_rate_limited_total",
            "Requests refused by a rate limit.",
        );
        let invites_created = counter("tokens_invites_created_total", "Invites created.");
        let invites_used = counter(
            "tokens_invites_used_total",
            "Invite uses (successful redemptions).",
        );
        let invites_revoked = counter("tokens_invites_revoked_total", "Invites revoked.");
        let verify_cache_hits = counter(
            "tokens_verify_cache_hits_total",
            "Token verifications answered from the in-process cache.",
        );
        let verify_cache_misses = counter(
            "tokens_verify_cache_misses_total",
            "Token verifications that needed a database lookup.",
        );
        let audit_dropped = counter(
            "tokens_audit_dropped_total",
            "Failed-verification audit rows dropped because the buffer was full.",
        );
        let background_flush_errors = counter(
            "tokens_background_flush_errors_total",
            "Failed flushes of usage counters or buffered audit rows.",
        );
        let webhooks_sent = counter(
            "tokens_webhooks_sent_total",
            "Webhook deliveries that succeeded (2xx).",
        );
        let webhooks_failed = counter(
            "tokens_webhooks_failed_total",
            "Webhook delivery attempts that failed (non-2xx, timeout or network error).",
        );
        let webhook_latency = Histogram::with_opts(
            HistogramOpts::new(
                "tokens_webhook_latency_seconds",
                "Time for one webhook delivery attempt.",
            )
            .buckets(LATENCY_BUCKETS.to_vec()),
        )
        .expect("valid metric");
        registry
            .register(Box::new(webhook_latency.clone()))
            .expect("unique metric");
        let vec = |name: &str, help: &str, labels: &[&str]| {
            let v = IntCounterVec::new(Opts::new(name, help), labels).expect("valid metric");
            registry
                .register(Box::new(v.clone()))
                .expect("unique metric");
            v
        };
        let gauge_vec = |name: &str, help: &str| {
            let v =
                prometheus::GaugeVec::new(Opts::new(name, help), &["job"]).expect("valid metric");
            registry
                .register(Box::new(v.clone()))
                .expect("unique metric");
            v
        };
        let job_runs = vec(
            "tokens_job_runs_total",
            "Scheduled job runs on this replica, by outcome.",
            &["job", "outcome"],
        );
        let job_items = vec(
            "tokens_job_items_total",
            "Items touched by scheduled jobs on this replica.",
            &["job"],
        );
        let job_last_success = gauge_vec(
            "tokens_job_last_success_timestamp_seconds",
            "Unix time of the job's last successful run on any replica (0: never).",
        );
        let job_interval = gauge_vec(
            "tokens_job_interval_seconds",
            "The job's configured interval.",
        );
        let validation_fail = IntCounterVec::new(
            Opts::new(
                "tokens_validation_fail_total",
                "Failed validations, by kind of credential and reason.",
            ),
            &["kind", "reason"],
        )
        .expect("valid metric");
        registry
            .register(Box::new(validation_fail.clone()))
            .expect("unique metric");
        let validation_latency = Histogram::with_opts(
            HistogramOpts::new(
                "tokens_validation_latency_seconds",
                "Time to validate a presented credential, in process.",
            )
            .buckets(LATENCY_BUCKETS.to_vec()),
        )
        .expect("valid metric");
        registry
            .register(Box::new(validation_latency.clone()))
            .expect("unique metric");
        let api_latency = HistogramVec::new(
            HistogramOpts::new(
                "tokens_api_latency_seconds",
                "HTTP request latency by method, route and status.",
            )
            .buckets(LATENCY_BUCKETS.to_vec()),
            &["method", "route", "status"],
        )
        .expect("valid metric");
        registry
            .register(Box::new(api_latency.clone()))
            .expect("unique metric");
        // Export every series from the start so rates and alerts see zeros
        // rather than missing data.
        for reason in tessera_core::api_token::VerifyFailure::ALL {
            validation_fail.with_label_values(&["api_token", reason.as_str()]);
        }
        for reason in tessera_core::invite::InviteFailure::ALL {
            validation_fail.with_label_values(&["invite", reason.as_str()]);
        }
        validation_fail.with_label_values(&["invite", "MALFORMED"]);
        let mfa = MfaMetrics {
            enrollments: vec(
                "tokens_mfa_enrollments_total",
                "TOTP device enrolments, by stage (started, completed, removed).",
                &["stage"],
            ),
            verifications: vec(
                "tokens_mfa_verifications_total",
                "Second-factor checks, by factor and outcome (valid, INVALID, REPLAYED, LOCKED, ...).",
                &["factor", "outcome"],
            ),
            replays: counter(
                "tokens_mfa_replays_total",
                "TOTP codes rejected because their time step was already used.",
            ),
            codes_sent: vec(
                "tokens_auth_codes_sent_total",
                "One-time auth codes handed to a provider, by channel and outcome.",
                &["channel", "outcome"],
            ),
            recovery_codes_generated: counter(
                "tokens_mfa_recovery_code_sets_total",
                "Recovery code sets generated.",
            ),
        };
        for stage in ["started", "completed", "removed"] {
            mfa.enrollments.with_label_values(&[stage]);
        }
        for factor in ["totp", "recovery_code", "auth_code"] {
            for outcome in ["valid", "INVALID", "REPLAYED", "LOCKED"] {
                mfa.verifications.with_label_values(&[factor, outcome]);
            }
        }
        Self {
            mfa,
            registry,
            api_tokens_created,
            api_tokens_revoked,
            api_tokens_rotated,
            validation_fail,
            validation_latency,
            api_latency,
            rate_limited,
            invites_created,
            invites_used,
            invites_revoked,
            verify_cache_hits,
            verify_cache_misses,
            audit_dropped,
            background_flush_errors,
            webhooks_sent,
            webhooks_failed,
            webhook_latency,
            job_runs,
            job_items,
            job_last_success,
            job_interval,
        }
    }

    /// The Prometheus text exposition.
    pub fn render(&self) -> String {
        let mut buf = Vec::new();
        TextEncoder::new()
            .encode(&self.registry.gather(), &mut buf)
            .expect("text encoding into a Vec cannot fail");
        String::from_utf8(buf).expect("the text format is UTF-8")
    }
}
