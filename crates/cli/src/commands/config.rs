//! `tessera config check` and `tessera openapi`: what the configuration
//! resolves to (secrets masked) and the API document, without a database.

use std::process::ExitCode;

use tessera_server::Config;

pub fn run(config: Config, cmd: crate::cli::ConfigCommand) -> ExitCode {
    match cmd {
        crate::cli::ConfigCommand::Check => {
            println!("configuration is valid");
            println!("listen          {}", config.listen);
            println!("database        {}", config.database_url_for_logs());
            println!("data_dir        {}", config.data_dir.display());
            println!(
                "encryption key  {}",
                match &config.encryption_key {
                    tessera_server::config::KeySource::Configured(_) =>
                        "configured (TESSERA_ENC_KEY)".to_string(),
                    tessera_server::config::KeySource::File(p) =>
                        format!("key file {}", p.display()),
                }
            );
            let proxies = &config.proxies;
            println!(
                "trusted proxies {}",
                if proxies.legacy_trust_all {
                    "every hop (TESSERA_TRUST_PROXY_HEADERS=true; use TESSERA_TRUSTED_PROXIES)"
                        .to_string()
                } else if proxies.trusted.is_empty() {
                    "none: X-Forwarded-For is ignored".to_string()
                } else {
                    let nets = proxies.trusted.networks().iter();
                    nets.map(|n| n.to_string()).collect::<Vec<_>>().join(", ")
                }
            );
            println!("token prefix    {}", config.tokens.format.prefix());
            println!(
                "scopes          {}",
                config.tokens.scopes.names().collect::<Vec<_>>().join(",")
            );
            let mfa = &config.mfa;
            println!(
                "totp            {}",
                match &mfa.totp_keys {
                    Some(k) => format!(
                        "enabled (TOTP_ENC_KEY set, {} previous key(s)); {}/{} digits, replay record {} s",
                        k.previous.len(),
                        mfa.params.algorithm.as_str(),
                        mfa.params.digits,
                        mfa.replay_ttl.as_secs()
                    ),
                    None => "disabled: set TOTP_ENC_KEY to enable".to_string(),
                }
            );
            let d = &config.delivery;
            println!(
                "e-mail codes    {}",
                match &d.smtp {
                    // Host and port only: the URL may carry a password.
                    Some(t) => format!("SMTP {}:{}", t.host, t.port),
                    None => format!("log file {}", d.log_file.display()),
                }
            );
            println!(
                "sms codes       {}",
                if d.sms_webhook_url.is_some() {
                    "SMS webhook (TESSERA_SMS_WEBHOOK_URL)".to_string()
                } else {
                    format!("log file {}", d.log_file.display())
                }
            );
            ExitCode::SUCCESS
        }
    }
}

pub fn print_openapi() -> ExitCode {
    let doc = tessera_server::openapi();
    println!(
        "{}",
        serde_json::to_string_pretty(&doc).expect("the OpenAPI document serializes")
    );
    ExitCode::SUCCESS
}
