//! The OpenAPI document is generated from the handlers; this keeps it honest:
//! every documented operation is served, and it is OpenAPI 3.1. (Routes can
//! only be registered through the same `routes!` calls that document them.)

use crate::common;

use common::TestServer;
use reqwest::{Method, StatusCode};
use tessera_test_support::TestDb;

#[tokio::test]
async fn every_documented_operation_is_routed() {
    let s = TestServer::start_with(
        TestDb::sqlite().await,
        &[("TOTP_ENC_KEY", common::mfa::TOTP_KEY)],
    )
    .await;
    let doc = s.as_admin().get("/openapi.json").await.body;
    assert!(doc["openapi"].as_str().unwrap().starts_with("3.1"));
    let paths = doc["paths"].as_object().unwrap();
    let mut operations = 0;
    for (path, item) in paths {
        let concrete = path
            .replace("{id}", "01a20c4b-0000-7000-8000-000000000000")
            .replace("{device_id}", "01a20c4b-0000-7000-8000-000000000000")
            .replace("{subject}", "u_openapi");
        for method in item.as_object().unwrap().keys() {
            let m = Method::from_bytes(method.to_uppercase().as_bytes()).unwrap();
            let r = s.admin(m, &concrete, None).await;
            assert_ne!(r.status, StatusCode::METHOD_NOT_ALLOWED, "{method} {path}");
            assert_ne!(
                r.body["code"], "not_found",
                "{method} {path} is documented but not routed"
            );
            assert!(!r.status.is_server_error(), "{method} {path}: {}", r.text);
            operations += 1;
        }
    }
    for expected in [
        "/v1/tokens",
        "/v1/tokens/{id}",
        "/v1/tokens/verify",
        "/v1/tokens/self",
        "/v1/subjects/{subject}/totp",
        "/v1/subjects/{subject}/totp/verify",
        "/v1/subjects/{subject}/recovery-codes/verify",
        "/v1/auth-codes",
        "/v1/auth-codes/verify",
        "/healthz",
        "/readyz",
        "/metrics",
        "/openapi.json",
    ] {
        assert!(
            paths.contains_key(expected),
            "{expected} missing from the document"
        );
    }
    assert!(operations >= 13);
}
