//! Start-up: turn a validated [`Config`] into running services. Shared by
//! `serve` and the admin commands, so both see the same database, keys and
//! rules.

use std::{io::Write, path::Path, sync::Arc};

use rand::{distributions::Alphanumeric, rngs::OsRng, Rng};
use tessera_core::{
    crypto::{CryptoError, KeyedHasher, Keyring},
    SecretString,
};
use tessera_store::{Backend, Store, StoreError};

use crate::{
    config::{BrowserSettings, Config, KeySource},
    metrics::Metrics,
    service::{
        background::BackgroundWriter,
        clients::{ClientDeps, ClientService},
        events::EventStreamService,
        hash_pool::HashPool,
        keys::KeyService,
        links::{LinkDeps, LinkService, ADDRESS_HASH_PURPOSE},
        passwords::Passwords,
        rate_limit::{redis::RedisStore, RateLimits},
        sessions::SessionService,
        tokens::{DeviceKeys, DEVICE_HASH_PURPOSE, SESSION_DEVICE_PURPOSE},
        users::UserService,
        ws_tickets::WsTicketService,
        AuditService, AuthCodeService, InviteService, MfaService, TokenService, WebhookService,
    },
};

/// Why start-up failed; each message tells the operator what to do.
#[derive(Debug, thiserror::Error)]
pub enum StartupError {
    #[error("cannot open the database ({url}): {source}")]
    Database {
        url: String,
        #[source]
        source: StoreError,
    },
    #[error("the database schema is behind this version (pending migrations: {pending:?}); run `tessera migrate` first")]
    SchemaBehind { pending: Vec<i64> },
    #[error("encryption key: {0}")]
    Key(String),
    #[error("{0}")]
    Upstreams(String),
    /// Names `TOTP_ENC_KEY` (missing or wrong for the stored secrets).
    #[error("{0}")]
    Totp(String),
    #[error("message delivery: {0}")]
    Delivery(String),
}

/// An error and its causes on one line, each said once: a message that
/// already quotes its cause does not repeat it. `serve` and `config check`
/// print a refusal through this, so they print the same line.
pub fn describe(error: &(dyn std::error::Error + 'static)) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let part = cause.to_string();
        if !text.contains(&part) {
            text.push_str(": ");
            text.push_str(&part);
        }
        source = cause.source();
    }
    text
}

/// Everything a request or an admin command needs.
pub struct Services {
    pub store: Arc<dyn Store>,
    pub tokens: TokenService,
    pub invites: InviteService,
    pub webhooks: WebhookService,
    pub mfa: Arc<MfaService>,
    pub auth_codes: AuthCodeService,
    pub keys: Arc<KeyService>,
    pub sessions: Arc<SessionService>,
    pub users: UserService,
    /// OAuth2 clients: who may introspect, revoke and redeem tickets.
    pub clients: Arc<ClientService>,
    /// WebSocket tickets and the connections they open.
    pub ws_tickets: WsTicketService,
    /// Password reset and e-mail verification by mailed links.
    pub links: LinkService,
    /// Reading the audit log, client details opened.
    pub audit: AuditService,
    /// The event stream for gateways (`GET /v1/events/stream`).
    pub events: EventStreamService,
    /// Keys for the dispatcher: endpoint secrets and sealed payloads.
    pub webhook_keyring: Keyring,
    pub outbox_keyring: Keyring,
    /// The upstream token cache (empty when no `[upstreams]` are configured).
    pub upstream: tessera_upstream::TokenCache,
    pub background: Arc<BackgroundWriter>,
    pub metrics: Arc<Metrics>,
    /// Seals client IPs and user agents in the audit log.
    pub audit_keyring: Keyring,
    /// Browser front ends: the allowed origins and the CSRF token key.
    pub browser: Browser,
    /// The rate-limit engine every limit shares (in Redis when `REDIS_URI`
    /// is set): route classes, failure limits, per-token limits.
    pub rate_limits: Arc<RateLimits>,
}

/// What the CSRF guard, `GET /csrf` and CORS need: the allowed origins, and
/// the key (derived from the server key) that signs CSRF tokens, so any
/// replica checks a token another one made, with nothing stored.
pub struct Browser {
    pub settings: BrowserSettings,
    pub csrf_key: KeyedHasher,
}

