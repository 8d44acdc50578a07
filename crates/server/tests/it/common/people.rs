//! Helpers for the tests of sessions for people: users, login, refresh,
//! metrics, JWT headers, and Python scripts run as independent clients (a
//! test that runs one declares the modules it imports as `PythonModule`).

use base64::Engine;
use reqwest::StatusCode;
use serde_json::{json, Value};

use super::{Reply, TestServer};

/// A password the policy accepts (long, not common, not built from the e-mail).
pub const PASSWORD: &str = "violet-Harbor-lantern-1987";

/// Creates a user with [`PASSWORD`] as the admin; returns the user view.
pub async fn create_user(s: &TestServer, email: &str) -> Value {
    let body = json!({"email": email, "password": PASSWORD, "display_name": "Test Person"});
    let r = s.as_admin().post_json("/v1/users", body).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    r.body
}

/// `POST /v1/auth/login`; the reply unchecked.
pub async fn login(s: &TestServer, email: &str, password: &str) -> Reply {
    let body = json!({"email": email, "password": password});
    s.as_anonymous().post_json("/v1/auth/login", body).await
}

/// A login that opens a session; returns its body (tokens, session id, user).
pub async fn signed_in(s: &TestServer, email: &str) -> Value {
    let r = login(s, email, PASSWORD).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert!(r.body["access_token"].is_string(), "{}", r.text);
    r.body
}

/// `POST /v1/auth/refresh`; the reply unchecked.
pub async fn refresh(s: &TestServer, refresh_token: &str) -> Reply {
    let body = json!({ "refresh_token": refresh_token });
    s.as_anonymous().post_json("/v1/auth/refresh", body).await
}

/// `GET /v1/sessions/{sid}` as the admin.
pub async fn session(s: &TestServer, sid: &str) -> Value {
    let r = s.as_admin().get(&format!("/v1/sessions/{sid}")).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    r.body
}

/// The `/metrics` text.
pub async fn metrics(s: &TestServer) -> String {
    s.as_anonymous().get("/metrics").await.text
}

/// The value of one series (`name{labels}` exactly as exposed), 0 when absent.
pub fn metric(text: &str, series: &str) -> f64 {
    text.lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' '))
        .map_or(0.0, |v| v.trim().parse().unwrap())
}

/// The decoded JOSE header (or, with `part` 1, the claims) of a JWT.
pub fn jwt_part(token: &str, part: usize) -> Value {
    let b64 = token.split('.').nth(part).expect("a JWT has three parts");
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(b64)
        .expect("base64url");
    serde_json::from_slice(&bytes).expect("JSON")
}

/// The `kid` of a JWT.
pub fn kid(token: &str) -> String {
    jwt_part(token, 0)["kid"].as_str().unwrap().to_string()
}

/// The `kid`s the server's JWKS publishes now.
pub async fn jwks_kids(s: &TestServer) -> Vec<String> {
    let r = s.as_anonymous().get("/.well-known/jwks.json").await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    r.body["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["kid"].as_str().unwrap().to_string())
        .collect()
}

/// Runs `python3 -c script args…` off the runtime's threads (the server
/// under test shares them) and parses the JSON it prints.
pub async fn python(script: &'static str, args: Vec<String>) -> Value {
    tokio::task::spawn_blocking(move || {
        let out = std::process::Command::new("python3")
            .arg("-c")
            .arg(script)
            .args(&args)
            .output()
            .expect("python3 runs");
        let stdout = String::from_utf8_lossy(&out.stdout);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "python failed: {stderr}");
        serde_json::from_str(stdout.trim())
            .unwrap_or_else(|e| panic!("not JSON ({e}): {stdout} {stderr}"))
    })
    .await
    .unwrap()
}

/// Verifies an access token with PyJWT against the server's JWKS (issuer
/// `tessera`, and `audience` when given); `{"kid", "claims"}` or `{"error"}`.
pub const PYJWT_VERIFY: &str = r#"
import json, sys, jwt
url, token, audience = sys.argv[1], sys.argv[2], sys.argv[3] or None
try:
    key = jwt.PyJWKClient(url, cache_jwk_set=False).get_signing_key_from_jwt(token)
    claims = jwt.decode(token, key.key, algorithms=["EdDSA", "ES256"],
                        issuer="tessera", audience=audience,
                        options={"verify_aud": audience is not None, "require": ["exp", "iat", "sub"]})
    print(json.dumps({"kid": key.key_id, "claims": claims}))
except jwt.PyJWTError as e:
    print(json.dumps({"error": type(e).__name__ + ": " + str(e)}))
"#;

/// [`PYJWT_VERIFY`] for `token` on `s`.
pub async fn pyjwt_verify(s: &TestServer, token: &str, audience: Option<&str>) -> Value {
    let url = format!("{}/.well-known/jwks.json", s.base);
    let args = vec![url, token.to_string(), audience.unwrap_or("").to_string()];
    python(PYJWT_VERIFY, args).await
}
