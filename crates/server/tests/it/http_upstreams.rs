//! The upstream token cache over HTTP: configured from the `[upstreams]`
//! table, served to callers with `upstream:read`, never showing a token
//! anywhere but the token endpoint.

use std::sync::{
    atomic::{AtomicUsize, Ordering},
    Arc,
};

use crate::common::{serve, TestServer};
use axum::{extract::State, routing::post, Json, Router};
use reqwest::StatusCode;
use serde_json::{json, Value};
use tessera_test_support::TestDb;

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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upstream_tokens_over_http() {
    let (base, logins) = fake_upstream().await;
    // Read by the configuration at start-up; the name is used by this test only.
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
"#
    );
    let s = TestServer::start_with_file(TestDb::sqlite().await, &[], Some(&file)).await;
    let (_, reader) = s
        .create(json!({"name": "svc", "scopes": ["upstream:read"]}))
        .await;
    let (_, plain) = s.create(json!({"name": "plain", "scopes": ["read"]})).await;
    let as_reader = s.with_token(&reader);

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

    let r = as_reader.delete("/v1/upstreams/cpj/tokens?user=ana").await;
    assert_eq!(r.status, StatusCode::OK);
    let r = as_reader.get("/v1/upstreams/cpj/token?user=ana").await;
    assert_eq!(r.body["tier"], "login", "a deleted token means a new login");
    assert_eq!(
        as_reader.delete("/v1/upstreams/tokens").await.status,
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
