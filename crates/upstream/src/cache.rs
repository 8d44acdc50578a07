//! The lookup path: memory → Redis → login, each tier filling the ones before
//! it, with single flight (per process and, through a short Redis lock,
//! across replicas), early background refresh and retry after a 401.

use std::{
    collections::{BTreeMap, HashMap},
    future::Future,
    sync::{
        atomic::{AtomicI64, Ordering},
        Arc, Mutex, PoisonError, RwLock, RwLockReadGuard, RwLockWriteGuard,
    },
    time::{Duration, Instant},
};

use chrono::Utc;
use rand::RngCore;

use crate::{
    config::{check_user, CacheSettings, Upstream},
    error::{CallError, Unauthorized, UpstreamError},
    login::{self, LoginError, LoginOutcome},
    metrics::Metrics,
    record::{self, now_ms, Record, Sealing},
    redis_tier::RedisTier,
    token::{Tier, Token},
};

pub(crate) struct UpstreamState {
    pub upstream: Upstream,
    pub last_login: Mutex<Option<LoginOutcome>>,
}

/// One cached token with its deadlines precomputed in unix milliseconds, so a
/// memory hit is two integer comparisons.
pub(crate) struct Entry {
    pub token: Token,
    pub serve_until_ms: i64,
    /// `i64::MAX` while a background refresh runs (the CAS to it elects one refresher).
    refresh_after_ms: AtomicI64,
}

/// A per-key single-flight slot; holds the last failure so that waiters of a
/// failed login share its error instead of each logging in again.
type Flight = tokio::sync::Mutex<Option<(Instant, LoginError)>>;

/// The memory tier: api → user → entry.
pub(crate) type Memory = HashMap<String, HashMap<String, Arc<Entry>>>;

/// Back-off before a failed early refresh is tried again.
const REFRESH_RETRY_MS: i64 = 5_000;

pub(crate) struct Inner {
    pub upstreams: BTreeMap<String, UpstreamState>,
    /// api → user → entry. A std `RwLock` over a `HashMap` rather than
    /// dashmap/papaya: reads are an uncontended atomic add, the write lock is
    /// held only for an insert and never across an `.await`, lookups by
    /// `(&str, &str)` need no allocation thanks to the nesting, and it adds
    /// no dependency. The per-api maps are created up front.
    pub memory: RwLock<Memory>,
    pub flights: Mutex<HashMap<String, Arc<Flight>>>,
    pub redis: Option<Arc<RedisTier>>,
    pub sealing: Sealing,
    pub http: reqwest::Client,
    pub metrics: Arc<Metrics>,
    pub settings: CacheSettings,
}

/// The cache. Cheap to clone; clones share everything.
#[derive(Clone)]
pub struct TokenCache {
    pub(crate) inner: Arc<Inner>,
}

impl TokenCache {
    /// A valid token for `user` at upstream `api`: memory, then Redis, then a login.
    pub async fn get_token(&self, api: &str, user: &str) -> Result<Token, UpstreamError> {
        if let Some(t) = self.inner.memory_hit(api, user) {
            return Ok(t);
        }
        self.inner.fill(api, user, None).await
    }

    /// The configured default user of `api`, for callers that do not name one.
    pub fn default_user(&self, api: &str) -> Option<&str> {
        self.inner
            .upstreams
            .get(api)
            .map(|s| s.upstream.default_user.as_str())
    }

    /// Drops `rejected` (e.g. after the upstream answered 401 to it) from
    /// memory and Redis, unless it was already replaced, so the next lookup
    /// logs in again. Concurrent callers with the same rejected token cause one login.
    pub async fn invalidate(&self, api: &str, user: &str, rejected: &Token) {
        let inner = &self.inner;
        let removed = {
            let mut map = inner.write_memory();
            map.get_mut(api).is_some_and(|m| {
                let same = m.get(user).is_some_and(|e| e.token.same_secret(rejected));
                same && m.remove(user).is_some()
            })
        };
        if let Some(r) = &inner.redis {
            let key = record::key(api, user);
            if let Some(raw) = r.get(&key).await {
                let same = inner
                    .sealing
                    .decode(api, user, &raw)
                    .is_some_and(|rec| rec.token.expose() == rejected.expose());
                if same {
                    r.del(&key).await;
                }
            }
        }
        if removed {
            tracing::info!(
                upstream = api,
                user,
                "a cached token was rejected: dropped it"
            );
        }
    }

