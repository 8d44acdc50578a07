//! The upstream token cache over HTTP: configured from the `[upstreams]`
//! table, served to callers with `upstream:read`, cleared by callers with
//! `upstream:admin`, logging in only as the users each upstream lists, never
//! showing a token anywhere but the token endpoint.

use std::sync::{
    atomic::{AtomicUsize, Ordering},
    Arc,
};

use crate::common::{serve, TestServer};
use axum::{extract::State, routing::post, Json, Router};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use tessera_test_support::{backend_tests, TestDb};

async fn fake_upstream() -> (String, Arc<AtomicUsize>) {
    let logins = Arc::new(AtomicUsize::new(0));
    async fn auth(State(n): State<Arc<AtomicUsize>>, Json(body): Json<Value>) -> Json<Value> {
        assert_eq!(body["password"], "pw-from-env");
        let i = n.fetch_add(1, Ordering::SeqCst) + 1;
        Json(
            json!({"token": format!("upstream-token-{}-{i}", body["login"].as_str().unwrap()), "expires_in": 3600}),
        )
    }
    let app = Router::new()
        .route("/auth", post(auth))
        .with_state(logins.clone());
    (format!("http://{}", serve(app).await), logins)
}

/// A server with one upstream `cpj` that may log in as `api` (its default),
/// `ana` and `svc-*`; its fake upstream's login counter.
async fn server_with_upstream(db: TestDb) -> (TestServer, Arc<AtomicUsize>) {
    let (base, logins) = fake_upstream().await;
    // Read by the configuration at start-up; the name is used by this file only.
    std::env::set_var("TESSERA_TEST_CPJ_PASSWORD", "pw-from-env");
    let file = format!(
        r#"
[upstreams.cpj]
kind = "json_login"
url = "{base}/auth"
body = {{ login = "{{user}}", password = "${{TESSERA_TEST_CPJ_PASSWORD}}" }}
token_pointer = "/token"
expires_in_pointer = "/expires_in"
margin_seconds = 60
default_user = "api"
users = ["api", "ana", "svc-*"]
"#
    );
    let s = TestServer::start_with_file(db, &[], Some(&file)).await;
    (s, logins)
}

async fn upstream_tokens_over_http(db: TestDb) {
    let (s, logins) = server_with_upstream(db).await;
    let (_, reader) = s
        .create(json!({"name": "svc", "scopes": ["upstream:read"]}))
        .await;
    let (_, clearer) = s
        .create(json!({"name": "ops", "scopes": ["upstream:admin"]}))
        .await;
    let (_, plain) = s.create(json!({"name": "plain", "scopes": ["read"]})).await;
    let as_reader = s.with_token(&reader);
    let as_clearer = s.with_token(&clearer);

    let r = as_reader.get("/v1/upstreams/cpj/token").await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(r.body["token"], "upstream-token-api-1");
    assert_eq!(r.body["tier"], "login");
    let r = as_reader.get("/v1/upstreams/cpj/token?user=ana").await;
    assert_eq!(r.body["token"], "upstream-token-ana-2");
    let r = as_reader.get("/v1/upstreams/cpj/token").await;
    assert_eq!(r.body["tier"], "memory");
    assert_eq!(logins.load(Ordering::SeqCst), 2);

    for path in ["/v1/upstreams", "/v1/upstreams/cpj/info", "/cache/health"] {
        let r = as_reader.get(path).await;
        assert_eq!(r.status, StatusCode::OK, "{path}: {}", r.text);
        assert!(!r.text.contains("upstream-token-"), "{path} shows a token");
        assert!(!r.text.contains("pw-from-env"), "{path} shows a credential");
    }
    let info = as_reader.get("/v1/upstreams/cpj/info?user=ana").await;
    assert_eq!(info.body["cached"]["tier"], "memory");

    let r = as_clearer.delete("/v1/upstreams/cpj/tokens?user=ana").await;
    assert_eq!(r.status, StatusCode::OK);
    let r = as_reader.get("/v1/upstreams/cpj/token?user=ana").await;
    assert_eq!(r.body["tier"], "login", "a deleted token means a new login");
    assert_eq!(
        as_clearer.delete("/v1/upstreams/tokens").await.status,
        StatusCode::OK
    );
    assert_eq!(
        s.as_admin().delete("/v1/upstreams/cpj/tokens").await.status,
        StatusCode::OK
    );

    // Who is refused what. One case a line reads as a table; keep rustfmt
    // from unfolding it.
    #[rustfmt::skip]
    let refused = [
        ("reader", as_reader, "/v1/upstreams/nope/token", StatusCode::NOT_FOUND, "upstream_not_found"),
        ("plain", s.with_token(&plain), "/v1/upstreams/cpj/token", StatusCode::FORBIDDEN, "forbidden"),
        ("anonymous", s.as_anonymous(), "/v1/upstreams/cpj/token", StatusCode::UNAUTHORIZED, "unauthorized"),
    ];
    for (who, caller, path, status, code) in refused {
        eprintln!("case: {who} GET {path}");
        caller.get(path).await.assert_problem(status, code);
    }
    let m = s.as_anonymous().get("/metrics").await.text;
    assert!(m.contains("tokens_upstream_logins_total"));
}

