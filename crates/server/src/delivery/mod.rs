//! Delivery of one-time codes: one [`MessageSender`] per channel (SMTP for
//! e-mail, an HTTP webhook for SMS, a local log file in development), chosen
//! once from configuration by [`Messenger`], so the services that issue codes
//! never care how a message leaves the building.
//!
//! A message body holds a live code. It travels as a [`SecretString`] and no
//! `Debug`, `Display` or log line in this module prints it; errors carry only
//! host names, status codes and I/O error descriptions.

mod logfile;
mod sms;
mod smtp;

use std::{path::PathBuf, sync::Arc, time::Duration};

use tessera_core::SecretString;

pub use logfile::LogFileSender;
pub use sms::HttpSmsSender;
pub use smtp::{SmtpSender, SmtpTarget, SmtpTls};

/// The From address used when none is configured.
pub const DEFAULT_FROM: &str = "Tessera <no-reply@localhost>";
/// How long one send may take, connection included, unless configured.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);
/// The development log file's name inside the data directory.
pub const LOG_FILE_NAME: &str = "messages.log";

/// How a code reaches its owner (the domain's channel: one type end to end).
pub use tessera_core::mfa::auth_code::Channel;

/// One message to send. `body` holds the one-time code: never log it, never put it in an error.
#[derive(Debug, Clone)]
pub struct OutboundMessage {
    pub channel: Channel,
    /// E-mail address or E.164 phone number (`+` and 7 to 15 digits).
    pub to: String,
    /// E-mail subject (ignored for SMS).
    pub subject: String,
    /// Plain-text body; contains the code.
    pub body: SecretString,
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

/// Where messages go; built by the configuration from the environment.
/// `Debug` shows the webhook URL's host only: the URL may embed a credential.
#[derive(Clone)]
pub struct DeliverySettings {
    /// From `SMTP_URL`; `None` sends e-mail to the log file.
    pub smtp: Option<SmtpTarget>,
    /// From address, default [`DEFAULT_FROM`].
    pub from: String,
    /// SMS provider: HTTP webhook; `None` sends SMS to the log file.
    pub sms_webhook_url: Option<String>,
    /// Sent as `Authorization: Bearer`, optional.
    pub sms_webhook_token: Option<SecretString>,
    /// Development default: `<data_dir>/messages.log`.
    pub log_file: PathBuf,
    /// Per send, default [`DEFAULT_TIMEOUT`].
    pub timeout: Duration,
}

impl std::fmt::Debug for DeliverySettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let webhook_host = self.sms_webhook_url.as_deref().map(|u| {
            reqwest::Url::parse(u)
                .ok()
                .and_then(|u| u.host_str().map(str::to_string))
                .unwrap_or_else(|| "[unparsable]".into())
        });
        f.debug_struct("DeliverySettings")
            .field("smtp", &self.smtp)
            .field("from", &self.from)
            .field("sms_webhook_host", &webhook_host)
            .field("sms_webhook_token", &self.sms_webhook_token)
            .field("log_file", &self.log_file)
            .field("timeout", &self.timeout)
            .finish()
    }
}

impl DeliverySettings {
    /// The development defaults: every channel goes to `<data_dir>/messages.log`.
    pub fn development(data_dir: &std::path::Path) -> Self {
        Self {
            smtp: None,
            from: DEFAULT_FROM.to_string(),
            sms_webhook_url: None,
            sms_webhook_token: None,
            log_file: data_dir.join(LOG_FILE_NAME),
            timeout: DEFAULT_TIMEOUT,
        }
    }
}

/// Picks a sender per channel: SMTP for e-mail when configured, the SMS webhook for SMS when configured, otherwise the log file (development default) for that channel.
#[derive(Clone)]
pub struct Messenger {
    email: Arc<dyn MessageSender>,
    sms: Arc<dyn MessageSender>,
}

impl Messenger {
    /// Validates the settings and builds the senders. Nothing connects yet:
    /// the SMTP pool opens its first connection on the first e-mail.
    pub fn new(settings: &DeliverySettings) -> Result<Self, DeliveryError> {
        // One log-file sender for both channels, so their appends serialise.
        let log: Arc<dyn MessageSender> = Arc::new(LogFileSender::new(settings.log_file.clone()));
        let email: Arc<dyn MessageSender> = match &settings.smtp {
            Some(target) => Arc::new(SmtpSender::new(target, &settings.from, settings.timeout)?),
            None => log.clone(),
        };
        let sms: Arc<dyn MessageSender> = match &settings.sms_webhook_url {
            Some(url) => Arc::new(HttpSmsSender::new(
                url,
                settings.sms_webhook_token.clone(),
                settings.timeout,
            )?),
            None => log,
        };
        let messenger = Self { email, sms };
        for channel in [Channel::Email, Channel::Sms] {
            let sender = messenger.sender_kind(channel);
            if sender == "log-file" {
                // Fine in development; in production it means codes never
                // reach users and sit in a file instead.
                tracing::warn!(
                    channel = channel.as_str(),
                    file = %settings.log_file.display(),
                    "one-time codes for this channel go to the development log file; \
                     set SMTP_URL / TESSERA_SMS_WEBHOOK_URL in production"
                );
            } else {
                tracing::info!(channel = channel.as_str(), sender, "one-time code delivery");
            }
        }
        Ok(messenger)
    }

    /// For tests/embedding: explicit senders.
    pub fn with_senders(email: Arc<dyn MessageSender>, sms: Arc<dyn MessageSender>) -> Self {
        Self { email, sms }
    }

    fn sender(&self, channel: Channel) -> &dyn MessageSender {
        match channel {
            Channel::Email => self.email.as_ref(),
            Channel::Sms => self.sms.as_ref(),
        }
    }

    pub fn sender_kind(&self, channel: Channel) -> &'static str {
        self.sender(channel).kind()
    }

    /// Sends through the channel's sender and logs the outcome (never the
    /// recipient or the body).
    pub async fn send(&self, msg: &OutboundMessage) -> Result<(), DeliveryError> {
        let sender = self.sender(msg.channel);
        let result = sender.send(msg).await;
        match &result {
            Ok(()) => tracing::debug!(
                channel = msg.channel.as_str(),
                sender = sender.kind(),
                "message delivered"
            ),
            Err(e) => tracing::warn!(
                channel = msg.channel.as_str(),
                sender = sender.kind(),
                error = %e,
                "message delivery failed"
            ),
        }
        result
    }
}

impl std::fmt::Debug for Messenger {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Messenger")
            .field("email", &self.email.kind())
            .field("sms", &self.sms.kind())
            .finish()
    }
}