impl Browser {
    fn new(config: &Config, key: &SecretString) -> Result<Self, StartupError> {
        Ok(Self {
            settings: config.browser.clone(),
            csrf_key: KeyedHasher::new(key.expose(), "csrf-token")
                .map_err(|e| StartupError::Key(e.to_string()))?,
        })
    }
}

impl Services {
    /// Opens the database and checks its schema. On SQLite pending migrations
    /// are applied automatically, so a fresh file just works; on PostgreSQL
    /// only `tessera migrate` changes the schema.
    pub async fn open(config: &Config) -> Result<Self, StartupError> {
        let key = load_key(config)?;
        let previous = previous_keys(config);
        let key_error = |e: CryptoError| StartupError::Key(e.to_string());
        let keyring =
            |purpose: &str| Keyring::new(key.expose(), &previous, purpose).map_err(key_error);
        let audit_keyring = keyring("audit")?;
        let store = open_store(config).await?;
        let metrics = Arc::new(Metrics::new());
        let background = background_writer(&key, &store, &metrics)?;
        let rate_limits = rate_limits(config, &key, &metrics)?;
        let common = Common {
            store: &store,
            background: &background,
            metrics: &metrics,
            rate_limits: &rate_limits,
        };
        let tokens =
            token_service(config, &key, keyring("successor")?, &common).map_err(key_error)?;
        let outbox_keyring = keyring("outbox")?;
        let webhook_keyring = keyring("webhook-secret")?;
        let webhooks = WebhookService::new(store.clone(), webhook_keyring.clone())
            .allowing_private_networks(config.webhooks.allow_private_networks);
        let upstream_keys = keyring(tessera_upstream::KEYRING_PURPOSE)?;
        let upstream = upstream_cache(config, upstream_keys, &metrics).await?;
        let all_keys: Vec<&str> = std::iter::once(key.expose())
            .chain(previous.iter().map(String::as_str))
            .collect();
        let messenger = crate::messaging::Messenger::new(&config.delivery)
            .map_err(|e| StartupError::Delivery(e.to_string()))?;
        let deps = PeopleDeps {
            store: &store,
            metrics: &metrics,
            messenger: &messenger,
            address_hasher: KeyedHasher::new(key.expose(), ADDRESS_HASH_PURPOSE)
                .map_err(key_error)?,
            rate_limits: &rate_limits,
            session_devices: DeviceKeys::derive(key.expose(), &previous, SESSION_DEVICE_PURPOSE)
                .map_err(key_error)?,
        };
        let people = people_services(config, deps, &keyring).await?;
        let invites = invite_service(config, &all_keys, &outbox_keyring, &people.links, &common)
            .map_err(key_error)?;
        let destinations = keyring("auth-code-destination")?;
        let auth_codes = auth_code_service(config, &all_keys, destinations, messenger, &common)?;
        let clients = client_service(config, key.expose(), &common).map_err(key_error)?;
        let ws_tickets = ws_ticket_service(config, &key, &common)?;
        Ok(Self {
            clients,
            ws_tickets,
            events: event_stream_service(config, &store, &outbox_keyring, &metrics),
            audit: AuditService::new(store.clone(), audit_keyring.clone()),
            store,
            tokens,
            invites,
            webhooks,
            mfa: people.mfa,
            auth_codes,
            keys: people.keys,
            sessions: people.sessions,
            users: people.users,
            links: people.links,
            webhook_keyring,
            outbox_keyring,
            upstream,
            background,
            metrics,
            audit_keyring,
            browser: Browser::new(config, &key)?,
            rate_limits,
        })
    }
}

/// The rate-limit engine: in Redis when `REDIS_URI` is set (keys hashed
/// under a key derived from the server key), else in this process.
fn rate_limits(
    config: &Config,
    key: &SecretString,
    metrics: &Arc<Metrics>,
) -> Result<Arc<RateLimits>, StartupError> {
    let settings = config.rate_limits.clone();
    let shared = match &config.redis_uri {
        None => None,
        Some(url) => {
            let hasher = KeyedHasher::new(key.expose(), "rate-limit-key")
                .map_err(|e| StartupError::Key(e.to_string()))?;
            let store = RedisStore::new(
                url.expose(),
                &settings.redis_prefix,
                hasher,
                metrics.clone(),
            )
            .map_err(|e| StartupError::Upstreams(format!("REDIS_URI: {e}")))?;
            Some(store)
        }
    };
    Ok(Arc::new(RateLimits::new(settings, shared, metrics.clone())))
}

