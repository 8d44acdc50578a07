//! The mails of the link flows: the link itself (reset or verification) and
//! the notice that a password was changed, each in the person's language
//! (their `locale`, else the request's `Accept-Language`, else the default).
//! The link is rendered into the message body only; nothing here logs it.

use chrono::Duration;
use tessera_core::{
    user::{mask_user_id, User},
    user_link::{LinkKind, NewLinkToken},
};

use super::LinkService;
use crate::{
    messaging::{templates::MessageKind, Channel, OutboundMessage},
    service::ServiceError,
};

impl LinkService {
    /// Renders and sends the mail that carries `token`.
    pub(super) async fn send_link(
        &self,
        kind: LinkKind,
        user: &User,
        token: &NewLinkToken,
        ttl: Duration,
        accept_language: Option<&str>,
    ) -> Result<(), ServiceError> {
        let (message_kind, base) = match kind {
            LinkKind::PasswordReset => (MessageKind::PasswordReset, &self.settings().reset_url),
            LinkKind::EmailVerification => (
                MessageKind::EmailVerification,
                &self.settings().verification_url,
            ),
        };
        let link = tessera_core::SecretString::new(base.with_token(token.token().expose()));
        let minutes = ttl.num_minutes().max(1).to_string();
        let values = [
            ("issuer", self.0.deps.issuer.as_str()),
            ("link", link.expose()),
            ("minutes", minutes.as_str()),
        ];
        self.send(message_kind, user, accept_language, &values)
            .await
    }

    /// Tells the user their password was just changed (OWASP ASVS 6.3.7),
    /// in the background: the reset has committed, and a slow mail server
    /// must not hold its answer.
    pub(super) fn notify_password_changed(&self, user: User, accept_language: Option<String>) {
        let Ok(permit) = self.0.notices.clone().try_acquire_owned() else {
            tracing::warn!(user = %mask_user_id(&user.id), "password-changed notice dropped: too much in flight");
            return;
        };
        let this = self.clone();
        tokio::spawn(async move {
            let time = tessera_core::ids::now()
                .format("%Y-%m-%d %H:%M UTC")
                .to_string();
            let values = [
                ("issuer", this.0.deps.issuer.as_str()),
                ("time", time.as_str()),
            ];
            let sent = this
                .send(
                    MessageKind::PasswordChanged,
                    &user,
                    accept_language.as_deref(),
                    &values,
                )
                .await;
            if let Err(e) = sent {
                tracing::warn!(user = %mask_user_id(&user.id), error = %e, "password-changed notice not sent");
            }
            drop(permit);
        });
    }

    async fn send(
        &self,
        kind: MessageKind,
        user: &User,
        accept_language: Option<&str>,
        values: &[(&str, &str)],
    ) -> Result<(), ServiceError> {
        let messenger = &self.0.deps.messenger;
        let templates = messenger.templates();
        let locale = templates.negotiate(user.locale.as_deref(), accept_language);
        let rendered = templates.render(kind, &locale, values);
        let message = OutboundMessage {
            channel: Channel::Email,
            to: user.email.clone(),
            subject: rendered.subject,
            body: rendered.text,
            html: Some(rendered.html),
        };
        messenger
            .send(&message)
            .await
            .map_err(|_| ServiceError::delivery_failed(Channel::Email.as_str()))
    }
}
