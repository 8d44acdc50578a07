//! The raw layers of configuration: the table of known settings, values
//! keyed by setting with where each came from, and the small parsers the
//! sections share. Knows nothing of the typed settings built from it.

use std::{collections::BTreeMap, time::Duration};

/// A setting was missing or bad. `source` names it as the operator wrote it.
#[derive(Debug, thiserror::Error)]
#[error("{source_name}: {message}")]
pub struct ConfigError {
    pub source_name: String,
    pub message: String,
}

pub(super) fn err(source_name: impl Into<String>, message: impl Into<String>) -> ConfigError {
    ConfigError {
        source_name: source_name.into(),
        message: message.into(),
    }
}

/// One known setting: its key in the TOML file and its environment names
/// (first match wins; legacy names users already have come after ours).
pub(super) struct Setting {
    pub(super) key: &'static str,
    pub(super) env: &'static [&'static str],
}

// One line per setting reads as a table; keep rustfmt from unfolding it.
#[rustfmt::skip]
pub(super) const SETTINGS: &[Setting] = &[
    Setting { key: "listen", env: &["TESSERA_LISTEN"] },
    Setting { key: "data_dir", env: &["TESSERA_DATA_DIR"] },
    Setting { key: "database.url", env: &["TESSERA_DATABASE_URL", "DATABASE_URL"] },
    Setting { key: "database.driver", env: &["DB_DRIVER"] },
    Setting { key: "database.host", env: &["DB_HOST"] },
    Setting { key: "database.port", env: &["DB_PORT"] },
    Setting { key: "database.username", env: &["DB_USERNAME"] },
    Setting { key: "database.password", env: &["DB_PASSWORD"] },
    Setting { key: "database.name", env: &["DB_DATABASE"] },
    Setting { key: "encryption.key", env: &["TESSERA_ENC_KEY"] },
    Setting { key: "encryption.previous_keys", env: &["TESSERA_ENC_KEY_PREVIOUS"] },
    Setting { key: "log.format", env: &["TESSERA_LOG_FORMAT"] },
    Setting { key: "log.level", env: &["TESSERA_LOG"] },
    Setting { key: "http.trusted_proxies", env: &["TESSERA_TRUSTED_PROXIES"] },
    Setting { key: "http.trust_proxy_headers", env: &["TESSERA_TRUST_PROXY_HEADERS"] },
    Setting { key: "http.header_timeout", env: &["TESSERA_HTTP_HEADER_TIMEOUT"] },
    Setting { key: "http.body_timeout", env: &["TESSERA_HTTP_BODY_TIMEOUT"] },
    Setting { key: "http.idle_timeout", env: &["TESSERA_HTTP_IDLE_TIMEOUT"] },
    Setting { key: "http.max_connections", env: &["TESSERA_HTTP_MAX_CONNECTIONS"] },
    Setting { key: "tokens.prefix", env: &["TESSERA_TOKEN_PREFIX"] },
    Setting { key: "tokens.scopes", env: &["TESSERA_SCOPES"] },
    Setting { key: "tokens.default_ttl", env: &["TESSERA_TOKEN_DEFAULT_TTL"] },
    Setting { key: "tokens.max_ttl", env: &["TESSERA_TOKEN_MAX_TTL"] },
    Setting { key: "tokens.allow_never_expiring", env: &["TESSERA_TOKEN_ALLOW_NEVER_EXPIRING"] },
    Setting { key: "tokens.verify_requires_admin", env: &["TESSERA_VERIFY_REQUIRES_ADMIN"] },
    Setting { key: "tokens.verify_cache_ttl", env: &["TESSERA_VERIFY_CACHE_TTL"] },
    Setting { key: "tokens.usage_flush_interval", env: &["TESSERA_USAGE_FLUSH_INTERVAL"] },
    Setting { key: "tokens.verify_failure_limit_per_minute", env: &["TESSERA_VERIFY_FAILURE_LIMIT_PER_MINUTE"] },
    Setting { key: "invites.policy", env: &["TESSERA_INVITE_POLICY"] },
    Setting { key: "invites.daily_quota", env: &["TESSERA_INVITE_DAILY_QUOTA"] },
    Setting { key: "invites.quota_exempt_roles", env: &["TESSERA_INVITE_QUOTA_EXEMPT_ROLES"] },
    Setting { key: "invites.default_ttl", env: &["TESSERA_INVITE_DEFAULT_TTL"] },
    Setting { key: "invites.max_ttl", env: &["TESSERA_INVITE_MAX_TTL"] },
    Setting { key: "invites.max_uses", env: &["TESSERA_INVITE_MAX_USES"] },
    Setting { key: "invites.failure_limit_per_minute", env: &["TESSERA_INVITE_FAILURE_LIMIT"] },
    Setting { key: "webhooks.default_url", env: &["TOKENS_WEBHOOK_URL"] },
    Setting { key: "webhooks.default_secret", env: &["TOKENS_WEBHOOK_SECRET"] },
    Setting { key: "webhooks.retry_schedule", env: &["TESSERA_WEBHOOK_RETRY_SCHEDULE"] },
    Setting { key: "webhooks.retry_jitter", env: &["TESSERA_WEBHOOK_RETRY_JITTER"] },
    Setting { key: "webhooks.timeout", env: &["TESSERA_WEBHOOK_TIMEOUT"] },
    Setting { key: "webhooks.concurrency", env: &["TESSERA_WEBHOOK_CONCURRENCY"] },
    Setting { key: "webhooks.poll_interval", env: &["TESSERA_WEBHOOK_POLL_INTERVAL"] },
    Setting { key: "webhooks.allow_private_networks", env: &["TESSERA_WEBHOOKS_ALLOW_PRIVATE_NETWORKS"] },
    Setting { key: "jobs.enabled", env: &["TESSERA_JOBS_ENABLED"] },
    Setting { key: "jobs.revoke_expired_tokens.interval", env: &["TESSERA_JOB_REVOKE_EXPIRED_TOKENS_INTERVAL"] },
    Setting { key: "jobs.purge_old_logs.interval", env: &["TESSERA_JOB_PURGE_OLD_LOGS_INTERVAL"] },
    Setting { key: "jobs.rotate_expiring_tokens.interval", env: &["TESSERA_JOB_ROTATE_EXPIRING_TOKENS_INTERVAL"] },
    Setting { key: "jobs.resend_pending_webhooks.interval", env: &["TESSERA_JOB_RESEND_PENDING_WEBHOOKS_INTERVAL"] },
    Setting { key: "jobs.check_interval", env: &["TESSERA_JOB_CHECK_INTERVAL"] },
    Setting { key: "retention.audit", env: &["TESSERA_AUDIT_RETENTION"] },
    Setting { key: "retention.usage", env: &["TESSERA_USAGE_LOG_RETENTION"] },
    Setting { key: "retention.webhook_events", env: &["TESSERA_WEBHOOK_EVENT_RETENTION"] },
    Setting { key: "tokens.rotation_window", env: &["TESSERA_TOKEN_ROTATION_WINDOW"] },
    Setting { key: "cache.redis_uri", env: &["TESSERA_REDIS_URI", "REDIS_URI"] },
    Setting { key: "cache.store_tokens_in_clear", env: &["TESSERA_UPSTREAM_STORE_TOKENS_IN_CLEAR"] },
    Setting { key: "mfa.totp_key", env: &["TESSERA_TOTP_ENC_KEY", "TOTP_ENC_KEY"] },
    Setting { key: "mfa.totp_previous_keys", env: &["TESSERA_TOTP_ENC_KEY_PREVIOUS", "TOTP_ENC_KEY_PREVIOUS"] },
    Setting { key: "mfa.replay_ttl", env: &["TESSERA_TOTP_REPLAY_TTL", "TOTP_REPLAY_TTL"] },
    Setting { key: "mfa.issuer", env: &["TESSERA_TOTP_ISSUER"] },
    Setting { key: "mfa.algorithm", env: &["TESSERA_TOTP_ALGORITHM"] },
    Setting { key: "mfa.digits", env: &["TESSERA_TOTP_DIGITS"] },
    Setting { key: "mfa.max_failures", env: &["TESSERA_MFA_MAX_FAILURES"] },
    Setting { key: "mfa.lockout", env: &["TESSERA_MFA_LOCKOUT"] },
    Setting { key: "auth_codes.digits", env: &["TESSERA_AUTH_CODE_DIGITS"] },
    Setting { key: "auth_codes.ttl", env: &["TESSERA_AUTH_CODE_TTL"] },
    Setting { key: "auth_codes.max_attempts", env: &["TESSERA_AUTH_CODE_MAX_ATTEMPTS"] },
    Setting { key: "auth_codes.limit_per_subject", env: &["TESSERA_AUTH_CODE_LIMIT_PER_SUBJECT"] },
    Setting { key: "auth_codes.limit_per_destination", env: &["TESSERA_AUTH_CODE_LIMIT_PER_DESTINATION"] },
    Setting { key: "auth_codes.limit_window", env: &["TESSERA_AUTH_CODE_LIMIT_WINDOW"] },
    Setting { key: "delivery.smtp_url", env: &["TESSERA_SMTP_URL", "SMTP_URL"] },
    Setting { key: "delivery.from", env: &["TESSERA_SMTP_FROM", "SMTP_FROM"] },
    Setting { key: "delivery.sms_webhook_url", env: &["TESSERA_SMS_WEBHOOK_URL"] },
    Setting { key: "delivery.sms_webhook_token", env: &["TESSERA_SMS_WEBHOOK_TOKEN"] },
    Setting { key: "delivery.log_file", env: &["TESSERA_MESSAGE_LOG"] },
    Setting { key: "delivery.timeout", env: &["TESSERA_DELIVERY_TIMEOUT"] },
    Setting { key: "delivery.templates_dir", env: &["TESSERA_TEMPLATES_DIR"] },
    Setting { key: "delivery.default_locale", env: &["TESSERA_DEFAULT_LOCALE"] },
    Setting { key: "auth.issuer", env: &["TESSERA_ISSUER"] },
    Setting { key: "auth.audience", env: &["TESSERA_AUDIENCE"] },
    Setting { key: "auth.access_token_ttl", env: &["TESSERA_ACCESS_TOKEN_TTL"] },
    Setting { key: "auth.session_lifetime", env: &["TESSERA_SESSION_LIFETIME"] },
    Setting { key: "auth.session_idle_timeout", env: &["TESSERA_SESSION_IDLE_TIMEOUT"] },
    Setting { key: "auth.refresh_reuse_grace", env: &["TESSERA_REFRESH_REUSE_GRACE"] },
    Setting { key: "auth.session_device_binding", env: &["TESSERA_SESSION_DEVICE_BINDING"] },
    Setting { key: "auth.require_verified_email", env: &["TESSERA_REQUIRE_VERIFIED_EMAIL", "AUTH_REQUIRE_VERIFIED_EMAIL"] },
    Setting { key: "auth.password_min_length", env: &["TESSERA_PASSWORD_MIN_LENGTH"] },
    Setting { key: "auth.login_max_failures", env: &["TESSERA_LOGIN_MAX_FAILURES"] },
    Setting { key: "auth.login_ip_max_failures", env: &["TESSERA_LOGIN_IP_MAX_FAILURES"] },
    Setting { key: "auth.login_throttle_window", env: &["TESSERA_LOGIN_THROTTLE_WINDOW"] },
    Setting { key: "links.reset_ttl", env: &["TESSERA_RESET_TOKEN_TTL", "RESET_TOKEN_TTL"] },
    Setting { key: "links.verification_ttl", env: &["TESSERA_EMAIL_VERIFICATION_TOKEN_TTL", "EMAIL_VERIFICATION_TOKEN_TTL"] },
    Setting { key: "links.reset_url", env: &["TESSERA_PASSWORD_RESET_URL", "PASSWORD_RESET_URL"] },
    Setting { key: "links.verification_url", env: &["TESSERA_EMAIL_VERIFICATION_URL", "EMAIL_VERIFICATION_URL"] },
    Setting { key: "links.send_verification_on_signup", env: &["TESSERA_SEND_VERIFICATION_ON_SIGNUP"] },
    Setting { key: "links.requests_per_ip", env: &["TESSERA_LINK_REQUESTS_PER_IP"] },
    Setting { key: "links.requests_per_address", env: &["TESSERA_LINK_REQUESTS_PER_ADDRESS"] },
    Setting { key: "links.confirms_per_ip", env: &["TESSERA_LINK_CONFIRMS_PER_IP"] },
    Setting { key: "auth.signing_algorithm", env: &["TESSERA_SIGNING_ALGORITHM"] },
    Setting { key: "auth.jwks_max_age", env: &["TESSERA_JWKS_MAX_AGE"] },
    Setting { key: "auth.key_prepublish", env: &["TESSERA_SIGNING_KEY_PREPUBLISH"] },
    Setting { key: "auth.hash_threads", env: &["TESSERA_PASSWORD_HASH_THREADS"] },
    Setting { key: "auth.hash_queue", env: &["TESSERA_PASSWORD_HASH_QUEUE"] },
    Setting { key: "roles", env: &["TESSERA_ROLE_SCOPES"] },
    Setting { key: "clients.static", env: &["TESSERA_INTROSPECTION_CLIENTS", "INTROSPECTION_CLIENTS"] },
    Setting { key: "clients.mtls_allowed_cns", env: &["TESSERA_INTROSPECTION_MTLS_ALLOWED_CNS", "INTROSPECTION_MTLS_ALLOWED_CNS"] },
    Setting { key: "clients.auth_failure_limit_per_minute", env: &["TESSERA_CLIENT_AUTH_FAILURE_LIMIT"] },
    Setting { key: "clients.ws_ticket_ttl", env: &["TESSERA_WS_TICKET_TTL"] },
    Setting { key: "tls.cert", env: &["TESSERA_TLS_CERT"] },
    Setting { key: "tls.key", env: &["TESSERA_TLS_KEY"] },
    Setting { key: "tls.client_ca", env: &["TESSERA_TLS_CLIENT_CA"] },
    Setting { key: "tls.client_crl", env: &["TESSERA_TLS_CLIENT_CRL"] },
    Setting { key: "tls.handshake_timeout", env: &["TESSERA_TLS_HANDSHAKE_TIMEOUT"] },
    Setting { key: "browser.allowed_origins", env: &["TESSERA_ALLOWED_ORIGINS"] },
    Setting { key: "browser.csrf_token_ttl", env: &["TESSERA_CSRF_TOKEN_TTL"] },
    Setting { key: "events.max_streams", env: &["TESSERA_EVENTS_MAX_STREAMS"] },
    Setting { key: "events.poll_interval", env: &["TESSERA_EVENTS_POLL_INTERVAL"] },
    Setting { key: "rate_limits.login", env: &["TESSERA_RATE_LIMIT_LOGIN"] },
    Setting { key: "rate_limits.login_user", env: &["TESSERA_RATE_LIMIT_LOGIN_USER"] },
    Setting { key: "rate_limits.refresh", env: &["TESSERA_RATE_LIMIT_REFRESH"] },
    Setting { key: "rate_limits.refresh_user", env: &["TESSERA_RATE_LIMIT_REFRESH_USER"] },
    Setting { key: "rate_limits.invites", env: &["TESSERA_RATE_LIMIT_INVITES"] },
    Setting { key: "rate_limits.auth_codes", env: &["TESSERA_RATE_LIMIT_AUTH_CODES"] },
    Setting { key: "rate_limits.redis_prefix", env: &["TESSERA_RATE_LIMIT_REDIS_PREFIX"] },
];

