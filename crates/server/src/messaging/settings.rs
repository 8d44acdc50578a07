//! Where messages go: the delivery settings the configuration builds, with
//! the development defaults.

use std::{path::PathBuf, time::Duration};

use tessera_core::SecretString;

use super::{smtp::SmtpTarget, templates::DEFAULT_LOCALE};

/// The From address used when none is configured.
pub const DEFAULT_FROM: &str = "Tessera <no-reply@localhost>";
/// How long one send may take, connection included, unless configured.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);
/// The development log file's name inside the data directory.
pub const LOG_FILE_NAME: &str = "messages.log";

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
    /// `TESSERA_TEMPLATES_DIR`: operator overrides of the message templates;
    /// `None` uses the built-in set alone.
    pub templates_dir: Option<PathBuf>,
    /// `TESSERA_DEFAULT_LOCALE`: the language of a message when neither the
    /// user nor the request names one the templates have; default `en`.
    pub default_locale: String,
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
            .field("templates_dir", &self.templates_dir)
            .field("default_locale", &self.default_locale)
            .finish()
    }
}

impl DeliverySettings {
    /// The development defaults: every channel goes to `<data_dir>/messages.log`,
    /// with the built-in templates in English.
    pub fn development(data_dir: &std::path::Path) -> Self {
        Self {
            smtp: None,
            from: DEFAULT_FROM.to_string(),
            sms_webhook_url: None,
            sms_webhook_token: None,
            log_file: data_dir.join(LOG_FILE_NAME),
            timeout: DEFAULT_TIMEOUT,
            templates_dir: None,
            default_locale: DEFAULT_LOCALE.to_string(),
        }
    }
}
