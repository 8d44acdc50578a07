//! Delivery of one-time codes: one [`MessageSender`] per channel (SMTP for
//! e-mail, an HTTP webhook for SMS, a local log file in development), chosen
//! once from configuration by [`Messenger`], so the services that issue codes
//! never care how a message leaves the building.
//!
//! Subjects and bodies come from the [`templates`], loaded (and checked)
//! with the senders, so a bad template directory stops start-up.
//!
//! A message body holds a live code or link. It travels as a [`SecretString`](tessera_core::SecretString) and no
//! `Debug`, `Display` or log line in this module prints it; errors carry only
//! host names, status codes and I/O error descriptions.

mod logfile;
mod message;
mod settings;
mod sms;
mod smtp;
pub mod templates;

use std::sync::Arc;

pub use logfile::LogFileSender;
pub use message::{Channel, DeliveryError, MessageSender, OutboundMessage};
pub use settings::{DeliverySettings, DEFAULT_FROM, DEFAULT_TIMEOUT, LOG_FILE_NAME};
pub use sms::HttpSmsSender;
pub use smtp::{SmtpSender, SmtpTarget, SmtpTls};
pub use templates::{MessageKind, Rendered, TemplateError, Templates};

/// Picks a sender per channel: SMTP for e-mail when configured, the SMS webhook for SMS when configured, otherwise the log file (development default) for that channel.
#[derive(Clone)]
pub struct Messenger {
    email: Arc<dyn MessageSender>,
    sms: Arc<dyn MessageSender>,
    templates: Arc<Templates>,
}

impl Messenger {
    /// Validates the settings, loads the templates and builds the senders.
    /// Nothing connects yet: the SMTP pool opens its first connection on
    /// the first e-mail.
    pub fn new(settings: &DeliverySettings) -> Result<Self, DeliveryError> {
        let templates =
            Templates::load(settings.templates_dir.as_deref(), &settings.default_locale)?;
        tracing::info!(
            locales = ?templates.locales().collect::<Vec<_>>(),
            default_locale = templates.default_locale(),
            overrides = ?settings.templates_dir,
            "message templates"
        );
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
        let messenger = Self {
            email,
            sms,
            templates: Arc::new(templates),
        };
        for channel in [Channel::Email, Channel::Sms] {
            // The log-file sender warns on its first write instead: a
            // development set-up that never sends a code stays quiet.
            let sender = messenger.sender_kind(channel);
            tracing::info!(channel = channel.as_str(), sender, "one-time code delivery");
        }
        Ok(messenger)
    }

    /// For tests/embedding: explicit senders, the built-in templates.
    pub fn with_senders(email: Arc<dyn MessageSender>, sms: Arc<dyn MessageSender>) -> Self {
        Self {
            email,
            sms,
            templates: Arc::new(Templates::builtin()),
        }
    }

    /// For tests/embedding: these templates instead.
    pub fn with_templates(mut self, templates: Templates) -> Self {
        self.templates = Arc::new(templates);
        self
    }

    /// The templates every message is rendered from.
    pub fn templates(&self) -> &Templates {
        &self.templates
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
            .field("templates", &self.templates)
            .finish()
    }
}
