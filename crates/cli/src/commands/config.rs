//! `tessera config check` and `tessera openapi`: whether `serve` would start
//! with this configuration (the same checks, short of listening), what it
//! resolves to (secrets masked), and the API document.

use std::process::ExitCode;

use serde_json::json;
use tessera_server::{
    config::{KeySource, LogFormat},
    describe,
    http::tls::Tls,
    Config, Services,
};

use super::doctor;
use crate::{cli::ConfigCheckArgs, output};

pub async fn check(config: Config, args: ConfigCheckArgs) -> ExitCode {
    // Exactly what `Server::bind` does before it listens, and the same
    // message when it refuses (`serve` prints `error: cannot start: …`).
    if let Some(tls) = &config.tls {
        if let Err(e) = Tls::load(tls) {
            return refuse(&describe(&e), args.json);
        }
    }
    let services = match Services::open(&config).await {
        Ok(s) => s,
        Err(e) => return refuse(&describe(&e), args.json),
    };
    if let Err(e) = services.check_totp_keys().await {
        return refuse(&describe(&e), args.json);
    }
    let checks = if args.deep {
        doctor::probe(&config, &services).await
    } else {
        Vec::new()
    };
    services.store.close().await;
    let ok = checks.iter().all(|c| c.status != doctor::Status::Failed);
    let settings = settings(&config);
    if args.json {
        output::json(&json!({
            "ok": ok,
            "warnings": config.warnings,
            "settings": settings
                .iter()
                .map(|(name, value)| (name.to_string(), json!(value)))
                .collect::<serde_json::Map<_, _>>(),
            "checks": checks,
        }));
    } else {
        for warning in &config.warnings {
            eprintln!("warning: {warning}");
        }
        for (name, value) in &settings {
            println!("{name:<16}{value}");
        }
        doctor::print(&checks);
        if ok {
            println!("ok: `tessera serve` would start with this configuration");
        } else {
            let failed = checks.iter().filter(|c| c.status == doctor::Status::Failed);
            let names: Vec<&str> = failed.map(|c| c.feature).collect();
            eprintln!(
                "error: `serve` would start, but these do not answer: {}",
                names.join(", ")
            );
        }
    }
    if ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(output::EXIT_ERROR)
    }
}

fn refuse(e: &str, as_json: bool) -> ExitCode {
    if as_json {
        output::json(&json!({ "ok": false, "error": format!("cannot start: {e}") }));
    }
    eprintln!("error: cannot start: {e}");
    ExitCode::from(output::EXIT_ERROR)
}

