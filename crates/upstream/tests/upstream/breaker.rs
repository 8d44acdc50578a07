//! The circuit breaker over a hung Redis (issue 11, item 5), without ever
//! stopping the shared Redis: a local proxy forwards to it until told to
//! hang, after which it accepts and reads but never answers, as a Redis
//! stopped with SIGSTOP does. Told to forward again, new connections work.

use std::{
    sync::{
        atomic::{AtomicBool, Ordering},
        Arc,
    },
    time::{Duration, Instant},
};

use tessera_upstream::{BreakerState, CacheSettings, RedisState, Tier};
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::{TcpListener, TcpStream},
};

use crate::common::*;

/// A TCP proxy in front of `target` that can be made to hang.
struct Proxy {
    url: String,
    hang: Arc<AtomicBool>,
}

/// Copies `from` to `to` until either closes; once `hang` is set, swallows
/// what it reads and sends nothing more, holding the connection open.
async fn pipe(
    mut from: tokio::net::tcp::OwnedReadHalf,
    mut to: tokio::net::tcp::OwnedWriteHalf,
    hang: Arc<AtomicBool>,
) {
    let mut buf = vec![0u8; 16 * 1024];
    loop {
        let n = match from.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => n,
        };
        if hang.load(Ordering::SeqCst) {
            // Hold both halves: the peer sees a connection that never answers.
            std::future::pending::<()>().await;
        }
        if to.write_all(&buf[..n]).await.is_err() {
            return;
        }
    }
}

async fn proxy(target: &str) -> Proxy {
    let target = target
        .trim_start_matches("redis://")
        .trim_end_matches('/')
        .to_string();
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("redis://{}", listener.local_addr().unwrap());
    let hang = Arc::new(AtomicBool::new(false));
    let flag = hang.clone();
    tokio::spawn(async move {
        loop {
            let Ok((client, _)) = listener.accept().await else {
                return;
            };
            let (flag, target) = (flag.clone(), target.clone());
            tokio::spawn(async move {
                if flag.load(Ordering::SeqCst) {
                    // Accepted, never answered (the kernel accepts for a stopped process too).
                    let _held = client;
                    std::future::pending::<()>().await;
                    return;
                }
                let Ok(server) = TcpStream::connect(&target).await else {
                    return;
                };
                let (cr, cw) = client.into_split();
                let (sr, sw) = server.into_split();
                tokio::spawn(pipe(cr, sw, flag.clone()));
                pipe(sr, cw, flag).await;
            });
        }
    });
    Proxy { url, hang }
}

const TIMEOUT: Duration = Duration::from_millis(800);

fn breaker_settings() -> CacheSettings {
    CacheSettings {
        redis_timeout: TIMEOUT,
        redis_breaker: Duration::from_millis(1500),
        // Out of the way: the breaker, not the health task, is under test.
        health_interval: Duration::from_secs(600),
        early_refresh: 0.0,
        ..CacheSettings::default()
    }
}

