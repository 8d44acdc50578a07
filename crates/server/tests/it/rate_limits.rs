//! The request-rate limits of the route classes over HTTP, on both backends:
//! past a class's limit the route answers `429 rate_limited` with
//! `Retry-After`, `RateLimit-Policy` and `RateLimit`, counted in
//! `tokens_rate_limited_total{limiter}`; the limits counted in the database
//! answer their 429s with the same fields; and two replicas on one Redis
//! share one limit, while with Redis unreachable each replica limits on its
//! own and nothing fails.

use reqwest::StatusCode;
use serde_json::json;
use tessera_test_support::{backend_tests, redis_url, TestDb};

use crate::common::{
    people::{create_user, login, metric, metrics, refresh, signed_in},
    Reply, TestServer,
};

const UNKNOWN: &str = "nobody@example.com";
const WRONG: &str = "not-the-password-at-all";

/// The three fields of a limit's 429, checked against each other; returns
/// `RateLimit`'s `t`.
#[track_caller]
fn assert_limited(r: &Reply, code: &str, policy: &str) -> u64 {
    r.assert_problem(StatusCode::TOO_MANY_REQUESTS, code);
    let header = |name: &str| {
        r.headers
            .get(name)
            .unwrap_or_else(|| panic!("{name} missing: {:?}", r.headers))
            .to_str()
            .unwrap()
            .to_string()
    };
    let retry: u64 = header("retry-after").parse().unwrap();
    assert!(retry >= 1);
    let p = header("ratelimit-policy");
    assert!(p.starts_with(&format!("\"{policy}\";q=")), "{p}");
    assert!(p.contains(";w="), "{p}");
    let l = header("ratelimit");
    let prefix = format!("\"{policy}\";r=0;t=");
    let t: u64 = l
        .strip_prefix(&prefix)
        .unwrap_or_else(|| panic!("{l}"))
        .parse()
        .unwrap();
    assert!(
        t >= retry,
        "the quota is whole again no sooner than the retry: {l}, {retry}"
    );
    t
}

fn refused(text: &str, limiter: &str) -> f64 {
    metric(
        text,
        &format!("tokens_rate_limited_total{{limiter=\"{limiter}\"}}"),
    )
}

async fn login_limits_per_ip_and_per_account(db: TestDb) {
    let env = [
        ("TESSERA_RATE_LIMIT_LOGIN", "5/1m"),
        ("TESSERA_RATE_LIMIT_LOGIN_USER", "2/1m"),
    ];
    let s = TestServer::start_with(db, &env).await;
    for _ in 0..2 {
        let r = login(&s, "a@example.com", WRONG).await;
        r.assert_problem(StatusCode::UNAUTHORIZED, "invalid_credentials");
    }
    let r = login(&s, "a@example.com", WRONG).await;
    assert_limited(&r, "rate_limited", "login_user");
    assert_eq!(
        r.headers["ratelimit-policy"].to_str().unwrap(),
        "\"login_user\";q=2;w=60"
    );
    // Another account from the same address: the IP's five requests are
    // three used and two left.
    for _ in 0..2 {
        let r = login(&s, UNKNOWN, WRONG).await;
        r.assert_problem(StatusCode::UNAUTHORIZED, "invalid_credentials");
    }
    let r = login(&s, "c@example.com", WRONG).await;
    let t = assert_limited(&r, "rate_limited", "login_ip");
    assert!((1..=60).contains(&t), "{t}");
    // The second-factor step counts against the same per-IP rate: guessing
    // codes for a challenge is no way around it.
    let body = json!({"challenge_id": "00000000000000000000000000", "code": "123456"});
    let r = s.as_anonymous().post_json("/v1/auth/login/mfa", body).await;
    assert_limited(&r, "rate_limited", "login_ip");
    let m = metrics(&s).await;
    assert_eq!(refused(&m, "login_user"), 1.0);
    assert_eq!(refused(&m, "login_ip"), 2.0);
    assert_eq!(refused(&m, "refresh_ip"), 0.0, "every limiter is exported");
}

async fn the_other_route_classes_answer_429(db: TestDb) {
    let env = [
        ("TESSERA_RATE_LIMIT_REFRESH", "2/1m"),
        ("TESSERA_RATE_LIMIT_INVITES", "2/1m"),
        ("TESSERA_RATE_LIMIT_AUTH_CODES", "1/1h"),
        ("TESSERA_LINK_CONFIRMS_PER_IP", "2/1m"),
    ];
    let s = TestServer::start_with(db, &env).await;
    for _ in 0..2 {
        refresh(&s, "tsr_rt_not-a-token")
            .await
            .assert_problem(StatusCode::UNAUTHORIZED, "invalid_grant");
    }
    assert_limited(&refresh(&s, "tsr_rt_x").await, "rate_limited", "refresh_ip");

    let anon = s.as_anonymous();
    let wrong = json!({"code": "AAAA-BBBB-CCCC-DDDD"});
    for _ in 0..2 {
        let r = anon.post_json("/v1/invites/validate", wrong.clone()).await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    }
    let r = anon
        .post_json(
            "/v1/invites/redeem",
            json!({"code": "AAAA-BBBB-CCCC-DDDD", "subject": "x"}),
        )
        .await;
    assert_limited(&r, "rate_limited", "invite_ip");

    let check = json!({"subject": "u1", "purpose": "login", "code": "123456"});
    let r = s
        .as_admin()
        .post_json("/v1/auth-codes/verify", check.clone())
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let r = s.as_admin().post_json("/v1/auth-codes/verify", check).await;
    let t = assert_limited(&r, "rate_limited", "auth_code_subject");
    assert!(t > 3000, "one an hour: {t}");

    let bogus = json!({"token": "not-a-link-token"});
    for _ in 0..2 {
        let r = anon.post_json("/verify-email/confirm", bogus.clone()).await;
        r.assert_problem(StatusCode::BAD_REQUEST, "invalid_token");
    }
    let r = anon.post_json("/verify-email/confirm", bogus).await;
    assert_limited(&r, "rate_limited", "link_confirm_ip");
}

