//! The cache end to end: a fake upstream that counts logins, and a real Redis
//! (`TESSERA_TEST_REDIS_URL`, or a local one). `harness = false`: the tests
//! that need Redis or redis-server say so, and tessera_test_support's harness
//! reports them as skipped when it is missing (in CI they fail).

mod breaker;
mod common;
mod failover;

use std::{
    sync::atomic::{AtomicUsize, Ordering},
    time::Duration,
};

use common::*;
use serde_json::Value;
use tessera_upstream::{CallError, LoginError, Tier, UpstreamError};

async fn memory_then_redis_then_login() {
    let (redis, fake, api) = with_redis("cpj").await;
    let first = cache(&api, &fake, Some(&redis)).await;
    let t = first.get_token(&api, "ana").await.unwrap();
    assert_eq!(t.tier, Tier::Login);
    for _ in 0..100 {
        let hit = first.get_token(&api, "ana").await.unwrap();
        assert_eq!(hit.tier, Tier::Memory);
        assert_eq!(hit.expose(), t.expose());
    }
    // A second process sharing Redis: served from Redis, no login.
    let second = cache(&api, &fake, Some(&redis)).await;
    let t2 = second.get_token(&api, "ana").await.unwrap();
    assert_eq!(t2.tier, Tier::Redis);
    assert_eq!(t2.expose(), t.expose());
    assert_eq!(
        second.get_token(&api, "ana").await.unwrap().tier,
        Tier::Memory
    );
    assert_eq!(fake.count(), 1);

    // Key and field layout; the token is encrypted at rest.
    let raw = raw_get(&redis, &format!("token:{api}:ana")).await.unwrap();
    assert!(!raw.contains(t.expose()), "the token is stored in clear");
    let v: Value = serde_json::from_str(&raw).unwrap();
    for f in [
        "token",
        "expires_at",
        "created_at",
        "api_name",
        "usuario",
        "user",
    ] {
        assert!(v.get(f).is_some(), "field {f} missing in {raw}");
    }
    assert_eq!(v["api_name"], api.as_str());
    assert_eq!(v["usuario"], "ana");
    assert_eq!(v["encrypted"], true);

    // Info without the token, from memory and from Redis.
    let info = first.get_token_info(&api, "ana").await.unwrap().unwrap();
    assert_eq!(info.tier, Tier::Memory);
    assert!(info.remaining_seconds > 3400 && info.remaining_seconds <= 3540);
    let json = serde_json::to_string(&info).unwrap();
    assert!(!json.contains(t.expose()));
    let third = cache(&api, &fake, Some(&redis)).await;
    let info = third.get_token_info(&api, "ana").await.unwrap().unwrap();
    assert_eq!(info.tier, Tier::Redis);
    // A listed name with nothing cached; an unlisted one is refused.
    assert!(third
        .get_token_info(&api, "u-nobody")
        .await
        .unwrap()
        .is_none());
    assert!(third.get_token_info(&api, "nobody").await.is_err());

    // Delete one, then clear the upstream: memory and Redis both.
    first.get_token(&api, "bob").await.unwrap();
    let d = first.delete_token(&api, "bob").await.unwrap();
    assert!(d.memory && d.redis);
    assert!(raw_get(&redis, &format!("token:{api}:bob")).await.is_none());
    let cleared = first.clear_all_tokens(Some(&api)).await.unwrap();
    assert_eq!((cleared.memory, cleared.redis), (1, 1));
    assert!(raw_get(&redis, &format!("token:{api}:ana")).await.is_none());
    assert_eq!(
        first.get_token(&api, "ana").await.unwrap().tier,
        Tier::Login
    );
}

