//! The rules around the link routes, on SQLite and PostgreSQL: browser
//! requests need a CSRF token made for their allowed origin (header or form
//! field) unless a bearer token authenticates them; a change of address
//! supersedes the links sent to the old one; verification links expire and
//! are superseded like reset links; a user without a locale gets the
//! language of `Accept-Language`.

use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use tessera_test_support::{backend_tests, TestDb};

use crate::{
    common::{people::create_user, smtp_sink::SmtpSink, Reply, TestServer},
    recovery::link_token,
};

const WAIT: Duration = Duration::from_secs(15);
const FRONT: &str = "https://front.example";
const OTHER: &str = "https://other.example";

async fn start(db: TestDb, extra: &[(&str, &str)]) -> (TestServer, SmtpSink) {
    let sink = SmtpSink::start().await;
    let url = sink.url();
    let mut env = vec![("SMTP_URL", url.as_str())];
    env.extend_from_slice(extra);
    (TestServer::start_with(db, &env).await, sink)
}

/// `POST path` with `body` as a browser on `origin` would send it.
async fn from_browser(
    s: &TestServer,
    origin: &str,
    path: &str,
    body: Value,
    csrf: Option<&str>,
) -> Reply {
    let mut req = s
        .http
        .request(Method::POST, format!("{}{path}", s.base))
        .header("origin", origin)
        .json(&body);
    if let Some(token) = csrf {
        req = req.header("x-csrf-token", token);
    }
    Reply::from(req.send().await.unwrap()).await
}

async fn csrf_token(s: &TestServer, origin: &str) -> String {
    let r = s
        .http
        .get(format!("{}/csrf", s.base))
        .header("origin", origin)
        .send()
        .await
        .unwrap();
    let r = Reply::from(r).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    r.body["token"].as_str().unwrap().to_string()
}

