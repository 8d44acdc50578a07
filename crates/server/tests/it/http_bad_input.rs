//! Hostile and sloppy input gets 4xx problem+json with a stable code, never
//! a 5xx, on both backends.

use crate::common;

use common::TestServer;
use reqwest::{Method, StatusCode};
use serde_json::json;
use tessera_test_support::{backend_tests, TestDb};

async fn raw(
    s: &TestServer,
    method: Method,
    path: &str,
    content_type: Option<&str>,
    body: Vec<u8>,
) -> common::Reply {
    let mut req = s
        .http
        .request(method, format!("{}{}", s.base, path))
        .bearer_auth(&s.admin)
        .body(body);
    if let Some(ct) = content_type {
        req = req.header("content-type", ct);
    }
    common::Reply::from(req.send().await.unwrap()).await
}

async fn bodies_that_are_not_what_we_expect(db: TestDb) {
    let s = TestServer::start(db).await;
    let json_ct = Some("application/json");
    // One case a line reads as a table; keep rustfmt from unfolding it.
    #[rustfmt::skip]
    let cases: [(Option<&str>, Vec<u8>, StatusCode, &str); 7] = [
        (json_ct, b"{\"name\": ".to_vec(), StatusCode::BAD_REQUEST, "malformed_json"),
        (json_ct, b"{\"name\": 42}".to_vec(), StatusCode::UNPROCESSABLE_ENTITY, "invalid_request_body"),
        (json_ct, b"{\"name\": \"x\", \"nmae\": 1}".to_vec(), StatusCode::UNPROCESSABLE_ENTITY, "invalid_request_body"),
        (json_ct, b"[]".to_vec(), StatusCode::UNPROCESSABLE_ENTITY, "invalid_request_body"),
        (json_ct, vec![b'{', b'"', 0xff, 0xfe, b'"', b'}'], StatusCode::BAD_REQUEST, "malformed_json"),
        (Some("text/plain"), b"{\"name\":\"x\"}".to_vec(), StatusCode::UNSUPPORTED_MEDIA_TYPE, "unsupported_media_type"),
        (None, b"{\"name\":\"x\"}".to_vec(), StatusCode::UNSUPPORTED_MEDIA_TYPE, "unsupported_media_type"),
    ];
    for (content_type, body, status, code) in cases {
        raw(&s, Method::POST, "/v1/tokens", content_type, body)
            .await
            .assert_problem(status, code);
    }
    let huge = format!("{{\"name\": \"{}\"}}", "a".repeat(70 * 1024));
    raw(&s, Method::POST, "/v1/tokens", json_ct, huge.into_bytes())
        .await
        .assert_problem(StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large");
}

async fn values_that_break_the_rules(db: TestDb) {
    let s = TestServer::start(db).await;
    for (body, field) in [
        (json!({"name": ""}), "name"),
        (json!({"name": "x", "scopes": ["root"]}), "scopes"),
        (json!({"name": "x", "expires_in": 0}), "expires_in"),
        (
            json!({"name": "x", "expires_in": 400 * 86400}),
            "expires_in",
        ),
        (
            json!({"name": "x", "expires_at": "yesterday"}),
            "expires_at",
        ),
        (
            json!({"name": "x", "expires_at": "2001-01-01T00:00:00Z"}),
            "expires_at",
        ),
        (json!({"name": "x", "expires_at": "never"}), "expires_at"),
        (
            json!({"name": "x", "expires_in": 60, "expires_at": "never"}),
            "expires_at",
        ),
        (
            json!({"name": "x", "metadata": {"blob": "y".repeat(9000)}}),
            "metadata",
        ),
    ] {
        let r = s.as_admin().post_json("/v1/tokens", body.clone()).await;
        r.assert_problem(StatusCode::UNPROCESSABLE_ENTITY, "validation_failed");
        assert_eq!(r.body["field"], field, "for {body}");
    }
    let (id, _) = s.create(json!({"name": "x"})).await;
    let r = s.rotate(&id, Some(json!({"grace_seconds": 100000}))).await;
    r.assert_problem(StatusCode::UNPROCESSABLE_ENTITY, "validation_failed");
    let r = s.rotate(&id, Some(json!({"grace_seconds": "soon"}))).await;
    r.assert_problem(StatusCode::UNPROCESSABLE_ENTITY, "invalid_request_body");
}

async fn tokens_ids_and_queries_that_are_wrong(db: TestDb) {
    let s = TestServer::start(db).await;
    // A 10 KB token: in a verify body, and as a bearer token.
    let big = "t".repeat(10 * 1024);
    let r = s
        .as_anonymous()
        .post_json("/v1/tokens/verify", json!({"token": big}))
        .await;
    r.assert_problem(StatusCode::UNPROCESSABLE_ENTITY, "validation_failed");
    let r = s.with_token(&big).get("/v1/tokens/self").await;
    r.assert_problem(StatusCode::UNAUTHORIZED, "unauthorized");
    // Well-formed request, malformed token: 200 with the code.
    let r = s
        .as_anonymous()
        .post_json("/v1/tokens/verify", json!({"token": "tsr_short"}))
        .await;
    assert_eq!(r.body, json!({"valid": false, "code": "MALFORMED"}));
    // Each wrong id, query or route gets its own problem code. One case a
    // line reads as a table; keep rustfmt from unfolding it.
    #[rustfmt::skip]
    let cases = [
        (Method::GET, "/v1/tokens/%FF%FE", StatusCode::BAD_REQUEST, "invalid_path"),
        (Method::GET, "/v1/tokens/not-an-id", StatusCode::NOT_FOUND, "token_not_found"),
        (Method::GET, "/v1/tokens/01a20c4b-0000-7000-8000-000000000000", StatusCode::NOT_FOUND, "token_not_found"),
        (Method::POST, "/v1/tokens/not-an-id/rotate", StatusCode::NOT_FOUND, "token_not_found"),
        (Method::GET, "/v1/tokens?state=sleepy", StatusCode::UNPROCESSABLE_ENTITY, "validation_failed"),
        (Method::GET, "/v1/tokens?limit=-1", StatusCode::BAD_REQUEST, "invalid_query"),
        (Method::GET, "/v1/tokens?limit=5000", StatusCode::UNPROCESSABLE_ENTITY, "validation_failed"),
        (Method::GET, "/v1/tokens?cursor=garbage", StatusCode::UNPROCESSABLE_ENTITY, "validation_failed"),
        (Method::GET, "/v1/tokens?colour=blue", StatusCode::BAD_REQUEST, "invalid_query"),
        (Method::GET, "/v2/nothing", StatusCode::NOT_FOUND, "not_found"),
        (Method::PUT, "/v1/tokens", StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed"),
    ];
    for (method, path, status, code) in cases {
        s.admin(method, path, None)
            .await
            .assert_problem(status, code);
    }
}

async fn request_ids_are_propagated_or_generated(db: TestDb) {
    let s = TestServer::start(db).await;
    let r = s
        .http
        .get(format!("{}/v1/tokens/nope", s.base))
        .bearer_auth(&s.admin)
        .header("x-request-id", "abc-123")
        .send()
        .await
        .unwrap();
    assert_eq!(r.headers()["x-request-id"], "abc-123");
    let body: serde_json::Value = r.json().await.unwrap();
    assert_eq!(body["request_id"], "abc-123");
    let r = s
        .http
        .get(format!("{}/healthz", s.base))
        .header("x-request-id", "bad id with spaces")
        .send()
        .await
        .unwrap();
    let id = r.headers()["x-request-id"].to_str().unwrap();
    assert_ne!(id, "bad id with spaces");
    assert_eq!(id.len(), 36);
}

backend_tests!(
    bodies_that_are_not_what_we_expect,
    values_that_break_the_rules,
    tokens_ids_and_queries_that_are_wrong,
    request_ids_are_propagated_or_generated,
);