async fn clear_storage_when_configured() {
    let (redis, fake, api) = with_redis("legacy").await;
    let upstreams = config(&api, &fake.base, 60).resolve_with(env).unwrap();
    let c = tessera_upstream::TokenCache::builder(upstreams)
        .redis_url(Some(redis.clone()))
        .store_tokens_in_clear()
        .build()
        .await
        .unwrap();
    let t = c.get_token(&api, "ana").await.unwrap();
    let raw = raw_get(&redis, &format!("token:{api}:ana")).await.unwrap();
    let v: Value = serde_json::from_str(&raw).unwrap();
    assert_eq!(v["token"], t.expose());
    assert_eq!(v["encrypted"], false);
    // Only this test's upstream: `None` would clear other tests' keys in the
    // shared Redis (it is tested on a private server in failover.rs).
    c.clear_all_tokens(Some(&api)).await.unwrap();
    // Redis without a keyring or an explicit choice is refused.
    let upstreams = config(&api, &fake.base, 60).resolve_with(env).unwrap();
    let err = tessera_upstream::TokenCache::builder(upstreams)
        .redis_url(Some(redis))
        .build()
        .await
        .err()
        .unwrap();
    assert!(matches!(err, tessera_upstream::BuildError::NoKeyring));
}

async fn expired_entries_log_in_again() {
    let redis = redis_url().await;
    let fake = fake_upstream().await;
    fake.expires_in.store(3, Ordering::SeqCst);
    let api = unique("cpj");
    let settings = refreshing_at(0.0);
    // Lifetime 3 s, margin 2 s: served for 1 s only.
    let c = cache_with(&api, &fake, 2, Some(&redis), settings.clone()).await;
    let t = c.get_token(&api, "ana").await.unwrap();
    assert_eq!(t.tier, Tier::Login);
    assert_eq!(c.get_token(&api, "ana").await.unwrap().tier, Tier::Memory);
    tokio::time::sleep(Duration::from_millis(1100)).await;
    // Inside the margin: neither memory nor Redis (whose TTL ended) serves it.
    let again = c.get_token(&api, "ana").await.unwrap();
    assert_eq!(again.tier, Tier::Login);
    assert_ne!(again.expose(), t.expose());
    assert_eq!(fake.count(), 2);
    // A second instance sees the new entry; an expired one would not be served.
    let other = cache_with(&api, &fake, 2, Some(&redis), settings).await;
    assert_eq!(
        other.get_token(&api, "ana").await.unwrap().expose(),
        again.expose()
    );
}

async fn a_hundred_concurrent_misses_make_one_login() {
    let fake = fake_upstream().await;
    let api = unique("cpj");
    let c = cache(&api, &fake, None).await;
    let tokens = concurrent_gets(&[c], &api, 100).await;
    assert_eq!(fake.count(), 1);
    assert_eq!(tokens.len(), 1);
}

async fn two_replicas_with_concurrent_misses_log_in_once() {
    let (fake, api, a, b) = two_replicas().await;
    let tokens = concurrent_gets(&[a, b], &api, 100).await;
    assert_eq!(
        fake.count(),
        1,
        "the Redis lock keeps replicas to one login"
    );
    assert_eq!(tokens.len(), 1);
}

async fn a_401_invalidates_and_retries_once() {
    let redis = redis_url().await;
    let fake = fake_upstream().await;
    let api = unique("cpj");
    let c = cache(&api, &fake, Some(&redis)).await;
    let first = c.get_token(&api, "ana").await.unwrap();
    fake.revoked
        .lock()
        .unwrap()
        .insert(first.expose().to_string());
    let http = reqwest::Client::new();
    let calls = AtomicUsize::new(0);
    let url = format!("{}/data", fake.base);
    let used = c
        .call_with_token(&api, "ana", |token| {
            calls.fetch_add(1, Ordering::SeqCst);
            let req = http.get(&url).bearer_auth(token.expose());
            async move {
                req.send().await?.error_for_status()?;
                Ok::<_, reqwest::Error>(token)
            }
        })
        .await
        .unwrap();
    assert_eq!(calls.load(Ordering::SeqCst), 2);
    assert_ne!(used.expose(), first.expose());
    assert_eq!(fake.count(), 2);
    // The replacement is what the cache serves now, in memory and Redis.
    assert_eq!(
        c.get_token(&api, "ana").await.unwrap().expose(),
        used.expose()
    );
    let other = cache(&api, &fake, Some(&redis)).await;
    assert_eq!(
        other.get_token(&api, "ana").await.unwrap().expose(),
        used.expose()
    );
    // A second 401 is returned to the caller, not retried forever.
    fake.revoked
        .lock()
        .unwrap()
        .insert(used.expose().to_string());
    calls.store(0, Ordering::SeqCst);
    fake.revoked
        .lock()
        .unwrap()
        .insert(format!("tok-ana-{}", fake.count() + 1));
    let err = c
        .call_with_token(&api, "ana", |token| {
            calls.fetch_add(1, Ordering::SeqCst);
            let req = http.get(&url).bearer_auth(token.expose());
            async move { req.send().await?.error_for_status().map(|_| ()) }
        })
        .await
        .unwrap_err();
    assert!(
        matches!(err, CallError::Call(e) if e.status() == Some(reqwest::StatusCode::UNAUTHORIZED))
    );
    assert_eq!(calls.load(Ordering::SeqCst), 2);
}

