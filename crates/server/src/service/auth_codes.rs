//! One-time auth codes (e-mail or SMS second factor, passwordless steps):
//! create under rate limits, deliver, verify with a per-code attempt limit.
//! The codes sent per subject and per destination are quotas counted in the
//! database; sends and checks together also have a request rate per
//! subject (`TESSERA_RATE_LIMIT_AUTH_CODES`) on the shared engine.
//!
//! Order of a send: the code is stored first (unusable: not yet sent), then
//! handed to the provider, then marked sent together with its
//! `auth_code.sent` event. A crash between the steps leaves an unusable code
//! and no event; a delivery failure retires the code and answers 503.

use super::{error::Refusal, rate_limit::RateLimits, ServiceError};
use std::sync::Arc;

use chrono::{DateTime, Utc};
use serde_json::json;
use tessera_core::{
    audit::{Actor, AuditEntry, RequestContext},
    crypto::{constant_time_eq, CryptoError, KeyedHasher, Keyring},
    event::OutboxEvent,
    ids::{is_valid_id, new_id},
    mfa::{
        auth_code::{generate_code, validate_destination, validate_purpose, AuthCode, Channel},
        mask_subject, validate_subject, MfaFailure,
    },
    DomainError, SecretString,
};
use tessera_store::{
    mfa::{AuthCodeLimits, AuthCodeLookup, AuthCodeVerdict, NewAuthCode},
    Store, StoreError,
};

use crate::{
    config::MfaSettings,
    messaging::{MessageKind, Messenger, OutboundMessage},
    metrics::Metrics,
};

const DESTINATION_CONTEXT: &str = "auth_codes.destination";

pub struct SendCode {
    pub subject: String,
    pub purpose: String,
    pub channel: Channel,
    pub destination: String,
}

pub struct CheckCode<'a> {
    pub subject: &'a str,
    pub purpose: &'a str,
    pub id: Option<&'a str>,
    pub code: &'a str,
}

pub struct AuthCodeService {
    store: Arc<dyn Store>,
    settings: MfaSettings,
    /// Current key first: codes issued just before a key rotation still verify.
    hashers: Vec<KeyedHasher>,
    destination_hasher: KeyedHasher,
    keyring: Keyring,
    messenger: Messenger,
    metrics: Arc<Metrics>,
    rate_limits: Arc<RateLimits>,
}

/// The request rate's name (metric label, key namespace), and the quota's.
const REQUESTS: &str = "auth_code_subject";
const QUOTA: &str = "auth_code_quota";

impl AuthCodeService {
    pub fn new(
        store: Arc<dyn Store>,
        settings: MfaSettings,
        server_keys: &[&str],
        keyring: Keyring,
        messenger: Messenger,
        metrics: Arc<Metrics>,
        rate_limits: Arc<RateLimits>,
    ) -> Result<Self, CryptoError> {
        Ok(Self {
            hashers: server_keys
                .iter()
                .map(|k| KeyedHasher::new(k, "auth-code"))
                .collect::<Result<_, _>>()?,
            destination_hasher: KeyedHasher::new(server_keys[0], "auth-code-destination")?,
            store,
            settings,
            keyring,
            messenger,
            metrics,
            rate_limits,
        })
    }

    /// The request rate of `subject`: sends and checks together.
    async fn admit(&self, subject: &str) -> Result<(), ServiceError> {
        let rule = self.rate_limits.classes().auth_code_subject;
        self.rate_limits
            .admit(REQUESTS, subject, rule.as_ref())
            .await
    }

    /// A quota counted in the database refused a code: a 429 with the
    /// smaller of the two quotas as its policy (which of them was reached
    /// is not told apart).
    fn quota_refused(&self, error: &DomainError) -> ServiceError {
        self.rate_limits.count_refusal(QUOTA);
        let l = self.limits();
        let quota = l.per_subject.min(l.per_destination).max(0) as u64;
        let window = l.window.num_seconds().max(0) as u64;
        Refusal::quota(error, QUOTA, quota, window).into()
    }

    /// The hash binds the code to its id, subject and purpose.
    fn hash(hasher: &KeyedHasher, code: &AuthCode, presented: &str) -> String {
        hasher.hash_hex(
            format!(
                "{}\n{}\n{}\n{}",
                code.id, code.subject, code.purpose, presented
            )
            .as_bytes(),
        )
    }

