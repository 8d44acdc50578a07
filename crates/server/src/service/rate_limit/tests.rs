//! The engine in process memory: request rates, failure limits, refusals
//! counted per limiter. Redis is tested in `tests/it/rate_limit_store.rs`,
//! against a real one.

use std::{net::IpAddr, sync::Arc};

use tessera_core::rate_limit::LimitKey;

use super::*;

fn engine() -> (RateLimits, Arc<Metrics>) {
    let metrics = Arc::new(Metrics::new());
    (RateLimits::in_process(metrics.clone()), metrics)
}

fn ip(s: &str) -> String {
    LimitKey::client(s.parse::<IpAddr>().unwrap()).to_string()
}

fn refused(m: &Metrics, limiter: &str) -> u64 {
    m.rate_limited.with_label_values(&[limiter]).get()
}

#[tokio::test]
async fn a_request_rate_admits_its_burst_then_refuses_with_the_fields() {
    let (l, m) = engine();
    let rule: RateRule = "3/1m".parse().unwrap();
    let (a, b) = (ip("203.0.113.1"), ip("203.0.113.2"));
    for _ in 0..3 {
        l.admit("login_ip", &a, Some(&rule)).await.unwrap();
    }
    let Err(ServiceError::RateLimited(r)) = l.admit("login_ip", &a, Some(&rule)).await else {
        panic!("the fourth is refused");
    };
    assert_eq!(
        (r.code, r.quota, r.window, r.remaining),
        ("rate_limited", 3, 60, 0)
    );
    assert!((1..=20).contains(&r.retry_after), "{r:?}");
    assert!((r.retry_after..=60).contains(&r.reset), "{r:?}");
    assert_eq!(refused(&m, "login_ip"), 1);
    l.admit("login_ip", &b, Some(&rule)).await.unwrap();
    // Another limiter is another namespace, and an absent rule is off.
    l.admit("refresh_ip", &a, Some(&rule)).await.unwrap();
    for _ in 0..100 {
        l.admit("login_ip", &a, None).await.unwrap();
    }
}

#[tokio::test]
async fn ipv6_addresses_of_one_64_share_a_limit() {
    let (l, _) = engine();
    let rule: RateRule = "2/1m".parse().unwrap();
    for addr in ["2001:db8:1:2::1", "2001:db8:1:2:ffff::7"] {
        fail(&l, "invite_failures_ip", &ip(addr), &rule).await;
    }
    let same_64 = ip("2001:db8:1:2:1234::1");
    assert!(l
        .failures_allowed("invite_failures_ip", &same_64, Some(&rule))
        .await
        .is_err());
    let next_64 = ip("2001:db8:1:3::1");
    assert!(l
        .failures_allowed("invite_failures_ip", &next_64, Some(&rule))
        .await
        .is_ok());
}

/// One attempt under a failure limit, settled as `failed`.
async fn attempt(l: &RateLimits, limiter: &'static str, key: &str, rule: &RateRule, failed: bool) {
    let admission = l.failures_allowed(limiter, key, Some(rule)).await.unwrap();
    l.settle(limiter, key, Some(rule), admission, failed).await;
}

async fn fail(l: &RateLimits, limiter: &'static str, key: &str, rule: &RateRule) {
    attempt(l, limiter, key, rule, true).await;
}

#[tokio::test]
async fn a_failure_limit_counts_only_failures() {
    let (l, m) = engine();
    let rule: RateRule = "2/1m".parse().unwrap();
    let key = ip("198.51.100.7");
    let lim = "verify_failures_ip";
    // Successes never use the limit up, before or after a failure.
    for _ in 0..10 {
        attempt(&l, lim, &key, &rule, false).await;
    }
    fail(&l, lim, &key, &rule).await;
    for _ in 0..10 {
        attempt(&l, lim, &key, &rule, false).await;
    }
    fail(&l, lim, &key, &rule).await;
    let r = l
        .failures_allowed(lim, &key, Some(&rule))
        .await
        .unwrap_err();
    assert_eq!(r.retry_after, 30, "one failure drains every 30 s");
    assert_eq!(refused(&m, lim), 1);
}

#[tokio::test]
async fn concurrent_attempts_on_a_key_with_failures_are_reserved() {
    let (l, _) = engine();
    let rule: RateRule = "3/1m".parse().unwrap();
    let key = ip("198.51.100.8");
    let lim = "invite_failures_ip";
    fail(&l, lim, &key, &rule).await;
    // Ten attempts in flight at once: two reserve the two units left.
    let mut admissions = Vec::new();
    for _ in 0..10 {
        admissions.push(l.failures_allowed(lim, &key, Some(&rule)).await);
    }
    let admitted: Vec<Admission> = admissions.into_iter().filter_map(Result::ok).collect();
    assert_eq!(admitted.len(), 2);
    // One fails, one succeeds and gives its unit back.
    l.settle(lim, &key, Some(&rule), admitted[0], true).await;
    l.settle(lim, &key, Some(&rule), admitted[1], false).await;
    assert!(l.failures_allowed(lim, &key, Some(&rule)).await.is_ok());
    assert!(l.failures_allowed(lim, &key, Some(&rule)).await.is_err());
}

#[tokio::test]
async fn cost_and_peek_for_per_token_limits() {
    let (l, m) = engine();
    let rule: RateRule = "100/1h".parse().unwrap();
    let d = l.check("token", "tok_1:default", &rule, 60).await;
    assert!(d.allowed);
    assert_eq!((d.limit, d.remaining), (100, 40));
    let d = l.peek("token", "tok_1:default", &rule, 1).await;
    assert_eq!(d.remaining, 40, "a peek counts nothing");
    let d = l.check("token", "tok_1:default", &rule, 41).await;
    assert!(!d.allowed);
    assert_eq!(d.remaining, 40, "a refusal counts nothing");
    assert_eq!(refused(&m, "token"), 1);
    assert!(l.check("token", "tok_1:default", &rule, 40).await.allowed);
    assert!(!l.is_shared());
}
