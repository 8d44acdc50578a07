//! Mail templates end to end on both backends: an auth-code e-mail through a
//! real SMTP conversation arrives as `multipart/alternative` (text and HTML),
//! in the default locale or from the operator's override directory; the
//! development log file keeps the text alone; and a bad directory is refused
//! by the messenger too, naming the setting and the file.

use std::time::Duration;

use crate::common::{mfa::mfa_token, smtp_sink::SmtpSink, TestServer};
use reqwest::StatusCode;
use serde_json::json;
use tessera_core::SecretString;
use tessera_server::messaging::{
    Channel, DeliveryError, DeliverySettings, LogFileSender, MessageSender, Messenger,
    OutboundMessage, SmtpTarget,
};
use tessera_test_support::TestDb;

const WAIT: Duration = Duration::from_secs(10);

/// Asks for a code for `destination` over `channel`; it must be sent.
async fn send_code(s: &TestServer, channel: &str, destination: &str) {
    let token = mfa_token(s).await;
    let body = json!({"subject": "u_mail", "purpose": "login", "channel": channel,
                      "destination": destination});
    let r = s.with_token(&token).post_json("/v1/auth-codes", body).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
}

/// The six-digit run in `text` right after `before`.
fn code_after(text: &str, before: &str) -> String {
    let at = text
        .find(before)
        .unwrap_or_else(|| panic!("{before:?} in {text}"))
        + before.len();
    let code: String = text[at..].chars().take(6).collect();
    assert!(code.chars().all(|c| c.is_ascii_digit()), "{text}");
    code
}

async fn auth_code_mail_has_text_and_html_alternatives(db: TestDb) {
    let sink = SmtpSink::start().await;
    let s = TestServer::start_with(db, &[("SMTP_URL", &sink.url())]).await;
    send_code(&s, "email", "alice@example.com").await;

    let mail = &sink.wait_for(1, WAIT).await[0];
    let content_type = mail.header("Content-Type").unwrap_or_default();
    assert!(
        content_type.starts_with("multipart/alternative"),
        "{content_type}"
    );
    let kinds: Vec<String> = mail.parts().into_iter().map(|p| p.content_type).collect();
    assert_eq!(kinds, ["text/plain", "text/html"]);
    assert_eq!(mail.header("Subject").as_deref(), Some("Your Tessera code"));

    // The established English wording, the same code in both parts.
    let text = mail.text_part();
    let code = code_after(&text, "Your Tessera code is ");
    assert_eq!(
        text.replace("\r\n", "\n"),
        format!(
            "Your Tessera code is {code}. It expires in 10 minutes.\n\
             If you did not ask for it, ignore this message."
        )
    );
    let html = mail.html_part();
    assert!(html.starts_with("<!DOCTYPE html>"), "{html}");
    assert!(html.contains("<html lang=\"en\">"), "{html}");
    assert!(html.contains(&format!("<strong>{code}</strong>")), "{html}");
}

async fn the_default_locale_and_overrides_choose_the_words(db: TestDb) {
    let sink = SmtpSink::start().await;
    let dir = tempfile::tempdir().unwrap();
    let pt = dir.path().join("pt-BR");
    std::fs::create_dir(&pt).unwrap();
    std::fs::write(pt.join("auth_code.subject"), "Acesso {issuer}\n").unwrap();
    let dir_path = dir.path().to_str().unwrap();
    let s = TestServer::start_with(
        db,
        &[
            ("SMTP_URL", &sink.url()),
            ("TESSERA_TEMPLATES_DIR", dir_path),
            ("TESSERA_DEFAULT_LOCALE", "pt-BR"),
        ],
    )
    .await;
    send_code(&s, "email", "bia@example.com.br").await;
    let mail = &sink.wait_for(1, WAIT).await[0];
    // The overridden subject; the built-in Portuguese bodies.
    assert_eq!(mail.header("Subject").as_deref(), Some("Acesso Tessera"));
    let text = mail.text_part();
    let code = code_after(&text, "Seu código de acesso Tessera é ");
    assert!(text.contains("Se você não pediu este código"), "{text}");
    let html = mail.html_part();
    assert!(html.contains("<html lang=\"pt-BR\">"), "{html}");
    assert!(html.contains(&format!("<strong>{code}</strong>")), "{html}");

    // No SMS provider: the development log file has the text, never HTML.
    send_code(&s, "sms", "+5511912345678").await;
    let log = s.message_log();
    assert!(log.contains("Seu código de acesso Tessera é "), "{log}");
    assert!(!log.contains("<html") && !log.contains("<strong>"), "{log}");
}

