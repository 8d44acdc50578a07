//! One-time-code delivery: SMTP through a local sink, `SMTP_URL` parsing, the
//! SMS webhook, the development log file, and the per-channel choice made by
//! `Messenger` — with the code and credentials kept out of every error.

use std::{
    sync::{Arc, Mutex},
    time::Duration,
};

use crate::common::{serve, smtp_sink::SmtpSink};
use axum::{extract::State, http::HeaderMap, http::StatusCode, routing::post, Json, Router};
use serde_json::Value;
use tessera_core::SecretString;
use tessera_server::messaging::{
    Channel, DeliveryError, DeliverySettings, HttpSmsSender, LogFileSender, MessageSender,
    Messenger, OutboundMessage, SmtpSender, SmtpTarget, SmtpTls, DEFAULT_FROM,
};

const WAIT: Duration = Duration::from_secs(10);

fn email(to: &str, code: &str) -> OutboundMessage {
    OutboundMessage {
        channel: Channel::Email,
        to: to.into(),
        subject: "Your Tessera sign-in code".into(),
        body: SecretString::new(format!(
            "Votre code : {code} — valable 10 minutes. Ne le partagez avec personne.\n"
        )),
        html: None,
    }
}

fn sms(to: &str, code: &str) -> OutboundMessage {
    OutboundMessage {
        channel: Channel::Sms,
        to: to.into(),
        subject: String::new(),
        body: SecretString::new(format!("Tessera code: {code}")),
        html: None,
    }
}

/// Sends an e-mail to alice@example.com and an SMS to +15551234567 with
/// these codes through `messenger`; both must go out.
async fn send_both(messenger: &Messenger, email_code: &str, sms_code: &str) {
    let mail = email("alice@example.com", email_code);
    messenger.send(&mail).await.unwrap();
    let text = sms("+15551234567", sms_code);
    messenger.send(&text).await.unwrap();
}

/// The error `sender` fails `msg` with (it must fail).
async fn refused(sender: &impl MessageSender, msg: OutboundMessage) -> DeliveryError {
    sender.send(&msg).await.unwrap_err()
}

/// A sender for one channel refuses a malformed recipient of its own
/// channel (`InvalidRecipient`) and any message for the other channel
/// (`NotConfigured`), naming the channel each time.
async fn assert_refuses(
    sender: &impl MessageSender,
    bad_recipient: OutboundMessage,
    other_channel: OutboundMessage,
) {
    let (own, other) = (
        bad_recipient.channel.as_str(),
        other_channel.channel.as_str(),
    );
    let err = refused(sender, bad_recipient).await;
    assert!(
        matches!(err, DeliveryError::InvalidRecipient { channel } if channel == own),
        "{err:?}"
    );
    let err = refused(sender, other_channel).await;
    assert!(
        matches!(err, DeliveryError::NotConfigured { channel } if channel == other),
        "{err:?}"
    );
}

fn smtp_sender(url: &str) -> SmtpSender {
    let target = SmtpTarget::parse(url).expect("valid SMTP_URL");
    SmtpSender::new(&target, DEFAULT_FROM, WAIT).expect("sender")
}

async fn smtp_plaintext_delivers_through_one_pooled_sender() {
    let sink = SmtpSink::start().await;
    let sender = smtp_sender(&sink.url());
    assert_eq!(sender.kind(), "smtp");

    sender
        .send(&email("alice@example.com", "123456"))
        .await
        .unwrap();
    // lettre parks a used connection from a spawned task; let it run.
    tokio::time::sleep(Duration::from_millis(200)).await;
    sender
        .send(&email("Bob <bob@example.com>", "654321"))
        .await
        .unwrap();

    let mails = sink.wait_for(2, WAIT).await;
    assert_eq!(mails[0].from, "no-reply@localhost");
    assert_eq!(mails[0].to, vec!["alice@example.com".to_string()]);
    assert_eq!(mails[0].auth_user, None);
    assert_eq!(
        mails[0].header("Subject").as_deref(),
        Some("Your Tessera sign-in code")
    );
    assert!(
        mails[0].text().contains("Votre code : 123456 — valable"),
        "{}",
        mails[0].text()
    );
    assert_eq!(mails[1].to, vec!["bob@example.com".to_string()]);
    assert!(mails[1].text().contains("654321"));
    // The non-ASCII body went out encoded, and text() undid it.
    let cte = mails[0]
        .header("Content-Transfer-Encoding")
        .unwrap_or_default();
    assert!(cte == "quoted-printable" || cte == "base64", "{cte}");
    // Both messages travelled over one pooled connection.
    assert_eq!(sink.connections(), 1);
}

