//! Prometheus metrics. Names are a public contract (dashboards and the alert
//! rules in `prometheus/` use them); counters start at zero in each process.

use prometheus::{
    Encoder, GaugeVec, Histogram, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge,
    Opts, Registry, TextEncoder,
};

use specs::*;

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
    /// Refusals by a rate limit or quota, by `limiter` (see [`RATE_LIMITERS`]).
    pub rate_limited: IntCounterVec,
    /// 1 while `REDIS_URI` is set but Redis cannot be used, so each replica
    /// limits on its own; 0 otherwise.
    pub rate_limiter_fallback: IntGauge,
    /// Rate-limit checks answered in process because Redis could not be used.
    pub rate_limiter_fallback_total: IntCounter,
    pub invites_created: IntCounter,
    pub invites_used: IntCounter,
    pub invites_revoked: IntCounter,
    pub verify_cache_hits: IntCounter,
    pub verify_cache_misses: IntCounter,
    /// Rows of the invalidation log applied to this process's caches, by
    /// `kind`: token, session, user, client.
    pub cache_invalidations: IntCounterVec,
    /// Polls of the invalidation log that failed (database unreachable).
    pub invalidation_poll_failures: IntCounter,
    pub audit_dropped: IntCounter,
    pub webhooks_sent: IntCounter,
    pub webhooks_failed: IntCounter,
    pub webhook_latency: Histogram,
    pub job_runs: IntCounterVec,
    pub job_items: IntCounterVec,
    pub job_last_success: GaugeVec,
    pub job_interval: GaugeVec,
    pub background_flush_errors: IntCounter,
    pub mfa: MfaMetrics,
    pub sessions: SessionMetrics,
    pub clients: ClientMetrics,
    pub password_hash_seconds: Histogram,
    /// Password-reset links, by outcome (see [`LINK_OUTCOMES`]).
    pub recovery_requests: IntCounterVec,
    /// E-mail verification links, by outcome (see [`LINK_OUTCOMES`]).
    pub email_verifications: IntCounterVec,
    /// Browser requests refused for CSRF (guard, `GET /csrf`); `reason`: origin, missing, invalid.
    pub csrf_failures: IntCounterVec,
    /// Event streams (`GET /v1/events/stream`) open in this process.
    pub event_streams_open: IntGauge,
    /// Events sent on event streams.
    pub events_streamed: IntCounter,
    /// Event streams ended because their opener's credential ended.
    pub event_streams_ended_by_credential: IntCounter,
}

/// The outcomes of a mailed link, from its request to its confirmation:
/// `sent`, `unknown_address` (no mail: no such account, or not eligible),
/// `throttled` (the per-address limit skipped the mail), `dropped` (too many
/// requests in flight), `failed` (hashing or delivery failed), then
/// `completed`, `invalid`, `expired`.
pub const LINK_OUTCOMES: &[&str] = &[
    "sent",
    "unknown_address",
    "throttled",
    "dropped",
    "failed",
    "completed",
    "invalid",
    "expired",
];

/// The `limiter` label of `tokens_rate_limited_total`: what refused. Request
/// rates (GCRA) and failure limits per client IP (`_ip`), account (`_user`),
/// subject or address; the quotas counted in the database (`login_failures_*`,
/// `mfa_failures_user`, `invite_quota`, `auth_code_quota`); `token` for the
/// per-token limits. Each is exported from the start as 0.
pub const RATE_LIMITERS: &[&str] = &[
    "login_ip",
    "login_user",
    "login_failures_ip",
    "login_failures_user",
    "mfa_failures_user",
    "refresh_ip",
    "refresh_user",
    "recovery_ip",
    "recovery_address",
    "link_confirm_ip",
    "verification_ip",
    "verification_address",
    "invite_ip",
    "invite_failures_ip",
    "invite_quota",
    "auth_code_subject",
    "auth_code_quota",
    "verify_failures_ip",
    "client_auth_failures_ip",
    "token",
    "token_credits",
];