async fn early_refresh_happens_in_the_background() {
    let fake = fake_upstream().await;
    fake.expires_in.store(4, Ordering::SeqCst);
    let api = unique("cpj");
    let settings = refreshing_at(0.5);
    // Served for 3 s (4 s life, 1 s margin); refreshed during the last 1.5 s.
    let c = cache_with(&api, &fake, 1, None, settings).await;
    let t = c.get_token(&api, "ana").await.unwrap();
    tokio::time::sleep(Duration::from_millis(1600)).await;
    // The caller keeps the current token while the refresh runs.
    let during = c.get_token(&api, "ana").await.unwrap();
    assert_eq!(during.tier, Tier::Memory);
    assert_eq!(during.expose(), t.expose());
    let mut refreshed = None;
    for _ in 0..40 {
        tokio::time::sleep(Duration::from_millis(25)).await;
        let now = c.get_token(&api, "ana").await.unwrap();
        if now.expose() != t.expose() {
            refreshed = Some(now);
            break;
        }
    }
    let refreshed = refreshed.expect("no background refresh");
    assert_eq!(refreshed.tier, Tier::Memory);
    assert_eq!(fake.count(), 2);
}

async fn failed_logins_are_typed_shared_and_not_echoed() {
    let fake = fake_upstream().await;
    fake.failing.store(true, Ordering::SeqCst);
    let api = unique("cpj");
    let c = cache(&api, &fake, None).await;
    let tasks: Vec<_> = (0..20)
        .map(|_| {
            let (c, api) = (c.clone(), api.clone());
            tokio::spawn(async move { c.get_token(&api, "ana").await.unwrap_err() })
        })
        .collect();
    for t in tasks {
        let err = t.await.unwrap();
        assert!(
            matches!(
                &err,
                UpstreamError::Login {
                    source: LoginError::Status { status: 500 },
                    ..
                }
            ),
            "{err:?}"
        );
        let text = format!("{err} {err:?}");
        assert!(
            !text.contains("do-not-echo") && !text.contains("s3cret"),
            "{text}"
        );
    }
    assert_eq!(fake.count(), 1, "waiters share the leader's failure");
    let health = c.health_check().await;
    let h = health.upstreams.iter().find(|u| u.name == api).unwrap();
    let last = h.last_login.as_ref().unwrap();
    assert!(!last.ok);
    // The next request (no longer waiting on that flight) tries again.
    fake.failing.store(false, Ordering::SeqCst);
    assert_eq!(c.get_token(&api, "ana").await.unwrap().tier, Tier::Login);
    assert!(c
        .health_check()
        .await
        .upstreams
        .iter()
        .any(|u| u.name == api && u.last_login.as_ref().unwrap().ok));
}

async fn oauth2_client_credentials_logs_in() {
    let fake = fake_upstream().await;
    let api = unique("p");
    let c = cache(&api, &fake, None).await;
    let oauth = format!("{api}-oauth");
    let t = c.get_token(&oauth, "default").await.unwrap();
    assert!(t.expose().starts_with("at-"));
    assert!((t.expires_at - t.created_at).num_seconds() >= 3599);
    assert_eq!(
        c.get_token(&oauth, "default").await.unwrap().tier,
        Tier::Memory
    );
    assert_eq!(c.default_user(&oauth), Some("default"));
}