async fn smtp_concurrent_sends_all_arrive() {
    let sink = SmtpSink::start().await;
    let sender = Arc::new(smtp_sender(&sink.url()));
    let tasks: Vec<_> = (0..5)
        .map(|i| {
            let sender = sender.clone();
            tokio::spawn(async move {
                let msg = email(&format!("user{i}@example.com"), &format!("10000{i}"));
                sender.send(&msg).await
            })
        })
        .collect();
    for task in tasks {
        task.await.unwrap().unwrap();
    }
    let mails = sink.wait_for(5, WAIT).await;
    for i in 0..5 {
        let code = format!("10000{i}");
        assert!(
            mails.iter().any(|m| m.text().contains(&code)),
            "missing {code}"
        );
    }
}

async fn smtp_authenticates_with_percent_decoded_credentials() {
    let sink = SmtpSink::start().await;
    let url = format!(
        "smtp://alice%40example.com:p%40ss%3Aw0rd@127.0.0.1:{}?tls=none",
        sink.port()
    );
    let target = SmtpTarget::parse(&url).unwrap();
    assert_eq!(target.username.as_deref(), Some("alice@example.com"));
    assert_eq!(
        target.password.as_ref().map(|p| p.expose()),
        Some("p@ss:w0rd")
    );

    let sender = SmtpSender::new(&target, "Codes <codes@example.org>", WAIT).unwrap();
    sender
        .send(&email("carol@example.com", "777888"))
        .await
        .unwrap();

    let mails = sink.wait_for(1, WAIT).await;
    assert_eq!(mails[0].auth_user.as_deref(), Some("alice@example.com"));
    assert_eq!(mails[0].from, "codes@example.org");
    assert!(mails[0].text().contains("777888"));
}

async fn smtp_errors_are_typed_and_never_hold_the_code() {
    let sink = SmtpSink::start().await;
    let sender = smtp_sender(&sink.url());

    let (bad_recipient, other_channel) = (
        email("not an address", "246810"),
        sms("+15551234567", "246810"),
    );
    assert_refuses(&sender, bad_recipient, other_channel).await;

    // A server that accepts the connection and never greets: the timeout wins.
    let silent = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = silent.local_addr().unwrap().port();
    let held = tokio::spawn(async move {
        let (_conn, _) = silent.accept().await.unwrap();
        tokio::time::sleep(Duration::from_secs(30)).await;
    });
    let target = SmtpTarget::parse(&format!("smtp://127.0.0.1:{port}?tls=none")).unwrap();
    let slow = SmtpSender::new(&target, DEFAULT_FROM, Duration::from_millis(300)).unwrap();
    let err = refused(&slow, email("dave@example.com", "135791")).await;
    assert!(
        matches!(err, DeliveryError::Timeout { .. }) || matches!(err, DeliveryError::Smtp { .. }),
        "{err:?}"
    );
    assert!(!err.to_string().contains("135791"));
    held.abort();

    // Nothing listens: a connection error naming the host, not the code.
    drop(sink);
    let closed = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = closed.local_addr().unwrap().port();
    drop(closed);
    let target =
        SmtpTarget::parse(&format!("smtp://u:pw-secret@127.0.0.1:{port}?tls=none")).unwrap();
    let dead = SmtpSender::new(&target, DEFAULT_FROM, WAIT).unwrap();
    let err = refused(&dead, email("erin@example.com", "975311")).await;
    let shown = format!("{err} {err:?}");
    assert!(shown.contains("127.0.0.1"), "{shown}");
    assert!(
        !shown.contains("975311") && !shown.contains("pw-secret"),
        "{shown}"
    );
}