/// Raw values by key, each with the name of where it came from.
pub(super) struct Layers {
    pub(super) values: BTreeMap<&'static str, (String, String)>,
}

impl Layers {
    pub(super) fn get(&self, key: &str) -> Option<(&str, &str)> {
        // A key missing from SETTINGS would silently read as "unset".
        debug_assert!(
            SETTINGS.iter().any(|s| s.key == key),
            "unknown setting {key}"
        );
        self.values
            .get(key)
            .map(|(v, src)| (v.as_str(), src.as_str()))
    }

    pub(super) fn parse<T>(
        &self,
        key: &str,
        default: T,
        parse: impl Fn(&str) -> Result<T, String>,
    ) -> Result<T, ConfigError> {
        match self.get(key) {
            None => Ok(default),
            Some((v, src)) => parse(v.trim()).map_err(|m| err(src, m)),
        }
    }

    /// A setting that is a duration longer than zero (intervals, timeouts).
    pub(super) fn interval(&self, key: &str, default: Duration) -> Result<Duration, ConfigError> {
        self.parse(key, default, positive_duration)
    }
}

pub fn parse_bool(v: &str) -> Result<bool, String> {
    match v.to_ascii_lowercase().as_str() {
        "1" | "true" | "yes" | "on" => Ok(true),
        "0" | "false" | "no" | "off" => Ok(false),
        _ => Err(format!("expected true or false, got {v:?}")),
    }
}

