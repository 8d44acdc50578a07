//! Settings for second factors (TOTP, lockout, auth codes) and for message
//! delivery, kept apart from the main table so each feature reads as a unit.

use std::time::Duration;

use tessera_core::{
    crypto::MIN_KEY_LEN,
    mfa::{
        auth_code::AuthCodePolicy,
        lockout::LockoutPolicy,
        totp::{Algorithm, TotpParams},
    },
    SecretString,
};

use super::layers::{
    at_most, chrono, err, list, number, parse_duration, positive_duration, source_of, ConfigError,
    Layers,
};
use crate::messaging::{templates, DeliverySettings, SmtpTarget, Templates};

/// The TOTP encryption key as configured (`TOTP_ENC_KEY`).
#[derive(Debug, Clone)]
pub struct TotpKeys {
    pub current: SecretString,
    pub previous: Vec<SecretString>,
}

#[derive(Debug, Clone)]
pub struct MfaSettings {
    /// `None` when `TOTP_ENC_KEY` is unset: TOTP is then unavailable, and
    /// start-up fails if the database already holds TOTP secrets.
    pub totp_keys: Option<TotpKeys>,
    /// How long the last accepted step is kept (`TOTP_REPLAY_TTL`, 60-3600 s).
    pub replay_ttl: Duration,
    /// Shown in authenticator apps.
    pub issuer: String,
    /// Parameters of newly enrolled devices.
    pub params: TotpParams,
    pub lockout: LockoutPolicy,
    pub auth_codes: AuthCodePolicy,
    /// Auth codes per subject, and per destination, in `rate_window`.
    pub codes_per_subject: i64,
    pub codes_per_destination: i64,
    pub rate_window: chrono::Duration,
}

fn key(v: &str) -> Result<SecretString, String> {
    if v.chars().count() < MIN_KEY_LEN {
        Err(format!("must be at least {MIN_KEY_LEN} characters"))
    } else {
        Ok(SecretString::new(v.to_string()))
    }
}

fn at_most_a_day(v: &str) -> Result<chrono::Duration, String> {
    chrono(at_most(
        positive_duration(v)?,
        Duration::from_secs(86_400),
        "must be at most 24h",
    )?)
}

/// `TOTP_ENC_KEY` and its previous keys; previous keys alone are an error.
fn totp_keys(l: &Layers) -> Result<Option<TotpKeys>, ConfigError> {
    let current = l
        .get("mfa.totp_key")
        .filter(|(v, _)| !v.is_empty())
        .map(|(v, src)| key(v).map_err(|m| err(src, m)))
        .transpose()?;
    let previous = l.parse("mfa.totp_previous_keys", Vec::new(), |v| {
        list(v)
            .iter()
            .map(|k| {
                key(k).map_err(|_| {
                    format!("every previous key must be at least {MIN_KEY_LEN} characters")
                })
            })
            .collect()
    })?;
    if current.is_none() && !previous.is_empty() {
        return Err(err(
            l.get("mfa.totp_previous_keys")
                .map_or("TOTP_ENC_KEY_PREVIOUS", |(_, s)| s),
            "is set but TOTP_ENC_KEY is not; set the current key too",
        ));
    }
    Ok(current.map(|current| TotpKeys { current, previous }))
}

pub(super) fn mfa_settings(l: &Layers) -> Result<MfaSettings, ConfigError> {
    let totp_keys = totp_keys(l)?;
    let replay_ttl = l.parse("mfa.replay_ttl", Duration::from_secs(300), |v| {
        // Plain seconds, as users already write it, or a duration such as 5m.
        let d = match v.parse::<u64>() {
            Ok(secs) => Duration::from_secs(secs),
            Err(_) => parse_duration(v)?,
        };
        if (60..=3600).contains(&d.as_secs()) && d.subsec_nanos() == 0 {
            Ok(d)
        } else {
            Err(format!("must be 60-3600 seconds, got {v:?}"))
        }
    })?;
    Ok(MfaSettings {
        totp_keys,
        replay_ttl,
        issuer: l.parse("mfa.issuer", "Tessera".to_string(), |v| {
            if v.is_empty()
                || v.chars().count() > 64
                || v.contains(':')
                || v.chars().any(char::is_control)
            {
                Err("must be 1-64 printable characters without ':'".into())
            } else {
                Ok(v.to_string())
            }
        })?,
        params: TotpParams {
            algorithm: l.parse("mfa.algorithm", Algorithm::Sha1, |v| {
                Algorithm::parse(v)
                    .ok_or_else(|| format!("expected SHA1, SHA256 or SHA512, got {v:?}"))
            })?,
            digits: l.parse("mfa.digits", 6, |v| match v {
                "6" => Ok(6),
                "8" => Ok(8),
                _ => Err(format!("expected 6 or 8, got {v:?}")),
            })?,
            period: tessera_core::mfa::totp::PERIOD_SECS,
        },
        lockout: LockoutPolicy {
            max_failures: l.parse("mfa.max_failures", 5, |v| number(v, 1, 100))?,
            lockout: l.parse("mfa.lockout", chrono::Duration::minutes(5), at_most_a_day)?,
        },
        auth_codes: auth_code_policy(l)?,
        codes_per_subject: l.parse("auth_codes.limit_per_subject", 5, |v| number(v, 1, 10_000))?,
        codes_per_destination: l.parse("auth_codes.limit_per_destination", 10, |v| {
            number(v, 1, 100_000)
        })?,
        // Auth codes are purged a day after creation, so a longer window
        // could not count them.
        rate_window: l.parse(
            "auth_codes.limit_window",
            chrono::Duration::minutes(15),
            at_most_a_day,
        )?,
    })
}

