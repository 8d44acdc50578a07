//! TOTP devices and recovery codes: enrol, confirm, verify (attempt reserved
//! first, replay checked atomically), remove, rekey; generate and use
//! recovery codes. Shared by the HTTP handlers and `tessera mfa`.

use crate::service::ServiceError;
use std::sync::Arc;
use tessera_core::error::Entity;

use chrono::{DateTime, Duration, Utc};
use serde_json::json;
use tessera_core::{
    audit::{Actor, AuditEntry, RequestContext},
    crypto::{CryptoError, Keyring},
    event::OutboxEvent,
    ids::{is_valid_id, new_id},
    mfa::{
        mask_subject,
        totp::{base32_encode, generate_secret, otpauth_uri},
        validate_device_name, validate_subject, DeviceStatus, MfaFailure, TotpDevice,
    },
    DomainError, SecretString,
};
use tessera_store::{
    mfa::{NewTotpDevice, SealedDevice, TotpMatch, TotpOutcome},
    Store, StoreError,
};

use crate::{config::MfaSettings, metrics::Metrics};

mod outcome;
mod recovery_codes;

use outcome::OutcomeLog;

/// The encryption context of TOTP secrets (a ciphertext moved to another
/// column does not open).
const SECRET_CONTEXT: &str = "totp_devices.secret";
const FACTOR: &str = "totp";
/// Devices per subject (pending ones included). Every check tries each
/// active device, so the number is bounded; ten covers any real person.
pub const MAX_DEVICES: usize = 10;

/// A new device and what the user's authenticator needs, shown once.
pub struct Enrollment {
    pub device: TotpDevice,
    pub secret_base32: SecretString,
    pub otpauth_uri: SecretString,
}

#[derive(Debug, Default)]
pub struct EnrollRequest {
    pub name: Option<String>,
    pub issuer: Option<String>,
    pub account_name: Option<String>,
}

/// What `tessera mfa rekey` did.
#[derive(Debug, Default, serde::Serialize)]
pub struct RekeyReport {
    pub rekeyed: u64,
    pub key_id: String,
}

pub struct MfaService {
    store: Arc<dyn Store>,
    settings: MfaSettings,
    /// `None` without `TOTP_ENC_KEY`: TOTP answers 503 totp_not_configured.
    keyring: Option<Keyring>,
    metrics: Arc<Metrics>,
}

fn audit(
    actor: &Actor,
    action: &'static str,
    subject: &str,
    outcome: &'static str,
    details: serde_json::Value,
    ctx: &RequestContext,
) -> AuditEntry {
    AuditEntry {
        outcome,
        ..AuditEntry::success(actor, action, "subject", subject, details, ctx)
    }
}

impl MfaService {
    pub fn new(
        store: Arc<dyn Store>,
        settings: MfaSettings,
        metrics: Arc<Metrics>,
    ) -> Result<Self, CryptoError> {
        let keyring = settings
            .totp_keys
            .as_ref()
            .map(|k| {
                let previous: Vec<String> =
                    k.previous.iter().map(|p| p.expose().to_string()).collect();
                Keyring::new(k.current.expose(), &previous, "totp-secret")
            })
            .transpose()?;
        Ok(Self {
            store,
            settings,
            keyring,
            metrics,
        })
    }

    /// How long a subject stays locked after too many wrong codes.
    pub fn lockout_secs(&self) -> i64 {
        self.settings.lockout.lockout.num_seconds()
    }

    /// Wrong codes before a subject is locked.
    pub fn lockout_max_failures(&self) -> i64 {
        self.settings.lockout.max_failures
    }

    fn keyring(&self) -> Result<&Keyring, DomainError> {
        self.keyring.as_ref().ok_or(DomainError::NotConfigured {
            feature: "totp",
            variable: "TOTP_ENC_KEY",
        })
    }

    /// Fails unless every stored TOTP secret can be opened with the
    /// configured keys: start-up calls this so a missing or wrong
    /// `TOTP_ENC_KEY` stops the process instead of failing every login.
    pub async fn check_keys(&self) -> Result<(), String> {
        let ids = self
            .store
            .totp_key_ids()
            .await
            .map_err(|e| format!("cannot read TOTP devices to check TOTP_ENC_KEY: {e}"))?;
        if ids.is_empty() {
            return Ok(());
        }
        let Some(ring) = &self.keyring else {
            return Err(format!(
                "TOTP_ENC_KEY: is not set, but the database holds TOTP secrets ({} key id(s)); \
                 set it to the key they were enrolled with (at least 32 characters)",
                ids.len()
            ));
        };
        match ids.iter().find(|id| !ring.has_key(id)) {
            Some(id) => Err(format!(
                "TOTP_ENC_KEY: does not match the key stored TOTP secrets are sealed with \
                 (key id {id}); set the right key, or keep the old one in TOTP_ENC_KEY_PREVIOUS"
            )),
            None => Ok(()),
        }
    }

