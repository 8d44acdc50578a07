//! TOTP devices and recovery codes over HTTP on both backends: a real
//! authenticator (pyotp), replay and lockout under concurrency, two servers
//! on one database, the encryption key at start-up and rekeying.

use crate::common::{
    mfa::{check, code_at, enroll, mfa_token, now, pyotp_code, wrong_code, TOTP_KEY},
    TestServer,
};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use tessera_test_support::{backend_tests, TestDb};

const KEY_ENV: (&str, &str) = ("TOTP_ENC_KEY", TOTP_KEY);

async fn confirm(
    s: &TestServer,
    token: &str,
    subject: &str,
    enrolled: &Value,
    code: &str,
) -> Value {
    let id = enrolled["device_id"].as_str().unwrap();
    check(
        s,
        token,
        &format!("/v1/subjects/{subject}/totp/{id}/confirm"),
        json!({ "code": code }),
    )
    .await
}

/// A device enrolled for `subject` and confirmed with the code of `now()`,
/// which is returned with it.
async fn confirmed(s: &TestServer, token: &str, subject: &str) -> (Value, i64) {
    let e = enroll(s, token, subject, json!({})).await;
    let t = now();
    assert_eq!(
        confirm(s, token, subject, &e, &code_at(&e, t)).await["valid"],
        true
    );
    (e, t)
}

async fn verify(s: &TestServer, token: &str, subject: &str, code: &str) -> Value {
    check(
        s,
        token,
        &format!("/v1/subjects/{subject}/totp/verify"),
        json!({ "code": code }),
    )
    .await
}

async fn a_real_authenticator_enrols_and_verifies(db: TestDb) {
    for (algorithm, digits) in [("SHA1", "6"), ("SHA256", "6"), ("SHA512", "8")] {
        let s = TestServer::start_with(
            TestDb::open(&db.url).await,
            &[
                KEY_ENV,
                ("TESSERA_TOTP_ALGORITHM", algorithm),
                ("TESSERA_TOTP_DIGITS", digits),
            ],
        )
        .await;
        let token = mfa_token(&s).await;
        let subject = format!("u_{}", algorithm.to_lowercase());
        let e = enroll(
            &s,
            &token,
            &subject,
            json!({"name": "Alice's phone", "account_name": "alice@example.com", "issuer": "Acme"}),
        )
        .await;
        let uri = e["otpauth_uri"].as_str().unwrap();
        assert!(
            uri.starts_with("otpauth://totp/Acme:alice%40example.com?secret="),
            "{uri}"
        );
        assert!(e["qr_svg"].as_str().unwrap().contains("<svg"));
        assert_eq!(e["device"]["status"], "pending");
        // Not usable before confirmation.
        let t = now();
        assert_eq!(
            verify(&s, &token, &subject, &pyotp_code(uri, t)).await["code"],
            "NO_DEVICE"
        );
        let c = confirm(&s, &token, &subject, &e, &pyotp_code(uri, t)).await;
        assert_eq!(c["valid"], true, "{c}");
        // The confirming code's step is used; the next step's code works once.
        let next = pyotp_code(uri, t + 30);
        assert_eq!(next.len(), digits.parse::<usize>().unwrap());
        let v = verify(&s, &token, &subject, &next).await;
        assert_eq!(v, json!({"valid": true, "device_id": e["device_id"]}));
        assert_eq!(
            verify(&s, &token, &subject, &next).await,
            json!({"valid": false, "code": "REPLAYED"})
        );
        assert_eq!(
            verify(&s, &token, &subject, &pyotp_code(uri, t)).await["code"],
            "REPLAYED"
        );
        let listed = s
            .with_token(&token)
            .get(&format!("/v1/subjects/{subject}/totp"))
            .await;
        assert_eq!(listed.body["items"][0]["status"], "active");
        assert!(!listed.text.contains(e["secret"].as_str().unwrap()));
        // Removal takes effect at once.
        let del = s
            .with_token(&token)
            .delete(&format!(
                "/v1/subjects/{subject}/totp/{}",
                e["device_id"].as_str().unwrap()
            ))
            .await;
        assert_eq!(del.status, StatusCode::NO_CONTENT);
        assert_eq!(
            verify(&s, &token, &subject, &pyotp_code(uri, t + 60)).await["code"],
            "NO_DEVICE"
        );
    }
}

async fn twenty_concurrent_verifications_of_one_code_succeed_once(db: TestDb) {
    let s = TestServer::start_with(db, &[KEY_ENV]).await;
    let token = mfa_token(&s).await;
    let (e, t) = confirmed(&s, &token, "u_race").await;
    let code = code_at(&e, t + 30);
    let replies = futures_all(&s, &token, "u_race", &code, 20).await;
    let valid = replies.iter().filter(|r| r["valid"] == true).count();
    assert_eq!(valid, 1, "{replies:?}");
    // Replays do not use attempts: the other 19 are REPLAYED, none LOCKED.
    let replayed = replies.iter().filter(|r| r["code"] == "REPLAYED").count();
    assert_eq!(replayed, 19, "{replies:?}");
}