async fn bad_requests_and_listing() {
    let fake = fake_upstream().await;
    let api = unique("cpj");
    let c = cache(&api, &fake, None).await;
    assert_eq!(
        c.get_token("nope", "ana").await.unwrap_err(),
        UpstreamError::UnknownUpstream("nope".into())
    );
    assert!(matches!(
        c.get_token(&api, "").await,
        Err(UpstreamError::InvalidUser(_))
    ));
    assert!(matches!(
        c.get_token(&api, "a\nb").await,
        Err(UpstreamError::InvalidUser(_))
    ));
    assert!(c.clear_all_tokens(Some("nope")).await.is_err());
    // Names outside the `users` list (an upstream without one: its default
    // user only) are refused before any login, by every operation.
    let not_allowed = |api: &str| UpstreamError::UserNotAllowed(api.into());
    assert_eq!(
        c.get_token(&api, "mallory").await.unwrap_err(),
        not_allowed(&api)
    );
    assert_eq!(
        c.get_token_info(&api, "mallory").await.unwrap_err(),
        not_allowed(&api)
    );
    assert_eq!(
        c.delete_token(&api, "mallory").await.unwrap_err(),
        not_allowed(&api)
    );
    let oauth = format!("{api}-oauth");
    assert_eq!(
        c.get_token(&oauth, "ana").await.unwrap_err(),
        not_allowed(&oauth)
    );
    assert_eq!(fake.count(), 0);
    let list = c.upstreams();
    assert_eq!(list.len(), 2);
    assert_eq!(list[0].name, api);
    assert_eq!(list[0].default_user, "api");
    assert_eq!(list[1].users, vec!["default".to_string()]);
    let json = serde_json::to_value(&list).unwrap();
    assert_eq!(json[0]["kind"], "json_login");
    assert_eq!(json[1]["kind"], "oauth2_client_credentials");
    let health = serde_json::to_value(c.health_check().await).unwrap();
    assert_eq!(health["redis"]["state"], "not_configured");
    assert_eq!(health["healthy"], true);
}

async fn metrics_count_tiers_and_logins() {
    let (_fake, api, a, b) = two_replicas().await;
    let registry = prometheus::Registry::new();
    a.register_metrics(&registry).unwrap();
    let other = prometheus::Registry::new();
    b.register_metrics(&other).unwrap();
    a.get_token(&api, "ana").await.unwrap();
    a.get_token(&api, "ana").await.unwrap();
    b.get_token(&api, "ana").await.unwrap();
    let (memory, redis) = (Some(("tier", "memory")), Some(("tier", "redis")));
    let api_label = Some(("upstream", api.as_str()));
    let expected = [
        (&registry, "tokens_upstream_hits_total", memory, 1.0),
        (&registry, "tokens_upstream_misses_total", None, 1.0),
        (&registry, "tokens_upstream_logins_total", api_label, 1.0),
        (&other, "tokens_upstream_hits_total", redis, 1.0),
        (&other, "tokens_upstream_logins_total", None, 0.0),
        (&registry, "tokens_upstream_redis_degraded", None, 0.0),
    ];
    for (r, name, label, want) in expected {
        assert_eq!(metric(r, name, label), want, "{name} {label:?}");
    }
    let names: Vec<_> = registry
        .gather()
        .iter()
        .map(|f| f.get_name().to_string())
        .collect();
    for n in [
        "tokens_upstream_login_duration_seconds",
        "tokens_upstream_redis_errors_total",
        "tokens_upstream_login_failures_total",
    ] {
        assert!(names.iter().any(|x| x == n), "{n} missing");
    }
}

tessera_test_support::tests! {
    multi_thread:
        #[needs(Redis)] memory_then_redis_then_login,
        #[needs(Redis)] clear_storage_when_configured,
        #[needs(Redis)] expired_entries_log_in_again,
        a_hundred_concurrent_misses_make_one_login,
        #[needs(Redis)] two_replicas_with_concurrent_misses_log_in_once,
        #[needs(Redis)] a_401_invalidates_and_retries_once,
        early_refresh_happens_in_the_background,
        failed_logins_are_typed_shared_and_not_echoed,
        oauth2_client_credentials_logs_in,
        bad_requests_and_listing,
        #[needs(Redis)] metrics_count_tiers_and_logins;
}

fn main() -> std::process::ExitCode {
    let modules = [trials(), breaker::trials(), failover::trials()];
    tessera_test_support::harness::run(modules.into_iter().flatten())
}
