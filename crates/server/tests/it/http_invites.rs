//! Invites over HTTP, as a new user would use them, on SQLite and PostgreSQL.

use crate::common;

use std::time::Duration;

use common::TestServer;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use tessera_test_support::{backend_tests, TestDb};

const POLICY: (&str, &str) = ("TESSERA_INVITE_POLICY", "admin=*;coordinator=member");

async fn create(s: &TestServer, body: Value) -> (String, String) {
    let r = s.as_admin().post_json("/v1/invites", body).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    (
        r.body["invite"]["id"].as_str().unwrap().to_string(),
        r.body["code"].as_str().unwrap().to_string(),
    )
}

/// A public (unauthenticated) POST of a code to validate, as the invitee's
/// client sends it.
async fn validate(s: &TestServer, body: Value) -> common::Reply {
    s.as_anonymous()
        .post_json("/v1/invites/validate", body)
        .await
}

/// A public (unauthenticated) POST of a code to redeem.
async fn redeem(s: &TestServer, body: Value) -> common::Reply {
    s.as_anonymous().post_json("/v1/invites/redeem", body).await
}

async fn the_whole_flow(db: TestDb) {
    let s = TestServer::start_with(db, &[POLICY]).await;
    // As admin.
    let (id, code) = create(
        &s,
        json!({"grants": {"role": "member", "scopes": ["read"]}, "email": "Ana@Example.com"}),
    )
    .await;
    assert_eq!(code.len(), 19);
    let shown = s.as_admin().get(&format!("/v1/invites/{id}")).await;
    assert_eq!(shown.body["state"], "active");
    assert_eq!(shown.body["email"], "ana@example.com");
    assert!(!shown.text.contains(&code));

    // On behalf of a coordinator: within and outside the policy.
    let coord = json!({"subject": "u-42", "role": "coordinator"});
    let member = json!({"subject": "u-7", "role": "member"});
    let on_behalf =
        |role: &str, issuer: &Value| json!({"grants": {"role": role}, "on_behalf_of": issuer});
    let admin = s.as_admin();
    create(&s, on_behalf("member", &coord)).await;
    let r = admin
        .post_json("/v1/invites", on_behalf("admin", &coord))
        .await;
    r.assert_problem(StatusCode::FORBIDDEN, "invite_not_allowed");
    let r = admin
        .post_json("/v1/invites", on_behalf("member", &member))
        .await;
    r.assert_problem(StatusCode::FORBIDDEN, "invite_not_allowed");

    // Daily quota: 5 per issuer per 24 h (one used above).
    for _ in 0..4 {
        create(&s, on_behalf("member", &coord)).await;
    }
    let r = admin
        .post_json("/v1/invites", on_behalf("member", &coord))
        .await;
    r.assert_problem(StatusCode::TOO_MANY_REQUESTS, "invite_quota_exceeded");
    let retry: i64 = r.headers["retry-after"].to_str().unwrap().parse().unwrap();
    assert!(retry > 86_000 && retry <= 86_400, "{retry}");
    let listed = s.as_admin().get("/v1/invites?issuer=u-42&limit=100").await;
    assert_eq!(listed.body["items"].as_array().unwrap().len(), 5);

    // Validate (lower case, no hyphens, e-mail checks), without consuming.
    let sloppy = code.replace('-', "").to_lowercase();
    let v = validate(&s, json!({"code": sloppy, "email": "ana@example.com"})).await;
    assert_eq!(v.body["valid"], true, "{}", v.text);
    assert_eq!(v.body["invite"]["uses_left"], 1);
    assert_eq!(
        v.body["invite"]["grants"],
        json!({"role": "member", "scopes": ["read"]})
    );
    let v = validate(&s, json!({"code": code, "email": "eve@example.com"})).await;
    assert_eq!(v.body, json!({"valid": false, "code": "EMAIL_MISMATCH"}));
    let v = validate(&s, json!({"code": "AAAA-BBBB-CCCC-DDDD"})).await;
    assert_eq!(v.body, json!({"valid": false, "code": "NOT_FOUND"}));
    // Bound to an address and none given: required, not mismatched.
    let v = validate(&s, json!({"code": code})).await;
    assert_eq!(v.body, json!({"valid": false, "code": "EMAIL_REQUIRED"}));
    redeem(&s, json!({"code": code, "subject": "user-ana"}))
        .await
        .assert_problem(StatusCode::FORBIDDEN, "invite_email_required");

    // Redeem, then again.
    let r = redeem(
        &s,
        json!({"code": code, "subject": "user-ana", "email": "ana@example.com"}),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(r.body["invite_id"], id.as_str());
    assert_eq!(r.body["subject"], "user-ana");
    assert_eq!(r.body["grants"]["role"], "member");
    assert_eq!(r.body["uses_left"], 0);
    let r = redeem(
        &s,
        json!({"code": code, "subject": "user-ana", "email": "ana@example.com"}),
    )
    .await;
    r.assert_problem(StatusCode::CONFLICT, "invite_used_up");
    let v = validate(&s, json!({"code": code, "email": "ana@example.com"})).await;
    assert_eq!(v.body["code"], "USED_UP");

    // Revoke.
    let (id2, code2) = create(&s, json!({"grants": {"role": "member"}})).await;
    let revoke = format!("/v1/invites/{id2}/revoke");
    let r = admin.post(&revoke).await;
    assert_eq!(r.body["state"], "revoked");
    let again = admin.post(&revoke).await;
    assert_eq!(again.body, r.body);
    let r = redeem(&s, json!({"code": code2, "subject": "x"})).await;
    r.assert_problem(StatusCode::GONE, "invite_revoked");

    // Expiry.
    let (_, code3) = create(&s, json!({"grants": {"role": "member"}, "expires_in": 1})).await;
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let v = validate(&s, json!({"code": code3})).await;
    assert_eq!(v.body["code"], "EXPIRED");
    let r = redeem(&s, json!({"code": code3, "subject": "x"})).await;
    r.assert_problem(StatusCode::GONE, "invite_expired");

    // Soft delete hides and disables.
    let (id4, code4) = create(&s, json!({"grants": {"role": "member"}})).await;
    let deleted = admin.delete(&format!("/v1/invites/{id4}")).await;
    assert_eq!(deleted.status, StatusCode::OK);
    assert_eq!(
        validate(&s, json!({"code": code4})).await.body["code"],
        "NOT_FOUND"
    );
    // A deleted invite is gone for reading and revoking; deleting again
    // returns it unchanged (a retried delete succeeds); a listing with
    // include_deleted still shows it.
    let path = format!("/v1/invites/{id4}");
    admin
        .get(&path)
        .await
        .assert_problem(StatusCode::NOT_FOUND, "invite_not_found");
    let again = admin.delete(&path).await;
    assert_eq!(again.status, StatusCode::OK);
    assert_eq!(again.body["deleted_at"], deleted.body["deleted_at"]);
    admin
        .post(&format!("{path}/revoke"))
        .await
        .assert_problem(StatusCode::NOT_FOUND, "invite_not_found");
    let listed = admin
        .get("/v1/invites?include_deleted=true&limit=100")
        .await;
    assert!(listed.text.contains(&id4), "{}", listed.text);
    let listed = admin.get("/v1/invites?limit=100").await;
    assert!(!listed.text.contains(&id4), "{}", listed.text);

    // States in listings.
    for (state, min) in [("used", 1), ("revoked", 1), ("expired", 1), ("active", 5)] {
        let r = admin
            .get(&format!("/v1/invites?state={state}&limit=100"))
            .await;
        assert!(
            r.body["items"].as_array().unwrap().len() >= min,
            "{state}: {}",
            r.text
        );
    }

    // Metrics moved.
    let m = s.as_anonymous().get("/metrics").await.text;
    for name in [
        "tokens_invites_created_total",
        "tokens_invites_used_total 1",
        "tokens_invites_revoked_total 1",
        "tokens_rate_limited_total{limiter=\"invite_quota\"} 1",
    ] {
        assert!(m.contains(name), "{name} missing");
    }
}

async fn a_hundred_concurrent_redemptions_of_three_uses(db: TestDb) {
    let s = TestServer::start(db).await;
    let (_, code) = create(&s, json!({"grants": {"role": "member"}, "max_uses": 3})).await;
    let redeem = |i| Some(json!({"code": code, "subject": format!("u{i}")}));
    let replies = s
        .concurrently(100, Method::POST, "/v1/invites/redeem", None, redeem)
        .await;
    let (mut ok, mut used_up) = (0, 0);
    for r in replies {
        assert!(!r.body.is_null(), "a JSON reply: {}", r.text);
        match (r.status, r.body["code"].as_str()) {
            (StatusCode::OK, _) => ok += 1,
            (StatusCode::CONFLICT, Some("invite_used_up")) => used_up += 1,
            other => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!((ok, used_up), (3, 97));
}

async fn codes_are_never_stored_in_clear(db: TestDb) {
    let mut s = TestServer::start(db).await;
    let mut codes = Vec::new();
    for _ in 0..3 {
        codes.push(create(&s, json!({"grants": {"role": "member"}})).await.1);
    }
    validate(&s, json!({"code": codes[0]})).await;
    redeem(&s, json!({"code": codes[1], "subject": "x"})).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    s.stop().await;
    let text = s.db.all_text().await;
    assert!(text.contains("invite.created"), "read the outbox");
    for code in &codes {
        assert!(!text.contains(code.as_str()), "code found in the database");
        assert!(
            !text.contains(&code.replace('-', "")),
            "canonical code found in the database"
        );
    }
}

async fn guessing_is_rate_limited_per_client(db: TestDb) {
    let s = TestServer::start_with(db, &[("TESSERA_INVITE_FAILURE_LIMIT", "5")]).await;
    let (_, code) = create(&s, json!({"grants": {"role": "member"}})).await;
    for _ in 0..5 {
        let v = validate(&s, json!({"code": "AAAA-BBBB-CCCC-DDDD"})).await;
        assert_eq!(v.body["code"], "NOT_FOUND");
    }
    let r = validate(&s, json!({"code": code})).await;
    r.assert_problem(StatusCode::TOO_MANY_REQUESTS, "rate_limited");
    assert!(r.headers.get("retry-after").is_some());
    let r = redeem(&s, json!({"code": code, "subject": "x"})).await;
    r.assert_problem(StatusCode::TOO_MANY_REQUESTS, "rate_limited");
}

async fn bad_input_is_4xx(db: TestDb) {
    let s = TestServer::start(db).await;
    for code in ["", "short", "K7QH-2MXD-9TVA-R4PU", &"A".repeat(10_000)] {
        let r = validate(&s, json!({"code": code})).await;
        r.assert_problem(StatusCode::UNPROCESSABLE_ENTITY, "validation_failed");
    }
    validate(&s, json!({"code": 5}))
        .await
        .assert_problem(StatusCode::UNPROCESSABLE_ENTITY, "invalid_request_body");
    redeem(&s, json!({"code": "AAAA-BBBB-CCCC-DDDD"}))
        .await
        .assert_problem(StatusCode::UNPROCESSABLE_ENTITY, "invalid_request_body");
    redeem(&s, json!({"code": "AAAA-BBBB-CCCC-DDDD", "subject": ""}))
        .await
        .assert_problem(StatusCode::UNPROCESSABLE_ENTITY, "validation_failed");
    for body in [
        json!({"grants": {"role": "Member!"}}),
        json!({"grants": {"role": "member"}, "max_uses": 0}),
        json!({"grants": {"role": "member"}, "expires_in": 90 * 86400}),
        json!({"grants": {"role": "member"}, "expires_in": i64::MAX}),
        json!({"grants": {"role": "member"}, "expires_at": "9999-12-31T23:59:59Z"}),
        json!({"grants": {"role": "member"}, "email": "not-an-email"}),
        json!({"grants": {"role": "member"}, "on_behalf_of": {"subject": "", "role": "admin"}}),
    ] {
        s.as_admin()
            .post_json("/v1/invites", body)
            .await
            .assert_problem(StatusCode::UNPROCESSABLE_ENTITY, "validation_failed");
    }
    s.as_admin()
        .post_json(
            "/v1/invites",
            json!({"grants": {"role": "member"}, "extra": 1}),
        )
        .await
        .assert_problem(StatusCode::UNPROCESSABLE_ENTITY, "invalid_request_body");
    for (path, status, code) in [
        (
            "/v1/invites/nope",
            StatusCode::NOT_FOUND,
            "invite_not_found",
        ),
        (
            "/v1/invites?state=gone",
            StatusCode::UNPROCESSABLE_ENTITY,
            "validation_failed",
        ),
    ] {
        s.as_admin().get(path).await.assert_problem(status, code);
    }
    s.as_anonymous()
        .post_json("/v1/invites", json!({"grants": {"role": "member"}}))
        .await
        .assert_problem(StatusCode::UNAUTHORIZED, "unauthorized");
}

backend_tests!(
    the_whole_flow,
    a_hundred_concurrent_redemptions_of_three_uses,
    codes_are_never_stored_in_clear,
    guessing_is_rate_limited_per_client,
    bad_input_is_4xx,
);
