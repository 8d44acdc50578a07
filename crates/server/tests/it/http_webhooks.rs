//! Webhooks end to end: every catalogue event reaches a receiver that
//! verifies it with the official `standardwebhooks` library; retries,
//! 410 and manual retry; internal addresses refused unless allowed (SSRF).
//! On SQLite and PostgreSQL.

use std::{collections::BTreeSet, sync::atomic::Ordering, time::Duration};

use crate::common::{eventually, receiver::Receiver, TestServer};
use reqwest::StatusCode;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use tessera_test_support::TestDb;

const FAST: &[(&str, &str)] = &[
    ("TESSERA_WEBHOOK_POLL_INTERVAL", "50ms"),
    ("TESSERA_WEBHOOK_RETRY_SCHEDULE", "100ms,100ms,100ms"),
    ("TESSERA_JOB_CHECK_INTERVAL", "200ms"),
    ("TESSERA_JOB_REVOKE_EXPIRED_TOKENS_INTERVAL", "1s"),
];

/// One retry only, so a delivery fails for good after two attempts.
const ONE_RETRY: &[(&str, &str)] = &[
    ("TESSERA_WEBHOOK_POLL_INTERVAL", "50ms"),
    ("TESSERA_WEBHOOK_RETRY_SCHEDULE", "100ms"),
];

/// Polls an admin GET of `path` until `done` holds for its JSON body.
async fn admin_poll(s: &TestServer, path: &str, done: impl Fn(&Value) -> bool) -> Value {
    let admin = s.as_admin();
    let probe = || async move { admin.get(path).await.body };
    eventually(path, 100, Duration::from_millis(100), probe, done).await
}

/// Manually retries delivery `id` as the admin.
async fn retry(s: &TestServer, id: &str) -> crate::common::Reply {
    let path = format!("/v1/webhooks/deliveries/{id}/retry");
    s.as_admin().post(&path).await
}

async fn every_event_in_the_catalogue_is_delivered_and_verifies(db: TestDb) {
    let s = TestServer::start_with(db, FAST).await;
    let r = Receiver::start().await;
    r.subscribe(&s, json!({})).await;

    let (id, secret) = s.create(json!({"name": "hooked"})).await;
    let admin = s.as_admin();
    let rot = s.rotate(&id, None).await;
    assert_eq!(rot.status, StatusCode::OK);
    admin.delete(&format!("/v1/tokens/{id}")).await;
    admin.post(&format!("/v1/tokens/{id}/restore")).await;
    s.revoke(&id, Some(json!({"purge": true}))).await;
    let (short, _) = s.create(json!({"name": "short", "expires_in": 1})).await;
    let grants = json!({"grants": {"role": "member"}});
    let inv = admin.post_json("/v1/invites", grants).await;
    let invite_id = inv.body["invite"]["id"].as_str().unwrap().to_string();
    let code = inv.body["code"].as_str().unwrap().to_string();
    let redeem = json!({"code": code, "subject": "u1"});
    s.as_anonymous()
        .post_json("/v1/invites/redeem", redeem)
        .await;
    admin.post(&format!("/v1/invites/{invite_id}/revoke")).await;

    // Spelled out on purpose: the test pins the catalogue rather than
    // trusting it (the second-factor events have their own test).
    let all = [
        "created",
        "rotated",
        "revoked",
        "purged",
        "deleted",
        "restored",
        "expired",
        "invite.created",
        "invite.used",
        "invite.revoked",
    ];
    let got = r.wait_for_events("every event type", &all).await;
    let find = |event: &str, id: &str| {
        got.iter()
            .find(|g| g.payload["event"] == event && g.payload["id"] == id)
            .unwrap_or_else(|| panic!("no {event} for {id}"))
            .payload
            .clone()
    };
    let hash = format!("{:x}", Sha256::digest(secret.as_bytes()));
    assert_eq!(
        find("created", &id),
        json!({"event": "created", "id": id, "token": hash})
    );
    assert_eq!(
        find("rotated", &id),
        json!({"event": "rotated", "id": id, "new_id": id})
    );
    for e in ["deleted", "restored", "revoked", "purged"] {
        assert_eq!(find(e, &id), json!({"event": e, "id": id}));
    }
    assert_eq!(
        find("expired", &short),
        json!({"event": "expired", "id": short})
    );
    assert_eq!(
        find("invite.created", &invite_id),
        json!({"event": "invite.created", "id": invite_id, "code": code})
    );
    assert_eq!(
        find("invite.used", &invite_id),
        json!({"event": "invite.used", "id": invite_id})
    );
    assert_eq!(
        find("invite.revoked", &invite_id),
        json!({"event": "invite.revoked", "id": invite_id})
    );
    for g in &got {
        assert!(
            !g.payload.to_string().contains(&secret[4..]),
            "a raw token in a payload"
        );
    }
    let m = s.as_anonymous().get("/metrics").await.text;
    assert!(m.contains("tokens_webhooks_sent_total"));
}

