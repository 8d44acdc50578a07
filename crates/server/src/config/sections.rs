//! Validation of the token, invite, webhook and job settings: each section
//! reduces its raw layered values to the typed settings the services use.

use std::{collections::BTreeSet, time::Duration};

use tessera_core::{
    api_token::ExpiryPolicy,
    invite::{is_role_name, InviteLimits, IssuerPolicy},
    scopes::ScopeRegistry,
    token_format::TokenFormat,
    webhook::{secret_key, validate_url, RetrySchedule},
    SecretString,
};

use super::layers::{
    at_most, chrono, err, in_range, list, number, parse_bool, parse_duration, positive_duration,
    source_of, ConfigError, Layers,
};

#[derive(Debug, Clone)]
pub struct TokenSettings {
    pub format: TokenFormat,
    pub scopes: ScopeRegistry,
    pub expiry: ExpiryPolicy,
    pub verify_requires_admin: bool,
    pub verify_cache_ttl: Duration,
    pub usage_flush_interval: Duration,
    /// Failed verifications per client IP (IPv6: per /64) per minute from
    /// unauthenticated callers of `POST /v1/tokens/verify`; 0 disables.
    pub verify_failure_limit_per_minute: u32,
}

#[derive(Debug, Clone)]
pub struct InviteSettings {
    pub policy: IssuerPolicy,
    /// Invites per issuer per rolling 24 hours; 0 disables the quota.
    pub daily_quota: i64,
    pub quota_exempt_roles: BTreeSet<String>,
    pub limits: InviteLimits,
    /// Failed validations/redemptions per client IP per minute; 0 disables.
    pub failure_limit_per_minute: u32,
}

#[derive(Debug, Clone)]
pub struct WebhookSettings {
    /// `TOKENS_WEBHOOK_URL`: an endpoint that receives every event.
    pub default_url: Option<String>,
    /// `TOKENS_WEBHOOK_SECRET` (`whsec_…`) for that endpoint; generated if unset.
    pub default_secret: Option<SecretString>,
    pub retry: RetrySchedule,
    pub timeout: Duration,
    pub concurrency: usize,
    pub poll_interval: Duration,
    /// Send to loopback, private and link-local addresses (development
    /// only). The `default_url` is operator configuration and always allowed.
    pub allow_private_networks: bool,
}

#[derive(Debug, Clone)]
pub struct JobSettings {
    pub enabled: bool,
    pub revoke_expired_tokens: Duration,
    pub purge_old_logs: Duration,
    pub rotate_expiring_tokens: Duration,
    pub resend_pending_webhooks: Duration,
    /// How often each replica checks whether a job's lease is free.
    pub check_interval: Duration,
    pub audit_retention: chrono::Duration,
    pub usage_retention: chrono::Duration,
    /// How long dispatched outbox events and finished deliveries are kept.
    pub webhook_event_retention: chrono::Duration,
    /// Tokens with automatic rotation get a successor this long before expiry.
    pub rotation_window: chrono::Duration,
}

pub(super) fn token_settings(l: &Layers) -> Result<TokenSettings, ConfigError> {
    let format = l.parse("tokens.prefix", TokenFormat::default(), TokenFormat::new)?;
    let scopes = l.parse("tokens.scopes", ScopeRegistry::default(), |v| {
        ScopeRegistry::new(list(v))
    })?;
    let defaults = ExpiryPolicy::default();
    let max_lifetime = lifetime(l, "tokens.max_ttl", defaults.max_lifetime)?;
    let default_lifetime = lifetime(l, "tokens.default_ttl", defaults.default_lifetime)?;
    if default_lifetime > max_lifetime {
        return Err(err(
            source_of(l, "tokens.default_ttl"),
            "must not be longer than the maximum token lifetime",
        ));
    }
    Ok(TokenSettings {
        format,
        scopes,
        expiry: ExpiryPolicy {
            default_lifetime,
            max_lifetime,
            allow_never: l.parse("tokens.allow_never_expiring", false, parse_bool)?,
        },
        verify_requires_admin: l.parse("tokens.verify_requires_admin", false, parse_bool)?,
        verify_cache_ttl: l.parse("tokens.verify_cache_ttl", Duration::from_secs(5), |v| {
            at_most(
                parse_duration(v)?,
                Duration::from_secs(300),
                "must be at most 5m: it bounds how long another replica may accept a revoked token",
            )
        })?,
        usage_flush_interval: l.parse(
            "tokens.usage_flush_interval",
            Duration::from_secs(2),
            |v| {
                let d = parse_duration(v)?;
                if d.is_zero() || d > Duration::from_secs(60) {
                    Err("must be between 1ms and 60s".into())
                } else {
                    Ok(d)
                }
            },
        )?,
        verify_failure_limit_per_minute: l.parse(
            "tokens.verify_failure_limit_per_minute",
            60,
            |v| in_range(v, 0, 1_000_000, "a number 0-1000000 (0 = no limit)"),
        )?,
    })
}

