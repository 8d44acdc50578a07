//! Reset and verification links: neither the token nor its secret is in the
//! database (a dump of every table) or in the logs captured at TRACE, after
//! a request, a confirmation, a replay and a wrong secret. Only the mail
//! holds it.

use reqwest::StatusCode;
use serde_json::json;
use tessera_test_support::{backend_tests, TestDb};

use crate::{
    common::{logs::logs, people::create_user, smtp_sink::SmtpSink, TestServer},
    recovery::link_token,
};

async fn link_secrets_never_leak(db: TestDb) {
    let logs = logs();
    let sink = SmtpSink::start().await;
    let url = sink.url();
    let env = [
        ("SMTP_URL", url.as_str()),
        ("TESSERA_SEND_VERIFICATION_ON_SIGNUP", "true"),
    ];
    let mut s = TestServer::start_with(db, &env).await;
    create_user(&s, "leak@example.com").await;
    let verification = link_token(&sink.wait_for(1, std::time::Duration::from_secs(15)).await[0]);
    let r = s
        .as_anonymous()
        .post_json("/recover", json!({"email": "leak@example.com"}))
        .await;
    assert_eq!(r.status, StatusCode::ACCEPTED);
    let reset = link_token(&sink.wait_for(2, std::time::Duration::from_secs(15)).await[1]);
    for (path, body) in [
        ("/verify-email/confirm", json!({"token": verification})),
        (
            "/recover/confirm",
            json!({"token": reset, "password": "copper-Meadow-quartz-2211"}),
        ),
    ] {
        let r = s.as_anonymous().post_json(path, body.clone()).await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.text);
        let again = s.as_anonymous().post_json(path, body).await;
        again.assert_problem(StatusCode::BAD_REQUEST, "invalid_token");
    }
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    s.stop().await;
    let db_text = s.db.all_text().await;
    assert!(
        db_text.contains("auth.recovery.completed"),
        "read the audit log"
    );
    let log_text = logs.text();
    for token in [&verification, &reset] {
        let secret = token.split_once('.').unwrap().1;
        for needle in [token.as_str(), secret] {
            assert!(!db_text.contains(needle), "{needle} found in the database");
            assert!(!log_text.contains(needle), "{needle} found in the logs");
        }
    }
}

backend_tests!(link_secrets_never_leak);
