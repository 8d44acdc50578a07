//! An off-the-shelf OAuth2 client (Python's Authlib) refreshes through
//! `/oauth2/token` on both backends, and gets `invalid_grant` when it
//! presents the used refresh token again.

use crate::common::{
    people::{create_user, python, refresh, session, PASSWORD},
    TestServer,
};
use reqwest::StatusCode;
use serde_json::json;
use tessera_test_support::{backend_tests, TestDb};

/// Refreshes with Authlib (a public client: `client_id` in the body), then
/// presents the same refresh token again; prints both outcomes.
const AUTHLIB_REFRESH: &str = r#"
import json, sys
from authlib.integrations.requests_client import OAuth2Session
from authlib.integrations.base_client import OAuthError
url, refresh_token, client_id = sys.argv[1:4]
client = OAuth2Session(client_id=client_id, token_endpoint_auth_method="none")
out = {"first": dict(client.refresh_token(url, refresh_token=refresh_token))}
try:
    client.refresh_token(url, refresh_token=refresh_token)
    out["second"] = "accepted"
except OAuthError as e:
    out["second"] = e.error
print(json.dumps(out))
"#;

async fn authlib_refreshes_once_and_then_gets_invalid_grant(db: TestDb) {
    let s = TestServer::start(db).await;
    create_user(&s, "oauth@example.com").await;
    let body =
        json!({"email": "oauth@example.com", "password": PASSWORD, "client_id": "mobile-app"});
    let l = s.as_anonymous().post_json("/v1/auth/login", body).await;
    assert_eq!(l.status, StatusCode::OK, "{}", l.text);
    let rt = l.body["refresh_token"].as_str().unwrap();
    let sid = l.body["session_id"].as_str().unwrap();
    let url = format!("{}/oauth2/token", s.base);
    let args = vec![url, rt.to_string(), "mobile-app".to_string()];
    let out = python(AUTHLIB_REFRESH, args).await;
    let first = &out["first"];
    assert_eq!(first["token_type"], "Bearer", "{out}");
    let access = first["access_token"].as_str().unwrap();
    let next = first["refresh_token"].as_str().unwrap();
    assert!(next.starts_with("tsr_rt_") && next != rt, "{out}");
    assert_ne!(access, l.body["access_token"].as_str().unwrap());
    assert!(first["expires_in"].as_i64().unwrap() > 0, "{out}");
    assert_eq!(out["second"], "invalid_grant", "{out}");
    // The reuse ended the session: the new tokens are dead too.
    assert_eq!(session(&s, sid).await["revoke_reason"], "reuse_detected");
    let me = s.with_token(access).get("/v1/users/me").await;
    assert_eq!(me.status, StatusCode::UNAUTHORIZED, "{}", me.text);
    refresh(&s, next)
        .await
        .assert_problem(StatusCode::UNAUTHORIZED, "invalid_grant");
}

async fn the_token_endpoint_speaks_oauth2_errors(db: TestDb) {
    let s = TestServer::start(db).await;
    let url = format!("{}/oauth2/token", s.base);
    #[rustfmt::skip]
    let cases = [
        ("grant_type=refresh_token&refresh_token=tsr_rt_nope", "invalid_grant"),
        ("grant_type=refresh_token&refresh_token=garbage", "invalid_grant"),
        ("grant_type=password&username=a&password=b", "unsupported_grant_type"),
        ("grant_type=refresh_token", "invalid_request"),
        ("refresh_token=x", "invalid_request"),
    ];
    for (form, error) in cases {
        let r = s
            .http
            .post(&url)
            .header("content-type", "application/x-www-form-urlencoded")
            .body(form)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::BAD_REQUEST, "{form}");
        let body: serde_json::Value = r.json().await.unwrap();
        assert_eq!(body["error"], error, "{form}: {body}");
    }
}

backend_tests!(
    #[needs(PythonModule("authlib"), PythonModule("requests"))]
    authlib_refreshes_once_and_then_gets_invalid_grant,
    the_token_endpoint_speaks_oauth2_errors,
);
