//! Redis failing under the cache: each test runs its OWN redis-server on a
//! free port (never the shared one), stops it mid-run and starts it again.

use std::{
    process::{Child, Command, Stdio},
    time::Duration,
};

use tessera_upstream::{RedisState, Tier};

use crate::common::*;

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Kills the server when the test ends, even on a failed assertion.
struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Starts redis-server on `port` (tests that call this declare
/// `Need::Command("redis-server")`).
async fn start_redis(port: u16) -> Server {
    let child = Command::new("redis-server")
        .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
        .args(["--save", "", "--appendonly", "no"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("redis-server starts");
    let server = Server(child);
    let url = format!("redis://127.0.0.1:{port}");
    for _ in 0..50 {
        if let Ok(c) = redis::Client::open(url.as_str()) {
            if let Ok(mut conn) = c.get_multiplexed_async_connection().await {
                if redis::cmd("PING")
                    .query_async::<String>(&mut conn)
                    .await
                    .is_ok()
                {
                    return server;
                }
            }
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("redis-server did not start on port {port}");
}

fn transitions(r: &prometheus::Registry, state: &str) -> f64 {
    metric(
        r,
        "tokens_upstream_redis_transitions_total",
        Some(("state", state)),
    )
}

async fn redis_going_away_never_fails_a_request_and_is_used_again_when_back() {
    let port = free_port();
    let server = start_redis(port).await;
    let url = format!("redis://127.0.0.1:{port}");
    let fake = fake_upstream().await;
    let api = unique("cpj");
    let c = cache(&api, &fake, Some(&url)).await;
    let registry = prometheus::Registry::new();
    c.register_metrics(&registry).unwrap();
    c.get_token(&api, "u0").await.unwrap();
    assert!(raw_get(&url, &format!("token:{api}:u0")).await.is_some());
    assert!(c.redis_up());

    drop(server);
    // Every request still succeeds: memory hits, and fresh logins for new users.
    for i in 1..20 {
        assert_eq!(c.get_token(&api, "u0").await.unwrap().tier, Tier::Memory);
        let t = c
            .get_token(&api, &format!("u{i}"))
            .await
            .expect("Redis being down never fails a request");
        assert_eq!(t.tier, Tier::Login);
    }
    assert!(!c.redis_up());
    let h = c.health_check().await;
    assert_eq!(h.redis.state, RedisState::Down);
    assert!(!h.healthy);
    assert_eq!(h.memory_entries, 20);

    // Same port, same cache: the health task notices and Redis is used again.
    let _server = start_redis(port).await;
    let mut back = false;
    for _ in 0..50 {
        tokio::time::sleep(Duration::from_millis(100)).await;
        if c.redis_up() {
            back = true;
            break;
        }
    }
    assert!(back, "the cache did not notice that Redis came back");
    // Each transition counted once, however many requests failed meanwhile.
    assert_eq!(transitions(&registry, "down"), 1.0);
    assert_eq!(transitions(&registry, "up"), 1.0);
    let t = c.get_token(&api, "after").await.unwrap();
    assert_eq!(t.tier, Tier::Login);
    assert!(
        raw_get(&url, &format!("token:{api}:after")).await.is_some(),
        "the fresh login was not written to Redis"
    );
    // And another instance reads it from there.
    let other = cache(&api, &fake, Some(&url)).await;
    assert_eq!(
        other.get_token(&api, "after").await.unwrap().tier,
        Tier::Redis
    );

    // Clearing everything (a private server: safe) walks all `token:*` keys.
    let cleared = c.clear_all_tokens(None).await.unwrap();
    assert_eq!(cleared.memory, 21);
    assert_eq!(cleared.redis, 1);
    assert!(raw_get(&url, &format!("token:{api}:after")).await.is_none());
}

async fn unreachable_redis_at_start_only_degrades() {
    let port = free_port(); // nothing listens there
    let fake = fake_upstream().await;
    let api = unique("cpj");
    let c = cache(&api, &fake, Some(&format!("redis://127.0.0.1:{port}"))).await;
    assert!(!c.redis_up());
    for _ in 0..3 {
        c.get_token(&api, "ana").await.unwrap();
    }
    assert_eq!(fake.count(), 1);
    assert_eq!(
        c.get_token_info(&api, "ana").await.unwrap().unwrap().tier,
        Tier::Memory
    );
    let cleared = c.clear_all_tokens(None).await.unwrap();
    assert_eq!((cleared.memory, cleared.redis), (1, 0));
}

async fn a_quick_restart_between_requests_is_absorbed() {
    let port = free_port();
    let server = start_redis(port).await;
    let url = format!("redis://127.0.0.1:{port}");
    let fake = fake_upstream().await;
    let api = unique("cpj");
    // No health check during the test: only the request path can notice.
    let settings = tessera_upstream::CacheSettings {
        health_interval: Duration::from_secs(3600),
        ..fast_settings()
    };
    let c = cache_with(&api, &fake, 60, Some(&url), settings).await;
    c.get_token(&api, "before").await.unwrap();
    drop(server);
    let _server = start_redis(port).await;
    // The kept connection is broken; the cache reconnects instead of degrading.
    assert_eq!(c.get_token(&api, "after").await.unwrap().tier, Tier::Login);
    assert!(c.redis_up());
    assert!(raw_get(&url, &format!("token:{api}:after")).await.is_some());
}

tessera_test_support::tests! {
    multi_thread:
        #[needs(Command("redis-server"))] redis_going_away_never_fails_a_request_and_is_used_again_when_back,
        unreachable_redis_at_start_only_degrades,
        #[needs(Command("redis-server"))] a_quick_restart_between_requests_is_absorbed;
}
