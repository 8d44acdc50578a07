//! A person's session end to end on both backends: login, an access token
//! that PyJWT verifies against our JWKS, refresh, and a replayed refresh
//! token that revokes the family and the session and raises every alarm
//! (ERROR log, audit row, webhook); login with a second factor.

use crate::common::{
    logs::logs,
    mfa::{code_at, enroll, mfa_token, now, pyotp_code, wrong_code, TOTP_KEY},
    people::{create_user, login, pyjwt_verify, refresh, session, signed_in, PASSWORD},
    receiver::Receiver,
    TestServer,
};
use reqwest::StatusCode;
use serde_json::{json, Value};
use tessera_test_support::{backend_tests, TestDb};

const AUDIENCE: &str = "tessera-tests";

/// Logs in and checks the session's answer and its access token, which
/// PyJWT verifies; returns the login body.
async fn login_and_check_the_token(s: &TestServer, email: &str, user: &Value) -> Value {
    let l = signed_in(s, email).await;
    assert_eq!(l["token_type"], "Bearer", "{l}");
    assert_eq!(l["user"]["id"], user["id"], "{l}");
    let rt = l["refresh_token"].as_str().unwrap();
    assert!(rt.starts_with("tsr_rt_"), "{rt}");
    assert!(l["expires_in"].as_i64().unwrap() > 0 && l["refresh_expires_in"].as_i64() > Some(0));
    let v = pyjwt_verify(s, l["access_token"].as_str().unwrap(), Some(AUDIENCE)).await;
    let claims = &v["claims"];
    assert!(claims.is_object(), "PyJWT refused the token: {v}");
    assert_eq!(claims["sub"], user["id"], "{v}");
    assert_eq!(claims["sid"], l["session_id"], "{v}");
    assert_eq!(claims["aud"], AUDIENCE, "{v}");
    assert_eq!(claims["amr"], json!(["pwd"]), "{v}");
    l
}

/// The alarms of a detected reuse: an ERROR log line naming the session, the
/// audit row, and the webhook event (which carries no token).
async fn reuse_was_raised(s: &TestServer, r: &Receiver, sid: &str, secrets: &[&str]) {
    let line = logs()
        .text()
        .lines()
        .find(|l| l.contains("auth.refresh.reuse_detected") && l.contains(sid))
        .map(str::to_string);
    let line = line.expect("an auth.refresh.reuse_detected log line for the session");
    assert!(line.contains("ERROR"), "{line}");
    let audit = s.db.store.audit_for_target(sid, 50).await.unwrap();
    let row = audit
        .iter()
        .find(|a| a.action == "auth.refresh.reuse_detected")
        .unwrap_or_else(|| panic!("no reuse audit row: {audit:?}"));
    assert_eq!(row.outcome, "failure");
    assert_eq!(row.details["session_id"], sid);
    assert_eq!(
        row.channel.as_deref(),
        Some("audit"),
        "the security channel"
    );
    let got = r
        .wait_for("the reuse webhook", |got| {
            got.iter().any(|g| {
                g.payload["event"] == "auth.refresh.reuse_detected"
                    && g.payload["session_id"] == sid
            })
        })
        .await;
    for g in &got {
        for secret in secrets {
            assert!(
                !g.payload.to_string().contains(secret),
                "a token in a payload"
            );
        }
    }
}

async fn a_replayed_refresh_token_ends_the_session_and_raises_the_alarm(db: TestDb) {
    logs(); // captured from the server's start on
    let env = [
        ("TESSERA_AUDIENCE", AUDIENCE),
        ("TESSERA_WEBHOOK_POLL_INTERVAL", "50ms"),
    ];
    let s = TestServer::start_with(db, &env).await;
    let r = Receiver::start().await;
    r.subscribe(&s, json!({})).await;
    let user = create_user(&s, "Walker@Example.com").await;
    assert_eq!(user["email"], "walker@example.com", "{user}");
    let l = login_and_check_the_token(&s, "walker@example.com", &user).await;
    let (access1, rt1) = (
        l["access_token"].as_str().unwrap(),
        l["refresh_token"].as_str().unwrap(),
    );
    let sid = l["session_id"].as_str().unwrap();
    let me = s.with_token(access1).get("/v1/users/me").await;
    assert_eq!(me.status, StatusCode::OK, "{}", me.text);
    assert_eq!(me.body["id"], user["id"]);

    let next = refresh(&s, rt1).await;
    assert_eq!(next.status, StatusCode::OK, "{}", next.text);
    let (access2, rt2) = (
        next.body["access_token"].as_str().unwrap(),
        next.body["refresh_token"].as_str().unwrap(),
    );
    assert_ne!(rt1, rt2);
    assert_eq!(next.body["session_id"], sid);
    let me = s.with_token(access2).get("/v1/users/me").await;
    assert_eq!(me.status, StatusCode::OK, "{}", me.text);

    // The old refresh token again: the family and the session end.
    refresh(&s, rt1)
        .await
        .assert_problem(StatusCode::UNAUTHORIZED, "invalid_grant");
    let view = session(&s, sid).await;
    assert_eq!(view["state"], "revoked", "{view}");
    assert_eq!(view["revoke_reason"], "reuse_detected", "{view}");
    refresh(&s, rt2)
        .await
        .assert_problem(StatusCode::UNAUTHORIZED, "invalid_grant");
    for access in [access1, access2] {
        let me = s.with_token(access).get("/v1/users/me").await;
        assert_eq!(me.status, StatusCode::UNAUTHORIZED, "{}", me.text);
    }
    reuse_was_raised(&s, &r, sid, &[rt1, rt2, access1, access2]).await;
}

