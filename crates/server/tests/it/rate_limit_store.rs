//! The rate-limit engine's Redis store against a real Redis, each test under
//! its own key prefix: the script decides as the in-process GCRA does, two
//! engines (two replicas) sharing one Redis admit exactly the limit in all,
//! a lost script is loaded again, and a Redis that is unreachable or goes
//! away falls back to process memory with one log line and the metric, then
//! is used again when it answers.

use std::{
    sync::{
        atomic::{AtomicBool, Ordering},
        Arc,
    },
    time::Duration,
};

use tessera_core::{crypto::KeyedHasher, gcra::RateRule};
use tessera_server::{
    config::RateLimitSettings,
    metrics::Metrics,
    service::rate_limit::{redis::RedisStore, RateLimits},
};
use tessera_test_support::{redis_url, tests};
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::{TcpListener, TcpStream},
};

use crate::common::{logs::logs, TEST_KEY};

fn unique_prefix(test: &str) -> String {
    format!("test:rl:{test}:{}:", tessera_core::ids::new_id())
}

/// An engine on `url` under `prefix`, probing every 100 ms once Redis failed.
fn engine(url: &str, prefix: &str) -> (RateLimits, Arc<Metrics>) {
    let metrics = Arc::new(Metrics::new());
    let hasher = KeyedHasher::new(TEST_KEY, "rate-limit-key").unwrap();
    let store = RedisStore::new(url, prefix, hasher, metrics.clone())
        .unwrap()
        .probing_every(Duration::from_millis(100));
    let limits = RateLimits::new(RateLimitSettings::default(), Some(store), metrics.clone());
    (limits, metrics)
}

fn rule(v: &str) -> RateRule {
    v.parse().unwrap()
}

async fn the_script_decides_as_the_algorithm_does() {
    let url = redis_url().await;
    let (l, m) = engine(&url, &unique_prefix("script"));
    let r = rule("100/1h");
    let d = l.check("token", "t1:default", &r, 30).await;
    assert!(d.allowed);
    assert_eq!((d.limit, d.remaining, d.retry_after), (100, 70, 0));
    assert_eq!(d.reset, 1080, "30 units drain in 30 × 36 s");
    // A peek counts nothing; a refusal counts nothing.
    assert_eq!(l.peek("token", "t1:default", &r, 1).await.remaining, 70);
    let d = l.check("token", "t1:default", &r, 71).await;
    assert!(!d.allowed);
    assert_eq!(d.remaining, 70);
    assert!((35..=36).contains(&d.retry_after), "{d:?}");
    assert!(l.check("token", "t1:default", &r, 70).await.allowed);
    assert!(!l.check("token", "t1:default", &r, 1).await.allowed);
    // Another key, and another limiter on the same key, are other buckets.
    assert!(l.check("token", "t2:default", &r, 100).await.allowed);
    assert!(l.check("login_ip", "t1:default", &r, 100).await.allowed);
    // Forced counts (failures) fill one burst at most.
    let f = rule("2/1m");
    for _ in 0..5 {
        l.record("verify_failures_ip", "ip:192.0.2.1", &f, 1).await;
    }
    let d = l.peek("verify_failures_ip", "ip:192.0.2.1", &f, 1).await;
    assert!(!d.allowed);
    assert!((59..=60).contains(&d.reset), "{d:?}");
    assert!((29..=30).contains(&d.retry_after), "{d:?}");
    // A failure limit: a key with a failure counted reserves on the check,
    // and an attempt that did not fail gives its unit back.
    let (lim, key, three) = ("invite_failures_ip", "ip:192.0.2.2", rule("3/1m"));
    let first = l.failures_allowed(lim, key, Some(&three)).await.unwrap();
    l.settle(lim, key, Some(&three), first, true).await;
    let mut held = Vec::new();
    for _ in 0..5 {
        if let Ok(a) = l.failures_allowed(lim, key, Some(&three)).await {
            held.push(a);
        }
    }
    assert_eq!(held.len(), 2, "two units were left");
    for a in held {
        l.settle(lim, key, Some(&three), a, false).await;
    }
    assert_eq!(l.peek(lim, key, &three, 1).await.remaining, 2, "given back");
    assert!(l.is_shared());
    assert_eq!(m.rate_limiter_fallback_total.get(), 0, "never fell back");
    let refused = m.rate_limited.with_label_values(&["token"]).get();
    assert_eq!(refused, 2);
}

