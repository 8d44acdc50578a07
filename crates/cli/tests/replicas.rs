//! Issue 16's acceptance run with real processes: three `tessera serve`
//! replicas on one PostgreSQL schema and one Redis, as in production.
//!
//! 1. A token limited to 100 an hour, verified 300 times round-robin over
//!    the replicas by an authenticated caller: exactly 100 valid answers.
//! 2. A token revoked on replica 1 is `REVOKED` on replicas 2 and 3 within
//!    one second, although both had it cached for five minutes
//!    (`TESSERA_VERIFY_CACHE_TTL=5m`, so only the invalidation explains it).
//! 3. A session revoked on replica 1 is inactive at introspection on
//!    replica 3, and 4. its `session.revoked` event reaches an event stream
//!    open on replica 2, both within one second.
//! 5. Redis stopped in the middle of the run: no request fails (a steady
//!    load of verifications runs through the outage and the return), each
//!    replica limits on its own while it is down, and the limits are shared
//!    again once Redis is back on the same port.
//! 6. 500 concurrent verifications of a token with 100 credits, spread over
//!    the replicas: exactly 100 valid answers. (The same on SQLite with one
//!    process is `token_usage::on_sqlite::credits_are_exact_under_concurrency`
//!    in the server's tests.)
//!
//! The times are printed (`--nocapture`). The Redis is the test's own
//! `redis-server` on a free port, never the machine's shared one; without
//! `redis-server` or PostgreSQL the harness skips the test, and fails it in
//! CI.

#[path = "replicas/cluster.rs"]
mod cluster;
mod common;
#[path = "replicas/load.rs"]
mod load;
#[path = "replicas/redis.rs"]
mod redis;

use std::{
    collections::{BTreeMap, BTreeSet},
    sync::Arc,
    time::{Duration, Instant},
};

use cluster::{outcome, Cluster, EventStream};
use common::Env;
use redis::PrivateRedis;
use serde_json::{json, Value};
use tessera_test_support::postgres_schema_url;
use tessera_test_support::timing::within_a_second;

const KEY: &str = "replicas-test-key-0123456789abcdef012345";
const PASSWORD: &str = "violet-Harbor-lantern-1987";
/// The limit of the tokens made while Redis is down and after it returns.
const N: usize = 5;

/// Outcome -> how many answers had it.
type Counts = BTreeMap<String, usize>;

fn counts(pairs: &[(&str, usize)]) -> Counts {
    pairs.iter().map(|(k, n)| (k.to_string(), *n)).collect()
}

/// Every replica has used Redis once and shares its limits through it: a
/// replica's first check opens its connection, and on a loaded machine that
/// may take longer than a check's budget, which sends the replica to its
/// fallback until the next probe. Waiting here keeps that start-up cost out
/// of the exact counts.
async fn warm_up(c: &Cluster) {
    let secret = c.limited_token("warm-up", 1000).await;
    for i in 0..c.replicas.len() {
        c.verify(i, &json!({"token": secret})).await;
    }
    c.until_fallback_is(0.0, Duration::from_secs(10)).await;
}

/// Step 1: 300 verifications of a token limited to 100 an hour, round-robin,
/// with and without the request's `ratelimit`: exactly 100 valid.
async fn a_limit_of_100_an_hour_holds_across_the_replicas(c: &Cluster) {
    let secret = c.limited_token("limited", 100).await;
    let before = c.metrics("tokens_rate_limiter_fallback_total").await;
    let mut all = Counts::new();
    let mut valid_per_replica = [0; 3];
    let mut remaining = BTreeSet::new();
    for k in 0..300 {
        let mut body = json!({"token": secret});
        // Three shapes of request, turning over more slowly than the replicas.
        match (k / 3) % 3 {
            0 => {}
            1 => body["ratelimit"] = json!({"name": "default"}),
            _ => body["ratelimit"] = json!({"cost": 1}),
        }
        let v = c.verify(k % 3, &body).await;
        let o = outcome(&v);
        if o == "VALID" {
            valid_per_replica[k % 3] += 1;
            remaining.insert(v["ratelimit"]["remaining"].as_i64().unwrap());
        }
        *all.entry(o).or_default() += 1;
    }
    let after = c.metrics("tokens_rate_limiter_fallback_total").await;
    eprintln!("100/1h, 300 verifications: {all:?}, valid per replica {valid_per_replica:?}");
    assert_eq!(
        all,
        counts(&[("VALID", 100), ("RATE_LIMITED", 200)]),
        "checks decided without Redis: before {before:?}, after {after:?}"
    );
    // One bucket: each valid answer saw its own place in it.
    assert_eq!(remaining, (0..100).collect());
}

