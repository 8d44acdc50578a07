//! One-time auth codes over HTTP on both backends: delivered through a real
//! SMTP conversation (a sink the test runs) and the development log file;
//! single use, five attempts, expiry, replacement and rate limits.

use std::time::Duration;

use crate::common::{
    mfa::{check, mfa_token, wrong_code},
    smtp_sink::SmtpSink,
    TestServer,
};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use tessera_test_support::{backend_tests, TestDb};

/// The first run of `digits` digits in `text`.
fn find_code(text: &str, digits: usize) -> String {
    let bytes: Vec<char> = text.chars().collect();
    bytes
        .windows(digits + 2)
        .find(|w| {
            !w[0].is_ascii_digit()
                && !w[digits + 1].is_ascii_digit()
                && w[1..=digits].iter().all(char::is_ascii_digit)
        })
        .map(|w| w[1..=digits].iter().collect())
        .unwrap_or_else(|| panic!("no {digits}-digit code in {text:?}"))
}

/// A request for a code for `subject` and `purpose` over `channel`.
fn code_request(subject: &str, purpose: &str, channel: &str, destination: &str) -> Value {
    json!({"subject": subject, "purpose": purpose, "channel": channel, "destination": destination})
}

/// The six-digit code in the `n`th mail the sink receives (waiting for it).
async fn mailed_code(sink: &SmtpSink, n: usize) -> String {
    find_code(
        &sink.wait_for(n, Duration::from_secs(10)).await[n - 1].text(),
        6,
    )
}

/// A check of `code` for `subject` and `purpose`.
fn code_check(subject: &str, purpose: &str, code: &str) -> Value {
    json!({"subject": subject, "purpose": purpose, "code": code})
}

async fn send(s: &TestServer, token: &str, body: Value) -> Value {
    let r = s.with_token(token).post_json("/v1/auth-codes", body).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    r.body
}

async fn verify(s: &TestServer, token: &str, body: Value) -> Value {
    check(s, token, "/v1/auth-codes/verify", body).await
}

async fn codes_arrive_by_smtp_and_work_once(db: TestDb) {
    let sink = SmtpSink::start().await;
    let s = TestServer::start_with(
        db,
        &[
            ("SMTP_URL", &sink.url()),
            ("SMTP_FROM", "Acme <no-reply@acme.test>"),
        ],
    )
    .await;
    let token = mfa_token(&s).await;
    let mail = |purpose| code_request("u_mail", purpose, "email", "alice@example.com");
    let sent = send(&s, &token, mail("login")).await;
    let expires: chrono::DateTime<chrono::Utc> =
        sent["expires_at"].as_str().unwrap().parse().unwrap();
    let ttl = expires - chrono::Utc::now();
    assert!(
        ttl > chrono::Duration::seconds(590) && ttl <= chrono::Duration::minutes(10),
        "{ttl}"
    );
    let mails = sink.wait_for(1, Duration::from_secs(10)).await;
    assert_eq!(mails[0].to, vec!["alice@example.com".to_string()]);
    let code = find_code(&mails[0].text(), 6);
    let id = sent["id"].as_str().unwrap();
    let body =
        |code: &str| json!({"id": id, "subject": "u_mail", "purpose": "login", "code": code});
    // Bound to subject and purpose.
    let other = code_check("u_mail", "reset", &code);
    assert_eq!(verify(&s, &token, other).await["code"], "NO_CODE");
    let wrong = wrong_code(&code);
    for _ in 0..4 {
        assert_eq!(verify(&s, &token, body(wrong)).await["code"], "INVALID");
    }
    // The fifth attempt is still evaluated, and succeeds once.
    assert_eq!(
        verify(&s, &token, body(&code)).await,
        json!({"valid": true, "id": id})
    );
    assert_eq!(verify(&s, &token, body(&code)).await["code"], "REPLAYED");

    // Five wrong attempts kill a code, even for the right one.
    send(&s, &token, mail("login")).await;
    let code = mailed_code(&sink, 2).await;
    let wrong = wrong_code(&code);
    let body = |code: &str| code_check("u_mail", "login", code);
    for _ in 0..5 {
        assert_eq!(verify(&s, &token, body(wrong)).await["code"], "INVALID");
    }
    assert_eq!(verify(&s, &token, body(&code)).await["code"], "LOCKED");

    // A new code replaces the pending one.
    let first = send(&s, &token, mail("verify_email")).await;
    let first_code = mailed_code(&sink, 3).await;
    send(&s, &token, mail("verify_email")).await;
    let second_code = mailed_code(&sink, 4).await;
    let stale = json!({"id": first["id"], "subject": "u_mail", "purpose": "verify_email", "code": first_code});
    assert_eq!(verify(&s, &token, stale).await["code"], "NO_CODE");
    let current = code_check("u_mail", "verify_email", &second_code);
    assert_eq!(verify(&s, &token, current).await["valid"], true);

    // The subject has now had 4 codes in the window; the limit is 5.
    send(&s, &token, mail("x")).await;
    let r = s
        .with_token(&token)
        .post_json("/v1/auth-codes", mail("x"))
        .await;
    r.assert_problem(StatusCode::TOO_MANY_REQUESTS, "rate_limited");
    assert!(r.headers.contains_key("retry-after"));
    // The codes are not in the database or the audit log in clear: no run of
    // exactly these six digits (a longer run of digits, such as a
    // millisecond timestamp, may contain any six by chance).
    let dump = s.db.all_text().await;
    for m in sink.messages() {
        let code = find_code(&m.text(), 6);
        let found = dump.match_indices(&code).any(|(i, _)| {
            let before = dump[..i].chars().next_back();
            let after = dump[i + code.len()..].chars().next();
            !before.is_some_and(|c| c.is_ascii_digit())
                && !after.is_some_and(|c| c.is_ascii_digit())
        });
        assert!(!found, "auth code {code} stored in clear");
    }
    assert!(
        !dump.contains("alice@example.com"),
        "destinations are sealed"
    );
}

