//! E-mail over SMTP with lettre: `SMTP_URL` parsing ([`SmtpTarget`]) and a
//! pooled, TLS-by-default [`SmtpSender`], sending text alone or text and HTML
//! as `multipart/alternative`.
//!
//! URL forms (user and password are percent-decoded and sent with SMTP AUTH):
//!
//! | URL                                     | transport              | default port |
//! | --------------------------------------- | ---------------------- | ------------ |
//! | `smtp://[user:pass@]host[:port]`        | STARTTLS, required     | 587          |
//! | `smtp://…?tls=required`                 | same, spelled out      | 587          |
//! | `smtp://…?tls=opportunistic`            | STARTTLS if offered    | 587          |
//! | `smtp://…?tls=none`                     | plaintext (dev sinks)  | 25           |
//! | `smtps://[user:pass@]host[:port]`       | implicit TLS           | 465          |
//!
//! Note the default differs from lettre's own `from_url`, where a bare
//! `smtp://` is plaintext: here plaintext has to be asked for.

use std::{sync::OnceLock, time::Duration};

use lettre::{
    message::{header::ContentType, Mailbox, MultiPart},
    transport::smtp::{
        authentication::Credentials,
        client::{Tls, TlsParameters},
        AsyncSmtpTransportBuilder,
    },
    AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor,
};
use tessera_core::SecretString;

use super::message::{DeliveryError, MessageSender, OutboundMessage};

/// How the SMTP connection is protected.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SmtpTls {
    /// Plain connection, upgraded with STARTTLS; fails if the server can't.
    StartTlsRequired,
    /// STARTTLS when the server offers it, plaintext otherwise.
    StartTlsOpportunistic,
    /// TLS from the first byte (`smtps://`).
    Implicit,
    /// No TLS at all: local sinks and development only.
    None,
}

/// A parsed, validated `SMTP_URL`. Its `Debug` shows the password as `[redacted]`.
#[derive(Debug, Clone)]
pub struct SmtpTarget {
    pub host: String,
    pub port: u16,
    pub tls: SmtpTls,
    /// Percent-decoded SMTP AUTH user name.
    pub username: Option<String>,
    /// Percent-decoded SMTP AUTH password; set exactly when `username` is.
    pub password: Option<SecretString>,
}

impl SmtpTarget {
    /// Parses `SMTP_URL`. The error text is shown next to the variable name
    /// and never repeats any part of the URL, so it can't echo the password.
    pub fn parse(url: &str) -> Result<SmtpTarget, String> {
        let parsed =
            reqwest::Url::parse(url.trim()).map_err(|e| format!("is not a valid URL ({e})"))?;
        let implicit = match parsed.scheme() {
            "smtp" => false,
            "smtps" => true,
            _ => return Err("must start with smtp:// or smtps://".into()),
        };
        let host = parsed
            .host_str()
            .filter(|h| !h.is_empty())
            .ok_or("has no host name")?
            // IPv6 literals come bracketed; the socket address wants them bare.
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_string();
        if !matches!(parsed.path(), "" | "/") || parsed.fragment().is_some() {
            return Err("must not have a path or a #fragment".into());
        }

        let mut tls_param = None;
        for (key, value) in parsed.query_pairs() {
            match key.as_ref() {
                "tls" if tls_param.is_none() => tls_param = Some(value.into_owned()),
                "tls" => return Err("has more than one tls= parameter".into()),
                _ => return Err("has an unknown query parameter (only tls= is supported)".into()),
            }
        }
        let tls = match (implicit, tls_param.as_deref()) {
            (true, None) => SmtpTls::Implicit,
            (true, Some(_)) => return Err("smtps:// is always TLS: drop the tls= parameter".into()),
            (false, None | Some("required")) => SmtpTls::StartTlsRequired,
            (false, Some("opportunistic")) => SmtpTls::StartTlsOpportunistic,
            (false, Some("none")) => SmtpTls::None,
            (false, Some(_)) => {
                return Err(
                    "has an unsupported tls= value (use required, opportunistic or none)".into(),
                )
            }
        };
        let port = parsed.port().unwrap_or(match tls {
            SmtpTls::Implicit => 465,
            SmtpTls::None => 25,
            SmtpTls::StartTlsRequired | SmtpTls::StartTlsOpportunistic => 587,
        });

        let username = percent_decode(parsed.username())
            .ok_or("has a user name that is not valid percent-encoded UTF-8")?;
        let password = match parsed.password() {
            Some(p) => Some(
                percent_decode(p)
                    .ok_or("has a password that is not valid percent-encoded UTF-8")?,
            ),
            None => None,
        };
        let (username, password) = match (username.is_empty(), password) {
            (true, None) => (None, None),
            (false, Some(p)) => (Some(username), Some(SecretString::new(p))),
            (true, Some(_)) => return Err("has a password but no user name".into()),
            (false, None) => return Err("has a user name but no password".into()),
        };
        Ok(SmtpTarget {
            host,
            port,
            tls,
            username,
            password,
        })
    }
}

