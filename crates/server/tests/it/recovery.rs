//! Password reset and e-mail verification by mailed links, end to end over
//! a real SMTP conversation (the sink), on SQLite and PostgreSQL: a link
//! works once, in the person's language; superseded, reused and expired
//! links fail with their codes; a reset ends every session and keeps the
//! second factor; concurrent confirmations change the password once;
//! answers and their timing do not tell accounts apart; with
//! `AUTH_REQUIRE_VERIFIED_EMAIL` login waits for the verification link.

use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::{json, Value};
use tessera_test_support::{backend_tests, TestDb};

use crate::common::{
    mfa::{code_at, enroll, mfa_token, now, TOTP_KEY},
    people::{create_user, login, metric, metrics, refresh, signed_in, PASSWORD},
    smtp_sink::{ReceivedMail, SmtpSink},
    Reply, TestServer,
};

const WAIT: Duration = Duration::from_secs(15);
const NEW_PASSWORD: &str = "copper-Meadow-quartz-2211";

/// A server whose mail goes to a fresh sink, links to app.example.
async fn start(db: TestDb, extra: &[(&str, &str)]) -> (TestServer, SmtpSink) {
    let sink = SmtpSink::start().await;
    let url = sink.url();
    let mut env = vec![
        ("SMTP_URL", url.as_str()),
        ("PASSWORD_RESET_URL", "https://app.example/reset"),
        (
            "EMAIL_VERIFICATION_URL",
            "https://app.example/verify?from=mail",
        ),
    ];
    env.extend_from_slice(extra);
    (TestServer::start_with(db, &env).await, sink)
}

async fn post(s: &TestServer, path: &str, body: Value) -> Reply {
    s.as_anonymous().post_json(path, body).await
}

/// The `token` parameter of the one link in a mail's text part.
pub fn link_token(mail: &ReceivedMail) -> String {
    let text = mail.text_part();
    let at = text.find("token=").expect("the mail holds a link") + "token=".len();
    text[at..]
        .chars()
        .take_while(|c| c.is_ascii_alphanumeric() || "-_.".contains(*c))
        .collect()
}

/// Waits for the `n`th mail (1-based) and returns it.
async fn nth_mail(sink: &SmtpSink, n: usize) -> ReceivedMail {
    sink.wait_for(n, WAIT).await[n - 1].clone()
}

