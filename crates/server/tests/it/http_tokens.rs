//! The token lifecycle over HTTP, as a new user would walk it, on SQLite and
//! PostgreSQL.

use std::time::Duration;

use crate::common::TestServer;
use reqwest::{Method, StatusCode};
use serde_json::json;
use tessera_test_support::{backend_tests, TestDb};

async fn full_lifecycle_walk(db: TestDb) {
    // The background writer must not flush usage between the two revokes
    // below, which compare whole records: flush at most once a minute.
    let s = TestServer::start_with(db, &[("TESSERA_USAGE_FLUSH_INTERVAL", "60s")]).await;
    let (id, secret) = s
        .create(json!({"name": "billing-sync", "owner": "svc-billing", "scopes": ["read", "write"], "metadata": {"env": "prod"}}))
        .await;

    let v = s.verify(&secret).await;
    assert_eq!(v["valid"], true);
    assert_eq!(v["token"]["id"], id);
    assert_eq!(v["token"]["state"], "active");
    assert!(v["token"].get("secret").is_none() && v["token"].get("hash").is_none());

    // Scope checks.
    let r = s
        .as_anonymous()
        .post_json(
            "/v1/tokens/verify",
            json!({"token": secret, "scopes": ["admin"]}),
        )
        .await;
    assert_eq!(
        r.body,
        json!({"valid": false, "code": "INSUFFICIENT_SCOPE"})
    );

    // Rotate without grace: old rejected at once, new accepted.
    let r = s.rotate(&id, None).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(r.body["token"]["id"], id, "rotation keeps the id");
    assert_eq!(r.body["token"]["metadata"], json!({"env": "prod"}));
    let secret2 = r.body["secret"].as_str().unwrap().to_string();
    assert_eq!(s.verify(&secret).await["code"], "NOT_FOUND");
    assert_eq!(s.verify(&secret2).await["valid"], true);

    // Rotate with a grace period: both work until it ends.
    let r = s.rotate(&id, Some(json!({"grace_seconds": 2}))).await;
    let secret3 = r.body["secret"].as_str().unwrap().to_string();
    assert_eq!(s.verify(&secret2).await["valid"], true);
    assert_eq!(s.verify(&secret3).await["valid"], true);
    tokio::time::sleep(Duration::from_millis(2100)).await;
    assert_eq!(s.verify(&secret2).await["code"], "NOT_FOUND");
    assert_eq!(s.verify(&secret3).await["valid"], true);

    // Self endpoint.
    let r = s.with_token(&secret3).get("/v1/tokens/self").await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.body["id"], id);

    // Soft delete and restore.
    let r = s.as_admin().delete(&format!("/v1/tokens/{id}")).await;
    assert_eq!(r.status, StatusCode::OK);
    assert!(r.body["deleted_at"].is_string());
    assert_eq!(s.verify(&secret3).await["code"], "DELETED");
    let listed = s.as_admin().get("/v1/tokens?owner=svc-billing").await;
    assert_eq!(listed.body["items"].as_array().unwrap().len(), 0);
    let listed = s
        .as_admin()
        .get("/v1/tokens?owner=svc-billing&include_deleted=true")
        .await;
    assert_eq!(listed.body["items"].as_array().unwrap().len(), 1);
    // Until restored, the id reads and changes as not found; deleting it
    // again returns it unchanged.
    s.as_admin()
        .get(&format!("/v1/tokens/{id}"))
        .await
        .assert_problem(StatusCode::NOT_FOUND, "token_not_found");
    s.as_admin()
        .patch_json(&format!("/v1/tokens/{id}"), json!({"name": "renamed"}))
        .await
        .assert_problem(StatusCode::NOT_FOUND, "token_not_found");
    let again = s.as_admin().delete(&format!("/v1/tokens/{id}")).await;
    assert_eq!(again.status, StatusCode::OK);
    assert_eq!(again.body["deleted_at"], r.body["deleted_at"]);
    let r = s.as_admin().post(&format!("/v1/tokens/{id}/restore")).await;
    assert_eq!(r.status, StatusCode::OK);
    assert!(r.body["deleted_at"].is_null());
    assert_eq!(s.verify(&secret3).await["valid"], true);

    // Update.
    let r = s
        .as_admin()
        .patch_json(
            &format!("/v1/tokens/{id}"),
            json!({"name": "billing", "description": "nightly", "scopes": ["read"]}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(r.body["name"], "billing");
    assert_eq!(r.body["scopes"], json!(["read"]));
    let r = s
        .as_admin()
        .patch_json(&format!("/v1/tokens/{id}"), json!({"description": null}))
        .await;
    assert!(r.body["description"].is_null());

    // Revoke (idempotent), then purge.
    let r = s.revoke(&id, Some(json!({"reason": "leaked"}))).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.body["state"], "revoked");
    let again = s.revoke(&id, None).await;
    assert_eq!(again.body, r.body, "revoking twice returns the same record");
    assert_eq!(s.verify(&secret3).await["code"], "REVOKED");
    let r = s.rotate(&id, None).await;
    r.assert_problem(StatusCode::CONFLICT, "token_not_active");
    let r = s.revoke(&id, Some(json!({"purge": true}))).await;
    assert_eq!(r.body["state"], "purged");
    assert_eq!(s.verify(&secret3).await["code"], "PURGED");

    // Listing by state.
    for (state, n) in [("purged", 1), ("active", 1), ("revoked", 0)] {
        let r = s.as_admin().get(&format!("/v1/tokens?state={state}")).await;
        assert_eq!(
            r.body["items"].as_array().unwrap().len(),
            n,
            "state {state}: {}",
            r.text
        );
    }
}