/// Durations like `90d`, `12h`, `30s`, `1h 30m`.
pub fn parse_duration(v: &str) -> Result<Duration, String> {
    humantime::parse_duration(v)
        .map_err(|_| format!("expected a duration such as 30s, 15m, 12h or 90d, got {v:?}"))
}

pub fn list(v: &str) -> Vec<String> {
    v.split(',')
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
        .collect()
}

/// Flattens a TOML table into dotted keys, rejecting unknown ones.
pub(super) fn flatten(
    table: &toml::Table,
    prefix: &str,
    file: &str,
    out: &mut BTreeMap<&'static str, (String, String)>,
) -> Result<(), ConfigError> {
    for (k, v) in table {
        let key = if prefix.is_empty() {
            k.clone()
        } else {
            format!("{prefix}.{k}")
        };
        if key == "upstreams" {
            continue;
        }
        let value = match v {
            // The issuer policy is a map of role -> grantable roles; it is
            // reduced to the same `role=a,b;…` form the variable uses.
            toml::Value::Table(t) if key == "invites.policy" => t
                .iter()
                .map(|(role, grants)| {
                    let list = match grants {
                        toml::Value::Array(a) => a
                            .iter()
                            .map(|g| g.as_str().map_or_else(|| g.to_string(), str::to_string))
                            .collect::<Vec<_>>()
                            .join(","),
                        other => other
                            .as_str()
                            .map_or_else(|| other.to_string(), str::to_string),
                    };
                    format!("{role}={list}")
                })
                .collect::<Vec<_>>()
                .join(";"),
            // `[roles.<role>] scopes = [...]`, reduced to the variable's
            // `role=a,b;…` form.
            toml::Value::Table(t) if key == "roles" => role_table(t, file)?,
            toml::Value::Table(t) => {
                flatten(t, &key, file, out)?;
                continue;
            }
            toml::Value::String(s) => s.clone(),
            toml::Value::Array(items) => items
                .iter()
                .map(|i| i.as_str().map_or_else(|| i.to_string(), str::to_string))
                .collect::<Vec<_>>()
                .join(","),
            other => other.to_string(),
        };
        let Some(setting) = SETTINGS.iter().find(|s| s.key == key) else {
            return Err(err(format!("{file}: {key}"), "unknown setting"));
        };
        out.insert(setting.key, (value, format!("{key} in {file}")));
    }
    Ok(())
}

