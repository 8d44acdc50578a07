//! Issue #16, the per-token controls that the database decides: device
//! binding (20 devices racing for a `first_use` token, exactly one wins;
//! `required`; an admin unbinds), credits (500 concurrent verifications of
//! a token with 100 credits give exactly 100 valid answers; cost; refill),
//! the order of the steps (a refusal consumes nothing after it), and
//! introspection, which never consumes. Both backends (SQLite in one
//! process).

use std::{collections::BTreeSet, time::Duration};

use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use tessera_test_support::{backend_tests, TestDb};

use crate::{
    common::TestServer,
    token_controls::{client_with, events_about, outcome, token_with, verify_as, As},
};

/// Verifies `secret` as the admin with `facts` merged into the body.
async fn verify(s: &TestServer, secret: &str, facts: Value) -> (String, Value) {
    let mut body = json!({"token": secret});
    body.as_object_mut()
        .unwrap()
        .extend(facts.as_object().unwrap().clone());
    let r = verify_as(s, As::Admin, body, None).await;
    (outcome(&r), r.body)
}

async fn twenty_devices_race_for_a_first_use_token(db: TestDb) {
    let s = TestServer::start(db).await;
    let (id, secret, view) = token_with(&s, json!({"device_binding": "first_use"})).await;
    assert_eq!(view["device_bound"], false);
    let replies = s
        .concurrently(20, Method::POST, "/v1/tokens/verify", Some(&s.admin), |i| {
            Some(json!({"token": secret, "device_id": format!("device-{i}")}))
        })
        .await;
    let outcomes: Vec<String> = replies.iter().map(outcome).collect();
    let winners: Vec<usize> = (0..20).filter(|i| outcomes[*i] == "VALID").collect();
    assert_eq!(winners.len(), 1, "{outcomes:?}");
    assert!(
        outcomes.iter().filter(|o| *o == "DEVICE_MISMATCH").count() == 19,
        "{outcomes:?}"
    );
    let winner = format!("device-{}", winners[0]);
    let (got, body) = verify(&s, &secret, json!({"device_id": winner})).await;
    assert_eq!(got, "VALID");
    assert_eq!(body["token"]["device_bound"], true);
    assert_eq!(verify(&s, &secret, json!({})).await.0, "DEVICE_REQUIRED");
    let shown = s.as_admin().get(&format!("/v1/tokens/{id}")).await;
    assert_eq!(shown.body["device_bound"], true);
    assert!(!shown.text.contains(&winner), "{}", shown.text);

    // An admin unbinds; the next device binds it.
    let r = s
        .as_admin()
        .post(&format!("/v1/tokens/{id}/unbind-device"))
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(r.body["device_bound"], false);
    let (got, _) = verify(&s, &secret, json!({"device_id": "device-new"})).await;
    assert_eq!(got, "VALID");
    let (got, _) = verify(&s, &secret, json!({"device_id": winner})).await;
    assert_eq!(got, "DEVICE_MISMATCH");
    let audit = s.db.store.audit_for_target(&id, 10).await.unwrap();
    assert!(audit.iter().any(|a| a.action == "token.unbind_device"));
    assert!(events_about(&s, &id).await.contains(&"updated".to_string()));
    // Unknown token: 404.
    let r = s
        .as_admin()
        .post("/v1/tokens/01a20c4b-0000-7000-8000-000000000000/unbind-device")
        .await;
    r.assert_problem(StatusCode::NOT_FOUND, "token_not_found");
}