/// Refreshes per user count every session of the person together; an
/// unknown token counts against nobody, and another person is not affected.
async fn refresh_is_limited_per_user(db: TestDb) {
    let s = TestServer::start_with(db, &[("TESSERA_RATE_LIMIT_REFRESH_USER", "3/1m")]).await;
    create_user(&s, "ren@example.com").await;
    create_user(&s, "ivo@example.com").await;
    let mut tokens: Vec<String> = Vec::new();
    for _ in 0..2 {
        let l = signed_in(&s, "ren@example.com").await;
        tokens.push(l["refresh_token"].as_str().unwrap().to_string());
    }
    for _ in 0..5 {
        refresh(&s, "tsr_rt_not-a-token")
            .await
            .assert_problem(StatusCode::UNAUTHORIZED, "invalid_grant");
    }
    // Three refreshes over the two sessions, then the fourth is refused,
    // whichever session it is for.
    for i in 0..3 {
        let r = refresh(&s, &tokens[i % 2]).await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.text);
        tokens[i % 2] = r.body["refresh_token"].as_str().unwrap().to_string();
    }
    let r = refresh(&s, &tokens[1]).await;
    assert_limited(&r, "rate_limited", "refresh_user");
    // Another person's refreshes are not held back.
    let other = signed_in(&s, "ivo@example.com").await;
    let r = refresh(&s, other["refresh_token"].as_str().unwrap()).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(refused(&metrics(&s).await, "refresh_user"), 1.0);
}

async fn database_counted_limits_carry_the_fields_too(db: TestDb) {
    let env = [
        ("TESSERA_LOGIN_MAX_FAILURES", "2"),
        ("TESSERA_LOGIN_IP_MAX_FAILURES", "1000000"),
    ];
    let s = TestServer::start_with(db, &env).await;
    create_user(&s, "d@example.com").await;
    for _ in 0..2 {
        login(&s, "d@example.com", WRONG)
            .await
            .assert_problem(StatusCode::UNAUTHORIZED, "invalid_credentials");
    }
    let r = login(&s, "d@example.com", WRONG).await;
    assert_limited(&r, "login_throttled", "login_failures_user");
    let p = r.headers["ratelimit-policy"].to_str().unwrap();
    assert_eq!(p, "\"login_failures_user\";q=2;w=900");
    assert_eq!(refused(&metrics(&s).await, "login_failures_user"), 1.0);
}

/// Replicas with `REDIS_URI` under one key prefix of their own.
fn redis_env<'a>(url: &'a str, prefix: &'a str) -> [(&'static str, &'a str); 3] {
    [
        ("REDIS_URI", url),
        ("TESSERA_RATE_LIMIT_REDIS_PREFIX", prefix),
        ("TESSERA_RATE_LIMIT_LOGIN", "4/1m"),
    ]
}

async fn two_replicas_share_one_limit_through_redis(db: TestDb) {
    let url = redis_url().await;
    let prefix = format!("test:it:{}:", tessera_core::ids::new_id());
    let env = redis_env(&url, &prefix);
    let a = TestServer::start_with(db, &env).await;
    let b = a.replica(&env).await;
    let mut statuses = Vec::new();
    for i in 0..8 {
        let s = if i % 2 == 0 { &a } else { &b };
        statuses.push(login(s, &format!("u{i}@example.com"), WRONG).await.status);
    }
    let unauthorized = statuses
        .iter()
        .filter(|s| **s == StatusCode::UNAUTHORIZED)
        .count();
    assert_eq!(unauthorized, 4, "four in all, not four each: {statuses:?}");
    assert_limited(&login(&a, UNKNOWN, WRONG).await, "rate_limited", "login_ip");
    assert_limited(&login(&b, UNKNOWN, WRONG).await, "rate_limited", "login_ip");
    let m = metrics(&a).await;
    assert_eq!(metric(&m, "tokens_rate_limiter_fallback"), 0.0);
    assert_eq!(metric(&m, "tokens_rate_limiter_fallback_total"), 0.0);
}

async fn with_redis_unreachable_each_replica_limits_on_its_own(db: TestDb) {
    let prefix = format!("test:it:{}:", tessera_core::ids::new_id());
    let env = redis_env("redis://127.0.0.1:1", &prefix);
    let a = TestServer::start_with(db, &env).await;
    let b = a.replica(&env).await;
    for s in [&a, &b] {
        for _ in 0..4 {
            login(s, UNKNOWN, WRONG)
                .await
                .assert_problem(StatusCode::UNAUTHORIZED, "invalid_credentials");
        }
        assert_limited(&login(s, UNKNOWN, WRONG).await, "rate_limited", "login_ip");
        let m = metrics(s).await;
        assert_eq!(metric(&m, "tokens_rate_limiter_fallback"), 1.0);
        assert!(metric(&m, "tokens_rate_limiter_fallback_total") >= 5.0);
    }
}

backend_tests! {
    login_limits_per_ip_and_per_account,
    the_other_route_classes_answer_429,
    refresh_is_limited_per_user,
    database_counted_limits_carry_the_fields_too,
    #[needs(Redis)] two_replicas_share_one_limit_through_redis,
    with_redis_unreachable_each_replica_limits_on_its_own,
}