/// Sessions for people: logins, refreshes and revocations by outcome.
pub struct SessionMetrics {
    /// `outcome`: succeeded, failed, throttled, mfa_required, unverified.
    pub logins: IntCounterVec,
    /// `outcome`: rotated, grace, reuse_detected, failed, device_mismatch.
    pub refreshes: IntCounterVec,
    /// `reason`: a `RevokeReason`.
    pub revoked: IntCounterVec,
}

impl SessionMetrics {
    fn new(b: &Builder<'_>) -> Self {
        Self {
            logins: b.counters(&TOKENS_LOGINS_TOTAL),
            refreshes: b.counters(&TOKENS_REFRESHES_TOTAL),
            revoked: b.counters(&TOKENS_SESSIONS_REVOKED_TOTAL),
        }
    }
}

/// Resource servers asking about tokens: introspection, revocation,
/// client authentication, WebSocket tickets.
pub struct ClientMetrics {
    /// `token_type`: access_token, refresh_token, api_token, unknown; `active`: true, false.
    pub introspections: IntCounterVec,
    /// `token_type`: access_token, refresh_token, unknown.
    pub revocations: IntCounterVec,
    /// `method`: client_secret_basic, client_secret_post, tls_client_auth, none.
    pub auth_failures: IntCounterVec,
    /// `outcome`: issued, redeemed, rejected.
    pub ws_tickets: IntCounterVec,
}