async fn a_required_binding_names_its_device(db: TestDb) {
    let s = TestServer::start(db).await;
    for (body, field) in [
        (
            json!({"name": "x", "device_binding": "required"}),
            "device_id",
        ),
        (json!({"name": "x", "device_id": "phone"}), "device_id"),
        (
            json!({"name": "x", "device_binding": "sometimes"}),
            "device_binding",
        ),
        (
            json!({"name": "x", "device_binding": "first_use", "device_id": "x".repeat(201)}),
            "device_id",
        ),
    ] {
        let r = s.as_admin().post_json("/v1/tokens", body).await;
        r.assert_problem(StatusCode::UNPROCESSABLE_ENTITY, "validation_failed");
        assert_eq!(r.body["field"], field, "{}", r.text);
    }
    let (id, secret, view) = token_with(
        &s,
        json!({"device_binding": "required", "device_id": "phone-1"}),
    )
    .await;
    assert_eq!(view["device_bound"], true);
    assert_eq!(
        verify(&s, &secret, json!({"device_id": "phone-1"})).await.0,
        "VALID"
    );
    assert_eq!(
        verify(&s, &secret, json!({"device_id": "phone-2"})).await.0,
        "DEVICE_MISMATCH"
    );
    // Unbound, `required` accepts no device until an update names one.
    s.as_admin()
        .post(&format!("/v1/tokens/{id}/unbind-device"))
        .await;
    assert_eq!(
        verify(&s, &secret, json!({"device_id": "phone-1"})).await.0,
        "DEVICE_MISMATCH"
    );
    let r = s
        .as_admin()
        .patch_json(&format!("/v1/tokens/{id}"), json!({"device_id": "phone-2"}))
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(
        verify(&s, &secret, json!({"device_id": "phone-2"})).await.0,
        "VALID"
    );
    // Back to `none`: any device, no device.
    let r = s
        .as_admin()
        .patch_json(
            &format!("/v1/tokens/{id}"),
            json!({"device_binding": "none"}),
        )
        .await;
    assert_eq!(r.body["device_bound"], false, "{}", r.text);
    assert_eq!(verify(&s, &secret, json!({})).await.0, "VALID");
}

async fn credits_are_exact_under_concurrency(db: TestDb) {
    let s = TestServer::start(db).await;
    let (id, secret, view) = token_with(&s, json!({"credits": {"remaining": 100}})).await;
    assert_eq!(view["credits"]["remaining"], 100);
    let replies = s
        .concurrently(
            500,
            Method::POST,
            "/v1/tokens/verify",
            Some(&s.admin),
            |_| Some(json!({"token": secret})),
        )
        .await;
    let valid: Vec<&Value> = replies
        .iter()
        .filter(|r| outcome(r) == "VALID")
        .map(|r| &r.body)
        .collect();
    assert_eq!(valid.len(), 100);
    // Every valid answer saw its own balance: 99 down to 0, each once.
    let left: BTreeSet<i64> = valid
        .iter()
        .map(|b| b["remaining"].as_i64().unwrap())
        .collect();
    assert_eq!(left, (0..100).collect());
    for r in replies.iter().filter(|r| outcome(r) != "VALID") {
        assert_eq!(outcome(r), "USAGE_EXCEEDED");
        assert_eq!(r.body["remaining"], 0);
    }
    let shown = s.as_admin().get(&format!("/v1/tokens/{id}")).await;
    assert_eq!(shown.body["credits"]["remaining"], 0);
    // An unauthenticated caller cannot even try.
    let r = verify_as(&s, As::Anonymous, json!({"token": secret}), None).await;
    assert_eq!(outcome(&r), "CALLER_NOT_AUTHORIZED");
}

