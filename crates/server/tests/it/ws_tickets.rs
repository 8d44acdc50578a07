//! WebSocket tickets end to end, on both backends and with Redis: a
//! signed-in person's ticket opens exactly one connection however many
//! redemptions race; a ticket of a revoked session, an expired one, one for
//! another audience or IP are refused with `ws.connection.rejected` (with the
//! reason); unknown tickets are counted, not logged one row each; the
//! gateway's close report; all three events reach a webhook receiver.
//! Gateways are registry clients with the `ws_tickets` capability.

use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use tessera_store::AuditQuery;
use tessera_test_support::{tests, TestDb};

use crate::common::{
    people::{create_user, metric, metrics, signed_in},
    receiver::Receiver,
    Reply, TestServer,
};

/// A registry client: its id and secret.
pub struct Gateway {
    pub id: String,
    pub secret: String,
}

/// Registers a client with `capabilities` as the admin.
pub async fn gateway(s: &TestServer, name: &str, capabilities: &[&str]) -> Gateway {
    let body = json!({"name": name, "capabilities": capabilities});
    let r = s.as_admin().post_json("/v1/clients", body).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    Gateway {
        id: r.body["client"]["id"].as_str().unwrap().to_string(),
        secret: r.body["client_secret"].as_str().unwrap().to_string(),
    }
}

/// A request as `gw`, by HTTP Basic.
async fn as_gateway(s: &TestServer, gw: Option<&Gateway>, path: &str, body: Value) -> Reply {
    let mut req = s
        .http
        .request(Method::POST, format!("{}{path}", s.base))
        .json(&body);
    if let Some(gw) = gw {
        req = req.basic_auth(&gw.id, Some(&gw.secret));
    }
    Reply::from(req.send().await.unwrap()).await
}

async fn redeem(s: &TestServer, gw: &Gateway, body: Value) -> Reply {
    let r = as_gateway(s, Some(gw), "/v1/ws-tickets/redeem", body).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(r.headers["cache-control"], "no-store");
    r
}

/// A signed-in person: (access token, session id).
async fn person(s: &TestServer, email: &str) -> (String, String) {
    create_user(s, email).await;
    let l = signed_in(s, email).await;
    (
        l["access_token"].as_str().unwrap().to_string(),
        l["session_id"].as_str().unwrap().to_string(),
    )
}

/// A ticket for `access`'s session.
async fn ticket(s: &TestServer, access: &str, body: Value) -> String {
    let r = s.with_token(access).post_json("/v1/ws-tickets", body).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    assert_eq!(r.headers["cache-control"], "no-store");
    assert!(r.body["expires_in"].as_u64().unwrap() >= 5, "{}", r.text);
    let t = r.body["ticket"].as_str().unwrap().to_string();
    assert!(t.starts_with("tsr_wst_") && t.len() >= 40, "{t}");
    t
}

/// The rejection reasons the audit log holds for a session.
async fn rejections(s: &TestServer, sid: &str) -> Vec<String> {
    let rows = s.db.store.audit_for_target(sid, 100).await.unwrap();
    rows.iter()
        .filter(|a| a.action == "ws.connection.reject")
        .map(|a| {
            assert_eq!(a.outcome, "failure");
            assert_eq!(a.details["session_id"], sid);
            assert!(a.details["user"].as_str().unwrap().starts_with("u_…"));
            assert!(a.details["request_id"].is_string(), "{:?}", a.details);
            a.details["reason"].as_str().unwrap().to_string()
        })
        .collect()
}

/// `n` redemptions of one ticket at once; the answers.
async fn race(s: &TestServer, gw: &Gateway, t: &str, n: usize) -> Vec<Value> {
    let tasks: Vec<_> = (0..n)
        .map(|_| {
            let req = s
                .http
                .post(format!("{}/v1/ws-tickets/redeem", s.base))
                .basic_auth(&gw.id, Some(&gw.secret))
                .json(&json!({"ticket": t, "audience": "chat"}));
            tokio::spawn(async move { Reply::from(req.send().await.unwrap()).await })
        })
        .collect();
    let mut out = Vec::new();
    for t in tasks {
        let r = t.await.unwrap();
        assert_eq!(r.status, StatusCode::OK, "{}", r.text);
        out.push(r.body);
    }
    out
}

/// Exactly one of `answers` is active, with the session's facts; every
/// other one is exactly `{"active": false}`.
fn exactly_one_active(answers: &[Value], sid: &str) -> Value {
    let active: Vec<&Value> = answers.iter().filter(|a| a["active"] == true).collect();
    assert_eq!(active.len(), 1, "{answers:?}");
    for a in answers.iter().filter(|a| a["active"] != true) {
        assert_eq!(*a, json!({"active": false}));
    }
    let a = active[0].clone();
    assert_eq!(a["sid"], sid, "{a}");
    assert!(a["sub"].is_string() && a["scope"].is_string(), "{a}");
    assert!(
        a["connection_id"].is_string() && a["session_expires_at"].is_string(),
        "{a}"
    );
    a
}

