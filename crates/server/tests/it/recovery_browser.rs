//! The path real front ends take: a page on another site (`localhost`)
//! fetches a CSRF token from Tessera (`127.0.0.1`) through CORS in headless
//! Chromium, posts `/recover` with it, and the mail arrives over SMTP with a
//! link that works. The same post without the token is refused.

use std::time::Duration;

use reqwest::StatusCode;
use serde_json::json;
use tessera_test_support::{backend_tests, TestDb};

use crate::{
    common::{browser::Page, people::create_user, smtp_sink::SmtpSink, TestServer},
    recovery::link_token,
};

async fn a_browser_page_on_another_site_asks_for_a_reset_link(db: TestDb) {
    let page = Page::bind().await;
    let sink = SmtpSink::start().await;
    let url = sink.url();
    let env = [
        ("TESSERA_ALLOWED_ORIGINS", page.origin()),
        ("SMTP_URL", url.as_str()),
        ("PASSWORD_RESET_URL", "https://app.example/reset"),
    ];
    let s = TestServer::start_with(db, &env).await;
    create_user(&s, "gil@example.com").await;
    let script = r#"
        const recover = (headers) => fetch(tessera + "/recover", {
            method: "POST",
            headers: { "Content-Type": "application/json", ...headers },
            body: JSON.stringify({ email: "gil@example.com" }),
        });
        const refused = await recover({});
        const csrf = await (await fetch(tessera + "/csrf")).json();
        const accepted = await recover({ "X-CSRF-Token": csrf.token });
        return {
            refused: [refused.status, (await refused.json()).code],
            accepted: [accepted.status, await accepted.json()],
        };
    "#;
    let out = page.run(&s.base, script).await;
    assert_eq!(
        out,
        json!({
            "refused": [403, "csrf_failed"],
            "accepted": [202, {"status": "accepted"}],
        })
    );
    let mails = sink.wait_for(1, Duration::from_secs(15)).await;
    assert_eq!(
        mails.len(),
        1,
        "only the request with the token sent a mail"
    );
    let token = link_token(&mails[0]);
    let body = json!({"token": token, "password": "copper-Meadow-quartz-2211"});
    let r = s.as_anonymous().post_json("/recover/confirm", body).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
}

backend_tests!(
    #[needs(Command("chromium"))]
    a_browser_page_on_another_site_asks_for_a_reset_link,
);