/// Decodes `%XX` escapes (and only those: `+` stays `+` in the userinfo).
fn percent_decode(s: &str) -> Option<String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = std::str::from_utf8(bytes.get(i + 1..i + 3)?).ok()?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

/// Sends e-mail through one SMTP server, reusing pooled connections.
pub struct SmtpSender {
    /// Kept to build the transport lazily: lettre's pool spawns a Tokio task
    /// when built, and `Messenger::new` may run outside a runtime.
    builder: AsyncSmtpTransportBuilder,
    transport: OnceLock<AsyncSmtpTransport<Tokio1Executor>>,
    from: Mailbox,
    host: String,
    timeout: Duration,
}

impl SmtpSender {
    /// Validates `from` and the TLS set-up; opens no connection.
    pub fn new(target: &SmtpTarget, from: &str, timeout: Duration) -> Result<Self, DeliveryError> {
        let from: Mailbox = from
            .parse()
            .map_err(|_| DeliveryError::Config("the From address is not a valid mailbox".into()))?;
        let tls = match target.tls {
            SmtpTls::None => Tls::None,
            other => {
                let params = TlsParameters::new(target.host.clone()).map_err(|e| {
                    DeliveryError::Config(format!(
                        "SMTP TLS set-up for {} failed: {e}",
                        target.host
                    ))
                })?;
                match other {
                    SmtpTls::StartTlsOpportunistic => Tls::Opportunistic(params),
                    SmtpTls::Implicit => Tls::Wrapper(params),
                    _ => Tls::Required(params),
                }
            }
        };
        let mut builder = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(&target.host)
            .port(target.port)
            .tls(tls)
            // Per SMTP command; the whole send is bounded again in `send`.
            .timeout(Some(timeout));
        if let (Some(user), Some(pass)) = (&target.username, &target.password) {
            if target.tls == SmtpTls::None && !is_loopback(&target.host) {
                tracing::warn!(
                    host = %target.host,
                    "SMTP_URL has tls=none and credentials: the password crosses the network in clear"
                );
            }
            builder = builder.credentials(Credentials::new(user.clone(), pass.expose().to_owned()));
        }
        Ok(Self {
            builder,
            transport: OnceLock::new(),
            from,
            host: target.host.clone(),
            timeout,
        })
    }

    fn transport(&self) -> &AsyncSmtpTransport<Tokio1Executor> {
        self.transport.get_or_init(|| self.builder.clone().build())
    }
}

fn is_loopback(host: &str) -> bool {
    host == "localhost"
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

/// A safe description of a lettre error: the SMTP status code or the I/O /
/// TLS cause, never the server's reply text (which may quote what we sent).
fn describe(e: &lettre::transport::smtp::Error) -> String {
    if let Some(code) = e.status() {
        let class = if e.is_permanent() {
            "permanent"
        } else {
            "transient"
        };
        return format!("{class} error, server answered {code}");
    }
    let what = if e.is_tls() {
        "TLS error"
    } else if e.is_client() {
        "client error"
    } else if e.is_response() {
        "unexpected server response"
    } else if e.is_transport_shutdown() {
        "transport shut down"
    } else {
        "connection error"
    };
    let source = std::error::Error::source(e);
    let io = source.and_then(|s| s.downcast_ref::<std::io::Error>());
    match (io, source) {
        (Some(io), _) => format!("{what}: {io}"),
        // TLS causes come from rustls (certificate, protocol), not the peer's text.
        (None, Some(s)) if e.is_tls() => format!("{what}: {s}"),
        _ => what.to_string(),
    }
}

#[async_trait::async_trait]
impl MessageSender for SmtpSender {
    fn kind(&self) -> &'static str {
        "smtp"
    }

    async fn send(&self, msg: &OutboundMessage) -> Result<(), DeliveryError> {
        if msg.channel != super::message::Channel::Email {
            return Err(DeliveryError::NotConfigured {
                channel: msg.channel.as_str(),
            });
        }
        let to: Mailbox = msg
            .to
            .parse()
            .map_err(|_| DeliveryError::InvalidRecipient { channel: "email" })?;
        let builder = Message::builder()
            .from(self.from.clone())
            .to(to)
            .subject(msg.subject.clone());
        let text = msg.body.expose().to_owned();
        let email = match &msg.html {
            // Clients that show HTML show that part; the rest the text.
            Some(html) => builder.multipart(MultiPart::alternative_plain_html(
                text,
                html.expose().to_owned(),
            )),
            None => builder.header(ContentType::TEXT_PLAIN).body(text),
        }
        .map_err(|_| DeliveryError::Build)?;
        match tokio::time::timeout(self.timeout, self.transport().send(email)).await {
            Ok(Ok(_response)) => Ok(()),
            Ok(Err(e)) => Err(DeliveryError::Smtp {
                host: self.host.clone(),
                reason: describe(&e),
            }),
            Err(_elapsed) => Err(DeliveryError::Timeout {
                kind: "smtp",
                after: self.timeout,
            }),
        }
    }
}