    /// Codes allowed per subject and per destination in the rolling window.
    fn limits(&self) -> AuthCodeLimits {
        AuthCodeLimits {
            per_subject: self.settings.codes_per_subject,
            per_destination: self.settings.codes_per_destination,
            window: self.settings.rate_window,
        }
    }

    /// The message that carries a code, from the auth-code template.
    fn message(&self, channel: Channel, to: String, raw: &SecretString) -> OutboundMessage {
        let minutes = self
            .settings
            .auth_codes
            .lifetime
            .num_minutes()
            .max(1)
            .to_string();
        // The default locale until a code request carries the user's.
        let templates = self.messenger.templates();
        let rendered = templates.render(
            MessageKind::AuthCode,
            templates.default_locale(),
            &[
                ("issuer", &self.settings.issuer),
                ("code", raw.expose()),
                ("minutes", &minutes),
            ],
        );
        OutboundMessage {
            channel,
            to,
            subject: rendered.subject,
            body: rendered.text,
            // An SMS is text only.
            html: (channel == Channel::Email).then_some(rendered.html),
        }
    }

    /// Sends the message and records the outcome on the code: usable when
    /// sent (with the `sent` audit row and event), retired when not (with the
    /// `failed` audit row). `Some(sent at)` or `None`.
    async fn deliver(
        &self,
        message: OutboundMessage,
        code_id: String,
        (sent_audit, failed_audit): (AuditEntry, AuditEntry),
        sent_event: OutboxEvent,
    ) -> Result<Option<DateTime<Utc>>, ServiceError> {
        let channel = message.channel.as_str();
        // Delivery and its bookkeeping run in their own task, so they finish
        // even if the caller hangs up mid-send: otherwise a message could go
        // out while its code stayed unusable and unaudited.
        let (store, messenger) = (self.store.clone(), self.messenger.clone());
        let delivery = tokio::spawn(async move {
            match messenger.send(&message).await {
                Ok(()) => {
                    let at = tessera_core::ids::now();
                    store
                        .finish_auth_code_delivery(&code_id, Some(at), &sent_audit, &[sent_event])
                        .await
                        .map(|()| Some(at))
                }
                // The messenger logged the cause; the code must never work.
                Err(_) => store
                    .finish_auth_code_delivery(&code_id, None, &failed_audit, &[])
                    .await
                    .map(|()| None),
            }
        });
        Ok(delivery
            .await
            .map_err(|_| ServiceError::delivery_failed(channel))??)
    }

    pub async fn send(
        &self,
        req: SendCode,
        actor: &Actor,
        ctx: &RequestContext,
    ) -> Result<AuthCode, ServiceError> {
        let subject = validate_subject(&req.subject)?;
        let purpose = validate_purpose(&req.purpose)?;
        let destination = validate_destination(req.channel, &req.destination)?;
        self.admit(&subject).await?;
        let policy = self.settings.auth_codes;
        let now = tessera_core::ids::now();
        let code = AuthCode {
            id: new_id(),
            subject: subject.clone(),
            purpose: purpose.clone(),
            channel: req.channel,
            attempts: 0,
            max_attempts: policy.max_attempts,
            expires_at: now + policy.lifetime,
            consumed_at: None,
            sent_at: None,
            created_at: now,
        };
        let raw = SecretString::new(generate_code(policy.digits));
        let details = json!({ "id": code.id, "purpose": purpose, "channel": req.channel.as_str() });
        let audit = |action, outcome| AuditEntry {
            outcome,
            ..AuditEntry::success(actor, action, "subject", &subject, details.clone(), ctx)
        };
        let new = NewAuthCode {
            code_hash: Self::hash(&self.hashers[0], &code, raw.expose()),
            destination_sealed: self
                .keyring
                .seal(destination.as_bytes(), DESTINATION_CONTEXT),
            destination_hash: self
                .destination_hasher
                .hash_hex(destination.to_lowercase().as_bytes()),
            code: code.clone(),
        };
        if let Err(e) = self
            .store
            .create_auth_code(&new, &self.limits(), &audit("auth_code.create", "success"))
            .await
        {
            if let StoreError::Domain(d @ DomainError::RateLimited { .. }) = &e {
                tracing::warn!(subject = %mask_subject(&subject), "auth code refused: rate limited");
                return Err(self.quota_refused(d));
            }
            return Err(e.into());
        }
        let message = self.message(req.channel, destination, &raw);
        let channel = req.channel.as_str();
        let sent_event = OutboxEvent::mfa("auth_code.sent", &subject, details.clone());
        let audits = (
            audit("auth_code.send", "success"),
            audit("auth_code.send", "failure"),
        );
        let sent_at = self
            .deliver(message, code.id.clone(), audits, sent_event)
            .await?;
        let outcome = if sent_at.is_some() { "sent" } else { "failed" };
        self.metrics
            .mfa
            .codes_sent
            .with_label_values(&[channel, outcome])
            .inc();
        match sent_at {
            Some(at) => {
                tracing::info!(subject = %mask_subject(&subject), code_id = %code.id, channel, "auth code sent");
                Ok(AuthCode {
                    sent_at: Some(at),
                    ..code
                })
            }
            None => Err(ServiceError::delivery_failed(channel)),
        }
    }

