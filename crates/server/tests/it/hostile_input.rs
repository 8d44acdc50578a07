//! The hostile-input suite (issue 11, items 4, 7 and 8), table-driven, on
//! both backends: NUL and other control characters in every string a client
//! can send (JSON fields, query and path parameters), bidirectional and
//! zero-width characters in names, over-long fields, wrong JSON types and
//! bodies that are not JSON objects. Every row must answer 4xx
//! `application/problem+json` with its code (and field), never a 5xx, never
//! quote what was sent and never name a Rust type.
//!
//! Sent values carry [`MARK`], so "the reply does not echo the input" is one
//! substring check. The test functions are `#[rustfmt::skip]`: one case a
//! line reads as a table.

use crate::common::{mfa::TOTP_KEY, Reply, TestServer};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use tessera_test_support::{backend_tests, TestDb};

/// In every hostile value; must never come back.
const MARK: &str = "zq9hostile";
/// A well-formed id that names nothing: validation runs before the lookup.
const NO_ID: &str = "01a20c4b-0000-7000-8000-000000000000";
/// A public address literal, so creating an endpoint needs no DNS.
const HOOK: &str = "https://93.184.215.14/hook";
const CODE: &str = "K7QH-2MXD-9TVA-R4PE";

/// One request and what it must get.
struct Row {
    method: Method,
    path: String,
    body: Option<Value>,
    status: StatusCode,
    code: &'static str,
    field: Option<&'static str>,
}

fn row(
    method: Method,
    path: impl Into<String>,
    body: Option<Value>,
    status: u16,
    code: &'static str,
    field: Option<&'static str>,
) -> Row {
    Row {
        method,
        path: path.into(),
        body,
        status: StatusCode::from_u16(status).unwrap(),
        code,
        field,
    }
}

/// 422 `invalid_characters` naming `field`.
fn chars(method: Method, path: impl Into<String>, body: Option<Value>, field: &'static str) -> Row {
    row(method, path, body, 422, "invalid_characters", Some(field))
}

fn post(path: &str, body: Value, field: &'static str) -> Row {
    chars(Method::POST, path, Some(body), field)
}

fn get(path: impl Into<String>, field: &'static str) -> Row {
    chars(Method::GET, path, None, field)
}

async fn start(db: TestDb) -> TestServer {
    TestServer::start_with(db, &[("TOTP_ENC_KEY", TOTP_KEY)]).await
}

/// Sends every row as the admin and checks what every row must hold.
async fn run(s: &TestServer, rows: Vec<Row>) {
    for r in rows {
        let reply = s
            .as_admin()
            .send(r.method.clone(), &r.path, r.body.clone())
            .await;
        let what = format!("{} {} {:?}", r.method, r.path, r.body);
        assert!(!reply.status.is_server_error(), "{what}: {}", reply.text);
        reply.assert_problem(r.status, r.code);
        if let Some(field) = r.field {
            assert_eq!(reply.body["field"], field, "{what}: {}", reply.text);
        }
        assert_safe(&reply, &what);
    }
}

/// Never the input, never a Rust type.
#[track_caller]
fn assert_safe(reply: &Reply, what: &str) {
    let text = &reply.text;
    assert!(!text.contains(MARK), "{what}: echoes the input: {text}");
    assert!(!text.contains("\\u0000"), "{what}: echoes a NUL: {text}");
    let detail = reply.body["detail"].as_str().unwrap_or_default();
    for rust in [
        "struct", "enum ", "`", "Request", "Option", "Vec", "String", "i64", "u32", "u64",
    ] {
        assert!(
            !detail.contains(rust),
            "{what}: detail names {rust:?}: {detail}"
        );
    }
}

fn nul() -> String {
    format!("{MARK}\u{0}x")
}

