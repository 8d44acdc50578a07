//! Issue #16, the per-token controls that need no counter: who may pass the
//! caller's facts to `POST /v1/tokens/verify` (an admin token or a client
//! with the `verify` capability; `cost` 1-1000 for anyone), IP allow and
//! deny lists on tokens (v4, v6, IPv4-mapped, deny over allow, the address
//! behind trusted proxies, audited refusals) and on registry clients, and
//! how the controls show and change. Both backends.

use reqwest::StatusCode;
use serde_json::{json, Value};
use sqlx::Row;
use tessera_test_support::{backend_tests, TestDb};

use crate::{
    clients_api::create_client,
    common::{eventually, Reply, TestServer},
};

/// Who calls verify.
#[derive(Clone, Copy)]
pub enum As<'a> {
    Anonymous,
    Admin,
    Bearer(&'a str),
    /// A registry client by HTTP Basic: (id, secret).
    Client(&'a str, &'a str),
}

/// `POST /v1/tokens/verify` as `who`, with `X-Forwarded-For: xff` if given.
pub async fn verify_as(s: &TestServer, who: As<'_>, body: Value, xff: Option<&str>) -> Reply {
    let mut req = s.http.post(format!("{}/v1/tokens/verify", s.base));
    req = match who {
        As::Anonymous => req,
        As::Admin => req.bearer_auth(&s.admin),
        As::Bearer(t) => req.bearer_auth(t),
        As::Client(id, secret) => req.basic_auth(id, Some(secret)),
    };
    if let Some(x) = xff {
        req = req.header("x-forwarded-for", x);
    }
    Reply::from(req.json(&body).send().await.unwrap()).await
}

/// The answer's `code`, or `"VALID"`; panics on anything but a 200.
#[track_caller]
pub fn outcome(r: &Reply) -> String {
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    if r.body["valid"] == true {
        "VALID".into()
    } else {
        r.body["code"].as_str().unwrap().to_string()
    }
}

/// Creates a token with `controls` (merged into the body); (id, secret, JSON).
pub async fn token_with(s: &TestServer, controls: Value) -> (String, String, Value) {
    let mut body = json!({"name": "controlled"});
    body.as_object_mut()
        .unwrap()
        .extend(controls.as_object().unwrap().clone());
    let r = s.as_admin().post_json("/v1/tokens", body).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    let id = r.body["token"]["id"].as_str().unwrap().to_string();
    let secret = r.body["secret"].as_str().unwrap().to_string();
    (id, secret, r.body["token"].clone())
}

/// A registry client with `capabilities`; (id, secret).
pub async fn client_with(s: &TestServer, capabilities: Value) -> (String, String) {
    let c = create_client(s, json!({"name": "rs", "capabilities": capabilities})).await;
    (
        c["client"]["id"].as_str().unwrap().to_string(),
        c["client_secret"].as_str().unwrap().to_string(),
    )
}