async fn failures_are_retried_with_a_stable_id(db: TestDb) {
    let s = TestServer::start_with(db, FAST).await;
    let r = Receiver::start().await;
    r.subscribe(&s, json!({"event_types": ["created"]})).await;
    // Let the admin token's own `created` event (from start-up) go first.
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    r.state.fail_first.store(2, Ordering::SeqCst);
    let (id, _) = s.create(json!({"name": "retried"})).await;
    s.revoke(&id, None).await;
    let got = r
        .wait_for("the created event", |g| {
            g.iter().any(|x| x.payload["id"] == id.as_str())
        })
        .await;
    assert!(
        got.iter().all(|g| g.payload["event"] == "created"),
        "only subscribed event types are delivered"
    );
    let ours = got.iter().find(|g| g.payload["id"] == id.as_str()).unwrap();
    let requests: Vec<u16> = r
        .state
        .requests
        .lock()
        .unwrap()
        .iter()
        .filter(|(rid, _)| *rid == ours.webhook_id)
        .map(|(_, status)| *status)
        .collect();
    assert_eq!(
        requests,
        vec![500, 500, 204],
        "three attempts under one stable webhook-id"
    );
    // The receiver answers before the dispatcher records the success: wait
    // for the record, not for the request.
    let event_id = ours.webhook_id.clone();
    let listed = |list: &Value| {
        list["items"]
            .as_array()
            .and_then(|items| items.iter().find(|d| d["event_id"] == event_id.as_str()))
            .cloned()
    };
    let list = crate::common::eventually(
        "the delivery listed as succeeded",
        100,
        std::time::Duration::from_millis(50),
        || async {
            s.as_admin()
                .get("/v1/webhooks/deliveries?status=succeeded&event=created&limit=100")
                .await
                .body
        },
        |list| listed(list).is_some(),
    )
    .await;
    let item = listed(&list).unwrap();
    let delivery_id = item["id"].as_str().unwrap();
    let detail = s
        .as_admin()
        .get(&format!("/v1/webhooks/deliveries/{delivery_id}"))
        .await;
    let codes: Vec<i64> = detail.body["attempts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["status_code"].as_i64().unwrap())
        .collect();
    assert_eq!(codes, vec![500, 500, 204]);
    assert!(detail.body["attempts"][0]["latency_ms"].is_i64());
}

async fn exhausted_deliveries_fail_and_can_be_retried_by_hand(db: TestDb) {
    let s = TestServer::start_with(db, ONE_RETRY).await;
    let r = Receiver::start().await;
    r.state.fixed_status.store(503, Ordering::SeqCst);
    r.subscribe(&s, json!({"event_types": ["created"]})).await;
    s.create(json!({"name": "doomed"})).await;
    let failed = admin_poll(&s, "/v1/webhooks/deliveries?status=failed", |f| {
        !f["items"].as_array().unwrap().is_empty()
    })
    .await;
    let d = &failed["items"][0];
    assert_eq!(d["attempts"], 2, "{failed}");
    assert_eq!(d["last_status_code"], 503);
    r.state.fixed_status.store(0, Ordering::SeqCst);
    let retried = retry(&s, d["id"].as_str().unwrap()).await;
    assert_eq!(retried.body["status"], "pending");
    r.wait_for("the retried delivery", |g| !g.is_empty()).await;
    retry(&s, "nope")
        .await
        .assert_problem(StatusCode::NOT_FOUND, "delivery_not_found");
}

/// The one admin write that had no audit row: a manual retry now writes one
/// (actor, action, target, request context) in the retry's transaction.
async fn manual_retry_writes_an_audit_row(db: TestDb) {
    let s = TestServer::start_with(db, FAST).await;
    let r = Receiver::start().await;
    r.subscribe(&s, json!({"event_types": ["created"]})).await;
    s.create(json!({"name": "audited"})).await;
    let listed = admin_poll(&s, "/v1/webhooks/deliveries", |l| {
        !l["items"].as_array().unwrap().is_empty()
    })
    .await;
    let id = listed["items"][0]["id"]
        .as_str()
        .expect("a delivery")
        .to_string();
    let retried = retry(&s, &id).await;
    assert_eq!(retried.status, StatusCode::OK);
    let audit = s.db.store.audit_for_target(&id, 10).await.unwrap();
    assert_eq!(audit.len(), 1, "{audit:?}");
    assert_eq!(audit[0].action, "webhook.delivery.retry");
    assert_eq!(audit[0].target_type, "webhook_delivery");
    assert_eq!(audit[0].outcome, "success");
    assert!(audit[0].actor.starts_with("token:"), "{}", audit[0].actor);
    assert!(audit[0].request_id.is_some());
    assert!(audit[0].ip_sealed.is_some());
}

async fn gone_disables_the_endpoint(db: TestDb) {
    let s = TestServer::start_with(db, FAST).await;
    let r = Receiver::start().await;
    r.state.fixed_status.store(410, Ordering::SeqCst);
    let endpoint_id = r.subscribe(&s, json!({})).await;
    s.create(json!({"name": "gone"})).await;
    let endpoint = format!("/v1/webhooks/endpoints/{endpoint_id}");
    let e = admin_poll(&s, &endpoint, |e| e["disabled_at"].is_string()).await;
    assert!(e["disabled_at"].is_string(), "{e}");
    let before = r.state.requests.lock().unwrap().len();
    s.create(json!({"name": "after"})).await;
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    assert_eq!(
        r.state.requests.lock().unwrap().len(),
        before,
        "a disabled endpoint gets nothing"
    );
    // Re-enabling resumes delivery of new events.
    r.state.fixed_status.store(0, Ordering::SeqCst);
    s.as_admin()
        .patch_json(&endpoint, json!({"enabled": true}))
        .await;
    s.create(json!({"name": "resumed"})).await;
    r.wait_for("a delivery after re-enabling", |g| !g.is_empty())
        .await;
}

async fn endpoint_management_and_secret_rotation(db: TestDb) {
    let s = TestServer::start_with(db, FAST).await;
    let r = Receiver::start().await;
    let id = r.subscribe(&s, json!({"description": "billing"})).await;
    let list = s.as_admin().get("/v1/webhooks/endpoints").await;
    assert_eq!(list.body["items"].as_array().unwrap().len(), 1);
    assert!(!list.text.contains("whsec_"), "secrets are shown once");
    let rotated = s
        .as_admin()
        .post(&format!("/v1/webhooks/endpoints/{id}/rotate-secret"))
        .await;
    let new_secret = rotated.body["secret"].as_str().unwrap().to_string();
    // The receiver still holds the old secret: the second signature verifies.
    s.create(json!({"name": "during-rotation"})).await;
    r.wait_for("a delivery signed with both secrets", |g| !g.is_empty())
        .await;
    r.set_secret(&new_secret);
    s.create(json!({"name": "after-rotation"})).await;
    r.wait_for("a delivery verified with the new secret", |g| g.len() >= 2)
        .await;
    for body in [
        json!({"url": "ftp://nope"}),
        json!({"url": "http://x", "event_types": ["nope"]}),
    ] {
        s.as_admin()
            .post_json("/v1/webhooks/endpoints", body)
            .await
            .assert_problem(StatusCode::UNPROCESSABLE_ENTITY, "validation_failed");
    }
    let deleted = s
        .as_admin()
        .delete(&format!("/v1/webhooks/endpoints/{id}"))
        .await;
    assert!(deleted.body["deleted_at"].is_string());
    s.as_admin()
        .get("/v1/webhooks/deliveries?status=sideways")
        .await
        .assert_problem(StatusCode::UNPROCESSABLE_ENTITY, "validation_failed");
}

/// The SSRF rule on, as in production (the harness allows private networks
/// for its local receivers).
const NO_PRIVATE: (&str, &str) = ("TESSERA_WEBHOOKS_ALLOW_PRIVATE_NETWORKS", "false");

/// Issue 11, item 10: an admin token could point a webhook at internal
/// services. Literal internal addresses, in every spelling, are refused at
/// creation and update with a stable code and without echoing the URL.
async fn internal_addresses_are_refused_at_creation(db: TestDb) {
    let s = TestServer::start_with(db, &[NO_PRIVATE]).await;
    let admin = s.as_admin();
    for url in [
        "http://127.0.0.1:9000/hook",
        "http://169.254.169.254/latest/meta-data/",
        "http://10.1.2.3/hook",
        "http://172.16.0.1/hook",
        "http://192.168.0.10/hook",
        "http://100.64.0.1/hook",
        "http://0.0.0.0:8080/hook",
        "http://224.0.0.1/hook",
        "http://[::1]/hook",
        "http://[fd00::1]/hook",
        "http://[fe80::1]/hook",
        "http://[::ffff:127.0.0.1]/hook",
        "http://[::ffff:a9fe:a9fe]/hook",
        "http://2130706433/hook",
        "http://0x7f.0.0.1/hook",
        "http://127.1/hook",
    ] {
        let r = admin
            .post_json("/v1/webhooks/endpoints", json!({ "url": url }))
            .await;
        r.assert_problem(StatusCode::UNPROCESSABLE_ENTITY, "webhook_url_forbidden");
        assert_eq!(r.body["field"], "url", "{url}");
        let host = url.trim_start_matches("http://").split('/').next().unwrap();
        assert!(!r.text.contains(host), "{url} echoed: {}", r.text);
    }
    let created = admin
        .post_json(
            "/v1/webhooks/endpoints",
            json!({ "url": "https://hooks.example.com/tessera", "enabled": false }),
        )
        .await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.text);
    let id = created.body["endpoint"]["id"].as_str().unwrap();
    let path = format!("/v1/webhooks/endpoints/{id}");
    admin
        .patch_json(&path, json!({ "url": "http://192.168.1.1/hook" }))
        .await
        .assert_problem(StatusCode::UNPROCESSABLE_ENTITY, "webhook_url_forbidden");
    // A host name is accepted here: it is checked when a delivery resolves it.
    let r = admin
        .patch_json(&path, json!({ "url": "http://localhost:9/hook" }))
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
}

