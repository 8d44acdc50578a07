//! Configuration values: the shared parsers (booleans, durations, numbers,
//! comma lists), the domain parsers configuration uses (issuer policy, scope
//! list, token prefix, TOTP algorithm), and the whole load with the value in
//! one environment variable.

use std::time::Duration;

use tessera_core::{
    invite::IssuerPolicy, mfa::totp::Algorithm, scopes::ScopeRegistry, token_format::TokenFormat,
};
use tessera_server::config::{
    parsers::{
        at_most, chrono, in_range, list, number, parse_bool, parse_duration, positive_duration,
    },
    Config, Overrides, Sources,
};

/// Input: one byte naming an environment variable, then its value.
pub fn config_values(data: &[u8]) {
    let Some((choice, value)) = data.split_first() else {
        return;
    };
    let value = crate::text(value);
    shared_parsers(&value);
    domain_parsers(&value);
    load_with(ENV[usize::from(*choice) % ENV.len()], &value);
}

fn shared_parsers(v: &str) {
    if let Ok(b) = parse_bool(v) {
        assert_eq!(parse_bool(&b.to_string()), Ok(b));
    }
    let duration = parse_duration(v);
    if let Ok(d) = duration {
        // What humantime prints, it reads back.
        let printed = humantime::format_duration(d).to_string();
        assert_eq!(parse_duration(&printed), Ok(d), "{printed}");
        let _ = chrono(d);
        let capped = at_most(d, Duration::from_secs(86_400), "too long");
        assert_eq!(capped.is_ok(), d <= Duration::from_secs(86_400));
    }
    match positive_duration(v) {
        Ok(d) => assert!(!d.is_zero() && duration == Ok(d)),
        Err(_) => assert!(duration.is_err() || duration == Ok(Duration::ZERO)),
    }
    let items = list(v);
    for item in &items {
        assert!(!item.is_empty() && !item.contains(',') && item.trim() == item);
    }
    assert_eq!(list(&items.join(",")), items);
    if let Ok(n) = number::<u32>(v, 1, 100) {
        assert!((1..=100).contains(&n));
    }
    if let Ok(n) = number::<i64>(v, -5, 1_000_000) {
        assert!((-5..=1_000_000).contains(&n));
    }
    if let Ok(x) = in_range::<f64>(v, 0.0, 0.5, "a fraction 0-0.5") {
        assert!((0.0..=0.5).contains(&x), "{x}");
    }
}

fn domain_parsers(v: &str) {
    if let Ok(policy) = IssuerPolicy::parse(v) {
        assert_eq!(IssuerPolicy::parse(&policy.describe()), Ok(policy));
    }
    if let Ok(registry) = ScopeRegistry::new(list(v)) {
        let names: Vec<String> = registry.names().map(str::to_string).collect();
        assert!(ScopeRegistry::new(names).is_ok());
    }
    if let Ok(format) = TokenFormat::new(v) {
        assert_eq!(format.prefix(), v);
    }
    if let Some(a) = Algorithm::parse(v) {
        assert_eq!(Algorithm::parse(a.as_str()), Some(a));
    }
}

/// Loading with `name=value` as the only setting either succeeds or fails
/// with an error that names where the bad value came from: the variable
/// itself, a related setting left at its default (named by its key), or
/// the encryption key that PostgreSQL requires.
fn load_with(name: &str, value: &str) {
    let env = |var: &str| (var == name).then(|| value.to_string());
    let sources = Sources {
        file: None,
        env: &env,
        overrides: Overrides::default(),
    };
    if let Err(e) = Config::load(&sources) {
        let named = e.source_name == name
            || e.source_name == "TESSERA_ENC_KEY"
            || e.source_name.contains('.');
        assert!(named, "{name}: the error names {:?}", e.source_name);
    }
}