async fn two_engines_on_one_redis_admit_the_limit_in_all() {
    let url = redis_url().await;
    let prefix = unique_prefix("replicas");
    let (a, _) = engine(&url, &prefix);
    let (b, _) = engine(&url, &prefix);
    let (a, b) = (Arc::new(a), Arc::new(b));
    let r = rule("25/1h");
    let mut tasks = Vec::new();
    for i in 0..200 {
        let engine = if i % 2 == 0 { a.clone() } else { b.clone() };
        tasks.push(tokio::spawn(async move {
            engine.check("token", "shared", &r, 1).await.allowed
        }));
    }
    let mut admitted = 0;
    for t in tasks {
        admitted += usize::from(t.await.unwrap());
    }
    assert_eq!(admitted, 25, "exactly the limit across both engines");
}

async fn a_lost_script_is_loaded_again() {
    let url = redis_url().await;
    let (l, m) = engine(&url, &unique_prefix("noscript"));
    let r = rule("5/1m");
    assert!(l.check("login_ip", "k", &r, 1).await.allowed);
    let client = redis::Client::open(url.as_str()).unwrap();
    let mut conn = client.get_multiplexed_async_connection().await.unwrap();
    let _: () = redis::cmd("SCRIPT")
        .arg("FLUSH")
        .query_async(&mut conn)
        .await
        .unwrap();
    let d = l.check("login_ip", "k", &r, 1).await;
    assert!(d.allowed);
    assert_eq!(d.remaining, 3, "the state in Redis was kept");
    assert_eq!(m.rate_limiter_fallback_total.get(), 0);
    assert!(l.is_shared());
}

/// Lines of the captured log that name `prefix` and contain `text`.
fn log_lines(prefix: &str, text: &str) -> usize {
    logs()
        .text()
        .lines()
        .filter(|l| l.contains(prefix) && l.contains(text))
        .count()
}

async fn an_unreachable_redis_falls_back_with_one_log_line() {
    logs();
    let prefix = unique_prefix("unreachable");
    // Port 1 on the loopback: nothing listens, connections are refused.
    let (l, m) = engine("redis://127.0.0.1:1", &prefix);
    let r = rule("5/1m");
    let mut admitted = 0;
    for _ in 0..20 {
        admitted += usize::from(l.check("login_ip", "ip:192.0.2.9", &r, 1).await.allowed);
    }
    assert_eq!(admitted, 5, "the limit holds in process");
    assert!(!l.is_shared());
    assert_eq!(m.rate_limiter_fallback.get(), 1);
    assert_eq!(m.rate_limiter_fallback_total.get(), 20);
    // The probe keeps failing in the background, silently.
    tokio::time::sleep(Duration::from_millis(350)).await;
    assert_eq!(log_lines(&prefix, "Redis is unavailable"), 1, "one line");
    assert!(m.render().contains("tokens_rate_limiter_fallback 1"));
}

/// A TCP proxy in front of the test Redis that can be made to drop every
/// connection (Redis stopped) and to forward again (Redis back).
struct Proxy {
    url: String,
    down: Arc<AtomicBool>,
}