async fn one_ticket_opens_one_connection_and_every_event_is_delivered(db: TestDb) {
    let env = [("TESSERA_WEBHOOK_POLL_INTERVAL", "50ms")];
    let s = TestServer::start_with(db, &env).await;
    let r = Receiver::start().await;
    r.subscribe(&s, json!({"event_types": ["ws.connection.opened", "ws.connection.rejected", "ws.connection.closed"]}))
        .await;
    let gw = gateway(&s, "chat-gateway", &["ws_tickets"]).await;
    let (access, sid) = person(&s, "socket@example.com").await;

    let t = ticket(&s, &access, json!({"audience": "chat"})).await;
    let answers = race(&s, &gw, &t, 20).await;
    let opened = exactly_one_active(&answers, &sid);
    let conn = opened["connection_id"].as_str().unwrap();

    // The gateway reports the close; a second report changes nothing.
    let path = format!("/v1/ws-connections/{conn}/closed");
    let closed = as_gateway(&s, Some(&gw), &path, json!({"code": 1000, "reason": "bye"})).await;
    assert_eq!(closed.status, StatusCode::OK, "{}", closed.text);
    assert_eq!(closed.body["code"], 1000);
    assert!(closed.body["closed_at"].is_string(), "{}", closed.text);
    let again = as_gateway(&s, Some(&gw), &path, json!({"code": 1011})).await;
    assert_eq!(again.status, StatusCode::OK, "{}", again.text);
    assert_eq!(again.body, closed.body);
    let unknown = "/v1/ws-connections/00000000-0000-4000-8000-000000000000/closed";
    as_gateway(&s, Some(&gw), unknown, json!({}))
        .await
        .assert_problem(StatusCode::NOT_FOUND, "ws_connection_not_found");
    as_gateway(&s, Some(&gw), &path, json!({"code": 99}))
        .await
        .assert_problem(StatusCode::UNPROCESSABLE_ENTITY, "validation_failed");
    // Another gateway's connection is not found to this one.
    let other = gateway(&s, "news-gateway", &["ws_tickets"]).await;
    as_gateway(&s, Some(&other), &path, json!({}))
        .await
        .assert_problem(StatusCode::NOT_FOUND, "ws_connection_not_found");

    // Another audience, another IP: refused, and the ticket is spent.
    let t = ticket(&s, &access, json!({"audience": "chat"})).await;
    let r1 = redeem(&s, &gw, json!({"ticket": t, "audience": "news"})).await;
    assert_eq!(r1.body, json!({"active": false}));
    let r2 = redeem(&s, &gw, json!({"ticket": t, "audience": "chat"})).await;
    assert_eq!(r2.body, json!({"active": false}));
    let t = ticket(&s, &access, json!({})).await;
    let r3 = redeem(&s, &gw, json!({"ticket": t, "client_ip": "203.0.113.9"})).await;
    assert_eq!(r3.body, json!({"active": false}));
    // The test client connects from 127.0.0.1: the same IP is accepted.
    let t = ticket(&s, &access, json!({})).await;
    let r4 = redeem(&s, &gw, json!({"ticket": t, "client_ip": "127.0.0.1"})).await;
    assert_eq!(r4.body["active"], true, "{}", r4.text);
    let mut reasons = rejections(&s, &sid).await;
    reasons.sort();
    assert_eq!(reasons, ["wrong_audience", "wrong_ip"]);

    let got = r
        .wait_for_events(
            "the three ws.connection events",
            &[
                "ws.connection.opened",
                "ws.connection.rejected",
                "ws.connection.closed",
            ],
        )
        .await;
    for g in &got {
        let p = &g.payload;
        assert!(!p.to_string().contains(&t[8..]), "a ticket in a payload");
        if p["event"] != "ws.connection.rejected" || p["reason"] != "unknown_or_used" {
            assert_eq!(p["session_id"], sid, "{p}");
            assert!(p["user"].as_str().unwrap().starts_with("u_…"), "{p}");
            assert!(p["request_id"].is_string(), "{p}");
            assert_eq!(p["client_id"], gw.id.as_str(), "{p}");
        }
    }
    let closed_event = got
        .iter()
        .find(|g| g.payload["event"] == "ws.connection.closed")
        .unwrap();
    assert_eq!(closed_event.payload["connection_id"], conn);
    assert_eq!(closed_event.payload["code"], 1000);
    let m = metrics(&s).await;
    assert_eq!(
        metric(&m, r#"tokens_ws_tickets_total{outcome="issued"}"#),
        4.0
    );
    assert_eq!(
        metric(&m, r#"tokens_ws_tickets_total{outcome="redeemed"}"#),
        2.0
    );
    assert!(metric(&m, r#"tokens_ws_tickets_total{outcome="rejected"}"#) >= 22.0);
}

/// Only an authenticated client with `ws_tickets` redeems, and every
/// failure is the same `401 invalid_client`; only a person's access token
/// gets a ticket.
async fn only_gateways_redeem_and_only_people_get_tickets(db: TestDb) {
    let s = TestServer::start(db).await;
    let gw = gateway(&s, "chat-gateway", &["ws_tickets"]).await;
    let other = gateway(&s, "introspector", &["introspect"]).await;
    let wrong = Gateway {
        id: gw.id.clone(),
        secret: format!("{}x", gw.secret),
    };
    let (access, _) = person(&s, "only@example.com").await;
    let t = ticket(&s, &access, json!({})).await;
    let body = json!({"ticket": t});
    let mut answers = Vec::new();
    for caller in [None, Some(&other), Some(&wrong)] {
        let r = as_gateway(&s, caller, "/v1/ws-tickets/redeem", body.clone()).await;
        assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{}", r.text);
        assert_eq!(r.headers["www-authenticate"], r#"Basic realm="tessera""#);
        answers.push(r.body);
    }
    assert!(answers
        .iter()
        .all(|a| *a == json!({"error": "invalid_client"})));
    // Still unspent.
    assert_eq!(redeem(&s, &gw, body).await.body["active"], true);
    // An API token (even an admin's) is not a person.
    let r = s.as_admin().post_json("/v1/ws-tickets", json!({})).await;
    r.assert_problem(StatusCode::FORBIDDEN, "forbidden");
    let r = s
        .as_anonymous()
        .post_json("/v1/ws-tickets", json!({}))
        .await;
    r.assert_problem(StatusCode::UNAUTHORIZED, "unauthorized");
    let r = s
        .with_token(&access)
        .post_json("/v1/ws-tickets", json!({"audience": " "}))
        .await;
    r.assert_problem(StatusCode::UNPROCESSABLE_ENTITY, "validation_failed");
    let r = redeem_problem(&s, &gw, json!({"ticket": "x", "client_ip": "nope"})).await;
    r.assert_problem(StatusCode::UNPROCESSABLE_ENTITY, "validation_failed");
}

async fn redeem_problem(s: &TestServer, gw: &Gateway, body: Value) -> Reply {
    as_gateway(s, Some(gw), "/v1/ws-tickets/redeem", body).await
}

/// A revoked session's ticket and an expired ticket are refused with the
/// reason; a spent ticket again is `unknown_or_used`, counted per gateway
/// and minute rather than one row each; expired rows are purged.
async fn revoked_expired_and_unknown_tickets_are_refused(db: TestDb) {
    let s = TestServer::start_with(db, &[("TESSERA_WS_TICKET_TTL", "5")]).await;
    let gw = gateway(&s, "chat-gateway", &["ws_tickets"]).await;
    let (access, sid) = person(&s, "revoked@example.com").await;
    let t_revoked = ticket(&s, &access, json!({})).await;
    // Another session of the same person, which stays live.
    let second = signed_in(&s, "revoked@example.com").await;
    let t_expiring = ticket(&s, second["access_token"].as_str().unwrap(), json!({})).await;
    let r = s
        .as_admin()
        .send(Method::DELETE, &format!("/v1/sessions/{sid}"), None)
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let a = redeem(&s, &gw, json!({"ticket": t_revoked})).await;
    assert_eq!(a.body, json!({"active": false}));
    assert_eq!(rejections(&s, &sid).await, ["session_revoked"]);

    tokio::time::sleep(Duration::from_millis(5_500)).await;
    let a = redeem(&s, &gw, json!({"ticket": t_expiring})).await;
    assert_eq!(a.body, json!({"active": false}));
    let expired =
        s.db.store
            .list_audit(&AuditQuery {
                action: Some("ws.connection.reject".into()),
                target_type: Some("session".into()),
                ..Default::default()
            })
            .await
            .unwrap();
    assert!(
        expired
            .items
            .iter()
            .any(|a| a.details["reason"] == "expired"),
        "{:?}",
        expired.items
    );

    // Spent and made-up tickets: counted, not one row each.
    for _ in 0..30 {
        let a = redeem(&s, &gw, json!({"ticket": t_expiring})).await;
        assert_eq!(a.body, json!({"active": false}));
    }
    let a = redeem(&s, &gw, json!({"ticket": "tsr_wst_not-a-ticket"})).await;
    assert_eq!(a.body, json!({"active": false}));
    tokio::time::sleep(Duration::from_millis(500)).await; // the background flush
    let unknown =
        s.db.store
            .list_audit(&AuditQuery {
                action: Some("ws.connection.reject".into()),
                target_type: Some("ws_ticket".into()),
                ..Default::default()
            })
            .await
            .unwrap();
    assert!(
        (1..=2).contains(&unknown.items.len()),
        "one row per minute: {:?}",
        unknown.items
    );
    let counted: i64 = unknown.items.iter().map(|a| a.occurrences).sum();
    assert_eq!(counted, 31);
    assert!(unknown
        .items
        .iter()
        .all(|a| a.details["reason"] == "unknown_or_used"));

    // A ticket nobody redeemed is purged once expired.
    let (access3, _) = person(&s, "purged@example.com").await;
    ticket(&s, &access3, json!({})).await;
    let later = chrono::Utc::now() + chrono::Duration::seconds(10);
    let purged =
        s.db.store
            .purge_ws_state(later, later - chrono::Duration::days(1))
            .await;
    assert!(purged.unwrap() >= 1);
}

/// With Redis the tickets live there (none in the database) and are taken
/// with GETDEL: one active answer of twenty, revoked sessions refused.
async fn tickets_in_redis_are_taken_once(db: TestDb) {
    let redis = tessera_test_support::redis_url().await;
    let env = [
        ("REDIS_URI", redis.as_str()),
        ("TESSERA_WS_TICKET_TTL", "5"),
    ];
    let s = TestServer::start_with(db, &env).await;
    let gw = gateway(&s, "chat-gateway", &["ws_tickets"]).await;
    let (access, sid) = person(&s, "redis@example.com").await;
    // Redis drops a ticket at its TTL: refused (as unknown) after it.
    let t = ticket(&s, &access, json!({})).await;
    tokio::time::sleep(Duration::from_millis(5_500)).await;
    let a = redeem(&s, &gw, json!({"ticket": t})).await;
    assert_eq!(a.body, json!({"active": false}));
    let t = ticket(&s, &access, json!({"audience": "chat"})).await;
    let answers = race(&s, &gw, &t, 20).await;
    exactly_one_active(&answers, &sid);
    let t = ticket(&s, &access, json!({})).await;
    let r = s
        .as_admin()
        .send(Method::DELETE, &format!("/v1/sessions/{sid}"), None)
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let a = redeem(&s, &gw, json!({"ticket": t})).await;
    assert_eq!(a.body, json!({"active": false}));
    assert_eq!(rejections(&s, &sid).await, ["session_revoked"]);
    // Nothing was stored in the database's ticket table.
    let purged =
        s.db.store
            .purge_ws_state(
                chrono::Utc::now() + chrono::Duration::days(1),
                chrono::Utc::now(),
            )
            .await
            .unwrap();
    assert_eq!(purged, 0);
}

/// With `REDIS_URI` set, Redis is where tickets live: when it cannot be
/// reached, issuing and redeeming answer 503 (not a silent fallback to a
/// store the other replicas do not read), and nothing hangs.
async fn an_unreachable_redis_is_a_503() {
    let env = [("REDIS_URI", "redis://127.0.0.1:1")];
    let s = TestServer::start_with(TestDb::sqlite().await, &env).await;
    let gw = gateway(&s, "chat-gateway", &["ws_tickets"]).await;
    let (access, _) = person(&s, "down@example.com").await;
    let r = s
        .with_token(&access)
        .post_json("/v1/ws-tickets", json!({}))
        .await;
    r.assert_problem(StatusCode::SERVICE_UNAVAILABLE, "service_unavailable");
    let t = "tsr_wst_000000000000000000000000000000000000";
    let r = as_gateway(&s, Some(&gw), "/v1/ws-tickets/redeem", json!({"ticket": t})).await;
    assert_eq!(
        r.body,
        json!({"active": false}),
        "a malformed ticket needs no Redis"
    );
    let made = tessera_core::token_format::TokenFormat::ws_ticket().generate();
    let body = json!({"ticket": made.raw.expose()});
    let r = as_gateway(&s, Some(&gw), "/v1/ws-tickets/redeem", body).await;
    r.assert_problem(StatusCode::SERVICE_UNAVAILABLE, "service_unavailable");
}

tests! {
    backends:
        one_ticket_opens_one_connection_and_every_event_is_delivered,
        only_gateways_redeem_and_only_people_get_tickets,
        revoked_expired_and_unknown_tickets_are_refused,
        #[needs(Redis)] tickets_in_redis_are_taken_once;
    multi_thread: an_unreachable_redis_is_a_503;
}