impl Services {
    /// What `serve` refuses beyond [`Services::open`]: stored TOTP secrets
    /// the configured keys cannot open. Only commands that read or write
    /// TOTP secrets run it (`serve`, `mfa rekey`) besides `config check`, so
    /// a missing `TOTP_ENC_KEY` does not stop `tessera token list`.
    pub async fn check_totp_keys(&self) -> Result<(), StartupError> {
        self.mfa.check_keys().await.map_err(StartupError::Totp)
    }
}

/// What most services are built on.
struct Common<'a> {
    store: &'a Arc<dyn Store>,
    background: &'a Arc<BackgroundWriter>,
    metrics: &'a Arc<Metrics>,
    rate_limits: &'a Arc<RateLimits>,
}

/// API tokens, their failure limit on the shared rate-limit engine; device
/// ids are hashed under keys derived from the server key (and the previous
/// ones, so bindings survive a key rotation).
fn token_service(
    config: &Config,
    key: &SecretString,
    successor_keyring: Keyring,
    c: &Common<'_>,
) -> Result<TokenService, CryptoError> {
    Ok(TokenService::new(
        c.store.clone(),
        config.tokens.clone(),
        successor_keyring,
        DeviceKeys::derive(key.expose(), &previous_keys(config), DEVICE_HASH_PURPOSE)?,
        c.background.clone(),
        c.metrics.clone(),
    )
    .with_rate_limits(c.rate_limits.clone()))
}

/// Invites: codes hashed under every key, sign-up mails, the shared limits.
fn invite_service(
    config: &Config,
    all_keys: &[&str],
    outbox_keyring: &Keyring,
    links: &LinkService,
    c: &Common<'_>,
) -> Result<InviteService, CryptoError> {
    Ok(InviteService::new(
        c.store.clone(),
        config.invites.clone(),
        all_keys,
        outbox_keyring.clone(),
        c.background.clone(),
        c.metrics.clone(),
    )?
    .with_signup_links(links.clone())
    .with_rate_limits(c.rate_limits.clone()))
}

/// OAuth2 client authentication and the client registry; secrets are
/// hashed under a key derived from the server key.
fn client_service(
    config: &Config,
    key: &str,
    c: &Common<'_>,
) -> Result<Arc<ClientService>, tessera_core::crypto::CryptoError> {
    let hasher = KeyedHasher::new(key, crate::service::clients::SECRET_HASH_PURPOSE)?;
    Ok(Arc::new(ClientService::new(
        config.clients.clone(),
        ClientDeps {
            hasher: Arc::new(hasher),
            store: c.store.clone(),
            background: c.background.clone(),
            metrics: c.metrics.clone(),
            rate_limits: c.rate_limits.clone(),
            cache_ttl: config.tokens.verify_cache_ttl,
        },
    )))
}

/// The event stream reads the outbox, and opens its sealed payloads.
fn event_stream_service(
    config: &Config,
    store: &Arc<dyn Store>,
    outbox_keyring: &Keyring,
    metrics: &Arc<Metrics>,
) -> EventStreamService {
    EventStreamService::new(
        store.clone(),
        outbox_keyring.clone(),
        config.events.clone(),
        metrics.clone(),
    )
}

/// WebSocket tickets: in Redis when `REDIS_URI` is set, else in the database.
fn ws_ticket_service(
    config: &Config,
    key: &SecretString,
    c: &Common<'_>,
) -> Result<WsTicketService, StartupError> {
    let hasher = KeyedHasher::new(key.expose(), crate::service::ws_tickets::HASH_PURPOSE)
        .map_err(|e| StartupError::Key(e.to_string()))?;
    WsTicketService::new(
        c.store.clone(),
        config.redis_uri.as_ref().map(|u| u.expose()),
        config.clients.ws_ticket_ttl,
        hasher,
        c.background.clone(),
        c.metrics.clone(),
    )
    .map_err(|e| StartupError::Upstreams(format!("REDIS_URI: {e}")))
}