    pub async fn enroll(
        &self,
        subject: &str,
        req: EnrollRequest,
        actor: &Actor,
        ctx: &RequestContext,
    ) -> Result<Enrollment, ServiceError> {
        let ring = self.keyring()?;
        let subject = validate_subject(subject)?;
        let name = validate_device_name(req.name.as_deref().unwrap_or("Authenticator"))?;
        let issuer = match req.issuer {
            Some(i) => label("issuer", &i)?,
            None => self.settings.issuer.clone(),
        };
        // The default account label is the subject, with `:` (the label's
        // separator) replaced so subjects like `tenant:42` still enrol.
        let account = match req.account_name {
            Some(a) => label("account_name", &a)?,
            // Any valid subject (up to 200 characters) must make a label
            // (up to 128): the default is cut to fit rather than refused.
            None => label(
                "account_name",
                &subject
                    .replace(':', "_")
                    .chars()
                    .take(128)
                    .collect::<String>(),
            )?,
        };
        // A read before the insert: two racing enrolments may both pass at
        // nine, which is harmless; the bound is about cost, not security.
        if self.store.list_totp_devices(&subject).await?.len() >= MAX_DEVICES {
            return Err(DomainError::DeviceLimitReached { max: MAX_DEVICES }.into());
        }
        let params = self.settings.params;
        let secret = generate_secret(params.algorithm);
        let now = tessera_core::ids::now();
        let device = TotpDevice {
            id: new_id(),
            subject: subject.clone(),
            name,
            status: DeviceStatus::Pending,
            params,
            created_at: now,
            confirmed_at: None,
            last_used_at: None,
        };
        let new = NewTotpDevice {
            secret_sealed: ring.seal(&secret, SECRET_CONTEXT),
            secret_key_id: ring.current_key_id().to_string(),
            device: device.clone(),
        };
        let details = json!({ "device_id": device.id, "name": device.name });
        self.store
            .create_totp_device(
                &new,
                &audit(
                    actor,
                    "mfa.enroll.start",
                    &subject,
                    "success",
                    details.clone(),
                    ctx,
                ),
                &[OutboxEvent::mfa("mfa.enroll.started", &subject, details)],
            )
            .await?;
        self.metrics
            .mfa
            .enrollments
            .with_label_values(&["started"])
            .inc();
        tracing::info!(subject = %mask_subject(&subject), device_id = %device.id, "totp enrolment started");
        Ok(Enrollment {
            otpauth_uri: SecretString::new(otpauth_uri(&issuer, &account, &secret, &params)),
            secret_base32: SecretString::new(base32_encode(&secret)),
            device,
        })
    }

    pub async fn devices(&self, subject: &str) -> Result<Vec<TotpDevice>, ServiceError> {
        let subject = validate_subject(subject)?;
        Ok(self.store.list_totp_devices(&subject).await?)
    }

    /// Confirms a pending device with its first code.
    pub async fn confirm(
        &self,
        subject: &str,
        device_id: &str,
        code: &str,
        actor: &Actor,
        ctx: &RequestContext,
    ) -> Result<Result<TotpDevice, MfaFailure>, ServiceError> {
        self.keyring()?;
        let subject = validate_subject(subject)?;
        let not_found = || ServiceError::from(DomainError::NotFound(Entity::Device));
        if !is_valid_id(device_id) {
            return Err(not_found());
        }
        let devices = self
            .store
            .sealed_totp_devices(&subject, Some(device_id))
            .await?;
        let device = devices.into_iter().next().ok_or_else(not_found)?;
        if device.device.status == DeviceStatus::Active {
            return Err(DomainError::DeviceAlreadyActive.into());
        }
        let result = self
            .check(&subject, code, &[device], true, actor, ctx)
            .await?;
        Ok(match result {
            Ok(mut d) => {
                d.status = DeviceStatus::Active;
                self.metrics
                    .mfa
                    .enrollments
                    .with_label_values(&["completed"])
                    .inc();
                Ok(d)
            }
            Err(f) => Err(f),
        })
    }

