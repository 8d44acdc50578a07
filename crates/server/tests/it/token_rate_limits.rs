//! Issue #16, per-token rate limits on the GCRA engine: a token limited to N
//! per period gives exactly N valid answers in a fresh period (each carrying
//! the limit's state), then `RATE_LIMITED` with `ratelimit`; a named limit
//! counts with the request's `cost`; a refusal by the IP list consumes no
//! quota; an unauthenticated caller is `CALLER_NOT_AUTHORIZED`; a limit the
//! engine cannot hold is refused at create and update, never accepted and
//! then skipped. Both backends; and two replicas sharing Redis share the limit.

use reqwest::StatusCode;
use serde_json::json;
use tessera_test_support::{backend_tests, TestDb};

use crate::{
    common::TestServer,
    token_controls::{outcome, token_with, verify_as, As},
};

async fn a_token_gets_exactly_its_limit(db: TestDb) {
    let s = TestServer::start(db).await;
    let limits = json!({"ratelimits": [
        {"name": "default", "limit": 3, "period": "1h"},
        {"name": "bulk", "limit": 10, "period": "1h"},
    ], "ip_allow": ["10.0.0.0/8"]});
    let (_, secret, view) = token_with(&s, limits).await;
    assert_eq!(view["ratelimits"][0]["name"], "default", "{view}");
    let anon = verify_as(&s, As::Anonymous, json!({"token": secret}), None).await;
    assert_eq!(outcome(&anon), "CALLER_NOT_AUTHORIZED");
    // Refused by the IP list: no quota used.
    let outside = json!({"token": secret, "client_ip": "192.0.2.1"});
    for _ in 0..5 {
        let r = verify_as(&s, As::Admin, outside.clone(), None).await;
        assert_eq!(outcome(&r), "IP_NOT_ALLOWED");
    }
    let named = json!({"token": secret, "client_ip": "10.1.2.3", "ratelimit": {"name": "default"}});
    for remaining in [2, 1, 0] {
        let r = verify_as(&s, As::Admin, named.clone(), None).await;
        assert_eq!(outcome(&r), "VALID");
        assert_eq!(r.body["ratelimit"]["limit"], 3, "{}", r.text);
        assert_eq!(r.body["ratelimit"]["remaining"], remaining, "{}", r.text);
    }
    let r = verify_as(&s, As::Admin, named, None).await;
    assert_eq!(outcome(&r), "RATE_LIMITED");
    assert_eq!(r.body["ratelimit"]["remaining"], 0, "{}", r.text);
    assert!(
        r.body["ratelimit"]["reset"].as_i64().unwrap() > 0,
        "{}",
        r.text
    );
    // Another limit of the same token counts apart, by cost.
    let bulk = json!({"token": secret, "client_ip": "10.1.2.3",
        "ratelimit": {"name": "bulk", "cost": 6}});
    assert_eq!(
        outcome(&verify_as(&s, As::Admin, bulk.clone(), None).await),
        "VALID"
    );
    assert_eq!(
        outcome(&verify_as(&s, As::Admin, bulk, None).await),
        "RATE_LIMITED"
    );
}

/// A limit over the engine's bounds would not apply at all (the token
/// would be unlimited), so it is a 422 naming `ratelimits`.
async fn a_limit_the_engine_cannot_hold_is_refused(db: TestDb) {
    let s = TestServer::start(db).await;
    let (id, secret, _) = token_with(
        &s,
        json!({"ratelimits": [
            {"name": "most", "limit": 1_000_000_000, "period": "366d", "burst": 1_000_000_000},
        ]}),
    )
    .await;
    let checked = json!({"token": secret});
    let r = verify_as(&s, As::Admin, checked, None).await;
    assert_eq!(r.body["ratelimit"]["limit"], 1_000_000_000, "{}", r.text);
    for bad in [
        json!({"name": "a", "limit": 2_000_000_000_i64, "period": "1h"}),
        json!({"name": "a", "limit": 10, "period": "1h", "burst": 1_000_000_001}),
        json!({"name": "a", "limit": 10, "period": "999d"}),
    ] {
        let body = json!({"name": "x", "ratelimits": [bad]});
        let r = s.as_admin().post_json("/v1/tokens", body).await;
        r.assert_problem(StatusCode::UNPROCESSABLE_ENTITY, "validation_failed");
        assert_eq!(r.body["field"], "ratelimits", "{}", r.text);
        let r = s
            .as_admin()
            .patch_json(&format!("/v1/tokens/{id}"), json!({"ratelimits": [bad]}))
            .await;
        r.assert_problem(StatusCode::UNPROCESSABLE_ENTITY, "validation_failed");
    }
}

async fn replicas_sharing_redis_share_a_token_limit(db: TestDb) {
    let redis = tessera_test_support::redis_url().await;
    let prefix = format!("trl-{}:", uuid::Uuid::now_v7().simple());
    let env = [
        ("REDIS_URI", redis.as_str()),
        ("TESSERA_RATE_LIMIT_REDIS_PREFIX", prefix.as_str()),
    ];
    let a = TestServer::start_with(db, &env).await;
    let b = a.replica(&env).await;
    let limits = json!({"ratelimits": [{"name": "default", "limit": 10, "period": "1h"}]});
    let (_, secret, _) = token_with(&a, limits).await;
    let body = json!({"token": secret});
    let mut valid = 0;
    for i in 0..30 {
        let s = if i % 2 == 0 { &a } else { &b };
        if outcome(&verify_as(s, As::Admin, body.clone(), None).await) == "VALID" {
            valid += 1;
        }
    }
    assert_eq!(valid, 10, "one limit across both replicas");
}

backend_tests!(
    a_token_gets_exactly_its_limit,
    a_limit_the_engine_cannot_hold_is_refused,
    #[needs(Redis)]
    replicas_sharing_redis_share_a_token_limit,
);
