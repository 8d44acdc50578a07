//! Configuration: defaults, then an optional TOML file, then the environment,
//! then command-line flags, validated once at start-up.
//!
//! Every layer is reduced to the same string form, keyed by a setting name,
//! and remembers where each value came from; so a bad value anywhere stops
//! start-up with a message that names the exact variable, file key or flag.

use std::{
    collections::{BTreeMap, BTreeSet},
    net::SocketAddr,
    path::PathBuf,
    time::Duration,
};

use tessera_core::{
    api_token::ExpiryPolicy,
    invite::{InviteLimits, IssuerPolicy},
    scopes::ScopeRegistry,
    token_format::TokenFormat,
    webhook::RetrySchedule,
    SecretString,
};

pub use self::mfa::{MfaSettings, TotpKeys};
use crate::delivery::DeliverySettings;

/// A setting was missing or bad. `source` names it as the operator wrote it.
#[derive(Debug, thiserror::Error)]
#[error("{source_name}: {message}")]
pub struct ConfigError {
    pub source_name: String,
    pub message: String,
}

fn err(source_name: impl Into<String>, message: impl Into<String>) -> ConfigError {
    ConfigError {
        source_name: source_name.into(),
        message: message.into(),
    }
}

/// One known setting: its key in the TOML file and its environment names
/// (first match wins; legacy names users already have come after ours).
struct Setting {
    key: &'static str,
    env: &'static [&'static str],
}

// One line per setting reads as a table; keep rustfmt from unfolding it.
#[rustfmt::skip]
const SETTINGS: &[Setting] = &[
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
    Setting { key: "http.trust_proxy_headers", env: &["TESSERA_TRUST_PROXY_HEADERS"] },
    Setting { key: "tokens.prefix", env: &["TESSERA_TOKEN_PREFIX"] },
    Setting { key: "tokens.scopes", env: &["TESSERA_SCOPES"] },
    Setting { key: "tokens.default_ttl", env: &["TESSERA_TOKEN_DEFAULT_TTL"] },
    Setting { key: "tokens.max_ttl", env: &["TESSERA_TOKEN_MAX_TTL"] },
    Setting { key: "tokens.allow_never_expiring", env: &["TESSERA_TOKEN_ALLOW_NEVER_EXPIRING"] },
    Setting { key: "tokens.verify_requires_admin", env: &["TESSERA_VERIFY_REQUIRES_ADMIN"] },
    Setting { key: "tokens.verify_cache_ttl", env: &["TESSERA_VERIFY_CACHE_TTL"] },
    Setting { key: "tokens.usage_flush_interval", env: &["TESSERA_USAGE_FLUSH_INTERVAL"] },
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
    Setting { key: "jobs.enabled", env: &["TESSERA_JOBS_ENABLED"] },
    Setting { key: "jobs.revoke_expired_tokens.interval", env: &["TESSERA_JOB_REVOKE_EXPIRED_TOKENS_INTERVAL"] },
    Setting { key: "jobs.purge_old_logs.interval", env: &["TESSERA_JOB_PURGE_OLD_LOGS_INTERVAL"] },
    Setting { key: "jobs.rotate_expiring_tokens.interval", env: &["TESSERA_JOB_ROTATE_EXPIRING_TOKENS_INTERVAL"] },
    Setting { key: "jobs.resend_pending_webhooks.interval", env: &["TESSERA_JOB_RESEND_PENDING_WEBHOOKS_INTERVAL"] },
    Setting { key: "jobs.check_interval", env: &["TESSERA_JOB_CHECK_INTERVAL"] },
    Setting { key: "retention.audit", env: &["TESSERA_AUDIT_RETENTION"] },
    Setting { key: "retention.usage", env: &["TESSERA_USAGE_LOG_RETENTION"] },
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
];

/// Flags the CLI passes in; they override every other layer.
#[derive(Debug, Clone, Default)]
pub struct Overrides {
    pub listen: Option<String>,
    pub database_url: Option<String>,
    pub data_dir: Option<String>,
}