    /// Checks a code against the subject's active devices.
    pub async fn verify(
        &self,
        subject: &str,
        code: &str,
        actor: &Actor,
        ctx: &RequestContext,
    ) -> Result<Result<TotpDevice, MfaFailure>, ServiceError> {
        self.keyring()?;
        let subject = validate_subject(subject)?;
        let devices = self.store.sealed_totp_devices(&subject, None).await?;
        if devices.is_empty() {
            self.count("NO_DEVICE");
            return Ok(Err(MfaFailure::NoDevice));
        }
        self.check(&subject, code, &devices, false, actor, ctx)
            .await
    }

    fn count(&self, outcome: &str) {
        self.metrics
            .mfa
            .verifications
            .with_label_values(&[FACTOR, outcome])
            .inc();
    }

    /// The shared check: open the device secrets, then let the store reserve
    /// an attempt, compare the code and record the outcome in one transaction.
    async fn check(
        &self,
        subject: &str,
        code: &str,
        devices: &[SealedDevice],
        confirming: bool,
        actor: &Actor,
        ctx: &RequestContext,
    ) -> Result<Result<TotpDevice, MfaFailure>, ServiceError> {
        let ring = self.keyring()?;
        let now = tessera_core::ids::now();
        let mut secrets = Vec::with_capacity(devices.len());
        for d in devices {
            let secret = ring.open(&d.secret_sealed, SECRET_CONTEXT).map_err(|e| {
                StoreError::Corrupt(format!(
                    "totp device {}: secret does not open: {e}",
                    d.device.id
                ))
            })?;
            secrets.push((&d.device, secret));
        }
        let code = code.trim().to_string();
        let ttl = self.settings.replay_ttl;
        let matcher = move || {
            secrets.iter().find_map(|(device, secret)| {
                let step = device
                    .params
                    .matching_step(secret, &code, now.timestamp())?;
                Some(TotpMatch {
                    device_id: device.id.clone(),
                    step,
                    replay_until: replay_until(now, device.params.accepted_until(step), ttl),
                })
            })
        };
        let log = OutcomeLog {
            actor,
            ctx,
            subject,
            confirming,
            lockout_secs: self.settings.lockout.lockout.num_seconds(),
        };
        // One write transaction: reserve an attempt under the locked counter
        // (a locked subject writes nothing and is not even compared), compare,
        // finish the check, write its audit rows and events, commit.
        let mut tx = self.store.begin_write().await?;
        let reservation = tx
            .reserve_totp_attempt(subject, now, &self.settings.lockout)
            .await?;
        let outcome = match reservation {
            Err(until) => {
                // Nothing to write: rolling back releases the counter now.
                drop(tx);
                TotpOutcome::Locked { until }
            }
            Ok(attempt) => {
                let outcome = tx.finish_totp_check(attempt, matcher(), confirming).await?;
                let (audit, events) = log.entries(&outcome);
                tx.append_audit(&audit).await?;
                tx.append_events(&events).await?;
                tx.commit().await?;
                outcome
            }
        };
        let result = self.result_of(outcome, devices, subject, confirming, now);
        self.count(result.as_ref().err().map_or("valid", |f| f.as_str()));
        Ok(result)
    }

    /// What a check's outcome means for the caller, logged.
    fn result_of(
        &self,
        outcome: TotpOutcome,
        devices: &[SealedDevice],
        subject: &str,
        confirming: bool,
        now: DateTime<Utc>,
    ) -> Result<TotpDevice, MfaFailure> {
        let masked = mask_subject(subject);
        match outcome {
            TotpOutcome::Locked { until } => {
                tracing::warn!(subject = %masked, until = %until, "totp check refused: locked");
                Err(MfaFailure::Locked)
            }
            TotpOutcome::Invalid { locks_now } => {
                tracing::info!(subject = %masked, confirming, "totp code rejected");
                if locks_now {
                    tracing::warn!(subject = %masked, "totp locked after too many failures");
                }
                Err(MfaFailure::Invalid)
            }
            TotpOutcome::Replayed { device_id } => {
                self.metrics.mfa.replays.inc();
                tracing::warn!(subject = %masked, %device_id, "totp code replayed: its time step was already used");
                Err(MfaFailure::Replayed)
            }
            TotpOutcome::Accepted { device_id } => {
                tracing::info!(subject = %masked, %device_id, "totp code accepted");
                let device = devices
                    .iter()
                    .find(|d| d.device.id == device_id)
                    .map(|d| d.device.clone())
                    .expect("the matcher returns one of these devices");
                Ok(TotpDevice {
                    last_used_at: Some(now),
                    confirmed_at: if confirming {
                        Some(now)
                    } else {
                        device.confirmed_at
                    },
                    ..device
                })
            }
        }
    }