fn smtp_url_forms_parse_to_the_documented_defaults() {
    let cases = [
        (
            "smtp://mail.example.com",
            "mail.example.com",
            587,
            SmtpTls::StartTlsRequired,
            None,
        ),
        (
            "smtp://u:p@mail.example.com:2525",
            "mail.example.com",
            2525,
            SmtpTls::StartTlsRequired,
            Some("u"),
        ),
        (
            "smtp://mail.example.com?tls=required",
            "mail.example.com",
            587,
            SmtpTls::StartTlsRequired,
            None,
        ),
        (
            "smtp://mail.example.com?tls=opportunistic",
            "mail.example.com",
            587,
            SmtpTls::StartTlsOpportunistic,
            None,
        ),
        (
            "smtp://localhost?tls=none",
            "localhost",
            25,
            SmtpTls::None,
            None,
        ),
        (
            "smtp://[::1]:1025/?tls=none",
            "::1",
            1025,
            SmtpTls::None,
            None,
        ),
        (
            "smtps://u:p@mail.example.com",
            "mail.example.com",
            465,
            SmtpTls::Implicit,
            Some("u"),
        ),
        (
            "smtps://mail.example.com:2465",
            "mail.example.com",
            2465,
            SmtpTls::Implicit,
            None,
        ),
    ];
    for (url, host, port, tls, user) in cases {
        let t = SmtpTarget::parse(url).unwrap_or_else(|e| panic!("{url}: {e}"));
        assert_eq!(
            (t.host.as_str(), t.port, t.tls, t.username.as_deref()),
            (host, port, tls, user),
            "{url}"
        );
        assert_eq!(t.password.is_some(), user.is_some(), "{url}");
    }
}

fn smtp_url_errors_and_debug_never_show_the_password() {
    let secret = "hunter2-secret";
    let rejected = [
        format!("http://u:{secret}@mail.example.com"),
        format!("smtp://u:{secret}@mail.example.com?tls=bogus"),
        format!("smtp://u:{secret}@mail.example.com?tls={secret}"),
        format!("smtps://u:{secret}@mail.example.com?tls=none"),
        format!("smtp://u:{secret}@mail.example.com:notaport"),
        format!("smtp://u:{secret}@mail.example.com/ehlo-name"),
        format!("smtp://u:{secret}@mail.example.com?{secret}=1"),
        format!("smtp://:{secret}@mail.example.com"),
        format!("smtp://u:{secret}%ZZ@mail.example.com"),
        format!("smtp://u:{secret}@"),
        "smtp://u@mail.example.com".to_string(),
        format!("{secret} is not a URL"),
    ];
    for url in &rejected {
        let err = SmtpTarget::parse(url).expect_err(url);
        assert!(!err.is_empty() && !err.contains(secret), "{url} → {err}");
    }

    let target = SmtpTarget::parse(&format!("smtps://user:{secret}@mail.example.com")).unwrap();
    let debug = format!("{target:?}");
    assert!(
        !debug.contains(secret) && debug.contains("[redacted]"),
        "{debug}"
    );
    let settings = DeliverySettings {
        smtp: Some(target),
        ..DeliverySettings::development(std::path::Path::new("/tmp"))
    };
    let settings = DeliverySettings {
        sms_webhook_url: Some(format!(
            "https://acct:{secret}@sms.example.com/send?key={secret}"
        )),
        sms_webhook_token: Some(SecretString::new(secret.into())),
        ..settings
    };
    let debug = format!("{settings:?}");
    assert!(
        !debug.contains(secret) && debug.contains("sms.example.com"),
        "{debug}"
    );
}

