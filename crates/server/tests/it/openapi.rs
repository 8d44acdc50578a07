//! The OpenAPI document is generated from the handlers; this keeps it honest:
//! every documented operation is served, and it is OpenAPI 3.1. (Routes can
//! only be registered through the same `routes!` calls that document them.)

use crate::common;

use common::TestServer;
use reqwest::{Method, StatusCode};
use tessera_test_support::TestDb;

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
        // The event stream stays open unless told to end.
        let concrete = if path == "/v1/events/stream" {
            format!("{concrete}?timeout=0")
        } else {
            concrete
        };
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
        "/oauth2/introspect",
        "/oauth2/revoke",
        "/.well-known/oauth-authorization-server",
    ] {
        assert!(
            paths.contains_key(expected),
            "{expected} missing from the document"
        );
    }
    assert!(operations >= 13);
}

/// The rules amend the document as JSON (`http::doc_rules`); a careless
/// index there inserts a `null` where OpenAPI wants a list or an object, and
/// schemathesis then refuses the whole document.
fn no_value_is_null() {
    fn nulls(v: &serde_json::Value, at: String, out: &mut Vec<String>) {
        match v {
            serde_json::Value::Null => out.push(at),
            serde_json::Value::Array(items) => {
                for (i, item) in items.iter().enumerate() {
                    nulls(item, format!("{at}/{i}"), out);
                }
            }
            serde_json::Value::Object(map) => {
                for (k, item) in map {
                    nulls(item, format!("{at}/{k}"), out);
                }
            }
            _ => {}
        }
    }
    let mut found = Vec::new();
    nulls(&document(), String::new(), &mut found);
    assert!(found.is_empty(), "null values at {found:?}");
}

/// The document as `tessera openapi` prints it and as the server serves it
/// (less the configured limits).
fn document() -> serde_json::Value {
    serde_json::to_value(tessera_server::http::router::openapi()).unwrap()
}

fn operations(doc: &serde_json::Value) -> Vec<(String, String, serde_json::Value)> {
    let mut out = Vec::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for (method, op) in item.as_object().unwrap() {
            out.push((method.to_uppercase(), path.clone(), op.clone()));
        }
    }
    out
}

/// Every error response is a problem document under
/// `application/problem+json`, and the statuses each kind of operation can
/// answer are declared: 401/403 where a token is needed, 400/413/415/422 for
/// a JSON body, 400 for path segments and query strings, 503 wherever the
/// database is used, `Retry-After` on 429 and 503. The OAuth2 token
/// endpoint is the one exception: RFC 6749 §5.2 fixes its 400 body
/// (`{"error": "invalid_grant"}`), which OAuth2 client libraries parse, and
/// it reads a form, so only its 503 is a problem.
fn errors_are_declared_as_problems() {
    let doc = document();
    assert!(doc["components"]["schemas"]["Problem"].is_object());
    assert_eq!(
        doc["components"]["securitySchemes"]["bearer"]["scheme"],
        "bearer"
    );
    let mut checked = 0;
    for (method, path, op) in operations(&doc) {
        let at = format!("{method} {path}");
        let responses = op["responses"].as_object().unwrap();
        let has = |status: &str| responses.contains_key(status);
        let oauth = path.starts_with("/oauth2/");
        // Routes for OAuth2 clients answer a failed client authentication
        // as RFC 6749 does, `401 {"error": "invalid_client"}`.
        let client_auth = op["security"]
            .as_array()
            .is_some_and(|s| s.iter().any(|s| s.get("client_basic").is_some()));
        for (status, response) in responses {
            // RFC 6749 §5.2 (and RFC 7662 / 7009, which follow it): OAuth2
            // error bodies, `invalid_client` with `WWW-Authenticate`.
            if (oauth || client_auth) && status == "401" {
                assert!(
                    response["headers"]["WWW-Authenticate"].is_object(),
                    "{at}: 401 without WWW-Authenticate"
                );
            }
            if (oauth && (status == "400" || status == "401")) || (client_auth && status == "401") {
                assert!(
                    response["content"]["application/json"].is_object(),
                    "{at}: an OAuth2 error body"
                );
                continue;
            }
            if status.starts_with('4') || status.starts_with('5') {
                let content = response["content"].as_object().expect(&at);
                assert_eq!(
                    content.keys().collect::<Vec<_>>(),
                    ["application/problem+json"],
                    "{at} {status}"
                );
                assert_eq!(
                    content["application/problem+json"]["schema"]["$ref"],
                    "#/components/schemas/Problem",
                    "{at} {status}"
                );
            }
            if status == "429" || status == "503" {
                assert!(
                    response["headers"]["Retry-After"].is_object(),
                    "{at} {status} without Retry-After"
                );
            }
        }
        if op.get("security").is_some() {
            let scheme = if client_auth {
                "client_basic"
            } else {
                "bearer"
            };
            // `/oauth2/*` also take the client's credentials in the form
            // (`client_secret_post`): Basic is one of two ways there. The
            // event stream takes an admin token or a client.
            let bearer_too = op["security"]
                .as_array()
                .is_some_and(|s| s.iter().any(|s| s.get("bearer").is_some()));
            let expected = if oauth && client_auth {
                serde_json::json!([{ scheme: [] }, {}])
            } else if client_auth && bearer_too {
                serde_json::json!([{ "bearer": [] }, { "client_basic": [] }])
            } else {
                serde_json::json!([{ scheme: [] }])
            };
            assert_eq!(op["security"], expected, "{at}");
            assert!(has("401"), "{at} needs a token but does not declare 401");
        }
        if op.get("requestBody").is_some() && !oauth {
            for status in ["400", "413", "415", "422"] {
                assert!(
                    has(status),
                    "{at} reads a body but does not declare {status}"
                );
            }
        }
        let params = op["parameters"].as_array().cloned().unwrap_or_default();
        if params
            .iter()
            .any(|p| p["in"] == "path" || p["in"] == "query")
        {
            assert!(
                has("400"),
                "{at} reads the path or query but does not declare 400"
            );
        }
        // These answer from memory: the process, its metrics, its document,
        // the signing keys' public halves (reloaded in the background), and
        // CSRF tokens (an HMAC, nothing stored).
        let in_memory = [
            "/csrf",
            "/healthz",
            "/metrics",
            "/openapi.json",
            "/.well-known/jwks.json",
            "/.well-known/oauth-authorization-server",
        ];
        if !in_memory.contains(&path.as_str()) {
            assert!(
                has("503"),
                "{at} uses the database but does not declare 503"
            );
        }
        checked += 1;
    }
    assert!(checked >= 40, "{checked} operations");
}