    /// Deletes a device at once.
    pub async fn remove(
        &self,
        subject: &str,
        device_id: &str,
        actor: &Actor,
        ctx: &RequestContext,
    ) -> Result<(), ServiceError> {
        let subject = validate_subject(subject)?;
        let details = json!({ "device_id": device_id });
        let removed = is_valid_id(device_id)
            && self
                .store
                .delete_totp_device(
                    &subject,
                    device_id,
                    &audit(
                        actor,
                        "mfa.enroll.remove",
                        &subject,
                        "success",
                        details.clone(),
                        ctx,
                    ),
                    &[OutboxEvent::mfa("mfa.enroll.removed", &subject, details)],
                )
                .await?;
        if !removed {
            return Err(DomainError::NotFound(Entity::Device).into());
        }
        self.metrics
            .mfa
            .enrollments
            .with_label_values(&["removed"])
            .inc();
        tracing::info!(subject = %mask_subject(&subject), device_id, "totp device removed");
        Ok(())
    }

    /// Lifts a lockout (and forgets earlier failures) for a subject, for
    /// support staff helping a user; `false` if nothing was locked or counted.
    pub async fn unlock(
        &self,
        subject: &str,
        actor: &Actor,
        ctx: &RequestContext,
    ) -> Result<bool, ServiceError> {
        let subject = validate_subject(subject)?;
        let entry = audit(actor, "mfa.unlock", &subject, "success", json!({}), ctx);
        let cleared = self.store.unlock_totp(&subject, &entry).await?;
        if cleared {
            tracing::info!(subject = %mask_subject(&subject), "totp attempts cleared");
        }
        Ok(cleared)
    }

    /// Re-encrypts every TOTP secret under the current `TOTP_ENC_KEY`.
    pub async fn rekey(&self, actor: &Actor) -> Result<RekeyReport, ServiceError> {
        let ring = self.keyring()?;
        let current = ring.current_key_id().to_string();
        let mut report = RekeyReport {
            rekeyed: 0,
            key_id: current.clone(),
        };
        loop {
            let batch = self.store.totp_secrets_not_under(&current, 200).await?;
            if batch.is_empty() {
                let details = json!({ "rekeyed": report.rekeyed, "key_id": report.key_id });
                let entry = AuditEntry::success(
                    actor,
                    "mfa.rekey",
                    "totp_key",
                    &report.key_id,
                    details,
                    &RequestContext::default(),
                );
                self.store.record_mfa_activity(&[entry], &[]).await?;
                tracing::info!(rekeyed = report.rekeyed, key_id = %report.key_id, "totp secrets rekeyed");
                return Ok(report);
            }
            for (id, sealed) in batch {
                let secret = ring.open(&sealed, SECRET_CONTEXT).map_err(|e| {
                    StoreError::Corrupt(format!(
                        "totp device {id}: secret does not open with the configured keys: {e}"
                    ))
                })?;
                let resealed = ring.seal(&secret, SECRET_CONTEXT);
                if self
                    .store
                    .reseal_totp_secret(&id, &sealed, &resealed, &current)
                    .await?
                {
                    report.rekeyed += 1;
                }
            }
        }
    }
}

/// Issuer and account labels end up in the `otpauth://` label, where `:`
/// separates them.
fn label(field: &'static str, v: &str) -> Result<String, DomainError> {
    let v = v.trim();
    tessera_core::text::check(field, v, tessera_core::text::TextRule::Name)?;
    if v.is_empty() || v.chars().count() > 128 || v.contains(':') {
        return Err(DomainError::invalid(
            field,
            "must be 1-128 printable characters without ':'",
        ));
    }
    Ok(v.to_string())
}

/// Keep the replay record at least as long as the code could still be
/// accepted, whatever `TOTP_REPLAY_TTL` says.
fn replay_until(
    now: DateTime<Utc>,
    accepted_until_unix: i64,
    ttl: std::time::Duration,
) -> DateTime<Utc> {
    let by_ttl = now + Duration::seconds(ttl.as_secs() as i64);
    let by_window = DateTime::from_timestamp(accepted_until_unix + 1, 0).unwrap_or(by_ttl);
    by_ttl.max(by_window)
}