impl ClientMetrics {
    fn new(b: &Builder<'_>) -> Self {
        Self {
            introspections: b.counters(&TOKENS_INTROSPECTIONS_TOTAL),
            revocations: b.counters(&TOKENS_REVOCATIONS_TOTAL),
            auth_failures: b.counters(&TOKENS_CLIENT_AUTH_FAILURES_TOTAL),
            ws_tickets: b.counters(&TOKENS_WS_TICKETS_TOTAL),
        }
    }
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

impl MfaMetrics {
    fn new(b: &Builder<'_>) -> Self {
        Self {
            enrollments: b.counters(&TOKENS_MFA_ENROLLMENTS_TOTAL),
            verifications: b.counters(&TOKENS_MFA_VERIFICATIONS_TOTAL),
            replays: b.counter(&TOKENS_MFA_REPLAYS_TOTAL),
            codes_sent: b.counters(&TOKENS_AUTH_CODES_SENT_TOTAL),
            recovery_codes_generated: b.counter(&TOKENS_MFA_RECOVERY_CODE_SETS_TOTAL),
        }
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

/// The metrics, one per line so they read as a table.
#[rustfmt::skip]
mod specs {
    /// The public contract of each metric: name, help text, label names.
    /// Dashboards and the alert rules depend on every one of them.
    pub(super) struct Spec {
        pub(super) name: &'static str,
        pub(super) help: &'static str,
        pub(super) labels: &'static [&'static str],
    }

    pub(super) const TOKENS_MFA_ENROLLMENTS_TOTAL: Spec = Spec { name: "tokens_mfa_enrollments_total", help: "TOTP device enrolments, by stage (started, completed, removed).", labels: &["stage"] };
    pub(super) const TOKENS_MFA_VERIFICATIONS_TOTAL: Spec = Spec { name: "tokens_mfa_verifications_total", help: "Second-factor checks, by factor and outcome (valid, INVALID, REPLAYED, LOCKED, ...).", labels: &["factor", "outcome"] };
    pub(super) const TOKENS_MFA_REPLAYS_TOTAL: Spec = Spec { name: "tokens_mfa_replays_total", help: "TOTP codes rejected because their time step was already used.", labels: &[] };
    pub(super) const TOKENS_AUTH_CODES_SENT_TOTAL: Spec = Spec { name: "tokens_auth_codes_sent_total", help: "One-time auth codes handed to a provider, by channel and outcome.", labels: &["channel", "outcome"] };
    pub(super) const TOKENS_MFA_RECOVERY_CODE_SETS_TOTAL: Spec = Spec { name: "tokens_mfa_recovery_code_sets_total", help: "Recovery code sets generated.", labels: &[] };
    pub(super) const TOKENS_LOGINS_TOTAL: Spec = Spec { name: "tokens_logins_total", help: "Logins by outcome (succeeded, failed, throttled, mfa_required, unverified).", labels: &["outcome"] };
    pub(super) const TOKENS_REFRESHES_TOTAL: Spec = Spec { name: "tokens_refreshes_total", help: "Refresh-token presentations by outcome (rotated, grace, reuse_detected, device_mismatch, failed).", labels: &["outcome"] };
    pub(super) const TOKENS_SESSIONS_REVOKED_TOTAL: Spec = Spec { name: "tokens_sessions_revoked_total", help: "Sessions revoked, by reason.", labels: &["reason"] };
    pub(super) const TOKENS_INTROSPECTIONS_TOTAL: Spec = Spec { name: "tokens_introspections_total", help: "Token introspections (RFC 7662), by token type and whether the token was active.", labels: &["token_type", "active"] };
    pub(super) const TOKENS_REVOCATIONS_TOTAL: Spec = Spec { name: "tokens_revocations_total", help: "Token revocations (RFC 7009), by token type.", labels: &["token_type"] };
    pub(super) const TOKENS_CLIENT_AUTH_FAILURES_TOTAL: Spec = Spec { name: "tokens_client_auth_failures_total", help: "Failed OAuth2 client authentications, by the method attempted.", labels: &["method"] };
    pub(super) const TOKENS_WS_TICKETS_TOTAL: Spec = Spec { name: "tokens_ws_tickets_total", help: "WebSocket tickets, by outcome (issued, redeemed, rejected).", labels: &["outcome"] };
    pub(super) const TOKENS_RECOVERY_REQUESTS_TOTAL: Spec = Spec { name: "tokens_recovery_requests_total", help: "Password-reset links by outcome (sent, unknown_address, throttled, dropped, failed, completed, invalid, expired).", labels: &["outcome"] };
    pub(super) const TOKENS_EMAIL_VERIFICATIONS_TOTAL: Spec = Spec { name: "tokens_email_verifications_total", help: "E-mail verification links by outcome (sent, unknown_address, throttled, dropped, failed, completed, invalid, expired).", labels: &["outcome"] };
    pub(super) const TOKENS_PASSWORD_HASH_SECONDS: Spec = Spec { name: "tokens_password_hash_seconds", help: "Time to hash or check one password on the hashing pool.", labels: &[] };
    pub(super) const TOKENS_API_TOKENS_CREATED_TOTAL: Spec = Spec { name: "tokens_api_tokens_created_total", help: "API tokens created.", labels: &[] };
    pub(super) const TOKENS_API_TOKENS_REVOKED_TOTAL: Spec = Spec { name: "tokens_api_tokens_revoked_total", help: "API tokens revoked.", labels: &[] };
    pub(super) const TOKENS_API_TOKENS_ROTATED_TOTAL: Spec = Spec { name: "tokens_api_tokens_rotated_total", help: "API tokens rotated.", labels: &[] };
    pub(super) const TOKENS_RATE_LIMITED_TOTAL: Spec = Spec { name: "tokens_rate_limited_total", help: "Requests refused by a rate limit or quota, by limiter (login_ip, recovery_ip, token, ...).", labels: &["limiter"] };
    pub(super) const TOKENS_RATE_LIMITER_FALLBACK: Spec = Spec { name: "tokens_rate_limiter_fallback", help: "1 while REDIS_URI is set but Redis cannot be used: each replica enforces rate limits on its own.", labels: &[] };
    pub(super) const TOKENS_RATE_LIMITER_FALLBACK_TOTAL: Spec = Spec { name: "tokens_rate_limiter_fallback_total", help: "Rate-limit checks answered in process because Redis could not be used.", labels: &[] };
    pub(super) const TOKENS_INVITES_CREATED_TOTAL: Spec = Spec { name: "tokens_invites_created_total", help: "Invites created.", labels: &[] };
    pub(super) const TOKENS_INVITES_USED_TOTAL: Spec = Spec { name: "tokens_invites_used_total", help: "Invite uses (successful redemptions).", labels: &[] };
    pub(super) const TOKENS_INVITES_REVOKED_TOTAL: Spec = Spec { name: "tokens_invites_revoked_total", help: "Invites revoked.", labels: &[] };
    pub(super) const TOKENS_VERIFY_CACHE_HITS_TOTAL: Spec = Spec { name: "tokens_verify_cache_hits_total", help: "Token verifications answered from the in-process cache.", labels: &[] };
    pub(super) const TOKENS_VERIFY_CACHE_MISSES_TOTAL: Spec = Spec { name: "tokens_verify_cache_misses_total", help: "Token verifications that needed a database lookup.", labels: &[] };
    pub(super) const TOKENS_CACHE_INVALIDATIONS_TOTAL: Spec = Spec { name: "tokens_cache_invalidations_total", help: "Committed credential changes (from any process) applied to this process's caches, by kind (token, session, user, client).", labels: &["kind"] };
    pub(super) const TOKENS_INVALIDATION_POLL_FAILURES_TOTAL: Spec = Spec { name: "tokens_invalidation_poll_failures_total", help: "Failed reads of the invalidation log; while they fail, cached entries last at most the verify cache's TTL.", labels: &[] };
    pub(super) const TOKENS_AUDIT_DROPPED_TOTAL: Spec = Spec { name: "tokens_audit_dropped_total", help: "Failed-verification audit rows dropped because the buffer was full.", labels: &[] };
    pub(super) const TOKENS_BACKGROUND_FLUSH_ERRORS_TOTAL: Spec = Spec { name: "tokens_background_flush_errors_total", help: "Failed flushes of usage counters or buffered audit rows.", labels: &[] };
    pub(super) const TOKENS_WEBHOOKS_SENT_TOTAL: Spec = Spec { name: "tokens_webhooks_sent_total", help: "Webhook deliveries that succeeded (2xx).", labels: &[] };
    pub(super) const TOKENS_WEBHOOKS_FAILED_TOTAL: Spec = Spec { name: "tokens_webhooks_failed_total", help: "Webhook delivery attempts that failed (non-2xx, timeout or network error).", labels: &[] };
    pub(super) const TOKENS_WEBHOOK_LATENCY_SECONDS: Spec = Spec { name: "tokens_webhook_latency_seconds", help: "Time for one webhook delivery attempt.", labels: &[] };
    pub(super) const TOKENS_JOB_RUNS_TOTAL: Spec = Spec { name: "tokens_job_runs_total", help: "Scheduled job runs on this replica, by outcome.", labels: &["job", "outcome"] };
    pub(super) const TOKENS_JOB_ITEMS_TOTAL: Spec = Spec { name: "tokens_job_items_total", help: "Items touched by scheduled jobs on this replica.", labels: &["job"] };
    pub(super) const TOKENS_JOB_LAST_SUCCESS_TIMESTAMP_SECONDS: Spec = Spec { name: "tokens_job_last_success_timestamp_seconds", help: "Unix time of the job's last successful run on any replica (0: never).", labels: &["job"] };
    pub(super) const TOKENS_JOB_INTERVAL_SECONDS: Spec = Spec { name: "tokens_job_interval_seconds", help: "The job's configured interval.", labels: &["job"] };
    pub(super) const TOKENS_VALIDATION_FAIL_TOTAL: Spec = Spec { name: "tokens_validation_fail_total", help: "Failed validations, by kind of credential and reason.", labels: &["kind", "reason"] };
    pub(super) const TOKENS_VALIDATION_LATENCY_SECONDS: Spec = Spec { name: "tokens_validation_latency_seconds", help: "Time to validate a presented credential, in process.", labels: &[] };
    pub(super) const TOKENS_CSRF_FAILURES_TOTAL: Spec = Spec { name: "tokens_csrf_failures_total", help: "Browser requests refused for CSRF (by the guard or GET /csrf), by reason (origin, missing, invalid).", labels: &["reason"] };
    pub(super) const TOKENS_EVENT_STREAMS_OPEN: Spec = Spec { name: "tokens_event_streams_open", help: "Event streams (GET /v1/events/stream) open in this process.", labels: &[] };
    pub(super) const TOKENS_EVENTS_STREAMED_TOTAL: Spec = Spec { name: "tokens_events_streamed_total", help: "Events sent on event streams by this process.", labels: &[] };
    pub(super) const TOKENS_EVENT_STREAMS_ENDED_BY_CREDENTIAL_TOTAL: Spec = Spec { name: "tokens_event_streams_ended_by_credential_total", help: "Event streams ended because the credential that opened them was revoked or changed.", labels: &[] };
    pub(super) const TOKENS_API_LATENCY_SECONDS: Spec = Spec { name: "tokens_api_latency_seconds", help: "HTTP request latency by method, route and status.", labels: &["method", "route", "status"] };
}

/// Registers metrics as they are built; every name must be new.
struct Builder<'a> {
    registry: &'a Registry,
}

impl Builder<'_> {
    fn register<M: prometheus::core::Collector + Clone + 'static>(&self, metric: M) -> M {
        self.registry
            .register(Box::new(metric.clone()))
            .expect("unique metric");
        metric
    }

    fn counter(&self, s: &Spec) -> IntCounter {
        self.register(IntCounter::new(s.name, s.help).expect("valid metric"))
    }

    fn counters(&self, s: &Spec) -> IntCounterVec {
        let opts = Opts::new(s.name, s.help);
        self.register(IntCounterVec::new(opts, s.labels).expect("valid metric"))
    }

    fn gauge(&self, s: &Spec) -> IntGauge {
        self.register(IntGauge::new(s.name, s.help).expect("valid metric"))
    }

    fn gauges(&self, s: &Spec) -> GaugeVec {
        let opts = Opts::new(s.name, s.help);
        self.register(GaugeVec::new(opts, s.labels).expect("valid metric"))
    }

    /// A latency histogram over [`LATENCY_BUCKETS`].
    fn latency(&self, s: &Spec) -> Histogram {
        let opts = HistogramOpts::new(s.name, s.help).buckets(LATENCY_BUCKETS.to_vec());
        self.register(Histogram::with_opts(opts).expect("valid metric"))
    }

    /// Password hashing: tens of milliseconds by design.
    fn hash_latency(&self, s: &Spec) -> Histogram {
        let buckets = vec![0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5];
        let opts = HistogramOpts::new(s.name, s.help).buckets(buckets);
        self.register(Histogram::with_opts(opts).expect("valid metric"))
    }

    fn latencies(&self, s: &Spec) -> HistogramVec {
        let opts = HistogramOpts::new(s.name, s.help).buckets(LATENCY_BUCKETS.to_vec());
        self.register(HistogramVec::new(opts, s.labels).expect("valid metric"))
    }
}

