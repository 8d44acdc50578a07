//! Resource servers asking about tokens, on both backends: introspection
//! (RFC 7662) of access, refresh and machine API tokens before and after a
//! revocation, revocation (RFC 7009) by an OAuth2 client, the one answer
//! every failed client authentication gets, and the metadata (RFC 8414).

use crate::common::{
    people::{create_user, metric, metrics, refresh, session, signed_in},
    TestServer,
};
use reqwest::{header::HeaderMap, StatusCode};
use serde_json::{json, Value};
use tessera_test_support::{backend_tests, TestDb};

pub const CLIENT: &str = "rs-gateway";
pub const SECRET: &str = "rs-gateway-secret-0123456789";
pub const ISSUER: &str = "https://auth.example.test";
const AUDIENCE: &str = "api";

pub fn env() -> Vec<(&'static str, &'static str)> {
    vec![
        (
            "INTROSPECTION_CLIENTS",
            "rs-gateway:rs-gateway-secret-0123456789,other-rs:other-rs-secret-abcdefghij",
        ),
        ("TESSERA_ISSUER", ISSUER),
        ("TESSERA_AUDIENCE", AUDIENCE),
    ]
}

/// How a request authenticates as a client.
#[derive(Clone, Copy)]
pub enum Auth<'a> {
    Basic(&'a str, &'a str),
    Post(&'a str, &'a str),
    Bearer(&'a str),
    None,
}

pub struct FormReply {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub text: String,
}

impl FormReply {
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.text).unwrap_or_else(|_| panic!("not JSON: {}", self.text))
    }
}

/// `POST path` with a form of `fields`, authenticated as `auth`.
pub async fn post_form(
    s: &TestServer,
    path: &str,
    fields: &[(&str, &str)],
    auth: Auth<'_>,
) -> FormReply {
    let mut fields: Vec<(&str, &str)> = fields.to_vec();
    let mut req = s.http.post(format!("{}{path}", s.base));
    match auth {
        Auth::Basic(id, secret) => req = req.basic_auth(id, Some(secret)),
        Auth::Post(id, secret) => fields.extend([("client_id", id), ("client_secret", secret)]),
        Auth::Bearer(t) => req = req.bearer_auth(t),
        Auth::None => {}
    }
    let res = req.form(&fields).send().await.unwrap();
    FormReply {
        status: res.status(),
        headers: res.headers().clone(),
        text: res.text().await.unwrap(),
    }
}

