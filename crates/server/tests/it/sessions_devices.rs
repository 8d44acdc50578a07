//! Device-bound sessions on both backends: a session opened with an
//! `X-Device-Id` refreshes only from that device; a refresh from another
//! device (or with none) is refused with `device_mismatch`, audited, and
//! changes nothing (the right device still refreshes, the family is
//! intact), even for a used token, while a used token from the session's
//! own device still revokes the family. `TESSERA_SESSION_DEVICE_BINDING`
//! decides whether sessions bind (`off`, `when_sent`, `required`).

use crate::common::{
    mfa::{code_at, TOTP_KEY},
    people::{create_user, metric, metrics, session, PASSWORD},
    Reply, TestServer,
};
use crate::sessions_walk::user_with_totp;
use reqwest::StatusCode;
use serde_json::{json, Value};
use tessera_test_support::{backend_tests, TestDb};

const PHONE: &str = "phone-7f3a9c";
const LAPTOP: &str = "laptop-01b2";

/// `POST path` with a JSON body, anonymous, with `X-Device-Id: device` if given.
async fn post_from(s: &TestServer, path: &str, body: Value, device: Option<&str>) -> Reply {
    let mut req = s.http.post(format!("{}{path}", s.base)).json(&body);
    if let Some(d) = device {
        req = req.header("x-device-id", d);
    }
    Reply::from(req.send().await.unwrap()).await
}

/// A login with [`PASSWORD`] from `device`; the reply unchecked.
async fn login_from(s: &TestServer, email: &str, device: Option<&str>) -> Reply {
    let body = json!({"email": email, "password": PASSWORD});
    post_from(s, "/v1/auth/login", body, device).await
}

/// `POST /v1/auth/refresh` from `device`; the reply unchecked.
async fn refresh_from(s: &TestServer, rt: &str, device: Option<&str>) -> Reply {
    post_from(
        s,
        "/v1/auth/refresh",
        json!({ "refresh_token": rt }),
        device,
    )
    .await
}

/// A refresh that must rotate: returns the new refresh token.
#[track_caller]
fn rotated(r: &Reply, old: &str) -> String {
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let next = r.body["refresh_token"].as_str().unwrap().to_string();
    assert_ne!(next, old, "a refresh hands out a new refresh token");
    next
}

/// A user signed in from `device`: (session id, refresh token).
async fn signed_in_from(s: &TestServer, email: &str, device: Option<&str>) -> (String, String) {
    create_user(s, email).await;
    let l = login_from(s, email, device).await;
    assert_eq!(l.status, StatusCode::OK, "{}", l.text);
    assert_eq!(l.body["device_bound"], device.is_some(), "{}", l.text);
    let sid = l.body["session_id"].as_str().unwrap().to_string();
    (sid, l.body["refresh_token"].as_str().unwrap().to_string())
}