impl Metrics {
    pub fn new() -> Self {
        let registry = Registry::new();
        let b = Builder {
            registry: &registry,
        };
        let metrics = Self {
            api_tokens_created: b.counter(&TOKENS_API_TOKENS_CREATED_TOTAL),
            api_tokens_revoked: b.counter(&TOKENS_API_TOKENS_REVOKED_TOTAL),
            api_tokens_rotated: b.counter(&TOKENS_API_TOKENS_ROTATED_TOTAL),
            rate_limited: b.counters(&TOKENS_RATE_LIMITED_TOTAL),
            rate_limiter_fallback: b.gauge(&TOKENS_RATE_LIMITER_FALLBACK),
            rate_limiter_fallback_total: b.counter(&TOKENS_RATE_LIMITER_FALLBACK_TOTAL),
            invites_created: b.counter(&TOKENS_INVITES_CREATED_TOTAL),
            invites_used: b.counter(&TOKENS_INVITES_USED_TOTAL),
            invites_revoked: b.counter(&TOKENS_INVITES_REVOKED_TOTAL),
            verify_cache_hits: b.counter(&TOKENS_VERIFY_CACHE_HITS_TOTAL),
            verify_cache_misses: b.counter(&TOKENS_VERIFY_CACHE_MISSES_TOTAL),
            cache_invalidations: b.counters(&TOKENS_CACHE_INVALIDATIONS_TOTAL),
            invalidation_poll_failures: b.counter(&TOKENS_INVALIDATION_POLL_FAILURES_TOTAL),
            audit_dropped: b.counter(&TOKENS_AUDIT_DROPPED_TOTAL),
            background_flush_errors: b.counter(&TOKENS_BACKGROUND_FLUSH_ERRORS_TOTAL),
            webhooks_sent: b.counter(&TOKENS_WEBHOOKS_SENT_TOTAL),
            webhooks_failed: b.counter(&TOKENS_WEBHOOKS_FAILED_TOTAL),
            webhook_latency: b.latency(&TOKENS_WEBHOOK_LATENCY_SECONDS),
            job_runs: b.counters(&TOKENS_JOB_RUNS_TOTAL),
            job_items: b.counters(&TOKENS_JOB_ITEMS_TOTAL),
            job_last_success: b.gauges(&TOKENS_JOB_LAST_SUCCESS_TIMESTAMP_SECONDS),
            job_interval: b.gauges(&TOKENS_JOB_INTERVAL_SECONDS),
            validation_fail: b.counters(&TOKENS_VALIDATION_FAIL_TOTAL),
            validation_latency: b.latency(&TOKENS_VALIDATION_LATENCY_SECONDS),
            api_latency: b.latencies(&TOKENS_API_LATENCY_SECONDS),
            mfa: MfaMetrics::new(&b),
            sessions: SessionMetrics::new(&b),
            clients: ClientMetrics::new(&b),
            password_hash_seconds: b.hash_latency(&TOKENS_PASSWORD_HASH_SECONDS),
            recovery_requests: b.counters(&TOKENS_RECOVERY_REQUESTS_TOTAL),
            email_verifications: b.counters(&TOKENS_EMAIL_VERIFICATIONS_TOTAL),
            csrf_failures: b.counters(&TOKENS_CSRF_FAILURES_TOTAL),
            event_streams_open: b.gauge(&TOKENS_EVENT_STREAMS_OPEN),
            events_streamed: b.counter(&TOKENS_EVENTS_STREAMED_TOTAL),
            event_streams_ended_by_credential: b
                .counter(&TOKENS_EVENT_STREAMS_ENDED_BY_CREDENTIAL_TOTAL),
            registry,
        };
        metrics.export_zeros();
        metrics
    }

