//! How fast a cached token is served: a memory hit (the hot path, meant to
//! stay well under 1 µs) and a Redis hit (skipped when Redis is unreachable).

use std::{
    future::Future,
    pin::pin,
    task::{Context, Poll, Waker},
    time::Duration,
};

use axum::{routing::post, Json, Router};
use criterion::{criterion_group, criterion_main, Criterion};
use serde_json::json;
use tessera_core::crypto::Keyring;
use tessera_upstream::{Tier, TokenCache, UpstreamsConfig, KEYRING_PURPOSE};

async fn fake_upstream() -> String {
    let app = Router::new().route(
        "/auth",
        post(|| async { Json(json!({"token": "bench-token-0123456789", "expires_in": 86_400})) }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    base
}

async fn cache(base: &str, redis: Option<String>) -> TokenCache {
    let config = UpstreamsConfig::from_toml_str(&format!(
        "[upstreams.bench]\nkind = \"json_login\"\nurl = \"{base}/auth\"\nbody = {{ login = \"{{user}}\" }}\ntoken_pointer = \"/token\"\nexpires_in_pointer = \"/expires_in\"\nusers = [\"*\"]\n"
    ))
    .unwrap();
    TokenCache::builder(config.resolve().unwrap())
        .redis_url(redis)
        .keyring(
            Keyring::new("bench-key-0123456789abcdef0123456789", &[], KEYRING_PURPOSE).unwrap(),
        )
        .build()
        .await
        .unwrap()
}

/// A memory hit completes on its first poll; polling it directly measures
/// the cache rather than an executor's scheduling.
fn poll_once<F: Future>(f: F) -> F::Output {
    let mut f = pin!(f);
    match f.as_mut().poll(&mut Context::from_waker(Waker::noop())) {
        Poll::Ready(v) => v,
        Poll::Pending => panic!("a memory hit must not wait"),
    }
}

async fn redis_reachable(url: &str) -> bool {
    let Ok(c) = redis::Client::open(url) else {
        return false;
    };
    matches!(
        tokio::time::timeout(Duration::from_secs(2), c.get_multiplexed_async_connection()).await,
        Ok(Ok(_))
    )
}

fn benches(c: &mut Criterion) {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let base = rt.block_on(fake_upstream());

    let memory = rt.block_on(cache(&base, None));
    rt.block_on(memory.get_token("bench", "ana")).unwrap();
    let _guard = rt.enter(); // early refresh may spawn; it needs a runtime
    c.bench_function("memory_hit", |b| {
        b.iter(|| {
            let t = poll_once(memory.get_token("bench", "ana")).unwrap();
            debug_assert_eq!(t.tier, Tier::Memory);
            t
        })
    });

    let url = std::env::var("TESSERA_TEST_REDIS_URL")
        .ok()
        .filter(|u| !u.is_empty())
        .unwrap_or_else(|| "redis://127.0.0.1:6379".into());
    if !rt.block_on(redis_reachable(&url)) {
        eprintln!("skipping the redis_hit benchmark: {url} is unreachable");
        return;
    }
    let user = format!("bench-{}", std::process::id());
    let shared = rt.block_on(cache(&base, Some(url)));
    rt.block_on(shared.get_token("bench", &user)).unwrap();
    c.bench_function("redis_hit", |b| {
        b.to_async(&rt).iter(|| async {
            // Drop the memory copy so the lookup goes to Redis (GET + decrypt + fill memory).
            shared.evict_from_memory("bench", &user);
            let t = shared.get_token("bench", &user).await.unwrap();
            assert_eq!(t.tier, Tier::Redis);
            t
        })
    });
    rt.block_on(shared.delete_token("bench", &user)).unwrap();
}

criterion_group!(cache_benches, benches);
criterion_main!(cache_benches);