/// The effective configuration as (name, value) rows, secrets masked.
fn settings(config: &Config) -> Vec<(&'static str, String)> {
    let proxies = &config.proxies;
    let trusted = if proxies.legacy_trust_all {
        "every hop (TESSERA_TRUST_PROXY_HEADERS=true; use TESSERA_TRUSTED_PROXIES)".to_string()
    } else if proxies.trusted.is_empty() {
        "none: X-Forwarded-For is ignored".to_string()
    } else {
        let nets = proxies.trusted.networks().iter();
        nets.map(|n| n.to_string()).collect::<Vec<_>>().join(", ")
    };
    let mfa = &config.mfa;
    let totp = match &mfa.totp_keys {
        Some(k) => format!(
            "enabled (TOTP_ENC_KEY set, {} previous key(s)); {}/{} digits, replay record {} s",
            k.previous.len(),
            mfa.params.algorithm.as_str(),
            mfa.params.digits,
            mfa.replay_ttl.as_secs()
        ),
        None => "disabled: set TOTP_ENC_KEY to enable".to_string(),
    };
    let d = &config.delivery;
    let log_file = || format!("development log file {}", d.log_file.display());
    vec![
        ("listen", config.listen.to_string()),
        ("tls", tls(config)),
        ("database", config.database_url_for_logs()),
        ("data_dir", config.data_dir.display().to_string()),
        ("encryption key", key_source(&config.encryption_key)),
        ("log", log(config)),
        ("trusted proxies", trusted),
        ("browser origins", browser_origins(config)),
        ("token prefix", config.tokens.format.prefix().to_string()),
        (
            "scopes",
            config.tokens.scopes.names().collect::<Vec<_>>().join(","),
        ),
        ("totp", totp),
        // Host and port only: the URL may carry a password.
        (
            "e-mail codes",
            d.smtp
                .as_ref()
                .map_or_else(log_file, |t| format!("SMTP {}:{}", t.host, t.port)),
        ),
        (
            "sms codes",
            d.sms_webhook_url.as_ref().map_or_else(log_file, |_| {
                "SMS webhook (TESSERA_SMS_WEBHOOK_URL)".to_string()
            }),
        ),
        (
            "mail templates",
            format!(
                "{}; default locale {}",
                d.templates_dir.as_ref().map_or_else(
                    || "built-in (en, pt-BR)".to_string(),
                    |dir| format!("built-in with overrides from {}", dir.display())
                ),
                d.default_locale
            ),
        ),
        (
            "redis",
            config.redis_uri.as_ref().map_or_else(
                || "not configured (REDIS_URI)".to_string(),
                |_| "configured (REDIS_URI)".to_string(),
            ),
        ),
        ("rate limits", rate_limits(config)),
    ]
}

/// The route classes' request rates, and where they are counted.
fn rate_limits(config: &Config) -> String {
    let r = &config.rate_limits;
    let show = |rule: &Option<tessera_core::gcra::RateRule>| {
        rule.map_or_else(|| "off".to_string(), |r| r.to_string())
    };
    let shared = if config.redis_uri.is_some() {
        format!("shared in Redis under {}", r.redis_prefix)
    } else {
        "per replica (set REDIS_URI to share them)".to_string()
    };
    format!(
        "login {} per IP, {} per account; refresh {}; invites {}; auth codes {} per subject; {shared}",
        show(&r.login_ip),
        show(&r.login_user),
        show(&r.refresh_ip),
        show(&r.invite_ip),
        show(&r.auth_code_subject),
    )
}

fn tls(config: &Config) -> String {
    match &config.tls {
        None => "off: plain HTTP (set TESSERA_TLS_CERT and TESSERA_TLS_KEY for HTTPS)".to_string(),
        Some(t) => match &t.client_ca {
            None => format!("HTTPS with {}", t.cert.display()),
            Some(ca) => format!(
                "HTTPS with {}; client certificates of {}{}",
                t.cert.display(),
                ca.display(),
                if t.client_crl.is_some() {
                    ", CRL checked"
                } else {
                    ""
                }
            ),
        },
    }
}

/// `TESSERA_ALLOWED_ORIGINS`: who gets CORS and may pass the CSRF guard.
fn browser_origins(config: &Config) -> String {
    let b = &config.browser;
    if b.allowed_origins.is_empty() {
        return "none: browsers cannot log in (set TESSERA_ALLOWED_ORIGINS)".to_string();
    }
    format!(
        "{}; CSRF tokens live {} s",
        b.allowed_origins.join(", "),
        b.csrf_token_ttl.as_secs()
    )
}

fn key_source(key: &KeySource) -> String {
    match key {
        KeySource::Configured(_) => "configured (TESSERA_ENC_KEY)".to_string(),
        KeySource::File(p) => format!("key file {}", p.display()),
    }
}

fn log(config: &Config) -> String {
    let format = match config.log_format {
        LogFormat::Text => "text",
        LogFormat::Json => "json",
    };
    format!("{} ({format})", config.log_level)
}

pub fn print_openapi() -> ExitCode {
    let doc = tessera_server::openapi();
    println!(
        "{}",
        serde_json::to_string_pretty(&doc).expect("the OpenAPI document serializes")
    );
    ExitCode::SUCCESS
}