/// One-time auth codes and the messenger that sends them.
fn auth_code_service(
    config: &Config,
    all_keys: &[&str],
    destinations: Keyring,
    messenger: crate::messaging::Messenger,
    c: &Common<'_>,
) -> Result<AuthCodeService, StartupError> {
    AuthCodeService::new(
        c.store.clone(),
        config.mfa.clone(),
        all_keys,
        destinations,
        messenger,
        c.metrics.clone(),
        c.rate_limits.clone(),
    )
    .map_err(|e| StartupError::Key(e.to_string()))
}

/// Sessions for people: signing keys, the password pool, sessions, users,
/// and the mailed links that reset passwords and verify addresses.
struct People {
    mfa: Arc<MfaService>,
    keys: Arc<KeyService>,
    sessions: Arc<SessionService>,
    users: UserService,
    links: LinkService,
}

/// What the people services are built from, besides the configuration.
struct PeopleDeps<'a> {
    store: &'a Arc<dyn Store>,
    metrics: &'a Arc<Metrics>,
    messenger: &'a crate::messaging::Messenger,
    /// Keys the per-address limit of link requests.
    address_hasher: KeyedHasher,
    rate_limits: &'a Arc<RateLimits>,
    /// Hash the device ids sessions are bound to.
    session_devices: DeviceKeys,
}

async fn people_services(
    config: &Config,
    deps: PeopleDeps<'_>,
    keyring: &dyn Fn(&str) -> Result<Keyring, StartupError>,
) -> Result<People, StartupError> {
    let PeopleDeps {
        store,
        metrics,
        messenger,
        address_hasher,
        rate_limits,
        session_devices,
    } = deps;
    let mfa = &Arc::new(
        MfaService::new(store.clone(), config.mfa.clone(), metrics.clone())
            .map_err(|e| StartupError::Totp(format!("TOTP_ENC_KEY: {e}")))?,
    );
    let auth = &config.auth;
    let keys = KeyService::open(store.clone(), keyring("signing-key")?, auth.clone())
        .await
        .map_err(|e| StartupError::Key(format!("JWT signing keys: {e}")))?;
    let policy = tessera_core::password::PasswordPolicy::new(auth.password_min_length, 128)
        .map_err(|e| StartupError::Key(format!("TESSERA_PASSWORD_MIN_LENGTH: {e}")))?;
    let pool = Arc::new(HashPool::new(auth.hash_threads, auth.hash_queue));
    let passwords = Arc::new(Passwords::new(
        policy,
        pool,
        auth.issuer.clone(),
        metrics.clone(),
    ));
    let keys = Arc::new(keys);
    let sessions = Arc::new(SessionService::new(
        store.clone(),
        auth.clone(),
        keys.clone(),
        passwords.clone(),
        mfa.clone(),
        keyring("refresh-successor")?,
        metrics.clone(),
        config.tokens.verify_cache_ttl,
        rate_limits.clone(),
        session_devices,
    ));
    let links = LinkService::new(
        config.links.clone(),
        LinkDeps {
            store: store.clone(),
            passwords: passwords.clone(),
            sessions: sessions.clone(),
            messenger: messenger.clone(),
            address_hasher,
            metrics: metrics.clone(),
            rate_limits: rate_limits.clone(),
            issuer: config.mfa.issuer.clone(),
        },
    );
    let users = UserService::new(
        store.clone(),
        passwords,
        sessions.clone(),
        // The same keys as `Services::audit_keyring`: exports open what it sealed.
        keyring("audit")?,
        links.clone(),
    );
    Ok(People {
        mfa: mfa.clone(),
        keys,
        sessions,
        users,
        links,
    })
}

/// The writer of usage counters and buffered audit rows; its row keys come
/// from the server key.
fn background_writer(
    key: &SecretString,
    store: &Arc<dyn Store>,
    metrics: &Arc<Metrics>,
) -> Result<Arc<BackgroundWriter>, StartupError> {
    let row_keys = KeyedHasher::new(key.expose(), "audit-row-key")
        .map_err(|e| StartupError::Key(e.to_string()))?;
    Ok(Arc::new(BackgroundWriter::new(
        store.clone(),
        metrics.clone(),
        row_keys,
    )))
}

/// The previous encryption keys, which still open older data.
fn previous_keys(config: &Config) -> Vec<String> {
    config
        .previous_keys
        .iter()
        .map(|k| k.expose().to_string())
        .collect()
}