/// Introspects `token` as the gateway (Basic); checks `no-store`.
pub async fn introspect(s: &TestServer, token: &str) -> Value {
    let r = post_form(
        s,
        "/oauth2/introspect",
        &[("token", token)],
        Auth::Basic(CLIENT, SECRET),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(r.headers["cache-control"], "no-store");
    r.json()
}

/// Asserts the exact inactive answer, byte for byte.
pub async fn assert_inactive(s: &TestServer, token: &str) {
    let r = post_form(
        s,
        "/oauth2/introspect",
        &[("token", token)],
        Auth::Basic(CLIENT, SECRET),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(r.text, r#"{"active":false}"#);
    assert_eq!(r.headers["cache-control"], "no-store");
}

async fn revoke(s: &TestServer, token: &str, auth: Auth<'_>) -> FormReply {
    post_form(s, "/oauth2/revoke", &[("token", token)], auth).await
}

async fn access_tokens_go_inactive_at_once_when_their_session_is_revoked(db: TestDb) {
    let s = TestServer::start_with(db, &env()).await;
    let user = create_user(&s, "intro@example.com").await;
    let l = signed_in(&s, "intro@example.com").await;
    let at = l["access_token"].as_str().unwrap();
    let sid = l["session_id"].as_str().unwrap();
    // Asked twice: the second answer comes from the caches, and is the same.
    let first = introspect(&s, at).await;
    assert_eq!(introspect(&s, at).await, first);
    assert_eq!(first["active"], true, "{first}");
    assert_eq!(first["token_type"], "access_token");
    assert_eq!(first["sid"], sid);
    assert_eq!(first["sub"], user["id"]);
    assert_eq!(first["iss"], ISSUER);
    assert_eq!(first["aud"], AUDIENCE);
    assert!(
        first["scope"].is_string() && first["jti"].is_string(),
        "{first}"
    );
    for t in ["exp", "iat", "nbf"] {
        assert!(first[t].as_i64().unwrap() > 1_600_000_000, "{first}");
    }
    // The admin revokes the session: the very next introspection says so,
    // and so does bearer authentication (the same session cache).
    let r = s.as_admin().delete(&format!("/v1/sessions/{sid}")).await;
    assert!(r.status.is_success(), "{}", r.text);
    assert_inactive(&s, at).await;
    let me = s.with_token(at).get("/v1/users/me").await;
    assert_eq!(me.status, StatusCode::UNAUTHORIZED, "{}", me.text);
    assert_inactive(&s, l["refresh_token"].as_str().unwrap()).await;

    // The same through /oauth2/revoke with the access token.
    let l = signed_in(&s, "intro@example.com").await;
    let at = l["access_token"].as_str().unwrap();
    let sid = l["session_id"].as_str().unwrap();
    assert_eq!(introspect(&s, at).await["active"], true);
    assert_eq!(
        s.with_token(at).get("/v1/users/me").await.status,
        StatusCode::OK
    );
    let r = revoke(&s, at, Auth::Basic(CLIENT, SECRET)).await;
    assert_eq!((r.status, r.text.as_str()), (StatusCode::OK, ""));
    assert_eq!(r.headers["cache-control"], "no-store");
    assert_inactive(&s, at).await;
    let me = s.with_token(at).get("/v1/users/me").await;
    assert_eq!(me.status, StatusCode::UNAUTHORIZED, "{}", me.text);
    let sess = session(&s, sid).await;
    assert_eq!(sess["revoke_reason"], "client_revocation", "{sess}");
    let audit = s.db.store.audit_for_target(sid, 50).await.unwrap();
    let row = audit
        .iter()
        .find(|a| a.action == "session.revoke")
        .expect("a revoke row");
    assert_eq!(row.actor, format!("client:{CLIENT}"));
    // Revoking again, or a token that is not one, is answered 200 as well.
    for token in [at, "not-a-token", "a.b.c", "tsr_rt_nothing"] {
        let r = revoke(&s, token, Auth::Basic(CLIENT, SECRET)).await;
        assert_eq!((r.status, r.text.as_str()), (StatusCode::OK, ""), "{token}");
    }
    let m = metrics(&s).await;
    let active = r#"tokens_introspections_total{active="true",token_type="access_token"}"#;
    assert!(metric(&m, active) >= 3.0, "{m}");
    assert!(metric(&m, r#"tokens_revocations_total{token_type="access_token"}"#) >= 2.0);
}

async fn refresh_tokens_are_active_until_used_revoked_or_their_session_ends(db: TestDb) {
    let s = TestServer::start_with(db, &env()).await;
    create_user(&s, "rt@example.com").await;
    let l = signed_in(&s, "rt@example.com").await;
    let rt = l["refresh_token"].as_str().unwrap();
    let sid = l["session_id"].as_str().unwrap();
    let i = introspect(&s, rt).await;
    assert_eq!(i["active"], true, "{i}");
    assert_eq!(i["token_type"], "refresh_token");
    assert_eq!(i["sid"], sid);
    assert!(
        i["exp"].as_i64().unwrap() > i["iat"].as_i64().unwrap(),
        "{i}"
    );
    // Used (no grace window): inactive; its successor is active.
    let next = refresh(&s, rt).await;
    assert_eq!(next.status, StatusCode::OK, "{}", next.text);
    let rt2 = next.body["refresh_token"].as_str().unwrap();
    let at2 = next.body["access_token"].as_str().unwrap();
    assert_inactive(&s, rt).await;
    assert_eq!(introspect(&s, rt2).await["active"], true);
    // Revoked by the client with client_secret_post: family and session end.
    let r = revoke(&s, rt2, Auth::Post(CLIENT, SECRET)).await;
    assert_eq!((r.status, r.text.as_str()), (StatusCode::OK, ""));
    assert_inactive(&s, rt2).await;
    assert_inactive(&s, at2).await;
    assert_eq!(session(&s, sid).await["state"], "revoked");
    let r = refresh(&s, rt2).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{}", r.text);

    // A user disabled: every session of theirs is inactive at once.
    let l = signed_in(&s, "rt@example.com").await;
    let (at, rt) = (
        l["access_token"].as_str().unwrap(),
        l["refresh_token"].as_str().unwrap(),
    );
    assert_eq!(introspect(&s, at).await["active"], true);
    let id = l["user"]["id"].as_str().unwrap();
    let r = s.as_admin().post(&format!("/v1/users/{id}/disable")).await;
    assert!(r.status.is_success(), "{}", r.text);
    assert_inactive(&s, at).await;
    assert_inactive(&s, rt).await;
}

async fn machine_api_tokens_follow_the_verify_rules(db: TestDb) {
    // A low failure limit: introspection must not count against it.
    let mut e = env();
    e.push(("TESSERA_VERIFY_FAILURE_LIMIT_PER_MINUTE", "2"));
    let s = TestServer::start_with(db, &e).await;
    let (id, secret) = s
        .create(json!({"name": "m2m", "owner": "billing", "scopes": ["read"]}))
        .await;
    let i = introspect(&s, &secret).await;
    assert_eq!(i["active"], true, "{i}");
    assert_eq!(i["token_type"], "api_token");
    assert_eq!(i["jti"], id.as_str());
    assert_eq!(i["scope"], "read");
    assert_eq!(i["sub"], "billing");
    assert!(i.get("sid").is_none(), "{i}");
    // Revocation of machine tokens goes through the admin API.
    let r = revoke(&s, &secret, Auth::Basic(CLIENT, SECRET)).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.text);
    assert_eq!(r.json(), json!({"error": "unsupported_token_type"}));
    // Unknown tokens of the right form, many times: no limit is reached.
    for _ in 0..5 {
        let unknown = tessera_core::token_format::TokenFormat::default().generate();
        assert_inactive(&s, unknown.raw.expose()).await;
    }
    assert_eq!(
        s.verify(&secret).await["valid"],
        true,
        "the verify limit is untouched"
    );
    let r = s.revoke(&id, None).await;
    assert!(r.status.is_success(), "{}", r.text);
    assert_inactive(&s, &secret).await;
}

async fn failed_client_authentication_is_one_answer(db: TestDb) {
    let s = TestServer::start_with(db, &env()).await;
    create_user(&s, "who@example.com").await;
    let at = signed_in(&s, "who@example.com").await["access_token"]
        .as_str()
        .unwrap()
        .to_string();
    let token = [("token", at.as_str())];
    let mut answers = Vec::new();
    for (what, auth) in [
        (
            "wrong secret",
            Auth::Basic(CLIENT, "rs-gateway-secret-wrong-000"),
        ),
        ("unknown client", Auth::Basic("nobody", SECRET)),
        ("missing credentials", Auth::None),
        (
            "wrong secret in the form",
            Auth::Post(CLIENT, "rs-gateway-secret-wrong-000"),
        ),
        ("unknown client in the form", Auth::Post("nobody", SECRET)),
        // A token cannot authenticate its own introspection.
        ("a bearer token", Auth::Bearer(at.as_str())),
    ] {
        for path in ["/oauth2/introspect", "/oauth2/revoke"] {
            let r = post_form(&s, path, &token, auth).await;
            let mut headers: Vec<(String, String)> = r
                .headers
                .iter()
                .filter(|(k, _)| !["date", "x-request-id"].contains(&k.as_str()))
                .map(|(k, v)| (k.to_string(), v.to_str().unwrap().to_string()))
                .collect();
            headers.sort();
            answers.push((what, path, r.status, headers, r.text));
        }
    }
    let (_, _, status, headers, body) = &answers[0];
    assert_eq!(*status, StatusCode::UNAUTHORIZED);
    assert_eq!(body, r#"{"error":"invalid_client"}"#);
    assert!(headers.contains(&("www-authenticate".into(), r#"Basic realm="tessera""#.into())));
    assert!(headers.contains(&("cache-control".into(), "no-store".into())));
    for (what, path, st, h, b) in &answers {
        assert_eq!((st, h, b), (status, headers, body), "{what} on {path}");
    }
    // Still active: nothing above revoked it.
    assert_eq!(introspect(&s, &at).await["active"], true);

    // An authenticated client with a bad request hears invalid_request; a
    // malformed token is just inactive.
    let basic = Auth::Basic(CLIENT, SECRET);
    let r = post_form(&s, "/oauth2/introspect", &[], basic).await;
    assert_eq!(
        (r.status, r.json()),
        (StatusCode::BAD_REQUEST, json!({"error": "invalid_request"}))
    );
    let r = s
        .http
        .post(format!("{}/oauth2/introspect", s.base))
        .basic_auth(CLIENT, Some(SECRET))
        .json(&json!({"token": at}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    let (tampered, long) = (format!("{at}x"), "z".repeat(9000));
    for junk in ["x", "a.b.c", "tsr_rt_", &tampered, &long] {
        assert_inactive(&s, junk).await;
    }
}

async fn the_metadata_names_the_endpoints(db: TestDb) {
    let s = TestServer::start_with(db, &env()).await;
    let r = s
        .as_anonymous()
        .get("/.well-known/oauth-authorization-server")
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let m = r.body;
    assert_eq!(m["issuer"], ISSUER);
    assert_eq!(
        m["introspection_endpoint"],
        format!("{ISSUER}/oauth2/introspect")
    );
    assert_eq!(m["revocation_endpoint"], format!("{ISSUER}/oauth2/revoke"));
    assert_eq!(m["token_endpoint"], format!("{ISSUER}/oauth2/token"));
    assert_eq!(m["jwks_uri"], format!("{ISSUER}/.well-known/jwks.json"));
    assert_eq!(m["grant_types_supported"], json!(["refresh_token"]));
    assert_eq!(
        m["introspection_endpoint_auth_methods_supported"],
        json!(["client_secret_basic", "client_secret_post"])
    );
}

backend_tests!(
    access_tokens_go_inactive_at_once_when_their_session_is_revoked,
    refresh_tokens_are_active_until_used_revoked_or_their_session_ends,
    machine_api_tokens_follow_the_verify_rules,
    failed_client_authentication_is_one_answer,
    the_metadata_names_the_endpoints,
    a_client_limited_to_audiences_sees_only_theirs,
    another_replica_sees_a_revocation_within_the_cache_ttl,
    a_secret_with_form_characters_works_encoded_or_not,
);

/// RFC 6749 asks clients to form-encode the id and secret inside Basic;
/// curl `-u` and most HTTP libraries (reqwest here) send them as they are.
/// A secret with `+`, `%` and `&` authenticates both ways, and the form's
/// repeated `client_id` beside Basic names the same client.
async fn a_secret_with_form_characters_works_encoded_or_not(db: TestDb) {
    const SECRET: &str = "plus+percent%41amp&eq=0123456789";
    let clients = format!("raw-rs:{SECRET}");
    let s = TestServer::start_with(db, &[("INTROSPECTION_CLIENTS", clients.as_str())]).await;
    let asked = |auth| post_form(&s, "/oauth2/introspect", &[("token", "x")], auth);
    let raw = asked(Auth::Basic("raw-rs", SECRET)).await;
    assert_eq!(raw.status, StatusCode::OK, "{}", raw.text);
    let encoded: String = form_urlencoded::byte_serialize(SECRET.as_bytes()).collect();
    let encoded = asked(Auth::Basic("raw-rs", &encoded)).await;
    assert_eq!(encoded.status, StatusCode::OK, "{}", encoded.text);
    let r = s
        .http
        .post(format!("{}/oauth2/introspect", s.base))
        .basic_auth("raw-rs", Some(SECRET))
        .form(&[("token", "x"), ("client_id", "raw-rs")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let wrong = asked(Auth::Basic("raw-rs", "plus percent%41amp")).await;
    assert_eq!(wrong.status, StatusCode::UNAUTHORIZED);
}

/// Another replica keeps what it read about a session for at most
/// `TESSERA_VERIFY_CACHE_TTL`: it sees a revocation made elsewhere within
/// that bound, while the replica that revoked sees it at once.
async fn another_replica_sees_a_revocation_within_the_cache_ttl(db: TestDb) {
    let mut e = env();
    e.push(("TESSERA_VERIFY_CACHE_TTL", "1s"));
    let a = TestServer::start_with(db, &e).await;
    let b = a.replica(&e).await;
    create_user(&a, "replica@example.com").await;
    let l = signed_in(&a, "replica@example.com").await;
    let (at, sid) = (
        l["access_token"].as_str().unwrap(),
        l["session_id"].as_str().unwrap(),
    );
    assert_eq!(introspect(&b, at).await["active"], true);
    let r = a.as_admin().delete(&format!("/v1/sessions/{sid}")).await;
    assert!(r.status.is_success(), "{}", r.text);
    let revoked = std::time::Instant::now();
    assert_inactive(&a, at).await;
    crate::common::eventually(
        "the other replica to see the revocation",
        40,
        std::time::Duration::from_millis(100),
        || introspect(&b, at),
        |i| i["active"] == false,
    )
    .await;
    let waited = revoked.elapsed();
    assert!(
        waited < std::time::Duration::from_millis(2500),
        "{waited:?}"
    );
}

/// A client of the registry may be limited to some audiences: tokens for
/// others (and tokens that name none) are `{"active": false}` to it, and it
/// revokes none of them. (Checked at the service, where such a client is
/// made by hand; `INTROSPECTION_CLIENTS` clients see every audience.)
async fn a_client_limited_to_audiences_sees_only_theirs(db: TestDb) {
    use tessera_core::client::{AuthMethod, Capability, ClientIdentity, ClientSource};
    use tessera_server::service::{oauth::OAuthTokens, tokens::VerifyCaller};
    let s = TestServer::start_with(db, &env()).await;
    create_user(&s, "aud@example.com").await;
    let l = signed_in(&s, "aud@example.com").await;
    let (at, rt) = (
        l["access_token"].as_str().unwrap(),
        l["refresh_token"].as_str().unwrap(),
    );
    let (_, api) = s.create(json!({"name": "m2m"})).await;
    let config = crate::common::config(&s.db.url, s.data_dir.path(), &env());
    let services = tessera_server::Services::open(&config).await.unwrap();
    let oauth = OAuthTokens {
        sessions: &services.sessions,
        tokens: &services.tokens,
        metrics: &services.metrics,
    };
    let client = |audience: &str| ClientIdentity {
        id: "registry-rs".into(),
        source: ClientSource::Registry,
        method: AuthMethod::ClientSecretBasic,
        capabilities: vec![Capability::Introspect, Capability::Revoke],
        audiences: Some(vec![audience.to_string()]),
    };
    let caller = VerifyCaller::console();
    let ctx = tessera_core::audit::RequestContext::default();
    let (ours, theirs) = (client(AUDIENCE), client("elsewhere"));
    assert!(oauth.introspect(&ours, at, &caller).await.unwrap().active);
    for token in [at, rt, api.as_str()] {
        let answer = oauth.introspect(&theirs, token, &caller).await.unwrap();
        assert_eq!(
            serde_json::to_string(&answer).unwrap(),
            r#"{"active":false}"#
        );
    }
    assert!(
        !oauth.introspect(&ours, rt, &caller).await.unwrap().active,
        "no audience"
    );
    oauth.revoke(&theirs, at, &ctx).await.unwrap();
    oauth.revoke(&ours, rt, &ctx).await.unwrap();
    assert!(
        oauth.introspect(&ours, at, &caller).await.unwrap().active,
        "not revoked"
    );
    oauth.revoke(&ours, at, &ctx).await.unwrap();
    assert!(
        !oauth.introspect(&ours, at, &caller).await.unwrap().active,
        "revoked"
    );
}
