//! Configuration: defaults, then an optional TOML file, then the environment,
//! then command-line flags, validated once at start-up.
//!
//! Every layer is reduced to the same string form, keyed by a setting name,
//! and remembers where each value came from; so a bad value anywhere stops
//! start-up with a message that names the exact variable, file key or flag.

use std::{collections::BTreeMap, net::SocketAddr, path::PathBuf};

use tessera_core::SecretString;

use self::layers::{err, flatten, list, parse_bool, Layers, SETTINGS};
pub use self::{
    auth::AuthSettings,
    browser::{normalize_origin, BrowserSettings},
    clients::{ClientSettings, StaticClient, TlsSettings},
    connections::ConnectionSettings,
    events::EventStreamSettings,
    layers::{parse_duration, ConfigError},
    links::{LinkBase, LinkSettings},
    mfa::{MfaSettings, TotpKeys},
    proxies::ProxySettings,
    rate_limits::RateLimitSettings,
    sections::{InviteSettings, JobSettings, TokenSettings, WebhookSettings},
};
use crate::messaging::DeliverySettings;

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
    /// `TESSERA_TRUSTED_PROXIES` (or the legacy `TESSERA_TRUST_PROXY_HEADERS`).
    pub proxies: ProxySettings,
    /// Timeouts and the connection cap (`http.*`).
    pub connections: ConnectionSettings,
    pub tokens: TokenSettings,
    pub invites: InviteSettings,
    pub webhooks: WebhookSettings,
    pub jobs: JobSettings,
    /// `REDIS_URI`: the shared tier of the upstream token cache, the
    /// shared rate-limit store, the WebSocket ticket store.
    pub redis_uri: Option<SecretString>,
    /// Store cached upstream tokens in clear in Redis (for old readers).
    pub upstream_tokens_in_clear: bool,
    /// The raw `[upstreams]` table, handed to the upstream cache as is.
    pub upstreams: Option<toml::Value>,
    pub mfa: MfaSettings,
    /// Sessions for people: JWTs, refresh rotation, login throttling.
    pub auth: AuthSettings,
    /// OAuth2 clients: `INTROSPECTION_CLIENTS`, mTLS CNs, WebSocket tickets.
    pub clients: ClientSettings,
    /// `TESSERA_TLS_*`: serve HTTPS (and accept client certificates).
    pub tls: Option<TlsSettings>,
    /// Where one-time auth codes are sent (SMTP, SMS webhook, or a log file).
    pub delivery: DeliverySettings,
    /// Password-reset and e-mail verification links.
    pub links: LinkSettings,
    /// Browser front ends: `TESSERA_ALLOWED_ORIGINS`, CSRF tokens.
    pub browser: BrowserSettings,
    /// The event stream for gateways (`events.*`).
    pub events: EventStreamSettings,
    /// The request-rate limits of the sensitive routes (`[rate_limits]`).
    pub rate_limits: RateLimitSettings,
    /// Settings that are set but have no effect (a `DB_*` part beside
    /// `DATABASE_URL`, say): `serve` logs them and `config check` prints them.
    pub warnings: Vec<String>,
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
        let database = database::database_choice(l, &data_dir)?;
        let database_url = database.url;
        let is_sqlite = database_url.starts_with("sqlite:");
        let (encryption_key, previous_keys) = encryption_keys(l, is_sqlite, &data_dir)?;
        let (log_format, log_level) = log_settings(l)?;
        let proxies = proxies::proxy_settings(l)?;
        let delivery = mfa::delivery_settings(l, &data_dir)?;
        let clients = clients::client_settings(l)?;
        let auth = auth::auth_settings(l)?;
        let links = links::link_settings(l, auth.require_verified_email)?;
        let connections = connections::connection_settings(l)?;
        let events = events::event_stream_settings(l, connections.idle_timeout)?;
        let warnings = [database.ignored, clients.warnings()].concat();
        Ok(Self {
            listen,
            data_dir,
            database_url: SecretString::new(database_url),
            encryption_key,
            previous_keys,
            log_format,
            log_level,
            proxies,
            connections,
            tokens: sections::token_settings(l)?,
            invites: sections::invite_settings(l)?,
            webhooks: sections::webhook_settings(l)?,
            jobs: sections::job_settings(l)?,
            redis_uri: redis_uri(l)?,
            upstream_tokens_in_clear: l.parse("cache.store_tokens_in_clear", false, parse_bool)?,
            upstreams,
            mfa: mfa::mfa_settings(l)?,
            auth,
            clients,
            tls: clients::tls_settings(l)?,
            delivery,
            links,
            browser: browser::browser_settings(l)?,
            events,
            rate_limits: rate_limits::rate_limit_settings(l)?,
            warnings,
        })
    }

    /// The database URL with any password masked, for logs.
    pub fn database_url_for_logs(&self) -> String {
        database::mask_password(self.database_url.expose())
    }
}

/// The encryption key (or, on SQLite without one, the key file) and the
/// previous keys that still decrypt older data.
fn encryption_keys(
    l: &Layers,
    is_sqlite: bool,
    data_dir: &std::path::Path,
) -> Result<(KeySource, Vec<SecretString>), ConfigError> {
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
    Ok((encryption_key, previous_keys))
}

fn log_settings(l: &Layers) -> Result<(LogFormat, String), ConfigError> {
    let log_format = l.parse("log.format", LogFormat::Text, |v| match v {
        "text" => Ok(LogFormat::Text),
        "json" => Ok(LogFormat::Json),
        _ => Err(format!("expected text or json, got {v:?}")),
    })?;
    let log_level = l.parse("log.level", "info".to_string(), |v| {
        log_filter(v).map(|_| v.to_string()).ok_or_else(|| {
            format!(
                "expected a log filter such as info or info,tessera_server=debug \
                 (levels and target=level directives; span and field filters are refused), \
                 got {v:?}"
            )
        })
    })?;
    Ok((log_format, log_level))
}

/// A log filter (`TESSERA_LOG`, `RUST_LOG`): comma-separated `level` and
/// `target=level` directives, in ASCII letters, digits and `_ : . , = -`.
/// Two fuzz findings (`config_values`) in tracing-subscriber 0.3's filter
/// parser set this bound: it panics on some non-ASCII directives (it slices
/// inside a character), and a span-field filter (`[span{field=/regex/}]`)
/// compiles its regex into a DFA that can take exponential time, so one
/// setting could hang start-up.
pub fn log_filter(v: &str) -> Option<tracing_subscriber::EnvFilter> {
    let plain = |b: u8| b.is_ascii_alphanumeric() || b"_:.,=- ".contains(&b);
    if !v.bytes().all(plain) {
        return None;
    }
    tracing_subscriber::EnvFilter::try_new(v).ok()
}

/// `REDIS_URI`: the shared tier of the upstream token cache, where the
/// rate limits are shared and WebSocket tickets kept; blank is unset.
fn redis_uri(l: &Layers) -> Result<Option<SecretString>, ConfigError> {
    l.get("cache.redis_uri")
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
        .transpose()
}

mod auth;
mod browser;
mod clients;
mod connections;
mod database;
mod events;
mod layers;
mod links;
mod mfa;
pub mod parsers;
mod proxies;
pub mod rate_limits;
mod sections;
#[cfg(test)]
mod tests;