/// `n` verifications of `code` for `subject` at once; every reply is a 200.
async fn futures_all(
    s: &TestServer,
    token: &str,
    subject: &str,
    code: &str,
    n: usize,
) -> Vec<Value> {
    let path = format!("/v1/subjects/{subject}/totp/verify");
    let body = |_| Some(json!({"code": code}));
    let replies = s
        .concurrently(n, Method::POST, &path, Some(token), body)
        .await;
    replies
        .into_iter()
        .map(|r| {
            assert_eq!(r.status, StatusCode::OK);
            assert!(!r.body.is_null(), "a JSON reply: {}", r.text);
            r.body
        })
        .collect()
}

async fn fifty_parallel_wrong_guesses_evaluate_five_then_lock(db: TestDb) {
    let s = TestServer::start_with(db, &[KEY_ENV]).await;
    let token = mfa_token(&s).await;
    let app = s.with_token(&token);
    let (e, t) = confirmed(&s, &token, "u_guess").await;
    let right = code_at(&e, t + 30);
    let wrong = wrong_code(&right);
    let replies = futures_all(&s, &token, "u_guess", wrong, 50).await;
    let count = |c: &str| replies.iter().filter(|r| r["code"] == c).count();
    assert_eq!((count("INVALID"), count("LOCKED")), (5, 45), "{replies:?}");
    // Locked: even the right code is refused now.
    assert_eq!(
        verify(&s, &token, "u_guess", &right).await["code"],
        "LOCKED"
    );
    let metrics = s.as_anonymous().get("/metrics").await.text;
    assert!(
        metrics.contains("tokens_mfa_verifications_total{factor=\"totp\",outcome=\"INVALID\"} 5"),
        "{metrics}"
    );
    // Every evaluated failure is audited, and nothing else was evaluated.
    let audit = s.db.store.audit_for_target("u_guess", 200).await.unwrap();
    let failures = audit
        .iter()
        .filter(|a| a.action == "mfa.challenge" && a.outcome == "failure")
        .count();
    assert_eq!(failures, 5);
    // Support staff lift the lock; the right code then works.
    let r = app.post("/v1/subjects/u_guess/totp/unlock").await;
    assert_eq!(r.body, json!({"cleared": true}), "{}", r.text);
    assert_eq!(verify(&s, &token, "u_guess", &right).await["valid"], true);
    let r = app.post("/v1/subjects/u_guess/totp/unlock").await;
    assert_eq!(r.body, json!({"cleared": false}));
}

async fn a_lock_lapses_by_itself(db: TestDb) {
    let s = TestServer::start_with(db, &[KEY_ENV, ("TESSERA_MFA_LOCKOUT", "1s")]).await;
    let token = mfa_token(&s).await;
    let (e, t) = confirmed(&s, &token, "u_lapse").await;
    let right = code_at(&e, t + 30);
    let wrong = wrong_code(&right);
    for _ in 0..5 {
        assert_eq!(
            verify(&s, &token, "u_lapse", wrong).await["code"],
            "INVALID"
        );
    }
    assert_eq!(
        verify(&s, &token, "u_lapse", &right).await["code"],
        "LOCKED"
    );
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    assert_eq!(verify(&s, &token, "u_lapse", &right).await["valid"], true);
}