async fn parallel_guesses_at_one_code_evaluate_five(db: TestDb) {
    let s = TestServer::start(db).await;
    let token = mfa_token(&s).await;
    let sms = code_request("u_par", "login", "sms", "+447700900123");
    send(&s, &token, sms).await;
    let log = s.message_log();
    let code = find_code(&log, 6);
    let wrong = wrong_code(&code);
    let guess = |_| Some(code_check("u_par", "login", wrong));
    let path = "/v1/auth-codes/verify";
    let replies = s
        .concurrently(20, Method::POST, path, Some(&token), guess)
        .await;
    let codes: Vec<String> = replies
        .iter()
        .map(|r| r.body["code"].as_str().unwrap().to_string())
        .collect();
    let count = |c: &str| codes.iter().filter(|x| *x == c).count();
    assert_eq!((count("INVALID"), count("LOCKED")), (5, 15), "{codes:?}");
    let right = code_check("u_par", "login", &code);
    assert_eq!(verify(&s, &token, right).await["code"], "LOCKED");
}

async fn codes_expire(db: TestDb) {
    let s = TestServer::start_with(
        db,
        &[
            ("TESSERA_AUTH_CODE_TTL", "1s"),
            ("TESSERA_AUTH_CODE_DIGITS", "8"),
        ],
    )
    .await;
    let token = mfa_token(&s).await;
    let sms = code_request("u_sms", "login", "sms", "+447700900123");
    send(&s, &token, sms).await;
    // No SMS provider configured: the development log file has the message.
    let log = s.message_log();
    assert!(log.contains("+447700900123"));
    let code = find_code(&log, 8);
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let r = verify(&s, &token, code_check("u_sms", "login", &code)).await;
    assert_eq!(r["code"], "EXPIRED");
}

async fn bad_requests_and_a_dead_provider(db: TestDb) {
    // Nothing listens on this port: delivery fails, the code is retired.
    let dead = "smtp://127.0.0.1:9?tls=none";
    let s = TestServer::start_with(
        db,
        &[
            ("SMTP_URL", dead),
            ("TESSERA_DELIVERY_TIMEOUT", "2s"),
            ("TESSERA_AUTH_CODE_LIMIT_PER_DESTINATION", "1"),
        ],
    )
    .await;
    let token = mfa_token(&s).await;
    let ok = code_request("u_x", "login", "email", "a@b.io");
    let r = s.with_token(&token).post_json("/v1/auth-codes", ok).await;
    r.assert_problem(StatusCode::SERVICE_UNAVAILABLE, "delivery_failed");
    let v = verify(&s, &token, code_check("u_x", "login", "123456")).await;
    assert_eq!(v["code"], "NO_CODE");
    // One destination, one canonical form: the domain's case does not make
    // it a new destination (a failed delivery still counts).
    let again = code_request("u_y", "login", "email", "a@B.IO");
    s.with_token(&token)
        .post_json("/v1/auth-codes", again)
        .await
        .assert_problem(StatusCode::TOO_MANY_REQUESTS, "rate_limited");
    let login = |channel, destination| code_request("u_x", "login", channel, destination);
    for (body, field) in [
        (login("email", "Alice <alice@example.com>"), "destination"),
        (login("sms", "+0447700900123"), "destination"),
        (login("email", "not-an-address"), "destination"),
        (login("sms", "a@b.io"), "destination"),
        (code_request("u_x", "Log In", "email", "a@b.io"), "purpose"),
        (code_request("", "login", "email", "a@b.io"), "subject"),
    ] {
        let case = body.to_string();
        let r = s.with_token(&token).post_json("/v1/auth-codes", body).await;
        r.assert_problem(StatusCode::UNPROCESSABLE_ENTITY, "validation_failed");
        assert_eq!(r.body["field"], field, "{case}");
    }
    let r = s
        .with_token(&token)
        .post_json("/v1/auth-codes", code_request("u", "p", "fax", "1"))
        .await;
    r.assert_problem(StatusCode::UNPROCESSABLE_ENTITY, "invalid_request_body");
    let r = s
        .with_token(&token)
        .post_json(
            "/v1/auth-codes/verify",
            json!({"id": "nope", "subject": "u", "purpose": "p", "code": "1"}),
        )
        .await;
    r.assert_problem(StatusCode::UNPROCESSABLE_ENTITY, "validation_failed");
}

backend_tests!(
    codes_arrive_by_smtp_and_work_once,
    codes_expire,
    parallel_guesses_at_one_code_evaluate_five,
    bad_requests_and_a_dead_provider,
);