/// Step 2: revoked on replica 1, `REVOKED` on replicas 2 and 3 within a second.
async fn a_revocation_reaches_the_other_replicas_within_a_second(c: &Cluster) {
    let (id, secret) = c.token(json!({"name": "app"})).await;
    let body = json!({"token": secret});
    // Twice on each: the second answer comes from the verify cache.
    for i in [1, 2, 1, 2] {
        assert_eq!(outcome(&c.verify(i, &body).await), "VALID");
    }
    c.admin_post(0, &format!("/v1/tokens/{id}/revoke"), json!({}))
        .await;
    let since = Instant::now();
    tokio::join!(
        revoked_on(c, 1, &body, since),
        revoked_on(c, 2, &body, since)
    );
}

/// Verifies on replica `i` until the answer is `REVOKED` (within a second).
async fn revoked_on(c: &Cluster, i: usize, body: &Value, since: Instant) {
    within_a_second(
        &format!("token revoked on replica 1: REVOKED on replica {}", i + 1),
        since,
        || c.verify(i, body),
        |v: &Value| v["code"] == "REVOKED",
    )
    .await;
}

/// Steps 3 and 4: a session revoked by the admin on replica 1: inactive at
/// introspection on replica 3, and its event on a stream open on replica 2,
/// within a second.
async fn a_session_revocation_reaches_introspection_and_the_stream(c: &Cluster) {
    let user = json!({"email": "alice@example.com", "password": PASSWORD});
    c.admin_post(0, "/v1/users", user.clone()).await;
    let r = c
        .http
        .post(format!("{}/v1/auth/login", c.base(0)))
        .json(&user)
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success(), "login: {}", r.status());
    let login: Value = r.json().await.unwrap();
    let access = login["access_token"].as_str().unwrap();
    let sid = login["session_id"].as_str().unwrap();
    let gateway = json!({"name": "gateway", "capabilities": ["introspect"]});
    let created = c.admin_post(0, "/v1/clients", gateway).await;
    let client = (
        created["client"]["id"].as_str().unwrap(),
        created["client_secret"].as_str().unwrap(),
    );
    for _ in 0..2 {
        assert_eq!(c.introspect(2, client, access).await["active"], true);
    }
    let mut stream = EventStream::open(c, 1, "types=session.revoked").await;
    let first = stream
        .next(deadline(5))
        .await
        .expect("the starting position");
    assert_eq!(first, (None, None), "the stream starts with its position");

    let r = c
        .http
        .delete(format!("{}/v1/sessions/{sid}", c.base(0)))
        .bearer_auth(&c.admin)
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success(), "{}", r.status());
    let since = Instant::now();
    let inactive = within_a_second(
        "session revoked on replica 1: inactive at introspection on replica 3",
        since,
        || c.introspect(2, client, access),
        |v: &Value| v["active"] == false,
    );
    let streamed = async {
        let (event, data) = stream.next(deadline(3)).await.expect("an event");
        let waited = since.elapsed();
        eprintln!(
            "session revoked on replica 1: session.revoked on the stream of replica 2: {} ms",
            waited.as_millis()
        );
        assert_eq!(event.as_deref(), Some("session.revoked"));
        let data: Value = serde_json::from_str(&data.unwrap()).unwrap();
        assert_eq!(data["session_id"], sid);
        assert!(waited < Duration::from_secs(1), "{waited:?}");
    };
    tokio::join!(inactive, streamed);
}

fn deadline(secs: u64) -> tokio::time::Instant {
    tokio::time::Instant::now() + Duration::from_secs(secs)
}

/// `per_replica` verifications of `secret` on each replica in turn; the
/// valid answers on each.
async fn valid_on_each(c: &Cluster, secret: &str, per_replica: usize) -> Vec<usize> {
    let body = json!({"token": secret});
    let mut valid = vec![0; c.replicas.len()];
    for (i, n) in valid.iter_mut().enumerate() {
        for _ in 0..per_replica {
            match outcome(&c.verify(i, &body).await).as_str() {
                "VALID" => *n += 1,
                other => assert_eq!(other, "RATE_LIMITED"),
            }
        }
    }
    valid
}

