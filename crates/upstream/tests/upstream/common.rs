//! Shared test fixtures: a fake upstream (axum on 127.0.0.1:0) that counts
//! logins, caches built against it, and the Redis to test with (probed by
//! tessera_test_support's harness).

use std::{
    collections::HashSet,
    sync::{
        atomic::{AtomicBool, AtomicI64, AtomicUsize, Ordering},
        Arc, Mutex,
    },
    time::Duration,
};

use axum::{
    extract::State,
    http::{HeaderMap, StatusCode},
    routing::{get, post},
    Form, Json, Router,
};
use serde_json::{json, Value};
use tessera_core::crypto::Keyring;
use tessera_upstream::{CacheSettings, TokenCache, UpstreamsConfig, KEYRING_PURPOSE};

pub const KEY: &str = "upstream-test-key-0123456789abcdef0123";

#[derive(Clone, Default)]
pub struct Fake {
    pub base: String,
    pub logins: Arc<AtomicUsize>,
    /// `expires_in` the fake answers with, in seconds.
    pub expires_in: Arc<AtomicI64>,
    /// While set, logins answer HTTP 500 with a body that must never be echoed.
    pub failing: Arc<AtomicBool>,
    /// Tokens `/data` answers 401 to.
    pub revoked: Arc<Mutex<HashSet<String>>>,
}

impl Fake {
    pub fn count(&self) -> usize {
        self.logins.load(Ordering::SeqCst)
    }
}

async fn json_login(State(f): State<Fake>, Json(body): Json<Value>) -> (StatusCode, Json<Value>) {
    assert_eq!(
        body["password"], "s3cret",
        "credentials come from the environment"
    );
    if f.failing.load(Ordering::SeqCst) {
        f.logins.fetch_add(1, Ordering::SeqCst);
        return (
            StatusCode::INTERNAL_SERVER_ERROR,
            Json(json!({"error": "do-not-echo"})),
        );
    }
    let n = f.logins.fetch_add(1, Ordering::SeqCst) + 1;
    // A slow login widens the window in which concurrent misses pile up.
    tokio::time::sleep(Duration::from_millis(20)).await;
    let user = body["login"].as_str().unwrap();
    (
        StatusCode::OK,
        Json(
            json!({"token": format!("tok-{user}-{n}"), "expires_in": f.expires_in.load(Ordering::SeqCst)}),
        ),
    )
}

async fn oauth_token(
    State(f): State<Fake>,
    Form(form): Form<Vec<(String, String)>>,
) -> (StatusCode, Json<Value>) {
    let get = |k: &str| form.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str());
    let ok = get("grant_type") == Some("client_credentials")
        && get("client_id") == Some("tessera")
        && get("client_secret") == Some("partner-secret")
        && get("scope") == Some("read");
    if !ok {
        return (
            StatusCode::UNAUTHORIZED,
            Json(json!({"error": "invalid_client"})),
        );
    }
    let n = f.logins.fetch_add(1, Ordering::SeqCst) + 1;
    (
        StatusCode::OK,
        Json(
            json!({"access_token": format!("at-{n}"), "token_type": "Bearer", "expires_in": 3600}),
        ),
    )
}

async fn data(State(f): State<Fake>, headers: HeaderMap) -> StatusCode {
    let token = headers
        .get("authorization")
        .and_then(|h| h.to_str().ok())
        .and_then(|h| h.strip_prefix("Bearer "))
        .unwrap_or_default();
    if f.revoked.lock().unwrap().contains(token) {
        StatusCode::UNAUTHORIZED
    } else {
        StatusCode::OK
    }
}

pub async fn fake_upstream() -> Fake {
    let mut f = Fake {
        expires_in: Arc::new(AtomicI64::new(3600)),
        ..Fake::default()
    };
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    f.base = format!("http://{}", listener.local_addr().unwrap());
    let app = Router::new()
        .route("/auth", post(json_login))
        .route("/oauth/token", post(oauth_token))
        .route("/data", get(data))
        .with_state(f.clone());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    f
}

/// An upstream name no other (parallel) test uses, so Redis keys never collide.
pub fn unique(prefix: &str) -> String {
    format!("{prefix}-{}", uuid::Uuid::new_v4().simple())
}