async fn only_authorised_callers_pass_facts(db: TestDb) {
    let s = TestServer::start(db).await;
    // A token without controls verifies as before, for anyone; facts from
    // an unauthenticated caller are ignored.
    let (_, plain, view) = token_with(&s, json!({})).await;
    assert_eq!(view["device_binding"], "none");
    assert_eq!(view["ip_allow"], json!([]));
    assert!(
        view["credits"].is_null() && view["ratelimits"] == json!([]),
        "{view}"
    );
    let anon = json!({"token": plain, "client_ip": "192.0.2.1", "device_id": "d", "cost": 7});
    assert_eq!(
        outcome(&verify_as(&s, As::Anonymous, anon, None).await),
        "VALID"
    );

    let (_, secret, _) = token_with(&s, json!({"ip_allow": ["10.0.0.0/8"]})).await;
    let inside = json!({"token": secret, "client_ip": "10.1.2.3"});
    let outside = json!({"token": secret, "client_ip": "192.0.2.1"});
    let (verifier, verifier_secret) = client_with(&s, json!(["verify"])).await;
    let (introspector, introspector_secret) = client_with(&s, json!(["introspect"])).await;
    let (_, reader, _) = token_with(&s, json!({"scopes": ["read"]})).await;
    for (who, want) in [
        (As::Anonymous, "CALLER_NOT_AUTHORIZED"),
        (As::Bearer(&reader), "CALLER_NOT_AUTHORIZED"),
        (
            As::Client(&introspector, &introspector_secret),
            "CALLER_NOT_AUTHORIZED",
        ),
        (As::Client(&verifier, "tsc_wrong"), "CALLER_NOT_AUTHORIZED"),
        (As::Admin, "VALID"),
        (As::Client(&verifier, &verifier_secret), "VALID"),
    ] {
        assert_eq!(
            outcome(&verify_as(&s, who, inside.clone(), None).await),
            want
        );
    }
    let r = verify_as(&s, As::Admin, outside.clone(), None).await;
    assert_eq!(outcome(&r), "IP_NOT_ALLOWED");
    let r = verify_as(&s, As::Client(&verifier, &verifier_secret), outside, None).await;
    assert_eq!(outcome(&r), "IP_NOT_ALLOWED");

    // Bad facts are bad input, whoever sends them.
    for (who, body, field) in [
        (
            As::Anonymous,
            json!({"token": secret, "cost": 1001}),
            "cost",
        ),
        (As::Admin, json!({"token": secret, "cost": 1001}), "cost"),
        (As::Admin, json!({"token": secret, "cost": 0}), "cost"),
        (
            As::Admin,
            json!({"token": secret, "client_ip": "10.0.0.300"}),
            "client_ip",
        ),
        (
            As::Admin,
            json!({"token": secret, "device_id": ""}),
            "device_id",
        ),
        (
            As::Admin,
            json!({"token": secret, "ratelimit": {"name": "A B"}}),
            "ratelimit",
        ),
        (
            As::Admin,
            json!({"token": secret, "ratelimit": {"cost": 1001}}),
            "ratelimit",
        ),
    ] {
        let r = verify_as(&s, who, body, None).await;
        r.assert_problem(StatusCode::UNPROCESSABLE_ENTITY, "validation_failed");
        assert_eq!(r.body["field"], field, "{}", r.text);
    }
    // Nested bodies are objects (serde would read a struct from an array).
    let r = verify_as(
        &s,
        As::Admin,
        json!({"token": secret, "ratelimit": [null, null]}),
        None,
    )
    .await;
    r.assert_problem(StatusCode::UNPROCESSABLE_ENTITY, "invalid_request_body");
    let arrays = json!({"name": "x", "ratelimits": [["a", 5, "1m"]]});
    let r = s.as_admin().post_json("/v1/tokens", arrays).await;
    r.assert_problem(StatusCode::UNPROCESSABLE_ENTITY, "invalid_request_body");
    let (_, _, view) = token_with(
        &s,
        json!({"ratelimits": [{"name": "a", "limit": 5.0, "period": "60s"}],
               "credits": {"remaining": 9.0, "refill": {"amount": 9.0, "interval": "24h"}}}),
    )
    .await;
    assert_eq!(
        view["ratelimits"],
        json!([{"name": "a", "limit": 5, "period": "1m"}])
    );
    assert_eq!(
        view["credits"]["refill"],
        json!({"amount": 9, "interval": "1d"})
    );
    let ok = json!({"token": secret, "client_ip": "10.0.0.1", "cost": 1000});
    assert_eq!(outcome(&verify_as(&s, As::Admin, ok, None).await), "VALID");
}

