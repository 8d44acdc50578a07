//! Issue #11, item 3: the client address behind proxies. `X-Forwarded-For`
//! is read from the right and only through trusted proxies, so a forged
//! left-most entry neither escapes a per-IP limit nor lands in the audit
//! log; and an IPv6 client is limited by its /64.

use reqwest::StatusCode;
use serde_json::{json, Value};
use sqlx::Row;
use tessera_core::crypto::Keyring;
use tessera_test_support::{backend_tests, TestDb};

use crate::common::{eventually, TestServer, TEST_KEY};

/// `POST path` without credentials, with `X-Forwarded-For: xff`.
async fn post_from(s: &TestServer, path: &str, xff: &str, body: Value) -> (StatusCode, Value) {
    let r = s
        .http
        .post(format!("{}{path}", s.base))
        .header("x-forwarded-for", xff)
        .json(&body)
        .send()
        .await
        .unwrap();
    let status = r.status();
    (status, r.json().await.unwrap_or(Value::Null))
}

/// A wrong invite code, 40 times, each with its own forged left-most entry
/// in front of the same proxy-added `10.9.9.9`; the statuses in order.
async fn forty_wrong_codes(s: &TestServer) -> Vec<StatusCode> {
    let mut statuses = Vec::new();
    for i in 0..40 {
        let xff = format!("203.0.113.{i}, 10.9.9.9");
        let body = json!({"code": "AAAA-BBBB-CCCC-DDDD"});
        statuses.push(post_from(s, "/v1/invites/validate", &xff, body).await.0);
    }
    statuses
}

/// The clear client addresses of every row of `table` (sealed in `ip_enc`).
async fn logged_ips(s: &TestServer, table: &str) -> Vec<String> {
    sqlx::any::install_default_drivers();
    let pool = sqlx::AnyPool::connect(&s.db.url).await.unwrap();
    let rows = sqlx::query(&format!(
        "SELECT ip_enc FROM {table} WHERE ip_enc IS NOT NULL"
    ))
    .fetch_all(&pool)
    .await
    .unwrap();
    let ring = Keyring::new(TEST_KEY, &[], "audit").unwrap();
    rows.iter()
        .map(|r| {
            let sealed: String = r.get("ip_enc");
            String::from_utf8(ring.open(&sealed, "audit.ip").unwrap()).unwrap()
        })
        .collect()
}

/// The finding: behind one trusted proxy (the test client's 127.0.0.1), a
/// forged left-most entry changes nothing: every attempt is 10.9.9.9's,
/// the guess limit (20) holds, and the logs record 10.9.9.9.
async fn forged_left_most_entries_are_not_believed(db: TestDb) {
    let s = TestServer::start_with(db, &[("TESSERA_TRUSTED_PROXIES", "127.0.0.1/32")]).await;
    let statuses = forty_wrong_codes(&s).await;
    assert!(
        statuses[..20].iter().all(|s| *s == StatusCode::OK),
        "{statuses:?}"
    );
    assert!(
        statuses[20..]
            .iter()
            .all(|s| *s == StatusCode::TOO_MANY_REQUESTS),
        "{statuses:?}"
    );
    // A failed verification with the same header: its audit row too.
    let (status, body) = post_from(
        &s,
        "/v1/tokens/verify",
        "203.0.113.77, 10.9.9.9",
        json!({"token": "tsr_nope"}),
    )
    .await;
    assert_eq!(
        (status, &body["code"]),
        (StatusCode::OK, &json!("MALFORMED"))
    );
    let audit = eventually(
        "the verify audit row",
        50,
        ms(100),
        || logged_ips(&s, "audit_log"),
        |ips| !ips.is_empty(),
    )
    .await;
    assert_eq!(audit, ["10.9.9.9"]);
    let usage = eventually(
        "the invite usage rows",
        50,
        ms(100),
        || logged_ips(&s, "invite_usage_log"),
        |ips| ips.len() >= 20,
    )
    .await;
    assert_eq!(usage.len(), 20, "the 429s are not logged");
    assert!(usage.iter().all(|ip| ip == "10.9.9.9"), "{usage:?}");
}