/// Where configuration comes from. `env` is injectable so tests need not
/// mutate the process environment.
pub struct Sources<'a> {
    pub file: Option<PathBuf>,
    pub env: &'a dyn Fn(&str) -> Option<String>,
    pub overrides: Overrides,
}

impl Sources<'_> {
    /// The real process environment, with `TESSERA_CONFIG` naming the file
    /// when `--config` was not given.
    pub fn from_process(file: Option<PathBuf>, overrides: Overrides) -> Sources<'static> {
        Sources {
            file: file.or_else(|| std::env::var_os("TESSERA_CONFIG").map(PathBuf::from)),
            env: &|name| std::env::var(name).ok(),
            overrides,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    Text,
    Json,
}

/// Where the encryption key came from; the embedded default may generate one.
#[derive(Debug, Clone)]
pub enum KeySource {
    Configured(SecretString),
    /// No key configured, SQLite: use (or create) this key file.
    File(PathBuf),
}

/// Validated configuration.
#[derive(Debug, Clone)]
pub struct Config {
    pub listen: SocketAddr,
    pub data_dir: PathBuf,
    /// Contains the password when one is configured: never log it.
    pub database_url: SecretString,
    pub encryption_key: KeySource,
    pub previous_keys: Vec<SecretString>,
    pub log_format: LogFormat,
    pub log_level: String,
    pub trust_proxy_headers: bool,
    pub tokens: TokenSettings,
    pub invites: InviteSettings,
    pub webhooks: WebhookSettings,
    pub jobs: JobSettings,
    /// `REDIS_URI`: the shared tier of the upstream token cache.
    pub redis_uri: Option<SecretString>,
    /// Store cached upstream tokens in clear in Redis (for old readers).
    pub upstream_tokens_in_clear: bool,
    /// The raw `[upstreams]` table, handed to the upstream cache as is.
    pub upstreams: Option<toml::Value>,
    pub mfa: MfaSettings,
    /// Where one-time auth codes are sent (SMTP, SMS webhook, or a log file).
    pub delivery: DeliverySettings,
}

#[derive(Debug, Clone)]
pub struct TokenSettings {
    pub format: TokenFormat,
    pub scopes: ScopeRegistry,
    pub expiry: ExpiryPolicy,
    pub verify_requires_admin: bool,
    pub verify_cache_ttl: Duration,
    pub usage_flush_interval: Duration,
}

#[derive(Debug, Clone)]
pub struct InviteSettings {
    pub policy: IssuerPolicy,
    /// Invites per issuer per rolling 24 hours; 0 disables the quota.
    pub daily_quota: i64,
    pub quota_exempt_roles: BTreeSet<String>,
    pub limits: InviteLimits,
    /// Failed validations/redemptions per client IP per minute; 0 disables.
    pub failure_limit_per_minute: u32,
}

#[derive(Debug, Clone)]
pub struct WebhookSettings {
    /// `TOKENS_WEBHOOK_URL`: an endpoint that receives every event.
    pub default_url: Option<String>,
    /// `TOKENS_WEBHOOK_SECRET` (`whsec_…`) for that endpoint; generated if unset.
    pub default_secret: Option<SecretString>,
    pub retry: RetrySchedule,
    pub timeout: Duration,
    pub concurrency: usize,
    pub poll_interval: Duration,
}

#[derive(Debug, Clone)]
pub struct JobSettings {
    pub enabled: bool,
    pub revoke_expired_tokens: Duration,
    pub purge_old_logs: Duration,
    pub rotate_expiring_tokens: Duration,
    pub resend_pending_webhooks: Duration,
    /// How often each replica checks whether a job's lease is free.
    pub check_interval: Duration,
    pub audit_retention: chrono::Duration,
    pub usage_retention: chrono::Duration,
    /// Tokens with automatic rotation get a successor this long before expiry.
    pub rotation_window: chrono::Duration,
}

/// Raw values by key, each with the name of where it came from.
struct Layers {
    values: BTreeMap<&'static str, (String, String)>,
}

impl Layers {
    fn get(&self, key: &str) -> Option<(&str, &str)> {
        // A key missing from SETTINGS would silently read as "unset".
        debug_assert!(
            SETTINGS.iter().any(|s| s.key == key),
            "unknown setting {key}"
        );
        self.values
            .get(key)
            .map(|(v, src)| (v.as_str(), src.as_str()))
    }