#[rustfmt::skip]
async fn nul_in_every_string_field_and_parameter(db: TestDb) {
    let s = start(db).await;
    let n = nul();
    let tok = format!("/v1/tokens/{NO_ID}");
    let grants = json!({"role": "member"});
    let auth = |subject: &str, purpose: &str, destination: &str| {
        json!({"subject": subject, "purpose": purpose, "channel": "email", "destination": destination})
    };
    let check = |subject: &str, id: Option<&str>| {
        json!({"subject": subject, "purpose": "login", "code": "123456", "id": id})
    };
    let rows = vec![
        // Tokens: body fields, query parameters, path.
        post("/v1/tokens", json!({"name": n}), "name"),
        post("/v1/tokens", json!({"name": "n", "description": n}), "description"),
        post("/v1/tokens", json!({"name": "n", "owner": n}), "owner"),
        post("/v1/tokens", json!({"name": "n", "metadata": {"k": n}}), "metadata"),
        post("/v1/tokens", json!({"name": "n", "metadata": {n.clone(): "v"}}), "metadata"),
        post("/v1/tokens", json!({"name": "n", "metadata": {"a": [{"b": n}]}}), "metadata"),
        row(Method::POST, "/v1/tokens", Some(json!({"name": "n", "scopes": [n]})), 422, "validation_failed", Some("scopes")),
        row(Method::POST, "/v1/tokens", Some(json!({"name": "n", "expires_at": n})), 422, "validation_failed", Some("expires_at")),
        chars(Method::PATCH, &tok, Some(json!({"name": n})), "name"),
        chars(Method::PATCH, &tok, Some(json!({"description": n})), "description"),
        chars(Method::PATCH, &tok, Some(json!({"metadata": {"k": n}})), "metadata"),
        post(&format!("{tok}/revoke"), json!({"reason": n}), "reason"),
        get("/v1/tokens?owner=zq9hostile%00", "owner"),
        get("/v1/tokens?state=%00", "state"),
        get("/v1/tokens?cursor=%00", "cursor"),
        get("/v1/tokens?limit=%00", "limit"),
        get("/v1/tokens?include_deleted=%00", "include_deleted"),
        get("/v1/tokens/zq9hostile%00", "id"),
        // Invites.
        post("/v1/invites", json!({"grants": {"role": n}}), "grants.role"),
        post("/v1/invites", json!({"grants": {"role": "member", "scopes": [n]}}), "grants.scopes"),
        post("/v1/invites", json!({"grants": grants, "email": n}), "email"),
        post("/v1/invites", json!({"grants": grants, "on_behalf_of": {"subject": n, "role": "admin"}}), "on_behalf_of.subject"),
        post("/v1/invites", json!({"grants": grants, "on_behalf_of": {"subject": "s", "role": n}}), "on_behalf_of.role"),
        post("/v1/invites", json!({"grants": grants, "metadata": {"k": n}}), "metadata"),
        post("/v1/invites/validate", json!({"code": CODE, "email": n}), "email"),
        post("/v1/invites/redeem", json!({"code": CODE, "subject": n}), "subject"),
        post("/v1/invites/redeem", json!({"code": CODE, "subject": "bob", "email": n}), "email"),
        get("/v1/invites?issuer=zq9hostile%00", "issuer"),
        get("/v1/invites?state=%00", "state"),
        get("/v1/invites/%00", "id"),
        // Webhooks.
        post("/v1/webhooks/endpoints", json!({"url": HOOK, "description": n}), "description"),
        row(Method::POST, "/v1/webhooks/endpoints", Some(json!({"url": format!("{HOOK}{n}")})), 422, "validation_failed", Some("url")),
        row(Method::POST, "/v1/webhooks/endpoints", Some(json!({"url": HOOK, "event_types": [n]})), 422, "validation_failed", Some("event_types")),
        chars(Method::PATCH, format!("/v1/webhooks/endpoints/{NO_ID}"), Some(json!({"description": n})), "description"),
        get("/v1/webhooks/deliveries?event=zq9hostile%00", "event"),
        get("/v1/webhooks/deliveries?endpoint=zq9hostile%00", "endpoint"),
        get("/v1/webhooks/deliveries?status=%00", "status"),
        get("/v1/webhooks/deliveries/%00", "id"),
        // Second factors.
        post("/v1/subjects/alice/totp", json!({"name": n}), "name"),
        post("/v1/subjects/alice/totp", json!({"issuer": n}), "issuer"),
        post("/v1/subjects/alice/totp", json!({"account_name": n}), "account_name"),
        get("/v1/subjects/zq9hostile%00/totp", "subject"),
        get("/v1/subjects/zq9hostile%00/recovery-codes", "subject"),
        post("/v1/subjects/al%00ice/totp/verify", json!({"code": "123456"}), "subject"),
        chars(Method::DELETE, "/v1/subjects/alice/totp/%00", None, "device_id"),
        post("/v1/auth-codes", auth(&n, "login", "a@example.com"), "subject"),
        post("/v1/auth-codes", auth("alice", &n, "a@example.com"), "purpose"),
        post("/v1/auth-codes", auth("alice", "login", &n), "destination"),
        post("/v1/auth-codes/verify", check(&n, None), "subject"),
        post("/v1/auth-codes/verify", json!({"subject": "alice", "purpose": "login", "code": "12\u{0}34"}), "code"),
        post("/v1/auth-codes/verify", json!({"subject": "alice", "purpose": "login", "code": "\u{d7}\u{f8}\u{9b}"}), "code"),
        row(Method::POST, "/v1/auth-codes/verify", Some(check("alice", Some(&n))), 422, "validation_failed", Some("id")),
        // Upstream cache.
        get("/v1/upstreams/demo/token?user=zq9hostile%00", "user"),
        get("/v1/upstreams/zq9hostile%00/token", "api"),
    ];
    run(&s, rows).await;
    // An auth code's length is counted in characters, as documented: nine
    // two-byte letters are a (wrong) code, not an over-long one.
    let r = s
        .as_admin()
        .post_json("/v1/auth-codes/verify", json!({"subject": "alice", "purpose": "login", "code": "ččččččččč"}))
        .await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    assert_eq!(r.body["code"], "NO_CODE");
    // verify answers 200 for any well-formed request: a NUL token is malformed.
    for body in [json!({"token": nul()}), json!({"token": "tsr_x", "scopes": [nul()]})] {
        let r = s.verify_reply(body).await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.text);
        assert_eq!(r.body["valid"], false);
        assert_safe(&r, "verify");
    }
}