async fn expiry_is_enforced(db: TestDb) {
    let s = TestServer::start(db).await;
    let (_, secret) = s.create(json!({"name": "short", "expires_in": 1})).await;
    assert_eq!(s.verify(&secret).await["valid"], true);
    tokio::time::sleep(Duration::from_millis(1100)).await;
    assert_eq!(s.verify(&secret).await["code"], "EXPIRED");
    let r = s.as_admin().get("/v1/tokens?state=expired").await;
    assert_eq!(r.body["items"].as_array().unwrap().len(), 1);
    let id = r.body["items"][0]["id"].as_str().unwrap().to_string();
    let r = s.rotate(&id, None).await;
    r.assert_problem(StatusCode::CONFLICT, "token_not_active");
}

async fn management_needs_an_admin_token(db: TestDb) {
    let s = TestServer::start(db).await;
    let r = s.as_anonymous().get("/v1/tokens").await;
    r.assert_problem(StatusCode::UNAUTHORIZED, "unauthorized");
    assert_eq!(r.headers.get("www-authenticate").unwrap(), "Bearer");
    let r = s.with_token("tsr_garbage").get("/v1/tokens").await;
    r.assert_problem(StatusCode::UNAUTHORIZED, "unauthorized");
    let (_, reader) = s
        .create(json!({"name": "reader", "scopes": ["read"]}))
        .await;
    let r = s.with_token(&reader).get("/v1/tokens").await;
    r.assert_problem(StatusCode::FORBIDDEN, "forbidden");
    let r = s.as_anonymous().get("/v1/tokens/self").await;
    r.assert_problem(StatusCode::UNAUTHORIZED, "unauthorized");
}

async fn verify_can_require_admin(db: TestDb) {
    let s = TestServer::start_with(db, &[("TESSERA_VERIFY_REQUIRES_ADMIN", "true")]).await;
    let (_, secret) = s.create(json!({"name": "x"})).await;
    let r = s
        .as_anonymous()
        .post_json("/v1/tokens/verify", json!({"token": secret}))
        .await;
    r.assert_problem(StatusCode::UNAUTHORIZED, "unauthorized");
    let r = s
        .as_admin()
        .post_json("/v1/tokens/verify", json!({"token": secret}))
        .await;
    assert_eq!(r.body["valid"], true);
}

