//! The request-rate limits of the sensitive routes, one setting per route
//! class (`[rate_limits]`, `TESSERA_RATE_LIMIT_*`), in the form `N/PERIOD`
//! (`20/1m`, `10/15m`, `100/1h,burst=150`; `off` turns one off), and the
//! Redis key prefix they share replicas under. The failure limits and the
//! link limits keep their own settings (`tokens.*`, `invites.*`,
//! `clients.*`, `links.*`); [`rule_or_count`] reads the link ones.

use std::time::Duration;

use tessera_core::gcra::RateRule;

use super::layers::{ConfigError, Layers};

/// `None`: the limit is off.
pub type Rule = Option<RateRule>;

#[derive(Debug, Clone)]
pub struct RateLimitSettings {
    /// `TESSERA_RATE_LIMIT_LOGIN`: logins (and their second-factor step)
    /// per client IP. Default 60/1m.
    pub login_ip: Rule,
    /// `TESSERA_RATE_LIMIT_LOGIN_USER`: logins per account (the normalised
    /// e-mail, known or not). Default 20/1m.
    pub login_user: Rule,
    /// `TESSERA_RATE_LIMIT_REFRESH`: refresh-token presentations per client
    /// IP. Default 120/1m.
    pub refresh_ip: Rule,
    /// `TESSERA_RATE_LIMIT_REFRESH_USER`: refreshes per user (all of a
    /// person's sessions together). Default 60/1m.
    pub refresh_user: Rule,
    /// `TESSERA_RATE_LIMIT_INVITES`: invite validations and redemptions per
    /// client IP. Default 60/1m.
    pub invite_ip: Rule,
    /// `TESSERA_RATE_LIMIT_AUTH_CODES`: auth codes sent or checked per
    /// subject. Default 20/1m.
    pub auth_code_subject: Rule,
    /// `TESSERA_RATE_LIMIT_REDIS_PREFIX`: where the limits' keys live in
    /// Redis (default `tessera:rl:`), so deployments can share one Redis.
    pub redis_prefix: String,
}

impl Default for RateLimitSettings {
    fn default() -> Self {
        let rule = |v: &str| v.parse::<RateRule>().ok();
        Self {
            login_ip: rule("60/1m"),
            login_user: rule("20/1m"),
            refresh_ip: rule("120/1m"),
            refresh_user: rule("60/1m"),
            invite_ip: rule("60/1m"),
            auth_code_subject: rule("20/1m"),
            redis_prefix: "tessera:rl:".into(),
        }
    }
}

/// `N/PERIOD[,burst=B]`, or `off` (also `0`).
pub fn rule(v: &str) -> Result<Rule, String> {
    match v {
        "off" | "0" => Ok(None),
        _ => v.parse().map(Some),
    }
}

/// A bare number `N` for `N` per `period` (the form older settings take;
/// `0` is off), or any [`rule`].
pub fn rule_or_count(v: &str, period: Duration) -> Result<Rule, String> {
    match v.parse::<u32>() {
        Ok(0) => Ok(None),
        Ok(n) => RateRule::new(n, period).map(Some),
        Err(_) => rule(v),
    }
}

fn prefix(v: &str) -> Result<String, String> {
    let ok = !v.is_empty() && v.len() <= 64 && v.bytes().all(|b| b.is_ascii_graphic() && b != b'"');
    if ok {
        Ok(v.to_string())
    } else {
        Err("expected 1-64 printable characters without spaces, e.g. tessera:rl:".into())
    }
}

pub(super) fn rate_limit_settings(l: &Layers) -> Result<RateLimitSettings, ConfigError> {
    let d = RateLimitSettings::default();
    Ok(RateLimitSettings {
        login_ip: l.parse("rate_limits.login", d.login_ip, rule)?,
        login_user: l.parse("rate_limits.login_user", d.login_user, rule)?,
        refresh_ip: l.parse("rate_limits.refresh", d.refresh_ip, rule)?,
        refresh_user: l.parse("rate_limits.refresh_user", d.refresh_user, rule)?,
        invite_ip: l.parse("rate_limits.invites", d.invite_ip, rule)?,
        auth_code_subject: l.parse("rate_limits.auth_codes", d.auth_code_subject, rule)?,
        redis_prefix: l.parse("rate_limits.redis_prefix", d.redis_prefix, prefix)?,
    })
}