/// `POST /v1/auth/login/mfa`.
async fn second_step(s: &TestServer, challenge: &str, code: &str) -> crate::common::Reply {
    let body = json!({"challenge_id": challenge, "code": code});
    s.as_anonymous().post_json("/v1/auth/login/mfa", body).await
}

/// A user with an active TOTP device: the user, the enrolment, and the time
/// of the code that confirmed it.
pub(crate) async fn user_with_totp(s: &TestServer, email: &str) -> (Value, Value, i64) {
    let user = create_user(s, email).await;
    let uid = user["id"].as_str().unwrap();
    let token = mfa_token(s).await;
    let e = enroll(s, &token, uid, json!({})).await;
    let t = now();
    let confirm = format!(
        "/v1/subjects/{uid}/totp/{}/confirm",
        e["device_id"].as_str().unwrap()
    );
    let c = s
        .with_token(&token)
        .post_json(&confirm, json!({"code": code_at(&e, t)}))
        .await;
    assert_eq!(c.body["valid"], true, "{}", c.text);
    (user, e, t)
}

/// A login waiting for its second factor cannot finish once an admin has
/// reset the password: the reset closes the open challenge.
async fn a_password_reset_closes_an_open_challenge(db: TestDb) {
    let s = TestServer::start_with(db, &[("TOTP_ENC_KEY", TOTP_KEY)]).await;
    let (user, e, t) = user_with_totp(&s, "reset@example.com").await;
    let l = login(&s, "reset@example.com", PASSWORD).await;
    let challenge = l.body["challenge_id"].as_str().unwrap().to_string();
    let reset = format!("/v1/users/{}/password", user["id"].as_str().unwrap());
    let r = s
        .as_admin()
        .post_json(&reset, json!({"password": "a brand new passphrase 8812"}))
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    second_step(&s, &challenge, &code_at(&e, t + 30))
        .await
        .assert_problem(StatusCode::UNAUTHORIZED, "invalid_challenge");
}

async fn a_second_factor_completes_the_login_once(db: TestDb) {
    let s = TestServer::start_with(db, &[("TOTP_ENC_KEY", TOTP_KEY)]).await;
    let (_user, e, t) = user_with_totp(&s, "otp@example.com").await;

    let l = login(&s, "otp@example.com", PASSWORD).await;
    assert_eq!(l.status, StatusCode::OK, "{}", l.text);
    assert_eq!(l.body["mfa_required"], true, "{}", l.text);
    assert!(l.body["access_token"].is_null() && l.body["refresh_token"].is_null());
    let challenge = l.body["challenge_id"].as_str().unwrap();
    // The confirming step is used; the next step's code completes the login.
    let right = pyotp_code(e["otpauth_uri"].as_str().unwrap(), t + 30);
    assert_eq!(right, code_at(&e, t + 30));
    second_step(&s, challenge, wrong_code(&right))
        .await
        .assert_problem(StatusCode::UNAUTHORIZED, "invalid_code");
    let done = second_step(&s, challenge, &right).await;
    assert_eq!(done.status, StatusCode::OK, "{}", done.text);
    let access = done.body["access_token"].as_str().unwrap();
    let claims = crate::common::people::jwt_part(access, 1);
    assert_eq!(claims["amr"], json!(["pwd", "otp"]), "{claims}");
    let sid = done.body["session_id"].as_str().unwrap();
    assert_eq!(session(&s, sid).await["amr"], json!(["pwd", "otp"]));
    let me = s.with_token(access).get("/v1/users/me").await;
    assert_eq!(me.status, StatusCode::OK, "{}", me.text);
    // The challenge is spent, even with a fresh right code.
    let again = second_step(&s, challenge, &code_at(&e, t + 60)).await;
    again.assert_problem(StatusCode::UNAUTHORIZED, "invalid_challenge");
}

backend_tests!(
    #[needs(PythonModule("jwt"), PythonModule("cryptography"))]
    a_replayed_refresh_token_ends_the_session_and_raises_the_alarm,
    #[needs(PythonModule("pyotp"))]
    a_second_factor_completes_the_login_once,
    a_password_reset_closes_an_open_challenge,
);