/// With the proxy at 10.9.9.9 trusted too, the entry left of it is the
/// client: 40 distinct clients, none over its limit, each logged as itself.
async fn a_chain_of_trusted_proxies_reaches_the_client(db: TestDb) {
    let s = TestServer::start_with(
        db,
        &[("TESSERA_TRUSTED_PROXIES", "127.0.0.1/32, 10.0.0.0/8")],
    )
    .await;
    let statuses = forty_wrong_codes(&s).await;
    assert!(
        statuses.iter().all(|s| *s == StatusCode::OK),
        "{statuses:?}"
    );
    let mut usage = eventually(
        "the invite usage rows",
        50,
        ms(100),
        || logged_ips(&s, "invite_usage_log"),
        |ips| ips.len() >= 40,
    )
    .await;
    usage.sort_by_key(|ip| ip.parse::<std::net::IpAddr>().unwrap());
    let expected: Vec<String> = (0..40).map(|i| format!("203.0.113.{i}")).collect();
    assert_eq!(usage, expected);
}

/// Without trusted proxies (the default) the header is ignored.
async fn without_trusted_proxies_the_header_is_ignored(db: TestDb) {
    let s = TestServer::start(db).await;
    post_from(
        &s,
        "/v1/tokens/verify",
        "203.0.113.1",
        json!({"token": "x"}),
    )
    .await;
    let audit = eventually(
        "the verify audit row",
        50,
        ms(100),
        || logged_ips(&s, "audit_log"),
        |ips| !ips.is_empty(),
    )
    .await;
    assert_eq!(audit, ["127.0.0.1"]);
}

/// Two IPv6 addresses of one /64 are one client for a per-IP limit (and a
/// neighbouring /64 is another); the log keeps each full address.
async fn ipv6_clients_are_limited_per_64(db: TestDb) {
    let s = TestServer::start_with(
        db,
        &[
            ("TESSERA_TRUSTED_PROXIES", "127.0.0.1"),
            ("TESSERA_INVITE_FAILURE_LIMIT", "6"),
        ],
    )
    .await;
    let wrong = || json!({"code": "AAAA-BBBB-CCCC-DDDD"});
    for i in 0..6 {
        let xff = if i % 2 == 0 {
            "2001:db8:0:1::1"
        } else {
            "2001:db8:0:1:ffff::2"
        };
        let (status, _) = post_from(&s, "/v1/invites/validate", xff, wrong()).await;
        assert_eq!(status, StatusCode::OK, "attempt {i}");
    }
    for xff in ["2001:db8:0:1::1", "2001:db8:0:1:abcd::9"] {
        let (status, body) = post_from(&s, "/v1/invites/validate", xff, wrong()).await;
        assert_eq!(status, StatusCode::TOO_MANY_REQUESTS, "{xff}: {body}");
    }
    let (status, _) = post_from(&s, "/v1/invites/validate", "2001:db8:0:2::1", wrong()).await;
    assert_eq!(status, StatusCode::OK, "another /64 is another client");
    let usage = eventually(
        "the invite usage rows",
        50,
        ms(100),
        || logged_ips(&s, "invite_usage_log"),
        |ips| ips.len() >= 7,
    )
    .await;
    assert!(
        usage.contains(&"2001:db8:0:1:ffff::2".to_string()),
        "{usage:?}"
    );
}

fn ms(n: u64) -> std::time::Duration {
    std::time::Duration::from_millis(n)
}

backend_tests!(
    forged_left_most_entries_are_not_believed,
    a_chain_of_trusted_proxies_reaches_the_client,
    without_trusted_proxies_the_header_is_ignored,
    ipv6_clients_are_limited_per_64,
);