async fn a_bound_session_refreshes_only_from_its_device(db: TestDb) {
    let s = TestServer::start(db).await;
    let (sid, rt1) = signed_in_from(&s, "phone@example.com", Some(PHONE)).await;
    let view = session(&s, &sid).await;
    assert_eq!(view["device_bound"], true, "{view}");
    assert!(
        !view.to_string().contains(PHONE),
        "the device id is never shown"
    );

    // From its device: rotates.
    let rt2 = rotated(&refresh_from(&s, &rt1, Some(PHONE)).await, &rt1);
    let before = session(&s, &sid).await;

    // From another device, or with none: refused, on both refresh routes.
    // (A malformed id counts as none: it can match no binding.)
    let too_long = "d".repeat(201);
    for device in [Some(LAPTOP), None, Some(too_long.as_str())] {
        refresh_from(&s, &rt2, device)
            .await
            .assert_problem(StatusCode::FORBIDDEN, "device_mismatch");
    }
    let form = [("grant_type", "refresh_token"), ("refresh_token", &rt2)];
    let oauth = s
        .http
        .post(format!("{}/oauth2/token", s.base))
        .header("x-device-id", LAPTOP)
        .form(&form)
        .send()
        .await
        .unwrap();
    let oauth = Reply::from(oauth).await;
    assert_eq!(oauth.status, StatusCode::BAD_REQUEST, "{}", oauth.text);
    assert_eq!(oauth.body["error"], "invalid_grant", "{}", oauth.text);
    assert_eq!(oauth.body["error_description"], "device_mismatch");

    // Nothing changed: the session is live and untouched, and the same
    // refresh token still works from the right device, twice in a row.
    let after = session(&s, &sid).await;
    assert_eq!(after, before, "a refused refresh changes no row");
    assert_eq!(after["state"], "active", "{after}");
    let rt3 = rotated(&refresh_from(&s, &rt2, Some(PHONE)).await, &rt2);
    let rt4 = rotated(&refresh_from(&s, &rt3, Some(PHONE)).await, &rt3);

    // Each refusal is audited, with its reason and without the device id.
    let audit = s.db.store.audit_for_target(&sid, 50).await.unwrap();
    let refused: Vec<_> = audit
        .iter()
        .filter(|a| a.action == "auth.refresh" && a.details["reason"] == "device_mismatch")
        .collect();
    assert_eq!(refused.len(), 4, "{audit:?}");
    assert!(refused.iter().all(|a| a.outcome == "failure"));
    assert!(!format!("{audit:?}").contains(LAPTOP) && !format!("{audit:?}").contains(PHONE));
    let m = metrics(&s).await;
    let series = "tokens_refreshes_total{outcome=\"device_mismatch\"}";
    assert_eq!(metric(&m, series), 4.0, "{m}");

    // A used token from another device is refused the same way: a caller
    // without the device id cannot end the session either.
    refresh_from(&s, &rt1, Some(LAPTOP))
        .await
        .assert_problem(StatusCode::FORBIDDEN, "device_mismatch");
    assert_eq!(session(&s, &sid).await["state"], "active");
    let rt5 = rotated(&refresh_from(&s, &rt4, Some(PHONE)).await, &rt4);
    // From its own device, a used token is reuse, as ever: the family and
    // the session end.
    refresh_from(&s, &rt1, Some(PHONE))
        .await
        .assert_problem(StatusCode::UNAUTHORIZED, "invalid_grant");
    let view = session(&s, &sid).await;
    assert_eq!(view["revoke_reason"], "reuse_detected", "{view}");
    refresh_from(&s, &rt5, Some(PHONE))
        .await
        .assert_problem(StatusCode::UNAUTHORIZED, "invalid_grant");
}

/// Refreshes from the wrong device racing one from the right device: the
/// right one rotates, every other is refused (before or after the token is
/// used), and nothing is revoked.
async fn refreshes_from_other_devices_race_without_harm(db: TestDb) {
    let s = TestServer::start(db).await;
    let (sid, rt) = signed_in_from(&s, "racer@example.com", Some(PHONE)).await;
    let tasks: Vec<_> = (0..9)
        .map(|i| {
            let device = if i == 4 {
                PHONE.to_string()
            } else {
                format!("other-{i}")
            };
            let req = s
                .http
                .post(format!("{}/v1/auth/refresh", s.base))
                .header("x-device-id", device)
                .json(&json!({ "refresh_token": rt }));
            tokio::spawn(async move { Reply::from(req.send().await.unwrap()).await })
        })
        .collect();
    let mut ok = Vec::new();
    for (i, t) in tasks.into_iter().enumerate() {
        let r = t.await.unwrap();
        if i == 4 {
            ok.push(rotated(&r, &rt));
        } else {
            r.assert_problem(StatusCode::FORBIDDEN, "device_mismatch");
        }
    }
    assert_eq!(session(&s, &sid).await["state"], "active");
    rotated(&refresh_from(&s, &ok[0], Some(PHONE)).await, &ok[0]);
}