    fn parse<T>(
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
}

fn parse_bool(v: &str) -> Result<bool, String> {
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

fn list(v: &str) -> Vec<String> {
    v.split(',')
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
        .collect()
}

/// Flattens a TOML table into dotted keys, rejecting unknown ones.
fn flatten(
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

impl Config {
    pub fn load(sources: &Sources<'_>) -> Result<Self, ConfigError> {
        let mut values = BTreeMap::new();
        let mut upstreams = None;
        if let Some(path) = &sources.file {
            let name = path.display().to_string();
            let text = std::fs::read_to_string(path)
                .map_err(|e| err(&name, format!("cannot read the config file: {e}")))?;
            let table: toml::Table = text.parse().map_err(|e: toml::de::Error| {
                err(&name, format!("invalid TOML: {}", e.message()))
            })?;
            upstreams = table.get("upstreams").cloned();
            flatten(&table, "", &name, &mut values)?;
        }
        for s in SETTINGS {
            if let Some((name, v)) = s
                .env
                .iter()
                .find_map(|name| (sources.env)(name).map(|v| (*name, v)))
            {
                values.insert(s.key, (v, name.to_string()));
            }
        }
        let o = &sources.overrides;
        for (key, flag, v) in [
            ("listen", "--listen", &o.listen),
            ("database.url", "--database-url", &o.database_url),
            ("data_dir", "--data-dir", &o.data_dir),
        ] {
            if let Some(v) = v {
                values.insert(key, (v.clone(), flag.to_string()));
            }
        }
        let layers = Layers { values };
        Self::validate(&layers, upstreams)
    }

    fn validate(l: &Layers, upstreams: Option<toml::Value>) -> Result<Self, ConfigError> {
        let listen = l.parse("listen", SocketAddr::from(([127, 0, 0, 1], 8080)), |v| {
            v.parse()
                .map_err(|_| format!("expected an address such as 127.0.0.1:8080, got {v:?}"))
        })?;
        let data_dir = l.parse("data_dir", PathBuf::from("."), |v| {
            if v.is_empty() {
                Err("must not be empty".into())
            } else {
                Ok(PathBuf::from(v))
            }
        })?;
        let database_url = database_url(l, &data_dir)?;
        let is_sqlite = database_url.starts_with("sqlite:");
        let encryption_key = match l.get("encryption.key") {
            Some((v, src)) => {
                if v.chars().count() < tessera_core::crypto::MIN_KEY_LEN {
                    return Err(err(src, "must be at least 32 characters"));
                }
                KeySource::Configured(SecretString::new(v.to_string()))
            }
            None if is_sqlite => KeySource::File(data_dir.join("tessera.key")),
            None => {
                return Err(err(
                    "TESSERA_ENC_KEY",
                    "is required with PostgreSQL (at least 32 characters); \
                     every replica must share it",
                ))
            }
        };
        let previous_keys = match l.get("encryption.previous_keys") {
            None => Vec::new(),
            Some((v, src)) => {
                let keys = list(v);
                if keys
                    .iter()
                    .any(|k| k.chars().count() < tessera_core::crypto::MIN_KEY_LEN)
                {
                    return Err(err(
                        src,
                        "every previous key must be at least 32 characters",
                    ));
                }
                keys.into_iter().map(SecretString::new).collect()
            }
        };
        let log_format = l.parse("log.format", LogFormat::Text, |v| match v {
            "text" => Ok(LogFormat::Text),
            "json" => Ok(LogFormat::Json),
            _ => Err(format!("expected text or json, got {v:?}")),
        })?;
        let log_level = l.parse("log.level", "info".to_string(), |v| {
            tracing_subscriber::EnvFilter::try_new(v)
                .map(|_| v.to_string())
                .map_err(|_| {
                    format!("expected a log filter such as info or tessera=debug, got {v:?}")
                })
        })?;
        let trust_proxy_headers = l.parse("http.trust_proxy_headers", false, parse_bool)?;
        let delivery = mfa::delivery_settings(l, &data_dir)?;
        Ok(Self {
            listen,
            data_dir,
            database_url: SecretString::new(database_url),
            encryption_key,
            previous_keys,
            log_format,
            log_level,
            trust_proxy_headers,
            tokens: sections::token_settings(l)?,
            invites: sections::invite_settings(l)?,
            webhooks: sections::webhook_settings(l)?,
            jobs: sections::job_settings(l)?,
            redis_uri: l
                .get("cache.redis_uri")
                .filter(|(v, _)| !v.trim().is_empty())
                .map(|(v, src)| {
                    let v = v.trim();
                    if v.starts_with("redis://")
                        || v.starts_with("rediss://")
                        || v.starts_with("redis+unix://")
                    {
                        Ok(SecretString::new(v.to_string()))
                    } else {
                        Err(err(src, "must be a redis:// or rediss:// URL"))
                    }
                })
                .transpose()?,
            upstream_tokens_in_clear: l.parse("cache.store_tokens_in_clear", false, parse_bool)?,
            upstreams,
            mfa: mfa::mfa_settings(l)?,
            delivery,
        })
    }

    /// The database URL with any password masked, for logs.
    pub fn database_url_for_logs(&self) -> String {
        mask_password(self.database_url.expose())
    }
}

fn positive_duration(v: &str) -> Result<Duration, String> {
    let d = parse_duration(v)?;
    if d.is_zero() {
        Err("must be longer than zero".into())
    } else {
        Ok(d)
    }
}

/// `DATABASE_URL` wins; otherwise `DB_DRIVER` and the `DB_*` parts; otherwise
/// the embedded default, `tessera.db` in the data directory.
fn database_url(l: &Layers, data_dir: &std::path::Path) -> Result<String, ConfigError> {
    if let Some((url, src)) = l.get("database.url") {
        return match tessera_store::Backend::of_url(url) {
            Some(_) => Ok(url.to_string()),
            None => Err(err(src, "must start with sqlite:// or postgres://")),
        };
    }
    let driver = l.parse("database.driver", "sqlite".to_string(), |v| {
        match v.to_ascii_lowercase().as_str() {
            "sqlite" | "sqlite3" => Ok("sqlite".into()),
            "postgres" | "postgresql" | "pgsql" => Ok("postgres".into()),
            _ => Err(format!("expected sqlite or postgres, got {v:?}")),
        }
    })?;
    if driver == "sqlite" {
        let file = l.parse("database.name", data_dir.join("tessera.db"), |v| {
            Ok(PathBuf::from(v))
        })?;
        return Ok(format!("sqlite://{}", file.display()));
    }
    let host = l.parse("database.host", "127.0.0.1".to_string(), |v| {
        if v.is_empty() || v.contains(['/', '@', '?', '#', ' ']) {
            Err(format!("expected a host name or address, got {v:?}"))
        } else {
            Ok(v.to_string())
        }
    })?;
    let port = l.parse("database.port", 5432u16, |v| {
        v.parse::<u16>()
            .ok()
            .filter(|p| *p != 0)
            .ok_or_else(|| format!("expected a port number 1-65535, got {v:?}"))
    })?;
    let user = l.parse("database.username", "postgres".to_string(), |v| {
        Ok(v.to_string())
    })?;
    let password = l.get("database.password").map(|(v, _)| v.to_string());
    let name = l.parse("database.name", "tessera".to_string(), |v| {
        if v.is_empty() {
            Err("must not be empty".into())
        } else {
            Ok(v.to_string())
        }
    })?;
    let auth = match password {
        Some(p) => format!("{}:{}", encode(&user), encode(&p)),
        None => encode(&user),
    };
    Ok(format!("postgres://{auth}@{host}:{port}/{}", encode(&name)))
}

/// Percent-encodes everything but unreserved characters (RFC 3986).
fn encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

fn mask_password(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_string();
    };
    match rest.split_once('@') {
        Some((auth, host)) if auth.contains(':') => {
            let user = auth.split(':').next().unwrap_or_default();
            format!("{scheme}://{user}:***@{host}")
        }
        _ => url.to_string(),
    }
}

mod mfa;
mod sections;
#[cfg(test)]
mod tests;