pub fn config(api: &str, base: &str, margin: u64) -> UpstreamsConfig {
    UpstreamsConfig::from_toml_str(&format!(
        r#"
[upstreams.{api}]
kind = "json_login"
url = "{base}/auth"
body = {{ login = "{{user}}", password = "${{CPJ_PASSWORD}}" }}
token_pointer = "/token"
expires_in_pointer = "/expires_in"
margin_seconds = {margin}
default_user = "api"
users = ["api", "ana", "bob", "before", "after", "u*"]

[upstreams.{api}-oauth]
kind = "oauth2_client_credentials"
token_url = "{base}/oauth/token"
client_id = "tessera"
client_secret = "${{PARTNER_CLIENT_SECRET}}"
scope = "read"
"#
    ))
    .unwrap()
}

pub fn env(name: &str) -> Option<String> {
    match name {
        "CPJ_PASSWORD" => Some("s3cret".into()),
        "PARTNER_CLIENT_SECRET" => Some("partner-secret".into()),
        _ => None,
    }
}

pub fn fast_settings() -> CacheSettings {
    CacheSettings {
        redis_timeout: Duration::from_secs(2),
        // Short, so the failover tests see Redis used again within seconds.
        redis_breaker: Duration::from_millis(500),
        health_interval: Duration::from_millis(200),
        ..CacheSettings::default()
    }
}

/// [`fast_settings`] with this early-refresh fraction (0 disables it).
pub fn refreshing_at(early_refresh: f64) -> CacheSettings {
    CacheSettings {
        early_refresh,
        ..fast_settings()
    }
}

pub async fn cache_with(
    api: &str,
    fake: &Fake,
    margin: u64,
    redis: Option<&str>,
    settings: CacheSettings,
) -> TokenCache {
    let upstreams = config(api, &fake.base, margin).resolve_with(env).unwrap();
    TokenCache::builder(upstreams)
        .settings(settings)
        .redis_url(redis.map(str::to_string))
        .keyring(Keyring::new(KEY, &[], KEYRING_PURPOSE).unwrap())
        .build()
        .await
        .unwrap()
}

pub async fn cache(api: &str, fake: &Fake, redis: Option<&str>) -> TokenCache {
    cache_with(api, fake, 60, redis, fast_settings()).await
}

/// The Redis to test against (`TESSERA_TEST_REDIS_URL` or a local one); a
/// test that calls this declares `Need::Redis`, so the harness has checked
/// that it answers.
pub async fn redis_url() -> String {
    tessera_test_support::redis_url().await
}

/// A plain client's view of a key, bypassing the cache.
pub async fn raw_get(url: &str, key: &str) -> Option<String> {
    let mut c = redis::Client::open(url)
        .unwrap()
        .get_multiplexed_async_connection()
        .await
        .unwrap();
    redis::cmd("GET")
        .arg(key)
        .query_async(&mut c)
        .await
        .unwrap()
}

/// The Redis URL, a fake upstream and a fresh upstream name starting with
/// `prefix`.
pub async fn with_redis(prefix: &str) -> (String, Fake, String) {
    let redis = redis_url().await;
    (redis, fake_upstream().await, unique(prefix))
}

/// Two caches sharing one Redis and one fake upstream, as two replicas would.
pub async fn two_replicas() -> (Fake, String, TokenCache, TokenCache) {
    let (redis, fake, api) = with_redis("cpj").await;
    let a = cache(&api, &fake, Some(&redis)).await;
    let b = cache(&api, &fake, Some(&redis)).await;
    (fake, api, a, b)
}

/// `n` concurrent lookups of user `ana`, spread over `caches` in turn; the
/// distinct tokens they got.
pub async fn concurrent_gets(caches: &[TokenCache], api: &str, n: usize) -> HashSet<String> {
    let tasks: Vec<_> = (0..n)
        .map(|i| {
            let (c, api) = (caches[i % caches.len()].clone(), api.to_string());
            tokio::spawn(
                async move { c.get_token(&api, "ana").await.unwrap().expose().to_string() },
            )
        })
        .collect();
    let mut tokens = HashSet::new();
    for t in tasks {
        tokens.insert(t.await.unwrap());
    }
    tokens
}

/// The sum of a metric's series in `r` (counter or gauge), optionally only
/// those with the label `(name, value)`.
pub fn metric(r: &prometheus::Registry, name: &str, label: Option<(&str, &str)>) -> f64 {
    r.gather()
        .iter()
        .filter(|f| f.get_name() == name)
        .flat_map(|f| f.get_metric().to_vec())
        .filter(|m| {
            label.is_none_or(|(k, v)| {
                m.get_label()
                    .iter()
                    .any(|l| l.get_name() == k && l.get_value() == v)
            })
        })
        .map(|m| m.get_counter().get_value() + m.get_gauge().get_value())
        .sum()
}