/// Routes reach the router only through `routes!` in each resource's
/// `routes()`, which documents them: nothing under `src/http` adds a route
/// any other way (`.route(`, `.nest(`, `.route_service(`), so no route is
/// served without being in the document.
fn every_route_is_documented() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src/http");
    let mut files = vec![dir.clone()];
    let mut scanned = 0;
    while let Some(p) = files.pop() {
        if p.is_dir() {
            files.extend(std::fs::read_dir(&p).unwrap().map(|e| e.unwrap().path()));
            continue;
        }
        let text = std::fs::read_to_string(&p).unwrap();
        for needle in [".route(", ".nest(", ".route_service(", ".nest_service("] {
            assert!(
                !text.contains(needle),
                "{} adds a route with {needle}, bypassing the OpenAPI document",
                p.display()
            );
        }
        scanned += 1;
    }
    assert!(scanned > 10);
}

/// The constraints the server enforces are in the document, so that a
/// request valid by the document is accepted (schemathesis checks it live).
fn constraints_are_declared() {
    let doc = document();
    let schemas = &doc["components"]["schemas"];
    let name = &schemas["CreateTokenRequest"]["properties"]["name"];
    assert_eq!(name["minLength"], 1);
    assert_eq!(name["maxLength"], 200);
    assert!(name["pattern"].is_string());
    let limit = doc["paths"]["/v1/tokens"]["get"]["parameters"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == "limit")
        .unwrap()
        .clone();
    assert_eq!(limit["schema"]["minimum"], 1);
    assert_eq!(limit["schema"]["maximum"], 1000);
    let events = &schemas["CreateEndpointRequest"]["properties"]["event_types"]["items"]["enum"];
    assert!(events.as_array().unwrap().iter().any(|e| e == "revoked"));
    let destination = &schemas["SendAuthCodeRequest"]["properties"]["destination"];
    assert!(destination["pattern"].is_string());
}

/// Found by schemathesis: a subject of 129-200 characters is valid by the
/// document (and by the subject rule) but enrolling it without an
/// `account_name` gave 422, because the label defaulted to the whole subject
/// and labels stop at 128 characters.
async fn any_valid_subject_enrols_without_an_account_name(db: TestDb) {
    let s = TestServer::start_with(db, &[("TOTP_ENC_KEY", common::mfa::TOTP_KEY)]).await;
    let token = common::mfa::mfa_token(&s).await;
    let subject = "u".repeat(200);
    let e = common::mfa::enroll(&s, &token, &subject, serde_json::json!({"qr": "none"})).await;
    assert!(e["otpauth_uri"]
        .as_str()
        .unwrap()
        .contains(&"u".repeat(128)));
}

tessera_test_support::tests! {
    backends: any_valid_subject_enrols_without_an_account_name;
    current_thread: every_documented_operation_is_routed;
    sync:
        no_value_is_null,
        errors_are_declared_as_problems,
        every_route_is_documented,
        constraints_are_declared;
}