/// Issue 11, item 9: `upstream:read` reads and no more; only listed users
/// log in, and an unlisted one looks exactly like an unknown upstream.
async fn readers_cannot_clear_and_unlisted_users_are_not_found(db: TestDb) {
    let (s, logins) = server_with_upstream(db).await;
    let (_, reader) = s
        .create(json!({"name": "svc", "scopes": ["upstream:read"]}))
        .await;
    let (_, clearer) = s
        .create(json!({"name": "ops", "scopes": ["upstream:admin"]}))
        .await;
    let (as_reader, as_clearer) = (s.with_token(&reader), s.with_token(&clearer));

    #[rustfmt::skip]
    let forbidden = [
        ("reader clears all", as_reader, Method::DELETE, "/v1/upstreams/tokens"),
        ("reader clears one upstream", as_reader, Method::DELETE, "/v1/upstreams/cpj/tokens"),
        ("reader clears one user", as_reader, Method::DELETE, "/v1/upstreams/cpj/tokens?user=ana"),
        ("clearer reads a token", as_clearer, Method::GET, "/v1/upstreams/cpj/token"),
        ("clearer reads info", as_clearer, Method::GET, "/v1/upstreams/cpj/info"),
    ];
    for (case, caller, method, path) in forbidden {
        eprintln!("case: {case}");
        caller
            .send(method, path, None)
            .await
            .assert_problem(StatusCode::FORBIDDEN, "forbidden");
    }

    // 300 invented names: 300 × 404, not one login.
    let unknown_upstream = as_reader.get("/v1/upstreams/nope/token").await;
    unknown_upstream.assert_problem(StatusCode::NOT_FOUND, "upstream_not_found");
    for i in 0..300 {
        let r = as_reader
            .get(&format!("/v1/upstreams/cpj/token?user=invented-{i}"))
            .await;
        r.assert_problem(StatusCode::NOT_FOUND, "upstream_not_found");
        assert_eq!(r.body["detail"], unknown_upstream.body["detail"]);
        assert_eq!(r.body["title"], unknown_upstream.body["title"]);
        assert!(
            !r.text.contains("invented"),
            "the name is echoed: {}",
            r.text
        );
    }
    assert_eq!(logins.load(Ordering::SeqCst), 0);
    for (caller, method, path) in [
        (
            as_reader,
            Method::GET,
            "/v1/upstreams/cpj/info?user=mallory",
        ),
        (
            as_clearer,
            Method::DELETE,
            "/v1/upstreams/cpj/tokens?user=mallory",
        ),
    ] {
        caller
            .send(method, path, None)
            .await
            .assert_problem(StatusCode::NOT_FOUND, "upstream_not_found");
    }

    // Listed names and patterns do log in.
    for user in ["ana", "svc-billing"] {
        let r = as_reader
            .get(&format!("/v1/upstreams/cpj/token?user={user}"))
            .await;
        assert_eq!(r.status, StatusCode::OK, "{user}: {}", r.text);
    }
    assert_eq!(logins.load(Ordering::SeqCst), 2);
    let list = as_reader.get("/v1/upstreams").await;
    assert_eq!(
        list.body["items"][0]["upstream"]["users"],
        json!(["api", "ana", "svc-*"])
    );
}

backend_tests!(
    upstream_tokens_over_http,
    readers_cannot_clear_and_unlisted_users_are_not_found,
);