pub(super) fn invite_settings(l: &Layers) -> Result<InviteSettings, ConfigError> {
    let defaults = InviteLimits::default();
    let max_lifetime = lifetime(l, "invites.max_ttl", defaults.max_lifetime)?;
    let default_lifetime = lifetime(l, "invites.default_ttl", defaults.default_lifetime)?;
    if default_lifetime > max_lifetime || default_lifetime.is_zero() {
        return Err(err(
            source_of(l, "invites.default_ttl"),
            "must be positive and not longer than the maximum invite lifetime",
        ));
    }
    Ok(InviteSettings {
        policy: l.parse(
            "invites.policy",
            IssuerPolicy::default(),
            IssuerPolicy::parse,
        )?,
        daily_quota: l.parse("invites.daily_quota", 5, |v| {
            in_range(v, 0, 1_000_000, "a number 0-1000000 (0 = no quota)")
        })?,
        quota_exempt_roles: l.parse("invites.quota_exempt_roles", BTreeSet::new(), |v| {
            let roles = list(v);
            match roles.iter().find(|r| !is_role_name(r)) {
                Some(bad) => Err(format!("invalid role name {bad:?}")),
                None => Ok(roles.into_iter().collect()),
            }
        })?,
        limits: InviteLimits {
            default_lifetime,
            max_lifetime,
            max_uses: l.parse("invites.max_uses", defaults.max_uses, |v| {
                number(v, 1, 1_000_000)
            })?,
        },
        failure_limit_per_minute: l.parse("invites.failure_limit_per_minute", 20, |v| {
            v.parse::<u32>()
                .map_err(|_| format!("expected a number (0 = no limit), got {v:?}"))
        })?,
    })
}

pub(super) fn webhook_settings(l: &Layers) -> Result<WebhookSettings, ConfigError> {
    let defaults = RetrySchedule::default();
    Ok(WebhookSettings {
        default_url: l
            .get("webhooks.default_url")
            .filter(|(v, _)| !v.trim().is_empty())
            .map(|(v, src)| validate_url(v.trim()).map_err(|e| err(src, e.to_string())))
            .transpose()?,
        default_secret: l
            .get("webhooks.default_secret")
            .filter(|(v, _)| !v.trim().is_empty())
            .map(|(v, src)| match secret_key(v.trim()) {
                Some(_) => Ok(SecretString::new(v.trim().to_string())),
                None => Err(err(
                    src,
                    "must be a whsec_ secret: whsec_ followed by base64 of 16-64 bytes",
                )),
            })
            .transpose()?,
        retry: RetrySchedule {
            delays: l.parse("webhooks.retry_schedule", defaults.delays, |v| {
                let delays = list(v)
                    .iter()
                    .map(|d| positive_duration(d))
                    .collect::<Result<Vec<_>, _>>()?;
                if delays.is_empty() || delays.len() > 20 {
                    Err("expected 1-20 comma-separated durations, e.g. 5s,5m,30m".into())
                } else {
                    Ok(delays)
                }
            })?,
            jitter: l.parse("webhooks.retry_jitter", defaults.jitter, |v| {
                in_range(v, 0.0, 0.5, "a fraction 0-0.5")
            })?,
        },
        timeout: l.interval("webhooks.timeout", Duration::from_secs(15))?,
        concurrency: l.parse("webhooks.concurrency", 32, |v| {
            in_range(v, 1, 1024, "1-1024")
        })?,
        poll_interval: l.interval("webhooks.poll_interval", Duration::from_millis(200))?,
        allow_private_networks: l.parse("webhooks.allow_private_networks", false, parse_bool)?,
    })
}

pub(super) fn job_settings(l: &Layers) -> Result<JobSettings, ConfigError> {
    let days = |n| chrono::Duration::days(n);
    let retention = |key: &str| {
        l.parse(key, days(365), |v| {
            let d = chrono(parse_duration(v)?)?;
            if d < days(180) {
                Err("must be at least 180d: security events are kept that long".into())
            } else {
                Ok(d)
            }
        })
    };
    // Every job interval is a positive duration with its own default.
    let interval = |key: &str, default_secs| l.interval(key, Duration::from_secs(default_secs));
    Ok(JobSettings {
        enabled: l.parse("jobs.enabled", true, parse_bool)?,
        revoke_expired_tokens: interval("jobs.revoke_expired_tokens.interval", 300)?,
        purge_old_logs: interval("jobs.purge_old_logs.interval", 86_400)?,
        rotate_expiring_tokens: interval("jobs.rotate_expiring_tokens.interval", 3600)?,
        resend_pending_webhooks: interval("jobs.resend_pending_webhooks.interval", 60)?,
        check_interval: interval("jobs.check_interval", 15)?,
        audit_retention: retention("retention.audit")?,
        usage_retention: retention("retention.usage")?,
        webhook_event_retention: l.parse("retention.webhook_events", days(30), |v| {
            let d = chrono(parse_duration(v)?)?;
            if d < days(1) {
                Err("must be at least 1d".into())
            } else {
                Ok(d)
            }
        })?,
        rotation_window: l.parse("tokens.rotation_window", days(7), |v| {
            chrono(positive_duration(v)?)
        })?,
    })
}

/// A token or invite lifetime (`…_ttl`), in the domain's chrono duration.
fn lifetime(
    l: &Layers,
    key: &str,
    default: chrono::Duration,
) -> Result<chrono::Duration, ConfigError> {
    l.parse(key, default, |v| chrono(parse_duration(v)?))
}
