//! What a sender is handed and how it may fail: the message (whose body holds
//! a live code), the error (which never does), and the sender trait.

use std::time::Duration;

use tessera_core::SecretString;

/// How a code reaches its owner (the domain's channel: one type end to end).
pub use tessera_core::mfa::auth_code::Channel;

/// One message to send. `body` and `html` hold the one-time code or link:
/// never log them, never put them in an error.
#[derive(Debug, Clone)]
pub struct OutboundMessage {
    pub channel: Channel,
    /// E-mail address or E.164 phone number (`+` and 7 to 15 digits).
    pub to: String,
    /// E-mail subject (ignored for SMS).
    pub subject: String,
    /// Plain-text body; contains the code or link.
    pub body: SecretString,
    /// HTML alternative of `body`, e-mail only: SMTP sends both parts as
    /// `multipart/alternative`; SMS and the log file use `body` alone.
    pub html: Option<SecretString>,
}

/// Why a message was not delivered. No variant holds the body, the code or a
/// credential, so the `Display` is safe to log.
#[derive(Debug, thiserror::Error)]
pub enum DeliveryError {
    /// No sender handles this channel (e.g. an SMS handed to the SMTP sender).
    #[error("no sender is configured for {channel} messages")]
    NotConfigured { channel: &'static str },
    /// The delivery settings are unusable; the text is ours and names no secret.
    #[error("invalid delivery configuration: {0}")]
    Config(String),
    /// `TESSERA_TEMPLATES_DIR` or `TESSERA_DEFAULT_LOCALE` is unusable.
    #[error(transparent)]
    Templates(#[from] super::templates::TemplateError),
    /// The `to` field is not an e-mail address / E.164 number.
    #[error("the recipient is not a valid {channel} address")]
    InvalidRecipient { channel: &'static str },
    /// lettre refused to build the message (bad From/To header).
    #[error("could not build the e-mail message")]
    Build,
    /// The SMTP server or the connection to it failed.
    #[error("SMTP delivery via {host} failed: {reason}")]
    Smtp { host: String, reason: String },
    /// The SMS webhook answered with a non-2xx status.
    #[error("SMS webhook at {host} answered HTTP {status}")]
    WebhookStatus { host: String, status: u16 },
    /// The SMS webhook could not be reached.
    #[error("SMS webhook request to {host} failed: {reason}")]
    Webhook { host: String, reason: &'static str },
    /// The whole send, connection included, took longer than the timeout.
    #[error("{kind} send timed out after {after:?}")]
    Timeout { kind: &'static str, after: Duration },
    /// The development log file could not be written.
    #[error("could not write the message log {path}: {kind}")]
    LogFile {
        path: String,
        kind: std::io::ErrorKind,
    },
}

/// Sends messages over one channel.
#[async_trait::async_trait]
pub trait MessageSender: Send + Sync {
    /// "smtp", "sms-webhook", "log-file": for metrics and logs.
    fn kind(&self) -> &'static str;
    async fn send(&self, msg: &OutboundMessage) -> Result<(), DeliveryError>;
}
