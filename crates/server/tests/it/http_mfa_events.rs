//! Every second-factor event reaches a webhook receiver that verifies the
//! signature with the official `standardwebhooks` library, with the
//! documented payload and never a code, secret or destination.

use crate::common::{
    mfa::{check, code_at, enroll, mfa_token, now, wrong_code, TOTP_KEY},
    receiver::Receiver,
    TestServer,
};
use reqwest::StatusCode;
use serde_json::json;
use tessera_core::event::MFA_EVENT_TYPES;
use tessera_test_support::TestDb;

async fn every_second_factor_event_is_delivered_and_verifies(db: TestDb) {
    let s = TestServer::start_with(
        db,
        &[
            ("TESSERA_WEBHOOK_POLL_INTERVAL", "50ms"),
            ("TOTP_ENC_KEY", TOTP_KEY),
            ("TESSERA_MFA_MAX_FAILURES", "2"),
        ],
    )
    .await;
    let r = Receiver::start().await;
    r.subscribe(&s, json!({})).await;

    let token = mfa_token(&s).await;
    let sub = "u_events_1234";
    let e = enroll(&s, &token, sub, json!({})).await;
    let device = e["device_id"].as_str().unwrap();
    let t = now();
    let confirm = format!("/v1/subjects/{sub}/totp/{device}/confirm");
    assert_eq!(
        check(&s, &token, &confirm, json!({"code": code_at(&e, t)})).await["valid"],
        true
    );
    let verify = format!("/v1/subjects/{sub}/totp/verify");
    let next = code_at(&e, t + 30);
    assert_eq!(
        check(&s, &token, &verify, json!({"code": next})).await["valid"],
        true
    );
    assert_eq!(
        check(&s, &token, &verify, json!({"code": next})).await["code"],
        "REPLAYED"
    );
    let wrong = wrong_code(&next);
    // A replay gives its attempt back; two wrong codes use both, and the
    // second engages the lock.
    for _ in 0..2 {
        assert_eq!(
            check(&s, &token, &verify, json!({"code": wrong})).await["code"],
            "INVALID"
        );
    }
    assert_eq!(
        check(&s, &token, &verify, json!({"code": wrong})).await["code"],
        "LOCKED"
    );
    let del = s
        .with_token(&token)
        .delete(&format!("/v1/subjects/{sub}/totp/{device}"))
        .await;
    assert_eq!(del.status, StatusCode::NO_CONTENT);
    let rc = s
        .with_token(&token)
        .post(&format!("/v1/subjects/{sub}/recovery-codes"))
        .await;
    let recovery = rc.body["codes"][0].as_str().unwrap().to_string();
    let used = format!("/v1/subjects/{sub}/recovery-codes/verify");
    assert_eq!(
        check(&s, &token, &used, json!({"code": recovery})).await["valid"],
        true
    );
    let send = json!({"subject": sub, "purpose": "login", "channel": "email", "destination": "ev@example.com"});
    let sent = s.with_token(&token).post_json("/v1/auth-codes", send).await;
    assert_eq!(sent.status, StatusCode::CREATED, "{}", sent.text);
    let auth_code = s.logged_code(6);
    let v = json!({"subject": sub, "purpose": "login", "code": auth_code});
    assert_eq!(
        check(&s, &token, "/v1/auth-codes/verify", v).await["valid"],
        true
    );

    let got = r
        .wait_for_events("every second-factor event", MFA_EVENT_TYPES)
        .await;
    let text: String = got.iter().map(|g| g.payload.to_string()).collect();
    for secret in [
        e["secret"].as_str().unwrap(),
        &recovery,
        &auth_code,
        "ev@example.com",
    ] {
        assert!(!text.contains(secret), "{secret} in a webhook payload");
    }
    // (The token created for the app is a `created` event without a subject.)
    for g in got.iter().filter(|g| g.payload["event"] != "created") {
        assert_eq!(g.payload["subject"], sub, "{}", g.payload);
    }
    let find = |event: &str| {
        got.iter()
            .find(|g| g.payload["event"] == event)
            .unwrap()
            .payload
            .clone()
    };
    assert_eq!(find("mfa.enroll.completed")["device_id"], device);
    assert_eq!(find("mfa.challenge.locked")["locked_for_secs"], 300);
    assert_eq!(find("auth_code.sent")["channel"], "email");
    assert_eq!(find("auth_code.verified")["purpose"], "login");
    assert_eq!(find("mfa.recovery_codes.generated")["count"], 10);
}

fn endpoints_can_subscribe_to_every_second_factor_event() {
    let types: Vec<String> = MFA_EVENT_TYPES.iter().map(|t| t.to_string()).collect();
    let accepted = tessera_core::webhook::validate_event_types(&types).unwrap();
    assert_eq!(accepted.len(), MFA_EVENT_TYPES.len());
    for t in MFA_EVENT_TYPES {
        assert!(tessera_core::webhook::event_types().any(|k| k == *t), "{t}");
    }
}

tessera_test_support::tests! {
    backends: every_second_factor_event_is_delivered_and_verifies;
    sync: endpoints_can_subscribe_to_every_second_factor_event;
}
