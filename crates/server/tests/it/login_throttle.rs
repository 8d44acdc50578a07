//! Login throttling and enumeration on both backends: fifty parallel wrong
//! passwords check exactly ten, the rest (and then the right password) get
//! 429 until the window lapses or an admin unlocks; an unknown e-mail and a
//! wrong password answer alike, in the same time.

use std::time::{Duration, Instant};

use crate::common::{
    people::{create_user, login, metric, metrics, PASSWORD},
    Reply, TestServer,
};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use tessera_test_support::{backend_tests, TestDb};

const WRONG: &str = "not-the-password-at-all";
/// The per-IP limit out of the way: every request comes from 127.0.0.1.
const IP_LIMIT: (&str, &str) = ("TESSERA_LOGIN_IP_MAX_FAILURES", "1000000");

const HASHES: &str = "tokens_password_hash_seconds_count";
const FAILED: &str = "tokens_logins_total{outcome=\"failed\"}";
const THROTTLED: &str = "tokens_logins_total{outcome=\"throttled\"}";

/// The Retry-After of a 429 `login_throttled`, in seconds.
#[track_caller]
fn throttled(r: &Reply) -> u64 {
    r.assert_problem(StatusCode::TOO_MANY_REQUESTS, "login_throttled");
    let v = r.headers.get("retry-after").expect("Retry-After");
    v.to_str().unwrap().parse().unwrap()
}

/// `n` logins with `password` at once.
async fn burst(s: &TestServer, email: &str, password: &str, n: usize) -> Vec<Reply> {
    let body = |_| Some(json!({"email": email, "password": password}));
    s.concurrently(n, Method::POST, "/v1/auth/login", None, body)
        .await
}

async fn fifty_wrong_passwords_check_ten_then_wait_out_the_window(db: TestDb) {
    let env = [IP_LIMIT, ("TESSERA_LOGIN_THROTTLE_WINDOW", "3s")];
    let s = TestServer::start_with(db, &env).await;
    create_user(&s, "guess@example.com").await;
    let before = metrics(&s).await;
    let replies = burst(&s, "guess@example.com", WRONG, 50).await;
    let mut refused = 0;
    for r in &replies {
        if r.status == StatusCode::UNAUTHORIZED {
            r.assert_problem(StatusCode::UNAUTHORIZED, "invalid_credentials");
            refused += 1;
        } else {
            assert!((1..=3).contains(&throttled(r)), "{:?}", r.headers);
        }
    }
    assert_eq!(refused, 10);
    let after = metrics(&s).await;
    let delta = |series: &str| metric(&after, series) - metric(&before, series);
    assert_eq!(delta(HASHES), 10.0, "exactly ten password checks");
    assert_eq!(delta(FAILED), 10.0);
    assert_eq!(delta(THROTTLED), 40.0);
    // The right password waits too, and no password is checked meanwhile.
    let wait = throttled(&login(&s, "guess@example.com", PASSWORD).await);
    assert_eq!(metric(&metrics(&s).await, HASHES), metric(&after, HASHES));
    tokio::time::sleep(Duration::from_secs(wait) + Duration::from_millis(200)).await;
    let r = login(&s, "guess@example.com", PASSWORD).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert!(r.body["access_token"].is_string(), "{}", r.text);
}

async fn an_admin_unlock_lifts_the_throttle(db: TestDb) {
    let s = TestServer::start_with(db, &[IP_LIMIT]).await; // a 15-minute window
    let user = create_user(&s, "locked@example.com").await;
    for _ in 0..10 {
        login(&s, "locked@example.com", WRONG)
            .await
            .assert_problem(StatusCode::UNAUTHORIZED, "invalid_credentials");
    }
    let wait = throttled(&login(&s, "locked@example.com", PASSWORD).await);
    assert!(wait > 800, "the window's remainder: {wait}");
    // Another account is not affected.
    create_user(&s, "other@example.com").await;
    let r = login(&s, "other@example.com", PASSWORD).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let path = format!("/v1/users/{}/unlock", user["id"].as_str().unwrap());
    let r = s.as_admin().post(&path).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let r = login(&s, "locked@example.com", PASSWORD).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
}

/// The reply with its request id removed, to compare two refusals.
fn without_request_id(r: &Reply) -> (StatusCode, Value) {
    let mut body = r.body.clone();
    body.as_object_mut().unwrap().remove("request_id");
    (r.status, body)
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

/// One timed login.
async fn timed(s: &TestServer, email: &str) -> (Reply, Duration) {
    let started = Instant::now();
    let r = login(s, email, WRONG).await;
    (r, started.elapsed())
}

async fn unknown_email_and_wrong_password_look_alike(db: TestDb) {
    let s = TestServer::start_with(db, &[IP_LIMIT]).await;
    let n = 100;
    for i in 0..n {
        create_user(&s, &format!("known{i}@example.com")).await;
    }
    // Warm up both paths (the dummy hash is computed once, on first use).
    timed(&s, "warm-unknown@example.com").await;
    create_user(&s, "warm-known@example.com").await;
    timed(&s, "warm-known@example.com").await;
    let (mut known, mut unknown) = (Vec::new(), Vec::new());
    let mut first: Option<(StatusCode, Value)> = None;
    for i in 0..n {
        // Interleaved, so drift in the machine's load hits both alike.
        let (a, ta) = timed(&s, &format!("known{i}@example.com")).await;
        let (b, tb) = timed(&s, &format!("nobody{i}@example.com")).await;
        a.assert_problem(StatusCode::UNAUTHORIZED, "invalid_credentials");
        assert_eq!(
            without_request_id(&a),
            without_request_id(&b),
            "{} {}",
            a.text,
            b.text
        );
        let shape = first.get_or_insert_with(|| without_request_id(&a));
        assert_eq!(*shape, without_request_id(&a), "every refusal is the same");
        let same_headers = |h: &str| a.headers.get(h) == b.headers.get(h);
        assert!(same_headers("content-type") && same_headers("content-length"));
        known.push(ta);
        unknown.push(tb);
    }
    let (k, u) = (median(known), median(unknown));
    let gap = k.abs_diff(u);
    assert!(
        gap <= Duration::from_millis(5),
        "median wrong password {k:?}, unknown e-mail {u:?}"
    );
}

backend_tests!(
    fifty_wrong_passwords_check_ten_then_wait_out_the_window,
    an_admin_unlock_lifts_the_throttle,
    unknown_email_and_wrong_password_look_alike,
);