/// `[roles]` as `role=a,b;role2=c`; each role is a table with `scopes`.
fn role_table(t: &toml::Table, file: &str) -> Result<String, ConfigError> {
    let mut parts = Vec::new();
    for (role, v) in t {
        let scopes = v
            .as_table()
            .and_then(|r| r.get("scopes"))
            .and_then(toml::Value::as_array)
            .ok_or_else(|| {
                err(
                    format!("roles.{role} in {file}"),
                    "expected a table with scopes = [\"scope\", ...]",
                )
            })?;
        let list: Vec<String> = scopes
            .iter()
            .map(|s| s.as_str().map_or_else(|| s.to_string(), str::to_string))
            .collect();
        parts.push(format!("{role}={}", list.join(",")));
    }
    Ok(parts.join(";"))
}

pub fn positive_duration(v: &str) -> Result<Duration, String> {
    let d = parse_duration(v)?;
    if d.is_zero() {
        Err("must be longer than zero".into())
    } else {
        Ok(d)
    }
}

/// `d`, unless it is longer than `max`: then `why`.
pub fn at_most(d: Duration, max: Duration, why: &str) -> Result<Duration, String> {
    if d > max {
        Err(why.to_string())
    } else {
        Ok(d)
    }
}

/// A whole or fractional number within `lo..=hi`; otherwise the error says
/// "expected {expected}, got …".
pub fn in_range<T: std::str::FromStr + PartialOrd>(
    v: &str,
    lo: T,
    hi: T,
    expected: &str,
) -> Result<T, String> {
    v.parse::<T>()
        .ok()
        .filter(|n| *n >= lo && *n <= hi)
        .ok_or_else(|| format!("expected {expected}, got {v:?}"))
}

/// A number within `lo..=hi`, the range named in the error.
pub fn number<T: std::str::FromStr + PartialOrd + std::fmt::Display>(
    v: &str,
    lo: T,
    hi: T,
) -> Result<T, String> {
    let expected = format!("a number {lo}-{hi}");
    in_range(v, lo, hi, &expected)
}

/// A std duration as a chrono one (the domain's time arithmetic).
pub fn chrono(d: Duration) -> Result<chrono::Duration, String> {
    chrono::Duration::from_std(d).map_err(|_| "too long".to_string())
}

/// The name of where `key` came from, or the key itself when it was not set.
pub(super) fn source_of<'a>(l: &'a Layers, key: &'a str) -> &'a str {
    l.get(key).map_or(key, |(_, src)| src)
}