async fn browser_requests_to_the_link_routes_need_a_csrf_token(db: TestDb) {
    let origins = format!("{FRONT},{OTHER}");
    let (s, _sink) = start(db, &[("TESSERA_ALLOWED_ORIGINS", origins.as_str())]).await;
    let good = csrf_token(&s, FRONT).await;
    let for_other = csrf_token(&s, OTHER).await;
    let email = json!({"email": "hal@example.com"});
    let confirm = json!({"token": "00000000-0000-7000-8000-000000000000.x", "password": "p"});
    for (path, body) in [
        ("/recover", &email),
        ("/verify-email", &email),
        ("/recover/confirm", &confirm),
        ("/verify-email/confirm", &json!({"token": "x"})),
    ] {
        for (origin, token) in [
            (FRONT, None),
            (FRONT, Some("1.deadbeef")),
            (FRONT, Some(for_other.as_str())),
            ("https://evil.example", Some(good.as_str())),
            ("null", Some(good.as_str())),
        ] {
            from_browser(&s, origin, path, body.clone(), token)
                .await
                .assert_problem(StatusCode::FORBIDDEN, "csrf_failed");
        }
    }
    let r = from_browser(&s, FRONT, "/recover", email.clone(), Some(&good)).await;
    assert_eq!(r.status, StatusCode::ACCEPTED, "{}", r.text);
    // A plain HTML form carries the token as a field.
    let r = s
        .http
        .post(format!("{}/verify-email", s.base))
        .header("origin", FRONT)
        .form(&[("email", "hal@example.com"), ("csrf_token", good.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::ACCEPTED);
    // A bearer token that authenticates needs no CSRF token; one that does not
    // is no excuse.
    let authed = s
        .http
        .post(format!("{}/recover", s.base))
        .header("origin", FRONT)
        .bearer_auth(&s.admin)
        .json(&email)
        .send()
        .await
        .unwrap();
    assert_eq!(authed.status(), StatusCode::ACCEPTED);
    let forged = s
        .http
        .post(format!("{}/recover", s.base))
        .header("origin", FRONT)
        .bearer_auth("tsk_not_a_real_token")
        .json(&email)
        .send()
        .await
        .unwrap();
    Reply::from(forged)
        .await
        .assert_problem(StatusCode::FORBIDDEN, "csrf_failed");
    // A same-origin page gets its token by POST (browsers send Origin then).
    let r = s
        .http
        .post(format!("{}/csrf", s.base))
        .header("origin", FRONT)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
}

async fn a_new_address_supersedes_links_sent_to_the_old_one(db: TestDb) {
    let (s, sink) = start(db, &[]).await;
    let user = create_user(&s, "ivy@example.com").await;
    let uid = user["id"].as_str().unwrap();
    for path in ["/recover", "/verify-email"] {
        let r = s
            .as_anonymous()
            .post_json(path, json!({"email": "ivy@example.com"}))
            .await;
        assert_eq!(r.status, StatusCode::ACCEPTED);
    }
    let mails = sink.wait_for(2, WAIT).await;
    let r = s
        .as_admin()
        .patch_json(
            &format!("/v1/users/{uid}"),
            json!({"email": "ivy.new@example.com"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    for mail in &mails {
        let token = link_token(mail);
        let reset = json!({"token": token, "password": "copper-Meadow-quartz-2211"});
        for (path, body) in [
            ("/recover/confirm", reset),
            ("/verify-email/confirm", json!({"token": token})),
        ] {
            s.as_anonymous()
                .post_json(path, body)
                .await
                .assert_problem(StatusCode::BAD_REQUEST, "invalid_token");
        }
    }
}

async fn verification_links_expire_and_are_superseded(db: TestDb) {
    let (s, sink) = start(db, &[("EMAIL_VERIFICATION_TOKEN_TTL", "2")]).await;
    create_user(&s, "jo@example.com").await;
    for n in 1..=2 {
        let r = s
            .as_anonymous()
            .post_json("/verify-email", json!({"email": "jo@example.com"}))
            .await;
        assert_eq!(r.status, StatusCode::ACCEPTED);
        sink.wait_for(n, WAIT).await;
    }
    let mails = sink.messages();
    let (first, second) = (link_token(&mails[0]), link_token(&mails[1]));
    let confirm = |t: &str| json!({"token": t});
    s.as_anonymous()
        .post_json("/verify-email/confirm", confirm(&first))
        .await
        .assert_problem(StatusCode::BAD_REQUEST, "invalid_token");
    tokio::time::sleep(Duration::from_millis(2100)).await;
    s.as_anonymous()
        .post_json("/verify-email/confirm", confirm(&second))
        .await
        .assert_problem(StatusCode::GONE, "token_expired");
}

async fn accept_language_picks_the_language_of_a_user_without_one(db: TestDb) {
    let (s, sink) = start(db, &[]).await;
    create_user(&s, "kai@example.com").await;
    let ask = |lang: &'static str| {
        s.http
            .post(format!("{}/recover", s.base))
            .header("accept-language", lang)
            .json(&json!({"email": "kai@example.com"}))
            .send()
    };
    assert_eq!(
        ask("pt-BR,pt;q=0.9,en;q=0.5").await.unwrap().status(),
        StatusCode::ACCEPTED
    );
    let pt = sink.wait_for(1, WAIT).await[0].text_part();
    assert!(pt.contains("redefinir a senha"), "{pt}");
    assert_eq!(
        ask("en-GB,en;q=0.8").await.unwrap().status(),
        StatusCode::ACCEPTED
    );
    let en = sink.wait_for(2, WAIT).await[1].text_part();
    assert!(en.contains("reset the password"), "{en}");
}

backend_tests!(
    browser_requests_to_the_link_routes_need_a_csrf_token,
    a_new_address_supersedes_links_sent_to_the_old_one,
    verification_links_expire_and_are_superseded,
    accept_language_picks_the_language_of_a_user_without_one,
);