async fn ip_lists_v4_v6_and_deny_over_allow(db: TestDb) {
    let s = TestServer::start(db).await;
    for bad in [
        "10.1.2.3/8",
        "300.0.0.0/8",
        "10.0.0.0/33",
        " 172.16.0.0/12",
        "fe80::1%eth0",
    ] {
        let r = s
            .as_admin()
            .post_json("/v1/tokens", json!({"name": "x", "ip_allow": [bad]}))
            .await;
        r.assert_problem(StatusCode::UNPROCESSABLE_ENTITY, "validation_failed");
        assert_eq!(r.body["field"], "ip_allow");
        assert!(!r.text.contains(bad.trim()), "{}", r.text);
    }
    let (id, secret, view) = token_with(
        &s,
        json!({"ip_allow": ["::ffff:10.0.0.0/104", "2001:db8::/32"],
               "ip_deny": ["10.9.0.0/16", "2001:db8:bad::/48"]}),
    )
    .await;
    assert_eq!(view["ip_allow"], json!(["10.0.0.0/8", "2001:db8::/32"]));
    assert_eq!(view["ip_deny"], json!(["10.9.0.0/16", "2001:db8:bad::/48"]));
    let check = |ip: &'static str| {
        let body = json!({"token": secret, "client_ip": ip});
        let s = &s;
        async move { outcome(&verify_as(s, As::Admin, body, None).await) }
    };
    for (ip, want) in [
        ("10.1.2.3", "VALID"),
        ("::ffff:10.1.2.3", "VALID"),
        ("10.9.1.1", "IP_NOT_ALLOWED"),
        ("::ffff:10.9.1.1", "IP_NOT_ALLOWED"),
        ("11.0.0.1", "IP_NOT_ALLOWED"),
        ("2001:db8:1::1", "VALID"),
        ("2001:db8:bad::1", "IP_NOT_ALLOWED"),
        ("2001:db9::1", "IP_NOT_ALLOWED"),
    ] {
        assert_eq!(check(ip).await, want, "{ip}");
    }
    // An authorised verifier without `client_ip`: its own address (127.0.0.1).
    let own = verify_as(&s, As::Admin, json!({"token": secret}), None).await;
    assert_eq!(outcome(&own), "IP_NOT_ALLOWED");

    // The refusals are audited through the aggregated failure rows.
    let rows = eventually(
        "the IP_NOT_ALLOWED audit row",
        50,
        std::time::Duration::from_millis(100),
        || failure_rows(&s, "IP_NOT_ALLOWED"),
        |rows| rows.iter().map(|r| r.0).sum::<i64>() >= 6,
    )
    .await;
    assert!(rows.iter().any(|r| r.1.contains(&id)), "{rows:?}");

    // A change of controls is audited and emits `updated`; deny [] lifts it.
    let r = s
        .as_admin()
        .patch_json(&format!("/v1/tokens/{id}"), json!({"ip_deny": []}))
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(r.body["ip_deny"], json!([]));
    assert_eq!(check("10.9.1.1").await, "VALID");
    let audit = s.db.store.audit_for_target(&id, 10).await.unwrap();
    let update = audit.iter().find(|a| a.action == "token.update").unwrap();
    assert_eq!(update.details["fields"], json!(["ip_deny"]));
    let events = events_about(&s, &id).await;
    assert!(events.contains(&"updated".to_string()), "{events:?}");
}

/// The types of the outbox events whose payload names `id`.
pub async fn events_about(s: &TestServer, id: &str) -> Vec<String> {
    sqlx::any::install_default_drivers();
    let pool = sqlx::AnyPool::connect(&s.db.url).await.unwrap();
    let rows = sqlx::query("SELECT event_type, payload FROM outbox_events ORDER BY id")
        .fetch_all(&pool)
        .await
        .unwrap();
    rows.iter()
        .filter(|r| r.get::<String, _>("payload").contains(id))
        .map(|r| r.get::<String, _>("event_type"))
        .collect()
}

/// `(occurrences, details)` of the failed-verification rows with `code`.
async fn failure_rows(s: &TestServer, code: &str) -> Vec<(i64, String)> {
    sqlx::any::install_default_drivers();
    let pool = sqlx::AnyPool::connect(&s.db.url).await.unwrap();
    let rows =
        sqlx::query("SELECT occurrences, details FROM audit_log WHERE action = 'token.verify'")
            .fetch_all(&pool)
            .await
            .unwrap();
    rows.iter()
        .map(|r| {
            (
                r.get::<i64, _>("occurrences"),
                r.get::<String, _>("details"),
            )
        })
        .filter(|(_, d)| d.contains(code))
        .collect()
}