async fn a_session_without_a_device_refreshes_as_before(db: TestDb) {
    let s = TestServer::start(db).await;
    let (sid, rt1) = signed_in_from(&s, "plain@example.com", None).await;
    assert_eq!(session(&s, &sid).await["device_bound"], false);
    // Any device id, or none, refreshes an unbound session.
    let rt2 = rotated(&refresh_from(&s, &rt1, None).await, &rt1);
    let rt3 = rotated(&refresh_from(&s, &rt2, Some(LAPTOP)).await, &rt2);
    rotated(&refresh_from(&s, &rt3, Some(PHONE)).await, &rt3);
    // Reuse detection is unchanged.
    refresh_from(&s, &rt1, None)
        .await
        .assert_problem(StatusCode::UNAUTHORIZED, "invalid_grant");
    assert_eq!(session(&s, &sid).await["revoke_reason"], "reuse_detected");
}

async fn the_setting_decides_whether_sessions_bind(db: TestDb) {
    // `off`: a device id is ignored; the session refreshes from anywhere.
    let off = TestServer::start_with(db, &[("TESSERA_SESSION_DEVICE_BINDING", "off")]).await;
    let (_, rt) = signed_in_from_unbound(&off, "off@example.com", PHONE).await;
    rotated(&refresh_from(&off, &rt, Some(LAPTOP)).await, &rt);

    // `required` (a replica on the same database): no session opens
    // without a device id.
    let s = off
        .replica(&[("TESSERA_SESSION_DEVICE_BINDING", "required")])
        .await;
    create_user(&s, "strict@example.com").await;
    login_from(&s, "strict@example.com", None)
        .await
        .assert_problem(StatusCode::FORBIDDEN, "device_required");
    let l = login_from(&s, "strict@example.com", Some(PHONE)).await;
    assert_eq!(l.body["device_bound"], true, "{}", l.text);
    let opened = |device: Option<&str>| {
        let mut body = json!({"subject": "app-user-1"});
        if let Some(d) = device {
            body["device_id"] = json!(d);
        }
        body
    };
    s.as_admin()
        .post_json("/v1/sessions", opened(None))
        .await
        .assert_problem(StatusCode::FORBIDDEN, "device_required");
    let o = s
        .as_admin()
        .post_json("/v1/sessions", opened(Some(LAPTOP)))
        .await;
    assert_eq!(o.status, StatusCode::CREATED, "{}", o.text);
    assert_eq!(o.body["device_bound"], true, "{}", o.text);
    let rt = o.body["refresh_token"].as_str().unwrap();
    refresh_from(&s, rt, Some(PHONE))
        .await
        .assert_problem(StatusCode::FORBIDDEN, "device_mismatch");
    rotated(&refresh_from(&s, rt, Some(LAPTOP)).await, rt);

    // A malformed device id at login is refused naming the header, never
    // taken for "no device".
    let bad = login_from(&s, "strict@example.com", Some(&"d".repeat(201))).await;
    bad.assert_problem(StatusCode::UNPROCESSABLE_ENTITY, "validation_failed");
    assert_eq!(bad.body["field"], "X-Device-Id", "{}", bad.text);
}

/// The stored keyed hash of a session's device.
async fn stored_device_hash(s: &TestServer, sid: &str) -> Option<String> {
    let stored = s.db.store.get_session(sid).await.unwrap().unwrap();
    stored.device_hash
}

/// Device ids are kept as keyed hashes under the server key: a session
/// bound before a key rotation still refreshes from its device while the
/// old key is in `TESSERA_ENC_KEY_PREVIOUS`, and that refresh moves the
/// hash to the new key (so the old key can be dropped later).
async fn a_binding_survives_a_key_rotation(db: TestDb) {
    let s = TestServer::start(db).await;
    let (sid, rt1) = signed_in_from(&s, "rotating@example.com", Some(PHONE)).await;
    let old_hash = stored_device_hash(&s, &sid).await.expect("bound");
    assert_ne!(old_hash, PHONE, "only a hash is stored");
    let renewed = s
        .replica(&[
            ("TESSERA_ENC_KEY", "a-new-encryption-key-0123456789abcdef"),
            ("TESSERA_ENC_KEY_PREVIOUS", crate::common::TEST_KEY),
        ])
        .await;
    refresh_from(&renewed, &rt1, Some(LAPTOP))
        .await
        .assert_problem(StatusCode::FORBIDDEN, "device_mismatch");
    assert_eq!(stored_device_hash(&s, &sid).await.as_ref(), Some(&old_hash));
    let rt2 = rotated(&refresh_from(&renewed, &rt1, Some(PHONE)).await, &rt1);
    let new_hash = stored_device_hash(&s, &sid).await.expect("still bound");
    assert_ne!(
        new_hash, old_hash,
        "the refresh moved the hash to the new key"
    );
    let rt3 = rotated(&refresh_from(&renewed, &rt2, Some(PHONE)).await, &rt2);
    refresh_from(&renewed, &rt3, Some(LAPTOP))
        .await
        .assert_problem(StatusCode::FORBIDDEN, "device_mismatch");
}