    /// Compares a presented code against every key's hash, with no early
    /// exit (constant time whichever key matches).
    fn compare(
        hashers: &[KeyedHasher],
        code: &AuthCode,
        stored: &str,
        presented: &str,
    ) -> Result<(), MfaFailure> {
        let matches = hashers
            .iter()
            .map(|h| constant_time_eq(&Self::hash(h, code, presented), stored))
            .fold(false, |a, b| a | b);
        if matches {
            Ok(())
        } else {
            Err(MfaFailure::Invalid)
        }
    }

    pub async fn verify(
        &self,
        req: CheckCode<'_>,
        actor: &Actor,
        ctx: &RequestContext,
    ) -> Result<Result<AuthCode, MfaFailure>, ServiceError> {
        let subject = validate_subject(req.subject)?;
        let purpose = validate_purpose(req.purpose)?;
        if req.id.is_some_and(|id| !is_valid_id(id)) {
            return Err(
                DomainError::invalid("id", "is not an auth code id this API returned").into(),
            );
        }
        let presented = req.code.trim();
        // Characters, not bytes, as the message and the API document say.
        if presented.is_empty() || presented.chars().count() > 16 {
            return Err(DomainError::invalid("code", "must be 1-16 characters").into());
        }
        tessera_core::text::check("code", presented, tessera_core::text::TextRule::Line)?;
        self.admit(&subject).await?;
        let lookup = AuthCodeLookup {
            subject: subject.clone(),
            purpose: purpose.clone(),
            id: req.id.map(str::to_string),
        };
        let now = tessera_core::ids::now();
        let hashers = &self.hashers;
        let check = move |found: Option<(&AuthCode, &str)>| {
            let (outcome, evaluated) = match found {
                None => (Err(MfaFailure::NoCode), false),
                Some((code, stored)) => match code.check_usable(now) {
                    Err(f) => (Err(f), false),
                    Ok(()) => (Self::compare(hashers, code, stored, presented), true),
                },
            };
            let id = found.map(|(c, _)| c.id.clone());
            let details = json!({
                "id": id,
                "purpose": purpose,
                "result": outcome.err().map_or("valid", MfaFailure::as_str),
            });
            let (action, audit_outcome) = (
                "auth_code.verify",
                outcome.map_or("failure", |()| "success"),
            );
            AuthCodeVerdict {
                outcome,
                count_attempt: evaluated,
                audit: AuditEntry {
                    outcome: audit_outcome,
                    ..AuditEntry::success(actor, action, "subject", &subject, details.clone(), ctx)
                },
                events: if outcome.is_ok() {
                    vec![OutboxEvent::mfa("auth_code.verified", &subject, details)]
                } else {
                    vec![]
                },
            }
        };
        // One write transaction: lock the current code, decide, write the
        // verdict (attempt, consumption, audit, events), commit.
        let mut tx = self.store.begin_write().await?;
        let locked = tx.lock_current_auth_code(&lookup).await?;
        let verdict = check(locked.as_ref().map(|(c, h)| (c, h.as_str())));
        let locked = locked.map(|(code, _)| code);
        tx.write_auth_code_verdict(locked.as_ref(), &verdict, now)
            .await?;
        tx.commit().await?;
        let result = verdict.result(locked, now);
        let label = result.as_ref().err().map_or("valid", |f| f.as_str());
        self.metrics
            .mfa
            .verifications
            .with_label_values(&["auth_code", label])
            .inc();
        tracing::info!(subject = %mask_subject(&lookup.subject), outcome = label, "auth code checked");
        Ok(result)
    }
}