/// Behind a trusted proxy the address is the right-most untrusted
/// `X-Forwarded-For` entry, for verify and for a controlled token that
/// authenticates Tessera's own API.
async fn trusted_proxies_decide_the_address(db: TestDb) {
    let s = TestServer::start_with(db, &[("TESSERA_TRUSTED_PROXIES", "127.0.0.1/32")]).await;
    let (_, secret, _) = token_with(&s, json!({"ip_allow": ["203.0.113.0/24"]})).await;
    let body = json!({"token": secret});
    for (xff, want) in [
        ("203.0.113.5", "VALID"),
        ("198.51.100.1", "IP_NOT_ALLOWED"),
        // A forged left-most entry is not believed.
        ("203.0.113.5, 198.51.100.1", "IP_NOT_ALLOWED"),
        ("198.51.100.1, 203.0.113.5", "VALID"),
    ] {
        let r = verify_as(&s, As::Admin, body.clone(), Some(xff)).await;
        assert_eq!(outcome(&r), want, "{xff}");
    }
    // An asserted client_ip wins over the connection's address.
    let asserted = json!({"token": secret, "client_ip": "203.0.113.9"});
    let r = verify_as(&s, As::Admin, asserted, Some("198.51.100.1")).await;
    assert_eq!(outcome(&r), "VALID");

    // An admin token held to a network: its bearer calls too. Outside it
    // the token is good but refused here: 403 `ip_not_allowed`, not a 401
    // (which clients read as a dead token).
    let (_, admin2, _) = token_with(
        &s,
        json!({"scopes": ["admin"], "ip_allow": ["203.0.113.0/24"]}),
    )
    .await;
    for (xff, want) in [
        ("203.0.113.7", StatusCode::OK),
        ("198.51.100.7", StatusCode::FORBIDDEN),
    ] {
        let r = s
            .http
            .get(format!("{}/v1/tokens", s.base))
            .bearer_auth(&admin2)
            .header("x-forwarded-for", xff)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), want, "{xff}");
    }
}

/// Registry clients may be held to IP lists for their authentication.
async fn client_ip_lists(db: TestDb) {
    let s = TestServer::start_with(db, &[("TESSERA_TRUSTED_PROXIES", "127.0.0.1/32")]).await;
    let bad = s
        .as_admin()
        .post_json(
            "/v1/clients",
            json!({"name": "x", "capabilities": ["introspect"], "ip_allow": ["10.0.0.1/8"]}),
        )
        .await;
    bad.assert_problem(StatusCode::UNPROCESSABLE_ENTITY, "validation_failed");
    let c = create_client(
        &s,
        json!({"name": "gw", "capabilities": ["introspect"],
               "ip_allow": ["203.0.113.0/24"], "ip_deny": ["203.0.113.66"]}),
    )
    .await;
    assert_eq!(c["client"]["ip_allow"], json!(["203.0.113.0/24"]));
    assert_eq!(c["client"]["ip_deny"], json!(["203.0.113.66/32"]));
    let (id, secret) = (
        c["client"]["id"].as_str().unwrap().to_string(),
        c["client_secret"].as_str().unwrap().to_string(),
    );
    let introspect = |xff: &'static str| {
        let req = s
            .http
            .post(format!("{}/oauth2/introspect", s.base))
            .basic_auth(&id, Some(&secret))
            .header("x-forwarded-for", xff)
            .form(&[("token", "tsr_unknown")]);
        async move { req.send().await.unwrap().status() }
    };
    assert_eq!(introspect("203.0.113.5").await, StatusCode::OK);
    assert_eq!(introspect("203.0.113.66").await, StatusCode::UNAUTHORIZED);
    assert_eq!(introspect("198.51.100.1").await, StatusCode::UNAUTHORIZED);
    let r = s
        .as_admin()
        .patch_json(
            &format!("/v1/clients/{id}"),
            json!({"ip_allow": [], "ip_deny": []}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(introspect("198.51.100.1").await, StatusCode::OK);
}

backend_tests!(
    only_authorised_callers_pass_facts,
    ip_lists_v4_v6_and_deny_over_allow,
    trusted_proxies_decide_the_address,
    client_ip_lists,
);
