//! Helpers for second-factor tests: an `mfa`-scoped caller, TOTP codes from
//! an enrolment, and an independent authenticator (Python's `pyotp`; a test
//! that uses it declares `Need::PythonModule("pyotp")`).

use reqwest::StatusCode;
use serde_json::{json, Value};
use tessera_core::mfa::totp::{base32_decode, Algorithm, TotpParams};

use super::TestServer;

pub const TOTP_KEY: &str = "totp-test-key-0123456789abcdef0123";

/// Creates a token with only the `mfa` scope.
pub async fn mfa_token(s: &TestServer) -> String {
    s.create(json!({"name": "app-backend", "scopes": ["mfa"]}))
        .await
        .1
}

/// Enrols a device for `subject`; returns the 201 body.
pub async fn enroll(s: &TestServer, token: &str, subject: &str, body: Value) -> Value {
    let r = s
        .with_token(token)
        .post_json(&format!("/v1/subjects/{subject}/totp"), body)
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    r.body
}

/// The code for unix time `at` of an enrolment, computed with our own RFC 6238 code.
pub fn code_at(enrolled: &Value, at: i64) -> String {
    let secret = base32_decode(enrolled["secret"].as_str().unwrap()).unwrap();
    let p = &enrolled["device"]["params"];
    let params = TotpParams {
        algorithm: Algorithm::parse(p["algorithm"].as_str().unwrap()).unwrap(),
        digits: p["digits"].as_u64().unwrap() as u32,
        period: p["period"].as_i64().unwrap(),
    };
    params.code_at(&secret, at)
}

pub fn now() -> i64 {
    chrono::Utc::now().timestamp()
}

/// A code of the usual shape that is not `right`.
pub fn wrong_code(right: &str) -> &'static str {
    if right == "000000" {
        "111111"
    } else {
        "000000"
    }
}

/// The code an independent implementation computes from the `otpauth://` URI.
pub fn pyotp_code(uri: &str, at: i64) -> String {
    let out = std::process::Command::new("python3")
        .args([
            "-c",
            "import pyotp, sys; print(pyotp.parse_uri(sys.argv[1]).at(int(sys.argv[2])))",
            uri,
            &at.to_string(),
        ])
        .output()
        .expect("python3 runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap().trim().to_string()
}

/// POSTs a code to `path`; returns the check body (always 200).
pub async fn check(s: &TestServer, token: &str, path: &str, body: Value) -> Value {
    let r = s.with_token(token).post_json(path, body).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    r.body
}