/// Step 5: Redis stopped in the middle: nothing fails, each replica limits on
/// its own, and once Redis is back the limits are shared again.
async fn redis_stopped_in_the_middle(c: &Arc<Cluster>, redis: &mut PrivateRedis) {
    let load = load::Load::start(c.clone(), c.limited_token("steady", 1_000_000).await);
    // The load under way on every replica before Redis goes.
    tokio::time::sleep(Duration::from_millis(300)).await;
    redis.stop();
    eprintln!("redis-server stopped");
    // Down: a fresh token limited to N admits N on each replica.
    let down = c.limited_token("while-down", N as u32).await;
    let valid = valid_on_each(c, &down, 2 * N).await;
    eprintln!(
        "{N}/1h while Redis is down, {} on each replica: valid {valid:?}",
        2 * N
    );
    assert_eq!(valid, vec![N; 3], "each replica limits on its own");
    c.until_fallback_is(1.0, Duration::from_secs(5)).await;

    // Back on the same port (empty); each replica's probe asks every 2 s
    // (`PROBE_EVERY` in the server's rate_limit/redis.rs) whether it answers.
    redis.restart();
    let waited = c.until_fallback_is(0.0, Duration::from_secs(15)).await;
    eprintln!(
        "redis-server restarted: every replica shares its limits again after {} ms",
        waited.as_millis()
    );
    let again = c.limited_token("after-return", N as u32).await;
    let body = json!({"token": again});
    let mut all = Counts::new();
    for k in 0..6 * N {
        *all.entry(outcome(&c.verify(k % 3, &body).await))
            .or_default() += 1;
    }
    eprintln!(
        "{N}/1h after Redis returned, {} round-robin: {all:?}",
        6 * N
    );
    assert_eq!(all, counts(&[("VALID", N), ("RATE_LIMITED", 5 * N)]));

    let report = load.stop().await;
    eprintln!(
        "steady load through the outage: {} verifications, {} not a normal valid answer",
        report.sent,
        report.failures.len()
    );
    assert!(report.failures.is_empty(), "{:?}", report.failures);
    assert!(report.sent >= 30, "the load hardly ran: {}", report.sent);
}

/// Step 6: 500 concurrent verifications of a token with 100 credits, spread
/// over the replicas: exactly 100 valid, each with its own balance.
async fn credits_are_exact_across_the_replicas(c: &Arc<Cluster>) {
    let (_, secret) = c
        .token(json!({"name": "metered", "credits": {"remaining": 100}}))
        .await;
    // Everyone waits at the barrier so the requests really overlap.
    let barrier = Arc::new(tokio::sync::Barrier::new(500));
    let tasks: Vec<_> = (0..500)
        .map(|k| {
            let (c, barrier) = (c.clone(), barrier.clone());
            let body = json!({"token": secret});
            tokio::spawn(async move {
                barrier.wait().await;
                c.verify(k % 3, &body).await
            })
        })
        .collect();
    let mut all = Counts::new();
    let mut remaining = BTreeSet::new();
    for t in tasks {
        let v = t.await.unwrap();
        let o = outcome(&v);
        if o == "VALID" {
            remaining.insert(v["remaining"].as_i64().unwrap());
        }
        *all.entry(o).or_default() += 1;
    }
    eprintln!("100 credits, 500 concurrent verifications: {all:?}");
    assert_eq!(all, counts(&[("VALID", 100), ("USAGE_EXCEEDED", 400)]));
    assert_eq!(remaining, (0..100).collect());
}

async fn usage_controls_hold_across_three_replicas() {
    let started = Instant::now();
    let mut redis = PrivateRedis::start();
    // Both names, so a developer's own setting cannot point the replicas
    // at another Redis.
    let env = Env::postgres(postgres_schema_url().await, KEY)
        .with("REDIS_URI", &redis.url())
        .with("TESSERA_REDIS_URI", &redis.url())
        .with("TESSERA_VERIFY_CACHE_TTL", "5m");
    let c = Arc::new(Cluster::start(env, 3).await);
    eprintln!(
        "three replicas on one PostgreSQL and redis-server :{}: {:?}",
        redis.port,
        c.replicas
            .iter()
            .map(|r| r.base.as_str())
            .collect::<Vec<_>>()
    );
    warm_up(&c).await;
    a_limit_of_100_an_hour_holds_across_the_replicas(&c).await;
    a_revocation_reaches_the_other_replicas_within_a_second(&c).await;
    a_session_revocation_reaches_introspection_and_the_stream(&c).await;
    redis_stopped_in_the_middle(&c, &mut redis).await;
    credits_are_exact_across_the_replicas(&c).await;
    eprintln!("acceptance run: {:?}", started.elapsed());
}

tessera_test_support::tests! {
    multi_thread: #[needs(Postgres, Command("redis-server"))] usage_controls_hold_across_three_replicas;
}

fn main() -> std::process::ExitCode {
    tessera_test_support::harness::run(trials())
}