#[rustfmt::skip]
async fn control_characters_follow_each_fields_rule(db: TestDb) {
    let s = start(db).await;
    let with = |c: char| format!("{MARK}{c}x");
    let mut rows = Vec::new();
    // C0 (escape), DEL, C1 (NEL, CSI): refused everywhere.
    for c in ['\u{1b}', '\u{7f}', '\u{85}', '\u{9b}'] {
        rows.push(post("/v1/tokens", json!({"name": with(c)}), "name"));
        rows.push(post("/v1/tokens", json!({"name": "n", "description": with(c)}), "description"));
        rows.push(post(&format!("/v1/tokens/{NO_ID}/revoke"), json!({"reason": with(c)}), "reason"));
        rows.push(post("/v1/webhooks/endpoints", json!({"url": HOOK, "description": with(c)}), "description"));
        rows.push(post("/v1/subjects/alice/totp", json!({"name": with(c)}), "name"));
    }
    // Tab and line breaks: free text takes them, names and parameters do not.
    for c in ['\t', '\n', '\r'] {
        rows.push(post("/v1/tokens", json!({"name": with(c)}), "name"));
        rows.push(post("/v1/tokens", json!({"name": "n", "owner": with(c)}), "owner"));
        rows.push(post("/v1/invites/redeem", json!({"code": CODE, "subject": with(c)}), "subject"));
    }
    rows.push(get("/v1/tokens?owner=zq9hostile%1B", "owner"));
    rows.push(get("/v1/tokens?owner=zq9hostile%C2%85", "owner"));
    rows.push(get("/v1/tokens?owner=zq9hostile%09", "owner"));
    rows.push(get("/v1/subjects/zq9hostile%0A/totp", "subject"));
    rows.push(row(Method::GET, "/v1/tokens?zq9hostile%00=1", None, 422, "invalid_characters", None));
    run(&s, rows).await;

    let free = "line one\n\tline two\r\n";
    let (id, _) = s
        .create(json!({"name": "n", "description": free, "metadata": {"note": free}}))
        .await;
    let r = s.as_admin().get(&format!("/v1/tokens/{id}")).await;
    assert_eq!(r.body["description"], free);
    let r = s.revoke(&id, Some(json!({"reason": free}))).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let r = s
        .as_admin()
        .post_json(
            "/v1/webhooks/endpoints",
            json!({"url": HOOK, "description": free, "enabled": false}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
}

#[rustfmt::skip]
async fn bidi_and_zero_width_characters_are_refused_in_names(db: TestDb) {
    let s = start(db).await;
    let grants = json!({"role": "member"});
    let mut rows = Vec::new();
    for c in ['\u{202a}', '\u{202e}', '\u{2066}', '\u{2069}', '\u{200b}', '\u{200d}', '\u{2060}', '\u{feff}'] {
        let v = format!("{c}{MARK}");
        rows.push(post("/v1/tokens", json!({"name": v}), "name"));
        rows.push(post("/v1/tokens", json!({"name": "n", "owner": v}), "owner"));
        rows.push(chars(Method::PATCH, format!("/v1/tokens/{NO_ID}"), Some(json!({"name": v})), "name"));
        rows.push(post("/v1/invites", json!({"grants": grants, "email": format!("{v}@example.com")}), "email"));
        rows.push(post("/v1/invites", json!({"grants": grants, "on_behalf_of": {"subject": v, "role": "admin"}}), "on_behalf_of.subject"));
        rows.push(post("/v1/invites/redeem", json!({"code": CODE, "subject": v}), "subject"));
        rows.push(post("/v1/subjects/alice/totp", json!({"name": v}), "name"));
        rows.push(post("/v1/subjects/alice/totp", json!({"issuer": v}), "issuer"));
        rows.push(post("/v1/subjects/alice/totp", json!({"account_name": v}), "account_name"));
        rows.push(post("/v1/auth-codes", json!({"subject": v, "purpose": "login", "channel": "email", "destination": "a@example.com"}), "subject"));
    }
    rows.push(get("/v1/subjects/%E2%80%AEzq9hostile/totp", "subject"));
    rows.push(get("/v1/upstreams/demo/token?user=%E2%80%AEzq9hostile", "user"));
    run(&s, rows).await;
    // Free text keeps them: right-to-left text needs them.
    let text = "\u{2067}مرحبا\u{2069} \u{202e}x\u{200d}y";
    let (id, _) = s.create(json!({"name": "rtl", "description": text})).await;
    let r = s.as_admin().get(&format!("/v1/tokens/{id}")).await;
    assert_eq!(r.body["description"], text);
}

#[rustfmt::skip]
async fn over_long_fields_are_refused_without_echo(db: TestDb) {
    let s = start(db).await;
    let long = |n: usize| MARK.repeat(n / MARK.len() + 1);
    let invalid = |method: Method, path: &str, body: Value, field: &'static str| {
        row(method, path, Some(body), 422, "validation_failed", Some(field))
    };
    let rows = vec![
        invalid(Method::POST, "/v1/tokens", json!({"name": long(200)}), "name"),
        invalid(Method::POST, "/v1/tokens", json!({"name": "n", "description": long(1000)}), "description"),
        invalid(Method::POST, "/v1/tokens", json!({"name": "n", "owner": long(200)}), "owner"),
        invalid(Method::POST, "/v1/tokens", json!({"name": "n", "metadata": {"k": long(9000)}}), "metadata"),
        invalid(Method::POST, "/v1/tokens", json!({"name": "n", "scopes": [MARK]}), "scopes"),
        invalid(Method::POST, &format!("/v1/tokens/{NO_ID}/revoke"), json!({"reason": long(500)}), "reason"),
        invalid(Method::POST, "/v1/tokens/verify", json!({"token": long(1024)}), "token"),
        invalid(Method::POST, "/v1/webhooks/endpoints", json!({"url": HOOK, "description": long(1000)}), "description"),
        invalid(Method::POST, "/v1/webhooks/endpoints", json!({"url": HOOK, "event_types": [MARK]}), "event_types"),
        invalid(Method::POST, "/v1/subjects/alice/totp", json!({"name": long(64)}), "name"),
        invalid(Method::POST, "/v1/invites/redeem", json!({"code": CODE, "subject": long(200)}), "subject"),
        invalid(Method::POST, "/v1/auth-codes", json!({"subject": "a", "purpose": long(64), "channel": "email", "destination": "a@example.com"}), "purpose"),
        invalid(Method::POST, "/v1/invites", json!({"grants": {"role": MARK.to_uppercase()}}), "grants.role"),
    ];
    run(&s, rows).await;
}

#[rustfmt::skip]
async fn wrong_json_types_name_no_rust_type(db: TestDb) {
    let s = start(db).await;
    let tok = format!("/v1/tokens/{NO_ID}");
    let grants = json!({"role": "member"});
    let body = |path: &str, body: Value| {
        row(Method::POST, path, Some(body), 422, "invalid_request_body", None)
    };
    let rows = vec![
        body("/v1/tokens", json!({"name": [MARK]})),
        body("/v1/tokens", json!({"name": "n", "scopes": MARK})),
        body("/v1/tokens", json!({"name": "n", "expires_in": MARK})),
        body("/v1/tokens", json!({"name": "n", "metadata": [MARK]})),
        body("/v1/tokens", json!({"name": "n", "auto_rotate": MARK})),
        body("/v1/tokens", json!({"name": "n", MARK: 1})),
        body(&format!("{tok}/rotate"), json!({"grace_seconds": MARK})),
        body(&format!("{tok}/revoke"), json!({"purge": MARK})),
        body(&format!("{tok}/revoke"), json!({"reason": {MARK: 1}})),
        row(Method::PATCH, &tok, Some(json!({"expires_in": 4_294_967_296.5})), 422, "invalid_request_body", None),
        body("/v1/tokens/verify", json!({"token": [MARK]})),
        body("/v1/invites", json!({"grants": MARK})),
        body("/v1/invites", json!({"grants": grants, "max_uses": MARK})),
        body("/v1/invites", json!({"grants": grants, "on_behalf_of": MARK})),
        body("/v1/invites", json!({"grants": grants, "expires_at": MARK})),
        body("/v1/invites", json!({"grants": {"role": "member", "scopes": [1, MARK]}})),
        body("/v1/webhooks/endpoints", json!({"url": 5})),
        body("/v1/webhooks/endpoints", json!({"url": HOOK, "enabled": MARK})),
        body("/v1/subjects/alice/totp", json!({"qr": MARK})),
        body("/v1/auth-codes", json!({"subject": "a", "purpose": "login", "channel": MARK, "destination": "a@example.com"})),
        body("/v1/auth-codes/verify", json!({"subject": "a", "purpose": "login", "code": 123456})),
        row(Method::GET, "/v1/tokens?limit=99999999999", None, 400, "invalid_query", None),
        row(Method::GET, "/v1/tokens?include_deleted=zq9hostile", None, 400, "invalid_query", None),
        row(Method::GET, "/v1/tokens?zq9hostile=1", None, 400, "invalid_query", None),
    ];
    run(&s, rows).await;
    // The detail still says where and what: the field's path and the JSON type.
    let r = s.rotate(NO_ID, Some(json!({"grace_seconds": MARK}))).await;
    let detail = r.body["detail"].as_str().unwrap();
    assert!(detail.starts_with("grace_seconds: "), "{detail}");
    assert!(detail.contains("expected an integer, got a string"), "{detail}");
    let r = s
        .as_admin()
        .post_json("/v1/invites", json!({"grants": {"role": "member", "scopes": [1]}}))
        .await;
    let detail = r.body["detail"].as_str().unwrap();
    assert!(detail.starts_with("grants.scopes[0]: "), "{detail}");
}

/// Every endpoint that reads a JSON body, as (method, path).
fn json_endpoints() -> Vec<(Method, String)> {
    let tok = format!("/v1/tokens/{NO_ID}");
    [
        (Method::POST, "/v1/tokens".to_string()),
        (Method::PATCH, tok.clone()),
        (Method::POST, format!("{tok}/rotate")),
        (Method::POST, format!("{tok}/revoke")),
        (Method::POST, "/v1/tokens/verify".into()),
        (Method::POST, "/v1/invites".into()),
        (Method::POST, "/v1/invites/validate".into()),
        (Method::POST, "/v1/invites/redeem".into()),
        (Method::POST, "/v1/webhooks/endpoints".into()),
        (Method::PATCH, format!("/v1/webhooks/endpoints/{NO_ID}")),
        (Method::POST, "/v1/subjects/alice/totp".into()),
        (
            Method::POST,
            format!("/v1/subjects/alice/totp/{NO_ID}/confirm"),
        ),
        (Method::POST, "/v1/subjects/alice/totp/verify".into()),
        (
            Method::POST,
            "/v1/subjects/alice/recovery-codes/verify".into(),
        ),
        (Method::POST, "/v1/auth-codes".into()),
        (Method::POST, "/v1/auth-codes/verify".into()),
    ]
    .into()
}

#[rustfmt::skip]
async fn non_object_bodies_are_refused_on_every_json_endpoint(db: TestDb) {
    let s = start(db).await;
    let mut rows = Vec::new();
    for (method, path) in json_endpoints() {
        for body in [json!([]), json!([null, null]), json!(MARK), json!(42), json!(null), json!(true), json!([MARK, true])] {
            rows.push(row(method.clone(), &path, Some(body), 422, "invalid_request_body", None));
        }
    }
    run(&s, rows).await;
    // The probe's finding: an array revoked the token.
    let (id, secret) = s.create(json!({"name": "victim"})).await;
    s.revoke(&id, Some(json!([null, null])))
        .await
        .assert_problem(StatusCode::UNPROCESSABLE_ENTITY, "invalid_request_body");
    assert_eq!(s.verify(&secret).await["valid"], true);
}

async fn hostile_user_agents_are_cleaned_not_refused(db: TestDb) {
    let s = start(db).await;
    // Only tab gets through HTTP header parsing as a control character; the
    // bytes past ASCII are not text and are dropped.
    for agent in [
        &b"curl\t7"[..],
        "agent \u{202e}x".as_bytes(),
        &b"a\xc2\x85b"[..],
    ] {
        let r = s
            .http
            .post(format!("{}/v1/tokens/verify", s.base))
            .header(
                "user-agent",
                reqwest::header::HeaderValue::from_bytes(agent).unwrap(),
            )
            .json(&json!({"token": "tsr_nope"}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::OK);
        let r = s
            .http
            .post(format!("{}/v1/tokens", s.base))
            .bearer_auth(&s.admin)
            .header(
                "user-agent",
                reqwest::header::HeaderValue::from_bytes(agent).unwrap(),
            )
            .json(&json!({"name": "from a hostile agent"}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::CREATED);
    }
}

backend_tests!(
    nul_in_every_string_field_and_parameter,
    control_characters_follow_each_fields_rule,
    bidi_and_zero_width_characters_are_refused_in_names,
    over_long_fields_are_refused_without_echo,
    wrong_json_types_name_no_rust_type,
    non_object_bodies_are_refused_on_every_json_endpoint,
    hostile_user_agents_are_cleaned_not_refused,
);