async fn recovery_codes_are_shown_once_and_used_once(db: TestDb) {
    let s = TestServer::start(db).await; // recovery codes need no TOTP key
    let token = mfa_token(&s).await;
    let app = s.with_token(&token);
    let r = app.post("/v1/subjects/u_rec/recovery-codes").await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    let codes: Vec<String> = r.body["codes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c.as_str().unwrap().to_string())
        .collect();
    assert_eq!(codes.len(), 10);
    // 24 base32 characters = 120 bits, grouped by four.
    assert!(codes
        .iter()
        .all(|c| c.len() == 29 && c.split('-').count() == 6));
    let path = "/v1/subjects/u_rec/recovery-codes/verify";
    let lower = codes[0].to_lowercase().replace('-', " ");
    assert_eq!(
        check(&s, &token, path, json!({"code": lower})).await,
        json!({"valid": true, "remaining": 9})
    );
    assert_eq!(
        check(&s, &token, path, json!({"code": codes[0]})).await["code"],
        "INVALID"
    );
    // Ten racing uses of one code: one wins.
    let body = |_| Some(json!({"code": codes[1]}));
    let replies = s
        .concurrently(10, Method::POST, path, Some(&token), body)
        .await;
    let mut wins = 0;
    for r in replies {
        assert!(!r.body.is_null(), "a JSON reply: {}", r.text);
        wins += usize::from(r.body["valid"] == true);
    }
    assert_eq!(wins, 1);
    let left = app.get("/v1/subjects/u_rec/recovery-codes").await;
    assert_eq!(left.body, json!({"remaining": 8}));
    // Regenerating invalidates the old set.
    app.post("/v1/subjects/u_rec/recovery-codes").await;
    assert_eq!(
        check(&s, &token, path, json!({"code": codes[2]})).await["code"],
        "INVALID"
    );
    assert_eq!(
        check(
            &s,
            &token,
            "/v1/subjects/nobody/recovery-codes/verify",
            json!({"code": codes[2]})
        )
        .await["code"],
        "NO_DEVICE"
    );
    // Without TOTP_ENC_KEY, TOTP says so clearly.
    let r = app.post("/v1/subjects/u_rec/totp").await;
    r.assert_problem(StatusCode::SERVICE_UNAVAILABLE, "totp_not_configured");
    assert!(r.body["detail"].as_str().unwrap().contains("TOTP_ENC_KEY"));
    // A token without the mfa scope is refused.
    let (_, plain) = s
        .create(json!({"name": "reader", "scopes": ["read"]}))
        .await;
    s.with_token(&plain)
        .get("/v1/subjects/u_rec/recovery-codes")
        .await
        .assert_problem(StatusCode::FORBIDDEN, "forbidden");
}

async fn bad_input_gets_problems(db: TestDb) {
    let s = TestServer::start_with(db, &[KEY_ENV]).await;
    let token = mfa_token(&s).await;
    let e = enroll(&s, &token, "u_bad", json!({"qr": "png"})).await;
    assert!(e["qr_png"].is_string() && e["qr_svg"].is_null());
    let id = e["device_id"].as_str().unwrap();
    let (unprocessable, not_found) = (StatusCode::UNPROCESSABLE_ENTITY, StatusCode::NOT_FOUND);
    let confirm_at =
        |subject: &str, device: &str| format!("/v1/subjects/{subject}/totp/{device}/confirm");
    let enrol = "/v1/subjects/u_bad/totp".to_string();
    let guess = json!({"code": "123456"});
    // One case a line reads as a table; keep rustfmt from unfolding it.
    #[rustfmt::skip]
    let cases = [
        (confirm_at("u_bad", id), json!({"code": 123456}), unprocessable, "invalid_request_body"),
        (confirm_at("u_bad", "not-an-id"), guess.clone(), not_found, "device_not_found"),
        (confirm_at("u_other", id), guess.clone(), not_found, "device_not_found"),
        (enrol.clone(), json!({"name": ""}), unprocessable, "validation_failed"),
        (enrol.clone(), json!({"issuer": "a:b"}), unprocessable, "validation_failed"),
        (enrol.clone(), json!({"qr": "gif"}), unprocessable, "invalid_request_body"),
    ];
    for (path, body, status, code) in cases {
        let case = format!("{path} {body}");
        let r = s.with_token(&token).post_json(&path, body).await;
        assert_eq!(r.status, status, "{case}: {}", r.text);
        assert_eq!(r.body["code"], code, "{case}: {}", r.text);
    }
    let t = now();
    assert_eq!(
        confirm(&s, &token, "u_bad", &e, &code_at(&e, t)).await["valid"],
        true
    );
    s.with_token(&token)
        .post_json(
            &format!("/v1/subjects/u_bad/totp/{id}/confirm"),
            json!({"code": "123456"}),
        )
        .await
        .assert_problem(StatusCode::CONFLICT, "device_already_active");
    s.with_token(&token)
        .delete(&format!(
            "/v1/subjects/u_bad/totp/{}",
            tessera_core::ids::new_id()
        ))
        .await
        .assert_problem(StatusCode::NOT_FOUND, "device_not_found");
    // Ten devices per subject.
    for _ in 1..10 {
        enroll(&s, &token, "u_bad", json!({"qr": "none"})).await;
    }
    s.with_token(&token)
        .post("/v1/subjects/u_bad/totp")
        .await
        .assert_problem(StatusCode::CONFLICT, "device_limit_reached");
    // Garbage codes are just wrong codes.
    for garbage in ["", "12345", "１２３４５６", &"9".repeat(5000)] {
        assert_eq!(
            verify(&s, &token, "u_bad", garbage).await["code"],
            "INVALID"
        );
    }
}

backend_tests!(
    #[needs(PythonModule("pyotp"))]
    a_real_authenticator_enrols_and_verifies,
    twenty_concurrent_verifications_of_one_code_succeed_once,
    fifty_parallel_wrong_guesses_evaluate_five_then_lock,
    recovery_codes_are_shown_once_and_used_once,
    bad_input_gets_problems,
    a_lock_lapses_by_itself,
);