    /// Runs `call` with a token; if it fails with a 401-signalling error,
    /// invalidates that token, gets a fresh one and runs `call` once more.
    pub async fn call_with_token<T, E, F, Fut>(
        &self,
        api: &str,
        user: &str,
        mut call: F,
    ) -> Result<T, CallError<E>>
    where
        F: FnMut(Token) -> Fut,
        Fut: Future<Output = Result<T, E>>,
        E: Unauthorized,
    {
        let token = self.get_token(api, user).await.map_err(CallError::Token)?;
        match call(token.clone()).await {
            Err(e) if e.is_unauthorized() => {
                self.invalidate(api, user, &token).await;
                let fresh = self
                    .inner
                    .fill(api, user, Some(&token))
                    .await
                    .map_err(CallError::Token)?;
                call(fresh).await.map_err(CallError::Call)
            }
            other => other.map_err(CallError::Call),
        }
    }
}

impl Inner {
    /// The memory tier for reading. Poison is ignored: every write is a single
    /// insert, removal or retain, so the map stays whole after a panic elsewhere.
    pub(crate) fn read_memory(&self) -> RwLockReadGuard<'_, Memory> {
        self.memory.read().unwrap_or_else(PoisonError::into_inner)
    }

    /// The memory tier for writing; see [`Self::read_memory`] about poison.
    pub(crate) fn write_memory(&self) -> RwLockWriteGuard<'_, Memory> {
        self.memory.write().unwrap_or_else(PoisonError::into_inner)
    }

    /// The hot path: one read lock, two hash lookups, an `Arc` clone.
    pub(crate) fn memory_hit(self: &Arc<Self>, api: &str, user: &str) -> Option<Token> {
        let now = now_ms();
        let entry = {
            let map = self.read_memory();
            map.get(api)?.get(user)?.clone()
        };
        if now >= entry.serve_until_ms {
            tracing::debug!(upstream = api, user, "cached token reached its margin");
            return None;
        }
        self.metrics.hit_memory.inc();
        let due = entry.refresh_after_ms.load(Ordering::Relaxed);
        if now >= due
            && entry
                .refresh_after_ms
                .compare_exchange(due, i64::MAX, Ordering::AcqRel, Ordering::Relaxed)
                .is_ok()
        {
            self.spawn_refresh(api, user, entry.clone());
        }
        let mut t = entry.token.clone();
        t.tier = Tier::Memory;
        Some(t)
    }

    fn spawn_refresh(self: &Arc<Self>, api: &str, user: &str, entry: Arc<Entry>) {
        let Ok(rt) = tokio::runtime::Handle::try_current() else {
            entry.refresh_after_ms.store(0, Ordering::Relaxed);
            return;
        };
        let (inner, api, user) = (self.clone(), api.to_owned(), user.to_owned());
        rt.spawn(async move {
            tracing::debug!(upstream = %api, user = %user, "refreshing a token before its margin");
            match inner.fill(&api, &user, Some(&entry.token)).await {
                Ok(_) => inner.metrics.background_refreshes.inc(),
                Err(e) => {
                    tracing::warn!(upstream = %api, user = %user, error = %e, "early refresh failed: still serving the current token");
                    entry
                        .refresh_after_ms
                        .store(now_ms() + REFRESH_RETRY_MS, Ordering::Relaxed);
                }
            }
        });
    }

    fn flight(&self, api: &str, user: &str) -> Arc<Flight> {
        let mut flights = self.flights.lock().unwrap_or_else(PoisonError::into_inner);
        flights.entry(record::key(api, user)).or_default().clone()
    }

    /// Whether `candidate` may be served instead of `replacing` (the token being
    /// refreshed or that was rejected): a different token that lives at least as long.
    fn replaces(candidate: &Token, replacing: Option<&Token>) -> bool {
        replacing
            .is_none_or(|old| !candidate.same_secret(old) && candidate.expires_at >= old.expires_at)
    }

    /// The slow path, single-flighted per key. `replacing` is set for early
    /// refreshes and 401 retries: the current token must not come back.
    pub(crate) async fn fill(
        self: &Arc<Self>,
        api: &str,
        user: &str,
        replacing: Option<&Token>,
    ) -> Result<Token, UpstreamError> {
        let state = self
            .upstreams
            .get(api)
            .ok_or_else(|| UpstreamError::UnknownUpstream(api.into()))?;
        check_user(user).map_err(UpstreamError::InvalidUser)?;
        if !state.upstream.users.allows(user) {
            return Err(UpstreamError::UserNotAllowed(api.into()));
        }
        let flight = self.flight(api, user);
        let waiting_since = Instant::now();
        let mut slot = flight.lock().await;
        let result = self
            .fill_locked(state, user, replacing, waiting_since, &slot)
            .await;
        match &result {
            Ok(_) => *slot = None,
            Err(e) => *slot = Some((Instant::now(), e.clone())),
        }
        drop(slot);
        let token = result.map_err(|source| UpstreamError::Login {
            upstream: api.into(),
            source,
        })?;
        if replacing.is_none() {
            match token.tier {
                Tier::Memory => self.metrics.hit_memory.inc(),
                Tier::Redis => self.metrics.hit_redis.inc(),
                Tier::Login => self.metrics.misses.inc(),
            }
        }
        Ok(token)
    }

    async fn fill_locked(
        self: &Arc<Self>,
        state: &UpstreamState,
        user: &str,
        replacing: Option<&Token>,
        waiting_since: Instant,
        slot: &Option<(Instant, LoginError)>,
    ) -> Result<Token, LoginError> {
        let up = &state.upstream;
        // Whoever held the flight before us may have filled memory...
        if let Some(entry) = self.peek(&up.name, user) {
            if now_ms() < entry.serve_until_ms && Self::replaces(&entry.token, replacing) {
                let mut t = entry.token.clone();
                t.tier = Tier::Memory;
                return Ok(t);
            }
        }
        // ...or failed while we waited: share its error rather than retry at once.
        if let Some((at, err)) = slot {
            if *at >= waiting_since {
                return Err(err.clone());
            }
        }
        let key = record::key(&up.name, user);
        if let Some(t) = self.read_redis(up, &key, user, replacing).await {
            return Ok(t);
        }
        let Some(redis) = self.redis.as_ref().filter(|r| r.is_up()) else {
            return self.login(state, &key, user).await;
        };
        // Across replicas: a short lock so that about one of them logs in.
        let lock_key = format!("lock:{key}");
        let mut nonce = [0u8; 16];
        rand::thread_rng().fill_bytes(&mut nonce);
        let lock_value: String = nonce.iter().map(|b| format!("{b:02x}")).collect();
        let ttl_ms = self.settings.lock_ttl.as_millis() as u64;
        match redis.try_lock(&lock_key, &lock_value, ttl_ms).await {
            Some(true) => {
                // The previous holder may have published just before releasing.
                let result = match self.read_redis(up, &key, user, replacing).await {
                    Some(t) => Ok(t),
                    None => self.login(state, &key, user).await,
                };
                redis.unlock(&lock_key, &lock_value).await;
                result
            }
            Some(false) => {
                let deadline = Instant::now() + self.settings.lock_wait;
                while Instant::now() < deadline && redis.is_up() {
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    if let Some(t) = self.read_redis(up, &key, user, replacing).await {
                        return Ok(t);
                    }
                }
                tracing::debug!(upstream = %up.name, user, "another replica's login did not publish in time: logging in");
                self.login(state, &key, user).await
            }
            None => self.login(state, &key, user).await,
        }
    }

    fn peek(&self, api: &str, user: &str) -> Option<Arc<Entry>> {
        let map = self.read_memory();
        map.get(api)?.get(user).cloned()
    }

    async fn read_redis(
        &self,
        up: &Upstream,
        key: &str,
        user: &str,
        replacing: Option<&Token>,
    ) -> Option<Token> {
        let raw = self.redis.as_ref()?.get(key).await?;
        let rec = self.sealing.decode(&up.name, user, &raw)?;
        if Utc::now() >= rec.expires_at - up.margin {
            tracing::debug!(upstream = %up.name, user, "token in Redis reached its margin");
            return None;
        }
        let token = Token {
            secret: Arc::new(rec.token),
            expires_at: rec.expires_at,
            created_at: rec.created_at,
            tier: Tier::Redis,
        };
        if !Self::replaces(&token, replacing) {
            return None;
        }
        tracing::debug!(upstream = %up.name, user, "upstream token served from Redis");
        self.insert(up, user, token.clone());
        Some(token)
    }

    fn insert(&self, up: &Upstream, user: &str, token: Token) {
        let serve_until_ms = (token.expires_at - up.margin).timestamp_millis();
        let created = token.created_at.timestamp_millis().min(serve_until_ms);
        let fraction = self.settings.early_refresh;
        let refresh_after_ms = if fraction > 0.0 {
            serve_until_ms - ((serve_until_ms - created) as f64 * fraction) as i64
        } else {
            i64::MAX
        };
        let entry = Arc::new(Entry {
            token,
            serve_until_ms,
            refresh_after_ms: AtomicI64::new(refresh_after_ms),
        });
        let mut map = self.write_memory();
        if let Some(m) = map.get_mut(&up.name) {
            m.insert(user.to_owned(), entry);
        }
    }

    async fn login(
        &self,
        state: &UpstreamState,
        key: &str,
        user: &str,
    ) -> Result<Token, LoginError> {
        let up = &state.upstream;
        let started = Instant::now();
        let result = login::login(&self.http, &up.login, user).await;
        let elapsed = started.elapsed();
        self.metrics.login_duration.observe(elapsed.as_secs_f64());
        let now = Utc::now();
        let result = result.and_then(|f| {
            if f.expires_at - up.margin <= now {
                Err(LoginError::ExpiresTooSoon)
            } else {
                Ok(f)
            }
        });
        *state
            .last_login
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = Some(LoginOutcome {
            at: now,
            ok: result.is_ok(),
            error: result.as_ref().err().map(ToString::to_string),
            duration_ms: elapsed.as_millis() as u64,
        });
        let fetched = match result {
            Ok(f) => f,
            Err(e) => {
                self.metrics
                    .login_failures
                    .with_label_values(&[&up.name])
                    .inc();
                tracing::warn!(upstream = %up.name, user, error = %e, "login to upstream failed");
                return Err(e);
            }
        };
        self.metrics.logins.with_label_values(&[&up.name]).inc();
        let ttl = (fetched.expires_at - up.margin - now).num_seconds().max(1) as u64;
        let rec = Record {
            token: fetched.token,
            expires_at: fetched.expires_at,
            created_at: now,
        };
        let stored = match &self.redis {
            Some(r) if r.is_up() => {
                r.set_ex(key, &self.sealing.encode(&up.name, user, &rec), ttl)
                    .await
            }
            _ => false,
        };
        tracing::info!(upstream = %up.name, user, ttl_seconds = ttl, in_redis = stored, "logged in to upstream: token cached");
        let token = Token {
            secret: Arc::new(rec.token.clone()),
            expires_at: rec.expires_at,
            created_at: rec.created_at,
            tier: Tier::Login,
        };
        self.insert(up, user, token.clone());
        Ok(token)
    }

    /// Drops entries past their margin and idle single-flight slots.
    pub(crate) fn prune(&self) {
        let now = now_ms();
        {
            let mut map = self.write_memory();
            for users in map.values_mut() {
                users.retain(|_, e| e.serve_until_ms > now);
            }
        }
        let mut flights = self.flights.lock().unwrap_or_else(PoisonError::into_inner);
        // Only the map holds an idle flight; anyone else holding it is mid-lookup.
        flights.retain(|_, f| Arc::strong_count(f) > 1);
    }
}