async fn a_reset_link_works_once_and_ends_every_session(db: TestDb) {
    let (s, sink) = start(db, &[]).await;
    let user = create_user(&s, "ana@example.com").await;
    let uid = user["id"].as_str().unwrap();
    let r = s
        .as_admin()
        .patch_json(&format!("/v1/users/{uid}"), json!({"locale": "pt-BR"}))
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let session = signed_in(&s, "ana@example.com").await;

    let r = post(&s, "/recover", json!({"email": "ana@example.com"})).await;
    assert_eq!(r.status, StatusCode::ACCEPTED, "{}", r.text);
    assert_eq!(r.body, json!({"status": "accepted"}));
    let mail = nth_mail(&sink, 1).await;
    assert_eq!(mail.to, vec!["ana@example.com".to_string()]);
    let subject = mail.header("Subject").unwrap_or_default();
    assert!(mail
        .text_part()
        .contains("https://app.example/reset?token="));
    let token = link_token(&mail);
    assert!(
        !subject.contains("Reset") && !mail.text_part().contains("ignore this"),
        "the user's locale is pt-BR: {subject}"
    );

    let weak = post(
        &s,
        "/recover/confirm",
        json!({"token": token, "password": "short"}),
    )
    .await;
    weak.assert_problem(StatusCode::UNPROCESSABLE_ENTITY, "weak_password");
    let ok = post(
        &s,
        "/recover/confirm",
        json!({"token": token, "password": NEW_PASSWORD}),
    )
    .await;
    assert_eq!(ok.status, StatusCode::OK, "{}", ok.text);
    let again = post(
        &s,
        "/recover/confirm",
        json!({"token": token, "password": NEW_PASSWORD}),
    )
    .await;
    again.assert_problem(StatusCode::BAD_REQUEST, "invalid_token");

    // Every earlier session and refresh token is refused.
    let rt = session["refresh_token"].as_str().unwrap();
    refresh(&s, rt)
        .await
        .assert_problem(StatusCode::UNAUTHORIZED, "invalid_grant");
    let access = session["access_token"].as_str().unwrap();
    let me = s.with_token(access).get("/v1/users/me").await;
    assert_eq!(me.status, StatusCode::UNAUTHORIZED, "{}", me.text);
    login(&s, "ana@example.com", PASSWORD)
        .await
        .assert_problem(StatusCode::UNAUTHORIZED, "invalid_credentials");
    assert_eq!(
        login(&s, "ana@example.com", NEW_PASSWORD).await.status,
        StatusCode::OK
    );

    // The password-changed notice arrives, and holds no link.
    let notice = nth_mail(&sink, 2).await;
    assert_eq!(notice.to, vec!["ana@example.com".to_string()]);
    assert!(!notice.text_part().contains("token="));
    let m = metrics(&s).await;
    assert_eq!(
        metric(&m, r#"tokens_recovery_requests_total{outcome="sent"}"#),
        1.0
    );
    assert_eq!(
        metric(&m, r#"tokens_recovery_requests_total{outcome="completed"}"#),
        1.0
    );
}

async fn superseded_and_expired_links_fail_with_their_codes(db: TestDb) {
    let (s, sink) = start(
        db,
        &[
            ("RESET_TOKEN_TTL", "2"),
            ("EMAIL_VERIFICATION_TOKEN_TTL", "2"),
        ],
    )
    .await;
    create_user(&s, "bo@example.com").await;
    for _ in 0..2 {
        let r = post(&s, "/recover", json!({"email": "bo@example.com"})).await;
        assert_eq!(r.status, StatusCode::ACCEPTED);
        // One at a time, so the second link is the newer one.
        sink.wait_for(sink.messages().len() + 1, WAIT).await;
    }
    let first = link_token(&nth_mail(&sink, 1).await);
    let second = link_token(&nth_mail(&sink, 2).await);
    let body = |t: &str| json!({"token": t, "password": NEW_PASSWORD});
    post(&s, "/recover/confirm", body(&first))
        .await
        .assert_problem(StatusCode::BAD_REQUEST, "invalid_token");
    // A wrong secret on a real id, and a malformed token: the same answer.
    let (id, secret) = second.split_once('.').unwrap();
    let wrong = format!("{id}.{}", "A".repeat(secret.len()));
    for bad in [wrong.as_str(), "nonsense", id] {
        post(&s, "/recover/confirm", body(bad))
            .await
            .assert_problem(StatusCode::BAD_REQUEST, "invalid_token");
    }
    tokio::time::sleep(Duration::from_millis(2100)).await;
    post(&s, "/recover/confirm", body(&second))
        .await
        .assert_problem(StatusCode::GONE, "token_expired");
    // Expired, but the secret is wrong: nothing is told.
    post(&s, "/recover/confirm", body(&wrong))
        .await
        .assert_problem(StatusCode::BAD_REQUEST, "invalid_token");
}

async fn fifty_concurrent_confirms_change_the_password_once(db: TestDb) {
    let (s, sink) = start(db, &[("TESSERA_LINK_CONFIRMS_PER_IP", "0")]).await;
    create_user(&s, "cy@example.com").await;
    post(&s, "/recover", json!({"email": "cy@example.com"})).await;
    let token = link_token(&nth_mail(&sink, 1).await);
    let replies = s
        .concurrently(50, reqwest::Method::POST, "/recover/confirm", None, |i| {
            Some(json!({"token": token, "password": format!("{NEW_PASSWORD}-{i}")}))
        })
        .await;
    let won: Vec<&Reply> = replies
        .iter()
        .filter(|r| r.status == StatusCode::OK)
        .collect();
    assert_eq!(won.len(), 1, "exactly one confirmation wins");
    for r in replies.iter().filter(|r| r.status != StatusCode::OK) {
        r.assert_problem(StatusCode::BAD_REQUEST, "invalid_token");
    }
}

/// Answers for existing and unknown addresses: the same status and body,
/// and medians within 5 ms. Requests alternate, so both see the same load
/// (the background work of the known ones included).
async fn request_answers_do_not_tell_accounts_apart(db: TestDb) {
    let (s, _sink) = start(db, &[("TESSERA_LINK_REQUESTS_PER_IP", "0")]).await;
    for i in 0..20 {
        create_user(&s, &format!("known{i}@example.com")).await;
    }
    let (mut known, mut unknown) = (Vec::new(), Vec::new());
    for i in 0..400 {
        let email = if i % 2 == 0 {
            format!("known{}@example.com", (i / 2) % 20)
        } else {
            format!("nobody{i}@example.com")
        };
        let started = Instant::now();
        let r = post(&s, "/recover", json!({"email": email})).await;
        let ms = started.elapsed().as_secs_f64() * 1000.0;
        assert_eq!(r.status, StatusCode::ACCEPTED, "{}", r.text);
        assert_eq!(r.text, r#"{"status":"accepted"}"#);
        if i % 2 == 0 {
            known.push(ms)
        } else {
            unknown.push(ms)
        }
    }
    let (k, u) = (distribution(&mut known), distribution(&mut unknown));
    println!("recover response ms, existing: {k}");
    println!("recover response ms, unknown:  {u}");
    let gap = (median(&known) - median(&unknown)).abs();
    assert!(gap < 5.0, "medians {:.2} ms apart", gap);
}

fn median(sorted: &[f64]) -> f64 {
    sorted[sorted.len() / 2]
}

/// Sorts `v` and describes it: min, p25, median, p75, p90, p99, max.
fn distribution(v: &mut [f64]) -> String {
    v.sort_by(f64::total_cmp);
    let at = |q: f64| v[((v.len() - 1) as f64 * q).round() as usize];
    format!(
        "min {:.2} p25 {:.2} median {:.2} p75 {:.2} p90 {:.2} p99 {:.2} max {:.2} (n={})",
        at(0.0),
        at(0.25),
        at(0.5),
        at(0.75),
        at(0.9),
        at(0.99),
        at(1.0),
        v.len()
    )
}

async fn login_waits_for_the_verification_link_when_required(db: TestDb) {
    let (s, sink) = start(db, &[("AUTH_REQUIRE_VERIFIED_EMAIL", "true")]).await;
    create_user(&s, "di@example.com").await;
    // Sign-up sends the verification mail by itself.
    let mail = nth_mail(&sink, 1).await;
    assert!(mail
        .text_part()
        .contains("https://app.example/verify?from=mail&token="));
    let token = link_token(&mail);
    login(&s, "di@example.com", PASSWORD)
        .await
        .assert_problem(StatusCode::FORBIDDEN, "email_unverified");
    let r = post(&s, "/verify-email/confirm", json!({"token": token})).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    post(&s, "/verify-email/confirm", json!({"token": token}))
        .await
        .assert_problem(StatusCode::BAD_REQUEST, "invalid_token");
    assert_eq!(
        login(&s, "di@example.com", PASSWORD).await.status,
        StatusCode::OK
    );
    // A verified address gets no more links; nor does an unknown one.
    for email in ["di@example.com", "nobody@example.com"] {
        let r = post(&s, "/verify-email", json!({"email": email})).await;
        assert_eq!(r.status, StatusCode::ACCEPTED);
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(sink.messages().len(), 1);
    let m = metrics(&s).await;
    let series = r#"tokens_email_verifications_total{outcome="unknown_address"}"#;
    assert_eq!(metric(&m, series), 2.0);
}

async fn request_limits_answer_429_per_ip_and_skip_mail_per_address(db: TestDb) {
    let (s, sink) = start(db, &[("TESSERA_LINK_REQUESTS_PER_IP", "5")]).await;
    create_user(&s, "ed@example.com").await;
    for _ in 0..5 {
        let r = post(&s, "/recover", json!({"email": "ed@example.com"})).await;
        assert_eq!(r.status, StatusCode::ACCEPTED);
    }
    let r = post(&s, "/recover", json!({"email": "ed@example.com"})).await;
    r.assert_problem(StatusCode::TOO_MANY_REQUESTS, "rate_limited");
    assert!(r.headers.get("retry-after").is_some());
    // Three mails an hour per address; the other two requests were skipped.
    sink.wait_for(3, WAIT).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(sink.messages().len(), 3);
    let m = metrics(&s).await;
    assert_eq!(
        metric(&m, r#"tokens_recovery_requests_total{outcome="throttled"}"#),
        2.0
    );
    // Verification requests count apart; a malformed address is a 422.
    let r = post(&s, "/verify-email", json!({"email": "not an address"})).await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", r.text);
}

/// A plain HTML form works, and a reset keeps the second factor: the next
/// login still asks for it.
async fn a_reset_by_form_keeps_the_second_factor(db: TestDb) {
    let (s, sink) = start(db, &[("TOTP_ENC_KEY", TOTP_KEY)]).await;
    let user = create_user(&s, "fa@example.com").await;
    let uid = user["id"].as_str().unwrap();
    let token = mfa_token(&s).await;
    let e = enroll(&s, &token, uid, json!({})).await;
    let confirm = format!(
        "/v1/subjects/{uid}/totp/{}/confirm",
        e["device_id"].as_str().unwrap()
    );
    let c = s
        .with_token(&token)
        .post_json(&confirm, json!({"code": code_at(&e, now())}))
        .await;
    assert_eq!(c.body["valid"], true, "{}", c.text);

    let form = |body: &str| {
        s.http
            .post(format!("{}/recover", s.base))
            .header("content-type", "application/x-www-form-urlencoded")
            .header("accept-language", "pt-BR,pt;q=0.9,en;q=0.5")
            .body(body.to_string())
    };
    // A named submit button's field is dropped, as browsers send it.
    let r = form("email=fa%40example.com&submit=Send")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::ACCEPTED);
    let link = link_token(&nth_mail(&sink, 1).await);
    let r = s
        .http
        .post(format!("{}/recover/confirm", s.base))
        .form(&[("token", link.as_str()), ("password", NEW_PASSWORD)])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let l = login(&s, "fa@example.com", NEW_PASSWORD).await;
    assert_eq!(l.body["mfa_required"], true, "{}", l.text);
}

backend_tests!(
    a_reset_link_works_once_and_ends_every_session,
    superseded_and_expired_links_fail_with_their_codes,
    fifty_concurrent_confirms_change_the_password_once,
    request_answers_do_not_tell_accounts_apart,
    login_waits_for_the_verification_link_when_required,
    request_limits_answer_429_per_ip_and_skip_mail_per_address,
    a_reset_by_form_keeps_the_second_factor,
);