/// A host name that resolves to an internal address (`localhost`) is
/// refused when a delivery connects (DNS rebinding): the delivery fails at
/// once with the reason recorded, nothing reaches the receiver. The
/// operator's own `TOKENS_WEBHOOK_URL` is trusted and still delivered to.
async fn internal_addresses_are_refused_at_delivery(db: TestDb) {
    let trusted = Receiver::start().await;
    let secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
    trusted.set_secret(secret);
    let env = [
        NO_PRIVATE,
        ("TOKENS_WEBHOOK_URL", trusted.url.as_str()),
        ("TOKENS_WEBHOOK_SECRET", secret),
        ("TESSERA_WEBHOOK_POLL_INTERVAL", "50ms"),
    ];
    let s = TestServer::start_with(db, &env).await;
    let r = Receiver::start().await;
    let rebound = r.url.replace("127.0.0.1", "localhost");
    let c = s
        .as_admin()
        .post_json(
            "/v1/webhooks/endpoints",
            json!({ "url": rebound, "event_types": ["created"] }),
        )
        .await;
    assert_eq!(c.status, StatusCode::CREATED, "{}", c.text);
    r.set_secret(c.body["secret"].as_str().unwrap());
    let endpoint = c.body["endpoint"]["id"].as_str().unwrap().to_string();

    s.create(json!({"name": "watched"})).await;
    let path = format!("/v1/webhooks/deliveries?status=failed&endpoint={endpoint}");
    let failed = admin_poll(&s, &path, |f| !f["items"].as_array().unwrap().is_empty()).await;
    let d = &failed["items"][0];
    assert_eq!(d["attempts"], 1, "refused at once, not retried: {failed}");
    assert!(d["last_status_code"].is_null());
    let reason = d["last_error"].as_str().unwrap();
    assert!(reason.contains("internal address"), "{reason}");
    assert!(!reason.contains("localhost"), "{reason}");
    let detail = s
        .as_admin()
        .get(&format!(
            "/v1/webhooks/deliveries/{}",
            d["id"].as_str().unwrap()
        ))
        .await;
    assert_eq!(detail.body["attempts"][0]["error"], reason);
    assert!(
        r.state.requests.lock().unwrap().is_empty(),
        "the receiver was called"
    );
    // The default endpoint on 127.0.0.1 is operator configuration: delivered.
    trusted
        .wait_for_events("the trusted default endpoint", &["created"])
        .await;
}