async fn a_hung_redis_costs_one_slow_request_then_is_skipped_until_it_answers() {
    // Needs `PlainRedis`: the proxy handles plain redis://host:port URLs only.
    let redis = redis_url().await;
    let proxy = proxy(&redis).await;
    let fake = fake_upstream().await;
    let api = unique("hang");
    let c = cache_with(&api, &fake, 60, Some(&proxy.url), breaker_settings()).await;
    let registry = prometheus::Registry::new();
    c.register_metrics(&registry).unwrap();
    assert_eq!(c.get_token(&api, "u0").await.unwrap().tier, Tier::Login);
    assert!(c.redis_up());

    proxy.hang.store(true, Ordering::SeqCst);
    // The first miss waits one Redis timeout (not two: no retry), then logs in.
    let started = Instant::now();
    assert_eq!(c.get_token(&api, "u1").await.unwrap().tier, Tier::Login);
    let first = started.elapsed();
    assert!(
        first >= TIMEOUT && first < TIMEOUT * 2,
        "first request took {first:?}"
    );
    assert!(!c.redis_up());

    // While the breaker is open, misses skip Redis entirely.
    let started = Instant::now();
    for i in 2..22 {
        let t = Instant::now();
        assert_eq!(
            c.get_token(&api, &format!("u{i}")).await.unwrap().tier,
            Tier::Login
        );
        assert!(
            t.elapsed() < Duration::from_millis(250),
            "u{i} took {:?}",
            t.elapsed()
        );
    }
    assert!(
        started.elapsed() < TIMEOUT * 2,
        "20 misses took {:?}",
        started.elapsed()
    );
    // So does the health check, which reports the breaker.
    let t = Instant::now();
    let health = c.health_check().await;
    assert!(
        t.elapsed() < Duration::from_millis(50),
        "health took {:?}",
        t.elapsed()
    );
    assert_eq!(health.redis.state, RedisState::Down);
    assert_eq!(health.redis.breaker, Some(BreakerState::Open));
    assert!(!health.healthy);
    let json = serde_json::to_value(&health).unwrap();
    assert_eq!(json["redis"]["breaker"], "open");
    assert!(json["redis"]["probe_in_ms"].as_u64().unwrap() <= 1500);
    assert!(metric(&registry, "tokens_upstream_redis_skipped_total", None) >= 20.0);
    assert_eq!(
        metric(&registry, "tokens_upstream_redis_degraded", None),
        1.0
    );
    assert_eq!(
        metric(
            &registry,
            "tokens_upstream_redis_transitions_total",
            Some(("state", "down"))
        ),
        1.0
    );

    // Still hung after the interval: the probe (in the background) fails and
    // the breaker opens again; no request waits for it.
    tokio::time::sleep(Duration::from_millis(1600)).await;
    let t = Instant::now();
    c.get_token(&api, "u30").await.unwrap();
    assert!(
        t.elapsed() < Duration::from_millis(250),
        "the request waited for the probe"
    );
    tokio::time::sleep(TIMEOUT + Duration::from_millis(200)).await;
    assert_eq!(
        c.health_check().await.redis.breaker,
        Some(BreakerState::Open)
    );

    // Redis answers again: after the interval a probe closes the breaker.
    proxy.hang.store(false, Ordering::SeqCst);
    let deadline = Instant::now() + Duration::from_secs(6);
    while !c.redis_up() {
        assert!(Instant::now() < deadline, "the breaker never closed");
        c.health_check().await;
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let health = c.health_check().await;
    assert_eq!(health.redis.state, RedisState::Up);
    assert_eq!(health.redis.breaker, Some(BreakerState::Closed));
    // Redis is used again: a second cache finds the new login there.
    assert_eq!(c.get_token(&api, "u40").await.unwrap().tier, Tier::Login);
    let other = cache(&api, &fake, Some(&redis)).await;
    assert_eq!(
        other.get_token(&api, "u40").await.unwrap().tier,
        Tier::Redis
    );
    assert_eq!(
        metric(
            &registry,
            "tokens_upstream_redis_transitions_total",
            Some(("state", "up"))
        ),
        1.0
    );
    c.clear_all_tokens(Some(&api)).await.unwrap();
}

async fn a_listener_that_never_answers_costs_one_timeout() {
    // No real Redis needed: the "Redis" accepts and never says a word.
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("redis://{}", listener.local_addr().unwrap());
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((s, _)) = listener.accept().await {
            held.push(s);
        }
    });
    let fake = fake_upstream().await;
    let api = unique("mute");
    // The build's own health check meets the hang: one timeout, breaker open.
    let started = Instant::now();
    let c = cache_with(&api, &fake, 60, Some(&url), breaker_settings()).await;
    assert!(
        started.elapsed() < TIMEOUT * 2,
        "build took {:?}",
        started.elapsed()
    );
    assert!(!c.redis_up());
    for i in 0..20 {
        let t = Instant::now();
        assert_eq!(
            c.get_token(&api, &format!("u{i}")).await.unwrap().tier,
            Tier::Login
        );
        assert!(
            t.elapsed() < Duration::from_millis(250),
            "u{i} took {:?}",
            t.elapsed()
        );
    }
}

tessera_test_support::tests! {
    multi_thread:
        #[needs(PlainRedis)] a_hung_redis_costs_one_slow_request_then_is_skipped_until_it_answers,
        a_listener_that_never_answers_costs_one_timeout;
}
