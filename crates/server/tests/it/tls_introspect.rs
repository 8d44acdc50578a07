//! Issue #14's mutual-TLS acceptance, end to end over the real HTTPS
//! listener and `POST /oauth2/introspect`: a certificate whose CN is allowed
//! introspects without a password; a refused CN, a certificate from another
//! CA, and no certificate at all (without Basic credentials) all get the
//! same `401 invalid_client`, byte for byte, and the same headers apart
//! from the date and the request id.

use std::path::PathBuf;

use reqwest::{header::HeaderMap, StatusCode};
use serde_json::Value;
use tessera_test_support::{backend_tests, TestDb};

use crate::common::{
    people::{create_user, signed_in},
    pki::{https_client, write, Ca, Leaf},
    TestServer,
};

const ALLOWED: &str = "gateway.internal";

/// The answer to one introspection: status, headers that do not vary per
/// request, and the body.
async fn ask(
    client: &reqwest::Client,
    url: &str,
    token: &str,
) -> (StatusCode, Vec<String>, String) {
    let res = client
        .post(url)
        .form(&[("token", token)])
        .send()
        .await
        .expect("the TLS handshake and the request succeed");
    let status = res.status();
    let headers = stable(res.headers());
    (status, headers, res.text().await.unwrap())
}

fn stable(headers: &HeaderMap) -> Vec<String> {
    let mut out: Vec<String> = headers
        .iter()
        .filter(|(k, _)| !matches!(k.as_str(), "date" | "x-request-id"))
        .map(|(k, v)| format!("{k}: {}", v.to_str().unwrap_or("?")))
        .collect();
    out.sort();
    out
}

async fn a_certificate_with_an_allowed_cn_introspects_and_others_are_refused_alike(db: TestDb) {
    let dir = tempfile::tempdir().unwrap();
    let (server_ca, client_ca, other_ca) = (
        Ca::new("mtls server CA"),
        Ca::new("mtls client CA"),
        Ca::new("mtls client CA"),
    );
    let server = server_ca.issue(Leaf::server());
    let path = |name: &str, text: &str| -> String {
        let p: PathBuf = write(dir.path(), name, text);
        p.display().to_string()
    };
    let env = [
        ("TESSERA_TLS_CERT", path("server.pem", &server.cert_pem)),
        ("TESSERA_TLS_KEY", path("server.key", &server.key_pem)),
        (
            "TESSERA_TLS_CLIENT_CA",
            path("client-ca.pem", &client_ca.pem()),
        ),
        ("INTROSPECTION_MTLS_ALLOWED_CNS", ALLOWED.to_string()),
    ];
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let mut s = TestServer::start_with(db, &env).await;
    // The server speaks HTTPS only: every helper goes through it.
    let https = https_client(&server_ca.pem(), None);
    s.base = format!("https://{}", s.base.trim_start_matches("http://"));
    s.http = https.clone();
    let url = format!("{}/oauth2/introspect", s.base);
    // An access token to ask about, from a login.
    create_user(&s, "mtls@example.com").await;
    let login = signed_in(&s, "mtls@example.com").await;
    let access = login["access_token"].as_str().unwrap();

    let allowed = client_ca.issue(Leaf::client(ALLOWED, 2));
    let with = |identity: reqwest::Identity| https_client(&server_ca.pem(), Some(identity));
    let (status, _, body) = ask(&with(allowed.identity()), &url, access).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let v: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["active"], true, "{v}");
    assert_eq!(v["sid"], login["session_id"], "{v}");

    let refused_cn = client_ca.issue(Leaf::client("intruder.internal", 3));
    let foreign = other_ca.issue(Leaf::client(ALLOWED, 4));
    let answers = [
        (
            "a refused CN",
            ask(&with(refused_cn.identity()), &url, access).await,
        ),
        (
            "another CA",
            ask(&with(foreign.identity()), &url, access).await,
        ),
        ("no certificate", ask(&https, &url, access).await),
    ];
    let (_, first) = &answers[0];
    assert_eq!(first.0, StatusCode::UNAUTHORIZED, "{}", first.2);
    assert_eq!(first.2, r#"{"error":"invalid_client"}"#);
    assert!(
        first
            .1
            .iter()
            .any(|h| h == r#"www-authenticate: Basic realm="tessera""#),
        "{:?}",
        first.1
    );
    for (case, answer) in &answers[1..] {
        assert_eq!(answer, first, "{case} is answered differently");
    }
}

backend_tests!(a_certificate_with_an_allowed_cn_introspects_and_others_are_refused_alike);