tessera_test_support::tests! {
    backends:
        internal_addresses_are_refused_at_creation,
        internal_addresses_are_refused_at_delivery,
        every_event_in_the_catalogue_is_delivered_and_verifies,
        failures_are_retried_with_a_stable_id,
        exhausted_deliveries_fail_and_can_be_retried_by_hand,
        manual_retry_writes_an_audit_row,
        gone_disables_the_endpoint,
        endpoint_management_and_secret_rotation;
    multi_thread: #[needs(Postgres)] two_replicas_deliver_each_event_once;
}

async fn two_replicas_deliver_each_event_once() {
    let a = TestServer::on_postgres(FAST).await;
    let r = Receiver::start().await;
    r.subscribe(&a, json!({"event_types": ["created"]})).await;
    let b = a.replica(FAST).await;
    for i in 0..60 {
        let s = if i % 2 == 0 { &a } else { &b };
        s.create(json!({"name": format!("t{i}")})).await;
    }
    // The 60 tokens, plus admin tokens whose events were fanned out after
    // the endpoint existed.
    r.wait_for("60 created events", |g| g.len() >= 60).await;
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    let requests = r.state.requests.lock().unwrap().clone();
    let unique: BTreeSet<&String> = requests.iter().map(|(id, _)| id).collect();
    assert_eq!(
        unique.len(),
        requests.len(),
        "an event was delivered by both replicas"
    );
}