/// An e-mail with an HTML part: SMTP sends both (non-ASCII intact), the
/// log file the text alone.
async fn smtp_sends_html_as_an_alternative_and_the_log_file_ignores_it() {
    let sink = SmtpSink::start().await;
    let dir = tempfile::tempdir().unwrap();
    let settings = DeliverySettings {
        smtp: Some(SmtpTarget::parse(&sink.url()).unwrap()),
        ..DeliverySettings::development(dir.path())
    };
    let msg = OutboundMessage {
        channel: Channel::Email,
        to: "ana@example.com.br".into(),
        subject: "Redefinição".into(),
        body: SecretString::new("Abra https://x.test/r#t=abc&d=1 — já".into()),
        html: Some(SecretString::new(
            "<p><a href=\"https://x.test/r#t=abc&amp;d=1\">Redefinir</a> já</p>".into(),
        )),
    };
    Messenger::new(&settings).unwrap().send(&msg).await.unwrap();
    let mail = &sink.wait_for(1, WAIT).await[0];
    assert_eq!(mail.text_part(), "Abra https://x.test/r#t=abc&d=1 — já");
    assert_eq!(
        mail.html_part(),
        "<p><a href=\"https://x.test/r#t=abc&amp;d=1\">Redefinir</a> já</p>"
    );

    let log_file = dir.path().join("messages.log");
    let sender = LogFileSender::new(log_file.clone());
    sender.send(&msg).await.unwrap();
    let log = std::fs::read_to_string(log_file).unwrap();
    assert!(
        log.contains("\nAbra https://x.test/r#t=abc&d=1 — já\n"),
        "{log}"
    );
    assert!(!log.contains("<a href"), "{log}");
}

fn a_bad_directory_is_refused_by_the_messenger_too() {
    let dir = tempfile::tempdir().unwrap();
    let en = dir.path().join("en");
    std::fs::create_dir(&en).unwrap();
    std::fs::write(en.join("password_reset.txt"), "Open {link} before {expiry}").unwrap();
    let settings = DeliverySettings {
        templates_dir: Some(dir.path().to_path_buf()),
        ..DeliverySettings::development(dir.path())
    };
    let err = Messenger::new(&settings).unwrap_err();
    assert!(matches!(err, DeliveryError::Templates(_)), "{err:?}");
    let shown = err.to_string();
    let file = en.join("password_reset.txt");
    assert!(
        shown.starts_with("TESSERA_TEMPLATES_DIR: ")
            && shown.contains(&*file.to_string_lossy())
            && shown.contains("{expiry}"),
        "{shown}"
    );

    let settings = DeliverySettings {
        default_locale: "fr".into(),
        ..DeliverySettings::development(dir.path())
    };
    let err = Messenger::new(&settings).unwrap_err().to_string();
    assert!(err.starts_with("TESSERA_DEFAULT_LOCALE: "), "{err}");

    // Good settings: the messenger has the set, the built-in one by default.
    let messenger = Messenger::new(&DeliverySettings::development(dir.path())).unwrap();
    let locales: Vec<&str> = messenger.templates().locales().collect();
    assert_eq!(locales, ["en", "pt-BR"]);
    assert_eq!(messenger.templates().default_locale(), "en");
}

tessera_test_support::tests! {
    backends:
        auth_code_mail_has_text_and_html_alternatives,
        the_default_locale_and_overrides_choose_the_words;
    current_thread:
        smtp_sends_html_as_an_alternative_and_the_log_file_ignores_it;
    sync:
        a_bad_directory_is_refused_by_the_messenger_too;
}