    /// Exports every known series from the start so rates and alerts see
    /// zeros rather than missing data.
    fn export_zeros(&self) {
        for limiter in RATE_LIMITERS {
            self.rate_limited.with_label_values(&[limiter]);
        }
        for outcome in LINK_OUTCOMES {
            self.recovery_requests.with_label_values(&[outcome]);
            self.email_verifications.with_label_values(&[outcome]);
        }
        for reason in tessera_core::api_token::VerifyFailure::ALL {
            self.validation_fail
                .with_label_values(&["api_token", reason.as_str()]);
        }
        for reason in tessera_core::invite::InviteFailure::ALL {
            self.validation_fail
                .with_label_values(&["invite", reason.as_str()]);
        }
        self.validation_fail
            .with_label_values(&["invite", "MALFORMED"]);
        for stage in ["started", "completed", "removed"] {
            self.mfa.enrollments.with_label_values(&[stage]);
        }
        for outcome in [
            "succeeded",
            "failed",
            "throttled",
            "mfa_required",
            "unverified",
        ] {
            self.sessions.logins.with_label_values(&[outcome]);
        }
        for reason in ["origin", "missing", "invalid"] {
            self.csrf_failures.with_label_values(&[reason]);
        }
        for kind in tessera_store::InvalidationKind::ALL {
            self.cache_invalidations.with_label_values(&[kind.as_str()]);
        }
        for outcome in [
            "rotated",
            "grace",
            "reuse_detected",
            "failed",
            "device_mismatch",
        ] {
            self.sessions.refreshes.with_label_values(&[outcome]);
        }
        for factor in ["totp", "recovery_code", "auth_code"] {
            for outcome in ["valid", "INVALID", "REPLAYED", "LOCKED"] {
                self.mfa.verifications.with_label_values(&[factor, outcome]);
            }
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