async fn pipe(
    mut from: tokio::net::tcp::OwnedReadHalf,
    mut to: tokio::net::tcp::OwnedWriteHalf,
    down: Arc<AtomicBool>,
) {
    let mut buf = vec![0u8; 16 * 1024];
    loop {
        let n = match from.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => n,
        };
        if down.load(Ordering::SeqCst) || to.write_all(&buf[..n]).await.is_err() {
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
    let down = Arc::new(AtomicBool::new(false));
    let flag = down.clone();
    tokio::spawn(async move {
        while let Ok((client, _)) = listener.accept().await {
            if flag.load(Ordering::SeqCst) {
                continue; // dropped: the connection is closed at once
            }
            let Ok(server) = TcpStream::connect(&target).await else {
                continue;
            };
            let (cr, cw) = client.into_split();
            let (sr, sw) = server.into_split();
            tokio::spawn(pipe(cr, sw, flag.clone()));
            tokio::spawn(pipe(sr, cw, flag.clone()));
        }
    });
    Proxy { url, down }
}

async fn limits_are_shared_again_when_redis_returns() {
    logs();
    let redis = redis_url().await;
    let proxy = proxy(&redis).await;
    let prefix = unique_prefix("returns");
    let (l, m) = engine(&proxy.url, &prefix);
    let (direct, _) = engine(&redis, &prefix);
    let r = rule("4/1m");
    let key = "ip:192.0.2.44";
    for _ in 0..2 {
        assert!(l.check("login_ip", key, &r, 1).await.allowed);
    }
    assert!(l.is_shared());

    proxy.down.store(true, Ordering::SeqCst);
    // Nothing fails: the first check finds Redis gone and decides in
    // process, where the bucket is fresh (each replica limits on its own).
    let admitted: usize = {
        let mut n = 0;
        for _ in 0..10 {
            n += usize::from(l.check("login_ip", key, &r, 1).await.allowed);
        }
        n
    };
    assert_eq!(admitted, 4);
    assert!(!l.is_shared());
    assert_eq!(m.rate_limiter_fallback.get(), 1);
    assert!(m.rate_limiter_fallback_total.get() >= 10);
    assert_eq!(log_lines(&prefix, "Redis is unavailable"), 1);

    proxy.down.store(false, Ordering::SeqCst);
    let mut waited = Duration::ZERO;
    while !l.is_shared() {
        assert!(waited < Duration::from_secs(5), "Redis was not used again");
        tokio::time::sleep(Duration::from_millis(50)).await;
        waited += Duration::from_millis(50);
    }
    assert_eq!(m.rate_limiter_fallback.get(), 0);
    assert_eq!(log_lines(&prefix, "Redis is reachable again"), 1);
    // Shared again: Redis still holds the two units counted before; another
    // engine on the same Redis sees the same bucket.
    assert!(l.check("login_ip", key, &r, 1).await.allowed);
    assert!(direct.check("login_ip", key, &r, 1).await.allowed);
    assert!(!l.check("login_ip", key, &r, 1).await.allowed);
    assert!(!direct.check("login_ip", key, &r, 1).await.allowed);
}

/// A failure limit asks Redis about a key only once this process has seen
/// it fail: successes cost no round trip, and the limit stays exact for the
/// failures one replica sees and holds across two (at most one attempt more
/// per replica that had not seen the other's failures).
async fn a_failure_limit_asks_redis_only_about_keys_that_failed() {
    let url = redis_url().await;
    let prefix = unique_prefix("hints");
    let (a, _) = engine(&url, &prefix);
    let (b, _) = engine(&url, &prefix);
    let (lim, key, r) = ("verify_failures_ip", "ip:192.0.2.70", rule("3/1m"));
    for _ in 0..50 {
        let admission = a.failures_allowed(lim, key, Some(&r)).await.unwrap();
        a.settle(lim, key, Some(&r), admission, false).await;
    }
    assert_eq!(a.shared_round_trips(), 0, "successes cost Redis nothing");
    // Failures on engine a: each costs one call; the fourth is refused.
    let mut failures = 0;
    while let Ok(admission) = a.failures_allowed(lim, key, Some(&r)).await {
        a.settle(lim, key, Some(&r), admission, true).await;
        failures += 1;
        assert!(failures <= 3, "more failures admitted than the limit");
    }
    assert_eq!(failures, 3);
    let calls = a.shared_round_trips();
    assert!(
        calls <= 2 * 3 + 1,
        "{calls} round trips for 3 failures and a refusal"
    );
    // Engine b has seen nothing: it admits one attempt, whose failure tells
    // it the key is over the limit; then it refuses too.
    let admission = b.failures_allowed(lim, key, Some(&r)).await.unwrap();
    b.settle(lim, key, Some(&r), admission, true).await;
    assert!(b.failures_allowed(lim, key, Some(&r)).await.is_err());
    assert!(a.failures_allowed(lim, key, Some(&r)).await.is_err());
}

tests! {
    multi_thread:
        #[needs(Redis)] the_script_decides_as_the_algorithm_does,
        #[needs(Redis)] two_engines_on_one_redis_admit_the_limit_in_all,
        #[needs(Redis)] a_lost_script_is_loaded_again,
        #[needs(Redis)] a_failure_limit_asks_redis_only_about_keys_that_failed,
        an_unreachable_redis_falls_back_with_one_log_line,
        #[needs(PlainRedis)] limits_are_shared_again_when_redis_returns;
}