async fn cost_refill_and_order(db: TestDb) {
    let s = TestServer::start(db).await;
    // Cost, and a refill that sets the balance back every second.
    let (id, secret, view) = token_with(
        &s,
        json!({"credits": {"remaining": 3, "refill": {"amount": 4, "interval": "3s"}}}),
    )
    .await;
    assert_eq!(
        view["credits"]["refill"],
        json!({"amount": 4, "interval": "3s"})
    );
    let (got, body) = verify(&s, &secret, json!({"cost": 2})).await;
    assert_eq!(
        (got.as_str(), body["remaining"].as_i64()),
        ("VALID", Some(1))
    );
    assert_eq!(body["token"]["credits"]["remaining"], 1);
    let (got, body) = verify(&s, &secret, json!({"cost": 2})).await;
    assert_eq!(
        (got.as_str(), body["remaining"].as_i64()),
        ("USAGE_EXCEEDED", Some(1))
    );
    tokio::time::sleep(Duration::from_millis(3100)).await;
    let (got, body) = verify(&s, &secret, json!({"cost": 4})).await;
    assert_eq!(
        (got.as_str(), body["remaining"].as_i64()),
        ("VALID", Some(0))
    );
    // Credits changed by an update count from then; `null` makes it unlimited.
    let r = s
        .as_admin()
        .patch_json(
            &format!("/v1/tokens/{id}"),
            json!({"credits": {"remaining": 1}}),
        )
        .await;
    assert_eq!(r.body["credits"]["remaining"], 1, "{}", r.text);
    assert!(r.body["credits"]["refill"].is_null(), "{}", r.text);
    assert_eq!(verify(&s, &secret, json!({})).await.0, "VALID");
    assert_eq!(verify(&s, &secret, json!({})).await.0, "USAGE_EXCEEDED");
    let r = s
        .as_admin()
        .patch_json(&format!("/v1/tokens/{id}"), json!({"credits": null}))
        .await;
    assert!(r.body["credits"].is_null(), "{}", r.text);
    assert_eq!(verify(&s, &secret, json!({})).await.0, "VALID");

    // The order: IP list, device, credits; a refusal consumes nothing later.
    let (_, secret, _) = token_with(
        &s,
        json!({"ip_allow": ["10.0.0.0/8"], "device_binding": "first_use",
               "credits": {"remaining": 2}}),
    )
    .await;
    let outside = json!({"client_ip": "192.0.2.1", "device_id": "d1"});
    assert_eq!(verify(&s, &secret, outside).await.0, "IP_NOT_ALLOWED");
    // d1 did not bind it, and no credit was spent.
    let (got, body) = verify(
        &s,
        &secret,
        json!({"client_ip": "10.0.0.1", "device_id": "d2"}),
    )
    .await;
    assert_eq!(
        (got.as_str(), body["remaining"].as_i64()),
        ("VALID", Some(1))
    );
    let d1 = json!({"client_ip": "10.0.0.1", "device_id": "d1"});
    assert_eq!(verify(&s, &secret, d1).await.0, "DEVICE_MISMATCH");
    let (got, body) = verify(
        &s,
        &secret,
        json!({"client_ip": "10.0.0.1", "device_id": "d2"}),
    )
    .await;
    assert_eq!(
        (got.as_str(), body["remaining"].as_i64()),
        ("VALID", Some(0))
    );
}

async fn introspection_never_consumes(db: TestDb) {
    let s = TestServer::start(db).await;
    let (_, secret, _) = token_with(
        &s,
        json!({"credits": {"remaining": 1}, "device_binding": "first_use"}),
    )
    .await;
    let (client, client_secret) = client_with(&s, json!(["introspect"])).await;
    for _ in 0..3 {
        let r = s
            .http
            .post(format!("{}/oauth2/introspect", s.base))
            .basic_auth(&client, Some(&client_secret))
            .form(&[("token", secret.as_str())])
            .send()
            .await
            .unwrap();
        let body: Value = r.json().await.unwrap();
        assert_eq!(body["active"], true, "{body}");
    }
    let (got, body) = verify(&s, &secret, json!({"device_id": "d"})).await;
    assert_eq!(
        (got.as_str(), body["remaining"].as_i64()),
        ("VALID", Some(0))
    );
}

/// Device ids are kept as keyed hashes under the server key: a binding
/// made before a key rotation still matches while the old key is listed in
/// `TESSERA_ENC_KEY_PREVIOUS`.
async fn a_binding_survives_a_key_rotation(db: TestDb) {
    let s = TestServer::start(db).await;
    let (_, required, _) = token_with(
        &s,
        json!({"device_binding": "required", "device_id": "phone-1"}),
    )
    .await;
    let (_, first_use, _) = token_with(&s, json!({"device_binding": "first_use"})).await;
    assert_eq!(
        verify(&s, &first_use, json!({"device_id": "tablet"}))
            .await
            .0,
        "VALID"
    );
    let rotated = s
        .replica(&[
            ("TESSERA_ENC_KEY", "a-new-encryption-key-0123456789abcdef"),
            ("TESSERA_ENC_KEY_PREVIOUS", crate::common::TEST_KEY),
        ])
        .await;
    for (secret, device, want) in [
        (&required, "phone-1", "VALID"),
        (&required, "phone-2", "DEVICE_MISMATCH"),
        (&first_use, "tablet", "VALID"),
        (&first_use, "phone-1", "DEVICE_MISMATCH"),
    ] {
        let got = verify(&rotated, secret, json!({"device_id": device}))
            .await
            .0;
        assert_eq!(got, want, "{device}");
    }
}

backend_tests!(
    a_binding_survives_a_key_rotation,
    twenty_devices_race_for_a_first_use_token,
    a_required_binding_names_its_device,
    credits_are_exact_under_concurrency,
    cost_refill_and_order,
    introspection_never_consumes,
);