/// Every environment variable the configuration reads.
const ENV: &[&str] = &[
    "TESSERA_LISTEN",
    "TESSERA_DATA_DIR",
    "TESSERA_DATABASE_URL",
    "DATABASE_URL",
    "DB_DRIVER",
    "DB_HOST",
    "DB_PORT",
    "DB_USERNAME",
    "DB_PASSWORD",
    "DB_DATABASE",
    "TESSERA_ENC_KEY",
    "TESSERA_ENC_KEY_PREVIOUS",
    "TESSERA_LOG_FORMAT",
    "TESSERA_LOG",
    "TESSERA_TRUST_PROXY_HEADERS",
    "TESSERA_TOKEN_PREFIX",
    "TESSERA_SCOPES",
    "TESSERA_TOKEN_DEFAULT_TTL",
    "TESSERA_TOKEN_MAX_TTL",
    "TESSERA_TOKEN_ALLOW_NEVER_EXPIRING",
    "TESSERA_VERIFY_REQUIRES_ADMIN",
    "TESSERA_VERIFY_CACHE_TTL",
    "TESSERA_USAGE_FLUSH_INTERVAL",
    "TESSERA_INVITE_POLICY",
    "TESSERA_INVITE_DAILY_QUOTA",
    "TESSERA_INVITE_QUOTA_EXEMPT_ROLES",
    "TESSERA_INVITE_DEFAULT_TTL",
    "TESSERA_INVITE_MAX_TTL",
    "TESSERA_INVITE_MAX_USES",
    "TESSERA_INVITE_FAILURE_LIMIT",
    "TOKENS_WEBHOOK_URL",
    "TOKENS_WEBHOOK_SECRET",
    "TESSERA_WEBHOOK_RETRY_SCHEDULE",
    "TESSERA_WEBHOOK_RETRY_JITTER",
    "TESSERA_WEBHOOK_TIMEOUT",
    "TESSERA_WEBHOOK_CONCURRENCY",
    "TESSERA_WEBHOOK_POLL_INTERVAL",
    "TESSERA_JOBS_ENABLED",
    "TESSERA_JOB_REVOKE_EXPIRED_TOKENS_INTERVAL",
    "TESSERA_JOB_PURGE_OLD_LOGS_INTERVAL",
    "TESSERA_JOB_ROTATE_EXPIRING_TOKENS_INTERVAL",
    "TESSERA_JOB_RESEND_PENDING_WEBHOOKS_INTERVAL",
    "TESSERA_JOB_CHECK_INTERVAL",
    "TESSERA_AUDIT_RETENTION",
    "TESSERA_USAGE_LOG_RETENTION",
    "TESSERA_TOKEN_ROTATION_WINDOW",
    "TESSERA_REDIS_URI",
    "REDIS_URI",
    "TESSERA_UPSTREAM_STORE_TOKENS_IN_CLEAR",
    "TESSERA_TOTP_ENC_KEY",
    "TOTP_ENC_KEY",
    "TESSERA_TOTP_ENC_KEY_PREVIOUS",
    "TOTP_ENC_KEY_PREVIOUS",
    "TESSERA_TOTP_REPLAY_TTL",
    "TOTP_REPLAY_TTL",
    "TESSERA_TOTP_ISSUER",
    "TESSERA_TOTP_ALGORITHM",
    "TESSERA_TOTP_DIGITS",
    "TESSERA_MFA_MAX_FAILURES",
    "TESSERA_MFA_LOCKOUT",
    "TESSERA_AUTH_CODE_DIGITS",
    "TESSERA_AUTH_CODE_TTL",
    "TESSERA_AUTH_CODE_MAX_ATTEMPTS",
    "TESSERA_AUTH_CODE_LIMIT_PER_SUBJECT",
    "TESSERA_AUTH_CODE_LIMIT_PER_DESTINATION",
    "TESSERA_AUTH_CODE_LIMIT_WINDOW",
    "TESSERA_SMTP_URL",
    "SMTP_URL",
    "TESSERA_SMTP_FROM",
    "SMTP_FROM",
    "TESSERA_SMS_WEBHOOK_URL",
    "TESSERA_SMS_WEBHOOK_TOKEN",
    "TESSERA_MESSAGE_LOG",
    "TESSERA_DELIVERY_TIMEOUT",
];