/// What the webhook received: (Authorization header, JSON body).
type HookCall = (Option<String>, Value);

#[derive(Clone, Default)]
struct Hook {
    got: Arc<Mutex<Vec<HookCall>>>,
    status: Arc<Mutex<u16>>,
}

async fn hook(State(h): State<Hook>, headers: HeaderMap, Json(body): Json<Value>) -> StatusCode {
    let auth = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    h.got.lock().unwrap().push((auth, body));
    StatusCode::from_u16(*h.status.lock().unwrap()).unwrap()
}

async fn start_hook(status: u16) -> (String, Hook) {
    let state = Hook::default();
    *state.status.lock().unwrap() = status;
    let app = Router::new()
        .route("/sms", post(hook))
        .with_state(state.clone());
    let addr = serve(app).await;
    (format!("http://{addr}/sms"), state)
}

async fn sms_webhook_gets_json_and_bearer_token() {
    let (url, hook) = start_hook(202).await;
    let sender = HttpSmsSender::new(&url, Some(SecretString::new("tok-xyz".into())), WAIT).unwrap();
    assert_eq!(sender.kind(), "sms-webhook");
    assert!(!format!("{sender:?}").contains("tok-xyz"));

    sender.send(&sms("+15551234567", "424242")).await.unwrap();
    let got = hook.got.lock().unwrap().clone();
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].0.as_deref(), Some("Bearer tok-xyz"));
    assert_eq!(
        got[0].1,
        serde_json::json!({"to": "+15551234567", "body": "Tessera code: 424242"})
    );

    // Without a token: no Authorization header at all.
    let anonymous = HttpSmsSender::new(&url, None, WAIT).unwrap();
    anonymous
        .send(&sms("+447700900123", "111222"))
        .await
        .unwrap();
    assert_eq!(hook.got.lock().unwrap()[1].0, None);
}

async fn sms_webhook_failures_report_status_only() {
    let (url, hook) = start_hook(500).await;
    let sender = HttpSmsSender::new(&url, Some(SecretString::new("tok-xyz".into())), WAIT).unwrap();
    let err = refused(&sender, sms("+15551234567", "909090")).await;
    assert!(
        matches!(err, DeliveryError::WebhookStatus { status: 500, .. }),
        "{err:?}"
    );
    let shown = format!("{err} {err:?}");
    assert!(
        shown.contains("500") && !shown.contains("909090") && !shown.contains("tok-xyz"),
        "{shown}"
    );
    assert_eq!(hook.got.lock().unwrap().len(), 1);

    let (bad_recipient, other_channel) = (
        sms("5551234567", "909090"),
        email("a@example.com", "909090"),
    );
    assert_refuses(&sender, bad_recipient, other_channel).await;

    assert!(matches!(
        HttpSmsSender::new("ftp://x", None, WAIT),
        Err(DeliveryError::Config(_))
    ));
}

async fn log_file_is_the_default_for_both_channels() {
    let dir = tempfile::tempdir().unwrap();
    let settings = DeliverySettings::development(dir.path());
    assert_eq!(settings.log_file, dir.path().join("messages.log"));
    let messenger = Messenger::new(&settings).unwrap();
    assert_eq!(messenger.sender_kind(Channel::Email), "log-file");
    assert_eq!(messenger.sender_kind(Channel::Sms), "log-file");

    send_both(&messenger, "314159", "271828").await;
    let mut forged = sms("+15550000000\n----- forged", "161803");
    forged.subject = "ignored".into();
    messenger.send(&forged).await.unwrap();

    let log = std::fs::read_to_string(&settings.log_file).unwrap();
    assert!(
        log.contains("email\nTo: alice@example.com\nSubject: Your Tessera sign-in code\n"),
        "{log}"
    );
    assert!(log.contains("Votre code : 314159"), "{log}");
    assert!(
        log.contains("sms\nTo: +15551234567\n\nTessera code: 271828\n"),
        "{log}"
    );
    assert!(
        log.contains("To: +15550000000 ----- forged\n") && !log.contains("ignored"),
        "{log}"
    );
    assert_eq!(log.matches("\n----- ").count() + 1, 3, "{log}");

    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&settings.log_file)
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
    }
}

