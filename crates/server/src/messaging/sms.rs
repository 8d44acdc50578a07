//! SMS through the operator's provider, reached as an HTTP webhook: one JSON
//! POST `{"to": "+15551234567", "body": "…"}` per message, with an optional
//! bearer token. Any non-2xx answer is a failure reported by status code only.

use std::time::Duration;

use serde_json::json;
use tessera_core::SecretString;

use super::message::{Channel, DeliveryError, MessageSender, OutboundMessage};

/// Posts each SMS to a webhook URL.
pub struct HttpSmsSender {
    http: reqwest::Client,
    url: reqwest::Url,
    /// The URL's host, for errors: the full URL may carry credentials.
    host: String,
    token: Option<SecretString>,
    timeout: Duration,
}

impl HttpSmsSender {
    /// Validates the URL (http or https) and builds a client whose every
    /// request, connection included, is bounded by `timeout`.
    pub fn new(
        url: &str,
        token: Option<SecretString>,
        timeout: Duration,
    ) -> Result<Self, DeliveryError> {
        let bad = |what: &str| DeliveryError::Config(format!("the SMS webhook URL {what}"));
        let url = reqwest::Url::parse(url.trim()).map_err(|_| bad("is not a valid URL"))?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err(bad("must start with http:// or https://"));
        }
        let host = url
            .host_str()
            .ok_or_else(|| bad("has no host"))?
            .to_string();
        let http = reqwest::Client::builder()
            .timeout(timeout)
            // A redirect would re-send the code (and maybe the token) elsewhere.
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|_| bad("needs an HTTP client that could not be built"))?;
        Ok(Self {
            http,
            url,
            host,
            token,
            timeout,
        })
    }
}

impl std::fmt::Debug for HttpSmsSender {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HttpSmsSender")
            .field("host", &self.host)
            .field("token", &self.token)
            .finish_non_exhaustive()
    }
}

/// E.164: `+`, then 7 to 15 digits, the first not 0.
fn is_e164(to: &str) -> bool {
    to.strip_prefix('+').is_some_and(|digits| {
        (7..=15).contains(&digits.len())
            && digits.bytes().all(|b| b.is_ascii_digit())
            && !digits.starts_with('0')
    })
}

#[async_trait::async_trait]
impl MessageSender for HttpSmsSender {
    fn kind(&self) -> &'static str {
        "sms-webhook"
    }

    async fn send(&self, msg: &OutboundMessage) -> Result<(), DeliveryError> {
        if msg.channel != Channel::Sms {
            return Err(DeliveryError::NotConfigured {
                channel: msg.channel.as_str(),
            });
        }
        if !is_e164(&msg.to) {
            return Err(DeliveryError::InvalidRecipient { channel: "sms" });
        }
        let mut request = self
            .http
            .post(self.url.clone())
            .json(&json!({ "to": msg.to, "body": msg.body.expose() }));
        if let Some(token) = &self.token {
            request = request.bearer_auth(token.expose());
        }
        // reqwest's own errors name the full URL, so keep only their class.
        let response = request.send().await.map_err(|e| {
            if e.is_timeout() {
                DeliveryError::Timeout {
                    kind: "sms-webhook",
                    after: self.timeout,
                }
            } else {
                DeliveryError::Webhook {
                    host: self.host.clone(),
                    reason: if e.is_connect() {
                        "could not connect"
                    } else {
                        "request failed"
                    },
                }
            }
        })?;
        let status = response.status();
        if status.is_success() {
            Ok(())
        } else {
            Err(DeliveryError::WebhookStatus {
                host: self.host.clone(),
                status: status.as_u16(),
            })
        }
    }
}