async fn pagination_walks_every_token_once(db: TestDb) {
    let s = TestServer::start(db).await;
    let mut created = Vec::new();
    for i in 0..7 {
        created.push(
            s.create(json!({"name": format!("t{i}"), "owner": "pager"}))
                .await
                .0,
        );
    }
    let mut seen = Vec::new();
    let mut url = "/v1/tokens?owner=pager&limit=3".to_string();
    loop {
        let r = s.as_admin().get(&url).await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.text);
        for item in r.body["items"].as_array().unwrap() {
            seen.push(item["id"].as_str().unwrap().to_string());
        }
        match r.body["next_cursor"].as_str() {
            Some(c) => url = format!("/v1/tokens?owner=pager&limit=3&cursor={c}"),
            None => break,
        }
    }
    created.reverse();
    assert_eq!(seen, created, "newest first, each once");
}

async fn fifty_parallel_rotations_leave_exactly_one_valid_secret(db: TestDb) {
    let s = TestServer::start(db).await;
    let (id, _) = s.create(json!({"name": "contended"})).await;
    let path = format!("/v1/tokens/{id}/rotate");
    let replies = s
        .concurrently(50, Method::POST, &path, Some(&s.admin), |_| None)
        .await;
    let secrets: Vec<String> = replies
        .iter()
        .map(|r| {
            assert_eq!(r.status, StatusCode::OK);
            r.body["secret"].as_str().unwrap().to_string()
        })
        .collect();
    let mut valid = 0;
    for secret in &secrets {
        if s.verify(secret).await["valid"] == true {
            valid += 1;
        }
    }
    assert_eq!(valid, 1);
}

async fn usage_is_recorded_asynchronously(db: TestDb) {
    let s = TestServer::start(db).await;
    let (id, secret) = s.create(json!({"name": "used"})).await;
    for _ in 0..3 {
        assert_eq!(s.verify(&secret).await["valid"], true);
    }
    // The flush interval in tests is 100 ms.
    let mut last_used = serde_json::Value::Null;
    for _ in 0..50 {
        tokio::time::sleep(Duration::from_millis(100)).await;
        last_used =
            s.as_admin().get(&format!("/v1/tokens/{id}")).await.body["last_used_at"].clone();
        if last_used.is_string() {
            break;
        }
    }
    assert!(last_used.is_string(), "last_used_at was not recorded");
    let audit = s.db.store.audit_for_target(&id, 10).await.unwrap();
    assert!(audit.iter().any(|a| a.action == "token.create"));
}

/// Issue #11, item 6: no response is cached, sniffed or leaks its URL as a
/// referrer, above all the one that shows a new secret once.
async fn responses_are_never_cached_or_sniffed(db: TestDb) {
    let s = TestServer::start(db).await;
    let created = s
        .as_admin()
        .post_json("/v1/tokens", json!({"name": "fresh"}))
        .await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.text);
    let health = s.as_anonymous().get("/healthz").await;
    let missing = s.as_anonymous().get("/v1/nothing-here").await;
    let unauthenticated = s.as_anonymous().get("/v1/tokens").await;
    for (what, r) in [
        ("a new token's secret", &created),
        ("/healthz", &health),
        ("a 404 problem", &missing),
        ("a 401 problem", &unauthenticated),
    ] {
        for (name, want) in [
            ("cache-control", "no-store"),
            ("x-content-type-options", "nosniff"),
            ("referrer-policy", "no-referrer"),
        ] {
            assert_eq!(
                r.headers.get(name).and_then(|v| v.to_str().ok()),
                Some(want),
                "{name} on {what}"
            );
        }
    }
}

backend_tests!(
    full_lifecycle_walk,
    expiry_is_enforced,
    management_needs_an_admin_token,
    verify_can_require_admin,
    pagination_walks_every_token_once,
    fifty_parallel_rotations_leave_exactly_one_valid_secret,
    usage_is_recorded_asynchronously,
    responses_are_never_cached_or_sniffed,
);