async fn log_file_write_failure_is_an_io_kind() {
    let dir = tempfile::tempdir().unwrap();
    // A directory where the file should be: opening it for append fails.
    let sender = LogFileSender::new(dir.path().to_path_buf());
    let err = refused(&sender, email("a@example.com", "565656")).await;
    assert!(matches!(err, DeliveryError::LogFile { .. }), "{err:?}");
    assert!(!err.to_string().contains("565656"));
}

async fn messenger_routes_each_channel_to_its_configured_sender() {
    let sink = SmtpSink::start().await;
    let (hook_url, hook) = start_hook(200).await;
    let dir = tempfile::tempdir().unwrap();
    let settings = DeliverySettings {
        smtp: Some(SmtpTarget::parse(&sink.url()).unwrap()),
        sms_webhook_url: Some(hook_url),
        ..DeliverySettings::development(dir.path())
    };
    let messenger = Messenger::new(&settings).unwrap();
    assert_eq!(messenger.sender_kind(Channel::Email), "smtp");
    assert_eq!(messenger.sender_kind(Channel::Sms), "sms-webhook");

    send_both(&messenger, "828282", "737373").await;
    assert!(sink.wait_for(1, WAIT).await[0].text().contains("828282"));
    assert_eq!(
        hook.got.lock().unwrap()[0].1["body"],
        "Tessera code: 737373"
    );
    assert!(
        !settings.log_file.exists(),
        "nothing goes to the log file when both are configured"
    );

    // SMTP only: SMS falls back to the log file; explicit senders are honoured.
    let mixed = Messenger::new(&DeliverySettings {
        sms_webhook_url: None,
        ..settings.clone()
    })
    .unwrap();
    assert_eq!(mixed.sender_kind(Channel::Sms), "log-file");
    let log: Arc<dyn MessageSender> = Arc::new(LogFileSender::new(dir.path().join("x.log")));
    let explicit = Messenger::with_senders(log.clone(), log);
    assert_eq!(explicit.sender_kind(Channel::Email), "log-file");

    // A From address lettre can't parse is a configuration error at start-up.
    let bad_from = DeliverySettings {
        from: "not a mailbox".into(),
        ..settings
    };
    assert!(matches!(
        Messenger::new(&bad_from),
        Err(DeliveryError::Config(_))
    ));
}

fn outbound_message_debug_redacts_the_body() {
    let msg = email("alice@example.com", "999000");
    let debug = format!("{msg:?}");
    assert!(
        !debug.contains("999000") && debug.contains("[redacted]"),
        "{debug}"
    );
    assert_eq!(Channel::Email.as_str(), "email");
    assert_eq!(Channel::Sms.as_str(), "sms");
}

tessera_test_support::tests! {
    current_thread:
        smtp_plaintext_delivers_through_one_pooled_sender,
        smtp_concurrent_sends_all_arrive,
        smtp_authenticates_with_percent_decoded_credentials,
        smtp_errors_are_typed_and_never_hold_the_code,
        sms_webhook_gets_json_and_bearer_token,
        sms_webhook_failures_report_status_only,
        log_file_is_the_default_for_both_channels,
        log_file_write_failure_is_an_io_kind,
        messenger_routes_each_channel_to_its_configured_sender;
    sync:
        smtp_url_forms_parse_to_the_documented_defaults,
        smtp_url_errors_and_debug_never_show_the_password,
        outbound_message_debug_redacts_the_body;
}