fn auth_code_policy(l: &Layers) -> Result<AuthCodePolicy, ConfigError> {
    let defaults = AuthCodePolicy::default();
    Ok(AuthCodePolicy {
        digits: l.parse("auth_codes.digits", defaults.digits, |v| number(v, 6, 8))?,
        lifetime: l.parse("auth_codes.ttl", defaults.lifetime, |v| {
            chrono(at_most(
                positive_duration(v)?,
                Duration::from_secs(3600),
                "must be at most 1h",
            )?)
        })?,
        max_attempts: l.parse("auth_codes.max_attempts", defaults.max_attempts, |v| {
            number(v, 1, 20)
        })?,
    })
}

pub(super) fn delivery_settings(
    l: &Layers,
    data_dir: &std::path::Path,
) -> Result<DeliverySettings, ConfigError> {
    let mut s = DeliverySettings::development(data_dir);
    s.smtp = l
        .get("delivery.smtp_url")
        .filter(|(v, _)| !v.trim().is_empty())
        .map(|(v, src)| SmtpTarget::parse(v).map_err(|m| err(src, m)))
        .transpose()?;
    s.from = l.parse("delivery.from", s.from, |v| {
        if v.contains('@') && !v.contains(['\r', '\n']) {
            Ok(v.to_string())
        } else {
            Err("expected an address such as \"Acme <no-reply@acme.test>\"".into())
        }
    })?;
    s.sms_webhook_url = l
        .get("delivery.sms_webhook_url")
        .filter(|(v, _)| !v.trim().is_empty())
        .map(|(v, src)| {
            tessera_core::webhook::validate_url(v.trim()).map_err(|e| err(src, e.to_string()))
        })
        .transpose()?;
    s.sms_webhook_token = l
        .get("delivery.sms_webhook_token")
        .filter(|(v, _)| !v.is_empty())
        .map(|(v, _)| SecretString::new(v.to_string()));
    s.log_file = l.parse("delivery.log_file", s.log_file, |v| {
        if v.is_empty() {
            Err("must not be empty".into())
        } else {
            Ok(std::path::PathBuf::from(v))
        }
    })?;
    s.timeout = l.interval("delivery.timeout", s.timeout)?;
    message_templates(l, &mut s)?;
    Ok(s)
}

/// `TESSERA_TEMPLATES_DIR` and `TESSERA_DEFAULT_LOCALE`. The directory is
/// read and checked here, so every command that loads the configuration
/// (`serve`, `config check`) refuses a bad template the same way; the
/// messenger loads it again when it starts.
fn message_templates(l: &Layers, s: &mut DeliverySettings) -> Result<(), ConfigError> {
    s.templates_dir = l
        .get("delivery.templates_dir")
        .map(|(v, _)| v.trim())
        .filter(|v| !v.is_empty())
        .map(std::path::PathBuf::from);
    s.default_locale = l.parse("delivery.default_locale", s.default_locale.clone(), |v| {
        Ok(v.to_string())
    })?;
    Templates::load(s.templates_dir.as_deref(), &s.default_locale).map_err(|e| {
        let key = match e.setting {
            templates::TEMPLATES_DIR_VAR => "delivery.templates_dir",
            _ => "delivery.default_locale",
        };
        err(source_of(l, key), e.message)
    })?;
    Ok(())
}