/// With a second factor the session opens at the second step: its
/// `X-Device-Id` is the one the session binds to, and where sessions must
/// be bound, a second step without one is refused before its code is
/// checked (the code and the challenge stay good).
async fn the_second_step_binds_the_session_to_its_device(db: TestDb) {
    let env = [
        ("TOTP_ENC_KEY", TOTP_KEY),
        ("TESSERA_SESSION_DEVICE_BINDING", "required"),
    ];
    let s = TestServer::start_with(db, &env).await;
    let (_, e, t) = user_with_totp(&s, "second@example.com").await;

    let l = login_from(&s, "second@example.com", Some(PHONE)).await;
    assert_eq!(l.body["mfa_required"], true, "{}", l.text);
    let step = json!({"challenge_id": l.body["challenge_id"], "code": code_at(&e, t + 30)});
    post_from(&s, "/v1/auth/login/mfa", step.clone(), None)
        .await
        .assert_problem(StatusCode::FORBIDDEN, "device_required");
    let done = post_from(&s, "/v1/auth/login/mfa", step, Some(PHONE)).await;
    assert_eq!(done.status, StatusCode::OK, "{}", done.text);
    assert_eq!(done.body["device_bound"], true, "{}", done.text);
    let rt = done.body["refresh_token"].as_str().unwrap();
    refresh_from(&s, rt, Some(LAPTOP))
        .await
        .assert_problem(StatusCode::FORBIDDEN, "device_mismatch");
    rotated(&refresh_from(&s, rt, Some(PHONE)).await, rt);
}

/// A user signed in with `device` where sessions do not bind.
async fn signed_in_from_unbound(s: &TestServer, email: &str, device: &str) -> (String, String) {
    create_user(s, email).await;
    let l = login_from(s, email, Some(device)).await;
    assert_eq!(l.status, StatusCode::OK, "{}", l.text);
    assert_eq!(l.body["device_bound"], false, "{}", l.text);
    let sid = l.body["session_id"].as_str().unwrap().to_string();
    (sid, l.body["refresh_token"].as_str().unwrap().to_string())
}

/// Logout by refresh token ends a bound session only from its device.
async fn logout_by_refresh_token_needs_the_device(db: TestDb) {
    let s = TestServer::start(db).await;
    let (sid, rt) = signed_in_from(&s, "out@example.com", Some(PHONE)).await;
    let out = |device| {
        post_from(
            &s,
            "/v1/auth/logout",
            json!({ "refresh_token": rt }),
            device,
        )
    };
    out(Some(LAPTOP))
        .await
        .assert_problem(StatusCode::FORBIDDEN, "device_mismatch");
    out(None)
        .await
        .assert_problem(StatusCode::FORBIDDEN, "device_mismatch");
    assert_eq!(session(&s, &sid).await["state"], "active");
    let r = out(Some(PHONE)).await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.text);
    assert_eq!(session(&s, &sid).await["state"], "revoked");
}

backend_tests!(
    logout_by_refresh_token_needs_the_device,
    a_bound_session_refreshes_only_from_its_device,
    a_binding_survives_a_key_rotation,
    the_second_step_binds_the_session_to_its_device,
    refreshes_from_other_devices_race_without_harm,
    a_session_without_a_device_refreshes_as_before,
    the_setting_decides_whether_sessions_bind,
);
