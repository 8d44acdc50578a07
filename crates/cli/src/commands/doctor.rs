//! `tessera config check --deep`: feature by feature, what a set-up still
//! needs, in one screen. Probes only what `serve` meets after it starts
//! (the listen address, SMTP, Redis); everything `serve` refuses at start is
//! checked before this runs.

use std::time::Duration;

use serde::Serialize;
use tessera_server::{config::KeySource, Config, Services};
use tessera_upstream::RedisState;

/// How long a reachability probe waits.
const PROBE_TIMEOUT: Duration = Duration::from_secs(3);

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    /// Configured and working.
    Ok,
    /// Not configured: the feature is off or uses its development default.
    Off,
    /// Works, but deserves a look.
    Warn,
    /// Configured but not working: `config check --deep` exits non-zero.
    Failed,
}

#[derive(Debug, Serialize)]
pub struct Check {
    pub feature: &'static str,
    pub status: Status,
    pub detail: String,
}

fn check(feature: &'static str, status: Status, detail: impl Into<String>) -> Check {
    Check {
        feature,
        status,
        detail: detail.into(),
    }
}

pub async fn probe(config: &Config, services: &Services) -> Vec<Check> {
    let db = format!(
        "{}: reachable, schema current",
        config.database_url_for_logs()
    );
    let key = match &config.encryption_key {
        KeySource::Configured(_) => "TESSERA_ENC_KEY is set".to_string(),
        KeySource::File(p) => format!("generated key file {} (back it up)", p.display()),
    };
    let totp = match &config.mfa.totp_keys {
        Some(_) => check(
            "totp",
            Status::Ok,
            "TOTP_ENC_KEY is set and opens every stored secret",
        ),
        None => check(
            "totp",
            Status::Off,
            "set TOTP_ENC_KEY (at least 32 characters) to enable TOTP",
        ),
    };
    let sms = match &config.delivery.sms_webhook_url {
        Some(_) => check(
            "sms codes",
            Status::Ok,
            "TESSERA_SMS_WEBHOOK_URL is set (not probed)",
        ),
        None => check(
            "sms codes",
            Status::Off,
            "go to the development log file; set TESSERA_SMS_WEBHOOK_URL",
        ),
    };
    let webhooks = match &config.webhooks.default_url {
        Some(_) => check(
            "webhooks",
            Status::Ok,
            "TOKENS_WEBHOOK_URL is set (deliveries retry until it answers)",
        ),
        None => check(
            "webhooks",
            Status::Off,
            "no default endpoint (TOKENS_WEBHOOK_URL); endpoints can be added through the API",
        ),
    };
    vec![
        check("database", Status::Ok, db),
        listen(config).await,
        check("encryption key", Status::Ok, key),
        totp,
        smtp(config).await,
        sms,
        redis(services).await,
        webhooks,
    ]
}

/// A server already running there is the usual reason it is taken, so that
/// is a warning: `serve` would refuse, `config check` beside it should not.
async fn listen(config: &Config) -> Check {
    match tokio::net::TcpListener::bind(config.listen).await {
        Ok(_) => check("listen", Status::Ok, format!("{} is free", config.listen)),
        Err(e) => check(
            "listen",
            Status::Warn,
            format!(
                "{} cannot be bound now ({}); is a server already running there?",
                config.listen,
                e.kind()
            ),
        ),
    }
}

async fn smtp(config: &Config) -> Check {
    let Some(target) = &config.delivery.smtp else {
        let detail = "codes go to the development log file; set SMTP_URL";
        return check("e-mail codes", Status::Off, detail);
    };
    let address = format!("{}:{}", target.host, target.port);
    let connect = tokio::net::TcpStream::connect(address.as_str());
    match tokio::time::timeout(PROBE_TIMEOUT, connect).await {
        Ok(Ok(_)) => check(
            "e-mail codes",
            Status::Ok,
            format!("SMTP {address} accepts connections"),
        ),
        Ok(Err(e)) => check(
            "e-mail codes",
            Status::Failed,
            format!("SMTP {address}: cannot connect ({})", e.kind()),
        ),
        Err(_) => check(
            "e-mail codes",
            Status::Failed,
            format!("SMTP {address}: no answer in {} s", PROBE_TIMEOUT.as_secs()),
        ),
    }
}

async fn redis(services: &Services) -> Check {
    match services.upstream.health_check().await.redis.state {
        RedisState::NotConfigured => check(
            "redis",
            Status::Off,
            "REDIS_URI is unset: each replica caches upstream tokens on its own",
        ),
        RedisState::Up => check("redis", Status::Ok, "REDIS_URI answers PING"),
        RedisState::Down => check(
            "redis",
            Status::Failed,
            "REDIS_URI does not answer (the cache falls back to memory)",
        ),
    }
}

/// The checks as aligned lines, after the settings.
pub fn print(checks: &[Check]) {
    if checks.is_empty() {
        return;
    }
    println!();
    for c in checks {
        let status = match c.status {
            Status::Ok => "ok",
            Status::Off => "off",
            Status::Warn => "warn",
            Status::Failed => "FAILED",
        };
        println!("{:<16}{status:<8}{}", c.feature, c.detail);
    }
}