/// Connects to the database and makes sure its schema is current: SQLite
/// is migrated in place, PostgreSQL only checked.
async fn open_store(config: &Config) -> Result<Arc<dyn Store>, StartupError> {
    let db_error = |source| StartupError::Database {
        url: config.database_url_for_logs(),
        source,
    };
    let store = tessera_store::connect(config.database_url.expose())
        .await
        .map_err(db_error)?;
    if store.backend() == Backend::Sqlite {
        let applied = store.migrate().await.map_err(db_error)?;
        if !applied.is_empty() {
            tracing::info!(?applied, "applied migrations to the SQLite database");
        }
    } else {
        let status = store.schema_status().await.map_err(db_error)?;
        if !status.is_current() {
            return Err(StartupError::SchemaBehind {
                pending: status.pending,
            });
        }
    }
    Ok(store)
}

/// Builds the upstream token cache from `[upstreams]` and `REDIS_URI`.
async fn upstream_cache(
    config: &Config,
    keyring: Keyring,
    metrics: &Metrics,
) -> Result<tessera_upstream::TokenCache, StartupError> {
    let upstreams = match &config.upstreams {
        Some(table) => tessera_upstream::UpstreamsConfig::from_toml(table.clone())
            .and_then(|c| c.resolve())
            .map_err(|e| StartupError::Upstreams(e.to_string()))?,
        None => Vec::new(),
    };
    let mut builder = tessera_upstream::TokenCache::builder(upstreams)
        .redis_url(config.redis_uri.as_ref().map(|u| u.expose().to_string()));
    builder = if config.upstream_tokens_in_clear {
        builder.store_tokens_in_clear()
    } else {
        builder.keyring(keyring)
    };
    let cache = builder
        .build()
        .await
        .map_err(|e| StartupError::Upstreams(format!("upstream token cache: {e}")))?;
    cache
        .register_metrics(&metrics.registry)
        .map_err(|e| StartupError::Upstreams(format!("upstream metrics: {e}")))?;
    Ok(cache)
}

/// The configured key, or on the embedded default the key file in the data
/// directory, generated (mode 0600) on first use.
fn load_key(config: &Config) -> Result<SecretString, StartupError> {
    match &config.encryption_key {
        KeySource::Configured(k) => Ok(k.clone()),
        KeySource::File(path) => read_or_create_key_file(path),
    }
}

fn read_or_create_key_file(path: &Path) -> Result<SecretString, StartupError> {
    let shown = path.display();
    match std::fs::read_to_string(path) {
        Ok(text) => {
            let key = text.trim().to_string();
            if key.chars().count() < tessera_core::crypto::MIN_KEY_LEN {
                return Err(StartupError::Key(format!(
                    "{shown} holds fewer than 32 characters; fix it or set TESSERA_ENC_KEY"
                )));
            }
            Ok(SecretString::new(key))
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            if let Some(dir) = path.parent() {
                std::fs::create_dir_all(dir).map_err(|e| {
                    StartupError::Key(format!("cannot create {}: {e}", dir.display()))
                })?;
            }
            let key: String = OsRng
                .sample_iter(&Alphanumeric)
                .take(48)
                .map(char::from)
                .collect();
            let mut opts = std::fs::OpenOptions::new();
            opts.write(true).create_new(true);
            #[cfg(unix)]
            std::os::unix::fs::OpenOptionsExt::mode(&mut opts, 0o600);
            match opts.open(path) {
                Ok(mut f) => {
                    f.write_all(key.as_bytes())
                        .and_then(|_| f.sync_all())
                        .map_err(|e| StartupError::Key(format!("cannot write {shown}: {e}")))?;
                    // Info, not a warning: expected on a first start. Admin
                    // commands, which log warnings only, print a note instead.
                    tracing::info!(
                        path = %shown,
                        "generated a new encryption key (no TESSERA_ENC_KEY set); back this file up: \
                         without it encrypted audit fields cannot be read"
                    );
                    Ok(SecretString::new(key))
                }
                // Another process created it first: use theirs.
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                    read_or_create_key_file(path)
                }
                Err(e) => Err(StartupError::Key(format!("cannot create {shown}: {e}"))),
            }
        }
        Err(e) => Err(StartupError::Key(format!("cannot read {shown}: {e}"))),
    }
}
