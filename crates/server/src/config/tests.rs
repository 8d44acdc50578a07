//! Configuration layering and validation.

use std::{collections::HashMap, time::Duration};

use super::*;

/// The configuration these variables (and TOML `file`, if any) give; the
/// one loader every config test module uses.
pub(super) fn load(env: &[(&str, &str)], file: Option<&str>) -> Result<Config, ConfigError> {
    let env: HashMap<String, String> = env
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    let dir = tempfile::tempdir().unwrap();
    let path = file.map(|text| {
        let p = dir.path().join("tessera.toml");
        std::fs::write(&p, text).unwrap();
        p
    });
    let lookup = move |name: &str| env.get(name).cloned();
    Config::load(&Sources {
        file: path,
        env: &lookup,
        overrides: Overrides::default(),
    })
}

/// The source named by the error that these variables (and no file) cause.
fn rejected_by(env: &[(&str, &str)]) -> String {
    load(env, None).unwrap_err().source_name
}

const KEY: &str = "0123456789abcdef0123456789abcdef";

#[test]
fn defaults_are_the_embedded_sqlite() {
    let c = load(&[], None).unwrap();
    assert_eq!(c.listen.to_string(), "127.0.0.1:8080");
    assert_eq!(c.database_url.expose(), "sqlite://./tessera.db");
    assert!(matches!(c.encryption_key, KeySource::File(_)));
}

#[test]
fn db_parts_build_a_postgres_url_with_encoding() {
    let c = load(
        &[
            ("DB_DRIVER", "postgres"),
            ("DB_HOST", "db.internal"),
            ("DB_PORT", "6543"),
            ("DB_USERNAME", "app"),
            ("DB_PASSWORD", "p@ss:w/rd"),
            ("DB_DATABASE", "tokens"),
            ("TESSERA_ENC_KEY", KEY),
        ],
        None,
    )
    .unwrap();
    assert_eq!(
        c.database_url.expose(),
        "postgres://app:p%40ss%3Aw%2Frd@db.internal:6543/tokens"
    );
    assert_eq!(
        c.database_url_for_logs(),
        "postgres://app:***@db.internal:6543/tokens"
    );
    assert!(!format!("{c:?}").contains("p@ss"));
}

#[test]
fn database_url_wins_over_db_parts() {
    let c = load(
        &[
            ("DATABASE_URL", "sqlite:///tmp/x.db"),
            ("DB_DRIVER", "postgres"),
        ],
        None,
    )
    .unwrap();
    assert_eq!(c.database_url.expose(), "sqlite:///tmp/x.db");
}

#[test]
fn bad_values_name_the_variable() {
    // (variables, the source the error must name)
    let cases: &[(&[(&str, &str)], &str)] = &[
        (&[("DB_DRIVER", "postgres"), ("DB_PORT", "http")], "DB_PORT"),
        (&[("DB_DRIVER", "mysql")], "DB_DRIVER"),
        (&[("TESSERA_ENC_KEY", "short")], "TESSERA_ENC_KEY"),
        (&[("TESSERA_LISTEN", "nowhere")], "TESSERA_LISTEN"),
        // tracing-subscriber's parser panics on this one (a fuzz finding).
        (&[("TESSERA_LOG", "fsse\u{fffd}ra=debug")], "TESSERA_LOG"),
        (&[("TESSERA_LOG", "info,\ttessera=debug")], "TESSERA_LOG"),
        // A span-field regex can take exponential time to compile.
        (
            &[("TESSERA_LOG", "t[s{f=/(a|b)*a(a|b){20}/}]=info")],
            "TESSERA_LOG",
        ),
        (&[("DATABASE_URL", "mysql://x")], "DATABASE_URL"),
        (
            &[("TESSERA_TOKEN_MAX_TTL", "forever")],
            "TESSERA_TOKEN_MAX_TTL",
        ),
        (&[("DB_DRIVER", "postgres")], "TESSERA_ENC_KEY"),
    ];
    for (env, source) in cases {
        assert_eq!(rejected_by(env), *source, "{env:?}");
    }
}

#[test]
fn env_overrides_file_and_file_overrides_defaults() {
    let file = "listen = \"0.0.0.0:9000\"\n[tokens]\nscopes = [\"read\", \"billing:read\"]\ndefault_ttl = \"30d\"\n";
    let c = load(&[], Some(file)).unwrap();
    assert_eq!(c.listen.to_string(), "0.0.0.0:9000");
    assert!(c.tokens.scopes.names().any(|s| s == "billing:read"));
    assert_eq!(c.tokens.expiry.default_lifetime, chrono::Duration::days(30));
    let c = load(&[("TESSERA_LISTEN", "127.0.0.1:9100")], Some(file)).unwrap();
    assert_eq!(c.listen.to_string(), "127.0.0.1:9100");
}

#[test]
fn unknown_file_keys_are_errors_naming_the_key() {
    let e = load(&[], Some("[tokens]\nprefixx = \"a_\"\n")).unwrap_err();
    assert!(e.source_name.contains("tokens.prefixx"), "{e}");
    let e = load(&[], Some("[tokens]\ndefault_ttl = \"400d\"\n")).unwrap_err();
    assert!(e.source_name.contains("tokens.default_ttl"), "{e}");
}

#[test]
fn upstreams_table_is_passed_through() {
    let c = load(&[], Some("[upstreams.cpj]\nkind = \"json_login\"\n")).unwrap();
    assert!(c.upstreams.is_some());
}

#[test]
fn invite_settings_from_file_and_env() {
    let file = "[invites]\ndaily_quota = 3\n[invites.policy]\nadmin = [\"*\"]\ncoordinator = [\"member\"]\n";
    let c = load(&[], Some(file)).unwrap();
    assert_eq!(c.invites.daily_quota, 3);
    assert!(c.invites.policy.allows("coordinator", "member"));
    assert!(!c.invites.policy.allows("coordinator", "admin"));
    let c = load(
        &[("TESSERA_INVITE_POLICY", "admin=*;lead=member")],
        Some(file),
    )
    .unwrap();
    assert!(c.invites.policy.allows("lead", "member"));
    assert!(!c.invites.policy.allows("coordinator", "member"));
    assert_eq!(
        rejected_by(&[("TESSERA_INVITE_POLICY", "Admin")]),
        "TESSERA_INVITE_POLICY"
    );
    assert_eq!(
        rejected_by(&[("TESSERA_INVITE_DAILY_QUOTA", "-1")]),
        "TESSERA_INVITE_DAILY_QUOTA"
    );
}

#[test]
fn webhook_and_job_settings() {
    let c = load(&[], None).unwrap();
    assert_eq!(c.webhooks.retry.delays.len(), 7);
    assert!(c.webhooks.default_url.is_none());
    assert!(
        !c.webhooks.allow_private_networks,
        "SSRF rule on by default"
    );
    assert_eq!(c.jobs.webhook_event_retention, chrono::Duration::days(30));
    let c = load(
        &[
            ("TOKENS_WEBHOOK_URL", "https://hooks.example.com/t"),
            ("TESSERA_WEBHOOK_RETRY_SCHEDULE", "1s, 2s"),
            ("TESSERA_JOB_PURGE_OLD_LOGS_INTERVAL", "6h"),
            ("TESSERA_WEBHOOKS_ALLOW_PRIVATE_NETWORKS", "true"),
            ("TESSERA_WEBHOOK_EVENT_RETENTION", "7d"),
        ],
        None,
    )
    .unwrap();
    assert_eq!(
        c.webhooks.default_url.as_deref(),
        Some("https://hooks.example.com/t")
    );
    assert_eq!(
        c.webhooks.retry.delays,
        vec![Duration::from_secs(1), Duration::from_secs(2)]
    );
    assert_eq!(c.jobs.purge_old_logs, Duration::from_secs(6 * 3600));
    assert!(c.webhooks.allow_private_networks);
    assert_eq!(c.jobs.webhook_event_retention, chrono::Duration::days(7));
    for (var, value) in [
        ("TOKENS_WEBHOOK_URL", "ftp://x"),
        ("TOKENS_WEBHOOK_SECRET", "plain"),
        ("TESSERA_WEBHOOK_RETRY_SCHEDULE", "soon"),
        ("TESSERA_AUDIT_RETENTION", "30d"),
        ("TESSERA_JOBS_ENABLED", "maybe"),
        ("TESSERA_WEBHOOKS_ALLOW_PRIVATE_NETWORKS", "maybe"),
        ("TESSERA_WEBHOOK_EVENT_RETENTION", "1h"),
    ] {
        assert_eq!(load(&[(var, value)], None).unwrap_err().source_name, var);
    }
}

#[test]
fn redis_uri_is_read_and_checked() {
    let c = load(&[("REDIS_URI", "redis://:pw@cache:6379/2")], None).unwrap();
    assert_eq!(
        c.redis_uri.as_ref().unwrap().expose(),
        "redis://:pw@cache:6379/2"
    );
    assert!(!format!("{c:?}").contains(":pw@"));
    assert_eq!(
        load(&[("REDIS_URI", "http://x")], None)
            .unwrap_err()
            .source_name,
        "REDIS_URI"
    );
}

#[test]
fn second_factor_settings_name_the_variable() {
    let long = "k".repeat(32);
    for (name, value) in [
        ("TOTP_ENC_KEY", "too-short"),
        ("TOTP_REPLAY_TTL", "59"),
        ("TOTP_REPLAY_TTL", "3601"),
        ("TOTP_REPLAY_TTL", "soon"),
        ("TESSERA_TOTP_ALGORITHM", "MD5"),
        ("TESSERA_TOTP_DIGITS", "7"),
        ("TESSERA_AUTH_CODE_DIGITS", "9"),
        ("TESSERA_AUTH_CODE_TTL", "2h"),
        ("TESSERA_MFA_LOCKOUT", "100000000d"),
        ("TESSERA_AUTH_CODE_LIMIT_WINDOW", "2d"),
        ("TESSERA_TOTP_ISSUER", "Acme\u{7}"),
        ("SMTP_URL", "http://mail.example.com"),
        ("SMTP_FROM", "nobody"),
        ("TESSERA_SMS_WEBHOOK_URL", "ftp://sms"),
    ] {
        let e = load(&[("TOTP_ENC_KEY", &long), (name, value)], None).unwrap_err();
        assert_eq!(e.source_name, name, "{name}={value}: {e}");
    }
    // Previous keys without a current one are a mistake.
    assert_eq!(
        rejected_by(&[("TOTP_ENC_KEY_PREVIOUS", &long)]),
        "TOTP_ENC_KEY_PREVIOUS"
    );
    // The SMTP password never appears in the error.
    let e = load(&[("SMTP_URL", "smtp://u:hunter2@mail.example.com/x")], None).unwrap_err();
    assert!(!e.to_string().contains("hunter2"), "{e}");
}

#[test]
fn second_factor_defaults_and_legacy_names() {
    let c = load(&[], None).unwrap();
    assert!(c.mfa.totp_keys.is_none());
    assert_eq!(c.mfa.replay_ttl, Duration::from_secs(300));
    assert_eq!(c.mfa.lockout.max_failures, 5);
    assert_eq!(c.mfa.lockout.lockout, chrono::Duration::minutes(5));
    assert_eq!(c.mfa.auth_codes.lifetime, chrono::Duration::minutes(10));
    assert_eq!(c.mfa.auth_codes.max_attempts, 5);
    assert_eq!(c.mfa.auth_codes.digits, 6);
    assert!(c.delivery.smtp.is_none());
    assert!(c.delivery.log_file.ends_with("messages.log"));
    let key = "k".repeat(40);
    let c = load(
        &[
            ("TOTP_ENC_KEY", &key),
            ("TOTP_REPLAY_TTL", "3600"),
            ("SMTP_URL", "smtps://user:pw@mail.example.com"),
        ],
        None,
    )
    .unwrap();
    assert!(c.mfa.totp_keys.is_some());
    assert_eq!(c.mfa.replay_ttl, Duration::from_secs(3600));
    assert_eq!(c.delivery.smtp.unwrap().port, 465);
    let c = load(&[], Some("[mfa]\nreplay_ttl = \"2m\"\n")).unwrap();
    assert_eq!(c.mfa.replay_ttl, Duration::from_secs(120));
}

#[test]
fn trusted_proxies_from_env_file_and_the_legacy_flag() {
    let ip = |s: &str| s.parse::<std::net::IpAddr>().unwrap();
    // Default: nobody is trusted.
    let c = load(&[], None).unwrap();
    assert!(c.proxies.trusted.is_empty());
    assert!(!c.proxies.legacy_trust_all);
    let c = load(
        &[("TESSERA_TRUSTED_PROXIES", "10.0.0.0/8, ::1 192.0.2.7")],
        None,
    )
    .unwrap();
    assert!(c.proxies.trusted.contains(ip("10.1.2.3")));
    assert!(c.proxies.trusted.contains(ip("::1")));
    assert!(c.proxies.trusted.contains(ip("192.0.2.7")));
    assert!(!c.proxies.trusted.contains(ip("192.0.2.8")));
    let c = load(
        &[],
        Some("[http]\ntrusted_proxies = [\"172.16.0.0/12\", \"2001:db8::/32\"]\n"),
    )
    .unwrap();
    assert!(c.proxies.trusted.contains(ip("172.20.0.1")));
    assert!(c.proxies.trusted.contains(ip("2001:db8::5")));
    // The legacy flag keeps working and means "trust every hop".
    let c = load(&[("TESSERA_TRUST_PROXY_HEADERS", "true")], None).unwrap();
    assert!(c.proxies.legacy_trust_all);
    assert!(c.proxies.trusted.contains(ip("198.51.100.1")));
    assert!(c.proxies.trusted.contains(ip("2001:db8::1")));
    let c = load(&[("TESSERA_TRUST_PROXY_HEADERS", "false")], None).unwrap();
    assert!(c.proxies.trusted.is_empty());
}

#[test]
fn bad_trusted_proxies_stop_start_up_naming_the_variable() {
    for bad in [
        "10.0.0.0/33",
        "localhost",
        "10.0.0.1:8080",
        "10.0.0.0/8, nonsense",
    ] {
        let e = load(&[("TESSERA_TRUSTED_PROXIES", bad)], None).unwrap_err();
        assert_eq!(e.source_name, "TESSERA_TRUSTED_PROXIES", "{bad}");
        assert!(e.message.contains("is not an IP address"), "{}", e.message);
    }
    let e = load(&[], Some("[http]\ntrusted_proxies = [\"10.0.0.0/99\"]\n")).unwrap_err();
    assert!(
        e.source_name.starts_with("http.trusted_proxies in"),
        "{}",
        e.source_name
    );
    // Both the old and the new setting: refused, naming both.
    let e = load(
        &[
            ("TESSERA_TRUSTED_PROXIES", "10.0.0.0/8"),
            ("TESSERA_TRUST_PROXY_HEADERS", "true"),
        ],
        None,
    )
    .unwrap_err();
    assert_eq!(e.source_name, "TESSERA_TRUST_PROXY_HEADERS");
    assert!(
        e.message.contains("TESSERA_TRUSTED_PROXIES"),
        "{}",
        e.message
    );
}

#[test]
fn verify_failure_limit_is_read_and_checked() {
    assert_eq!(
        load(&[], None)
            .unwrap()
            .tokens
            .verify_failure_limit_per_minute,
        60
    );
    let c = load(&[("TESSERA_VERIFY_FAILURE_LIMIT_PER_MINUTE", "0")], None).unwrap();
    assert_eq!(c.tokens.verify_failure_limit_per_minute, 0, "0 disables");
    let c = load(
        &[],
        Some("[tokens]\nverify_failure_limit_per_minute = 500\n"),
    )
    .unwrap();
    assert_eq!(c.tokens.verify_failure_limit_per_minute, 500);
    for bad in ["-1", "lots", "2000000"] {
        assert_eq!(
            rejected_by(&[("TESSERA_VERIFY_FAILURE_LIMIT_PER_MINUTE", bad)]),
            "TESSERA_VERIFY_FAILURE_LIMIT_PER_MINUTE"
        );
    }
}

#[test]
fn connection_settings_have_safe_defaults_and_name_the_variable() {
    let c = load(&[], None).unwrap().connections;
    assert_eq!(c.header_timeout, Duration::from_secs(10));
    assert_eq!(c.body_timeout, Duration::from_secs(30));
    assert_eq!(c.idle_timeout, Duration::from_secs(60));
    assert_eq!(c.max_connections, None);

    let c = load(
        &[
            ("TESSERA_HTTP_HEADER_TIMEOUT", "2s"),
            ("TESSERA_HTTP_MAX_CONNECTIONS", "500"),
        ],
        Some("[http]\nheader_timeout = \"5s\"\nbody_timeout = \"7s\"\nidle_timeout = \"90s\"\n"),
    )
    .unwrap()
    .connections;
    assert_eq!(c.header_timeout, Duration::from_secs(2));
    assert_eq!(c.body_timeout, Duration::from_secs(7));
    assert_eq!(c.idle_timeout, Duration::from_secs(90));
    assert_eq!(c.max_connections, Some(500));

    for (name, value) in [
        ("TESSERA_HTTP_HEADER_TIMEOUT", "0s"),
        ("TESSERA_HTTP_HEADER_TIMEOUT", "soon"),
        ("TESSERA_HTTP_BODY_TIMEOUT", "2h"),
        ("TESSERA_HTTP_IDLE_TIMEOUT", "-1s"),
        ("TESSERA_HTTP_MAX_CONNECTIONS", "0"),
        ("TESSERA_HTTP_MAX_CONNECTIONS", "many"),
    ] {
        assert_eq!(rejected_by(&[(name, value)]), name, "{name}={value}");
    }
}

#[test]
fn tls_settings_come_in_pairs_and_name_the_variable() {
    assert!(load(&[], None).unwrap().tls.is_none());
    let pair = [
        ("TESSERA_TLS_CERT", "/c.pem"),
        ("TESSERA_TLS_KEY", "/k.pem"),
    ];
    let t = load(&pair, None).unwrap().tls.unwrap();
    assert_eq!(t.cert.to_str(), Some("/c.pem"));
    assert_eq!(t.handshake_timeout, Duration::from_secs(10));
    assert!(t.client_ca.is_none() && t.client_crl.is_none());
    let file = "[tls]\ncert = \"/c.pem\"\nkey = \"/k.pem\"\nclient_ca = \"/ca.pem\"\n\
                client_crl = \"/ca.crl\"\nhandshake_timeout = \"3s\"\n";
    let t = load(&[], Some(file)).unwrap().tls.unwrap();
    assert_eq!(t.client_crl.unwrap().to_str(), Some("/ca.crl"));
    assert_eq!(t.handshake_timeout, Duration::from_secs(3));

    let with = |extra: (&'static str, &'static str)| [pair[0], pair[1], extra];
    #[rustfmt::skip]
    let refused: [(&[(&str, &str)], &str); 6] = [
        (&[pair[0]], "TESSERA_TLS_CERT"),
        (&[pair[1]], "TESSERA_TLS_KEY"),
        (&[("TESSERA_TLS_CLIENT_CA", "/ca.pem")], "TESSERA_TLS_CLIENT_CA"),
        (&[("TESSERA_TLS_CLIENT_CRL", "/ca.crl")], "TESSERA_TLS_CLIENT_CRL"),
        (&with(("TESSERA_TLS_CLIENT_CRL", "/ca.crl")), "TESSERA_TLS_CLIENT_CRL"),
        (&with(("TESSERA_TLS_HANDSHAKE_TIMEOUT", "2m")), "TESSERA_TLS_HANDSHAKE_TIMEOUT"),
    ];
    for (env, name) in refused {
        assert_eq!(rejected_by(env), name, "{env:?}");
    }
}

#[test]
fn allowed_cns_without_a_client_ca_warn_and_advertise_nothing() {
    let cns = ("INTROSPECTION_MTLS_ALLOWED_CNS", "gateway.internal");
    let c = load(&[cns], None).unwrap();
    assert!(!c.clients.client_certificates);
    assert!(
        c.warnings
            .iter()
            .any(|w| w.contains("INTROSPECTION_MTLS_ALLOWED_CNS")
                && w.contains("TESSERA_TLS_CLIENT_CA")),
        "{:?}",
        c.warnings
    );
    let with_ca = [
        ("TESSERA_TLS_CERT", "/c.pem"),
        ("TESSERA_TLS_KEY", "/k.pem"),
        ("TESSERA_TLS_CLIENT_CA", "/ca.pem"),
        cns,
    ];
    let c = load(&with_ca, None).unwrap();
    assert!(c.clients.client_certificates);
    assert!(c.warnings.is_empty(), "{:?}", c.warnings);
}

#[test]
fn link_settings_refuse_bad_values_naming_the_variable() {
    for value in ["3601", "abc", "-1", "0"] {
        assert_eq!(
            rejected_by(&[("RESET_TOKEN_TTL", value)]),
            "RESET_TOKEN_TTL"
        );
        assert_eq!(
            rejected_by(&[("EMAIL_VERIFICATION_TOKEN_TTL", value)]),
            "EMAIL_VERIFICATION_TOKEN_TTL"
        );
    }
    for (name, value) in [
        ("PASSWORD_RESET_URL", "http://app.example.com/reset"),
        ("EMAIL_VERIFICATION_URL", "/verify"),
        ("TESSERA_SEND_VERIFICATION_ON_SIGNUP", "maybe"),
        ("TESSERA_LINK_REQUESTS_PER_IP", "-5"),
    ] {
        assert_eq!(rejected_by(&[(name, value)]), name);
    }
}

#[test]
fn link_settings_default_from_the_verified_email_rule() {
    let c = load(&[("RESET_TOKEN_TTL", "3600")], None).unwrap();
    assert_eq!(c.links.reset_ttl, chrono::Duration::seconds(3600));
    assert_eq!(c.links.verification_ttl, chrono::Duration::seconds(900));
    assert!(!c.links.send_verification_on_signup);
    assert!(c.links.defaults_in_use()[0].starts_with("PASSWORD_RESET_URL"));
    let c = load(
        &[
            ("AUTH_REQUIRE_VERIFIED_EMAIL", "true"),
            ("PASSWORD_RESET_URL", "https://app.example/reset"),
            ("EMAIL_VERIFICATION_URL", "https://app.example/verify"),
        ],
        None,
    )
    .unwrap();
    assert!(c.links.send_verification_on_signup);
    assert!(c.links.defaults_in_use().is_empty());
}

#[test]
fn message_templates_are_checked_at_load_naming_the_setting() {
    let c = load(&[], None).unwrap();
    assert_eq!(c.delivery.templates_dir, None);
    assert_eq!(c.delivery.default_locale, "en");
    assert_eq!(
        rejected_by(&[("TESSERA_DEFAULT_LOCALE", "de")]),
        "TESSERA_DEFAULT_LOCALE"
    );
    assert_eq!(
        rejected_by(&[("TESSERA_TEMPLATES_DIR", "/nonexistent/tessera-mail")]),
        "TESSERA_TEMPLATES_DIR"
    );

    // A new language, and the default set to it, from the variables or the file.
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("es")).unwrap();
    for ext in ["subject", "txt", "html"] {
        let file = dir.path().join(format!("es/password_reset.{ext}"));
        std::fs::write(file, "Restablecer: {link}\n").unwrap();
    }
    let d = dir.path().to_str().unwrap();
    let env = [
        ("TESSERA_TEMPLATES_DIR", d),
        ("TESSERA_DEFAULT_LOCALE", "es"),
    ];
    let c = load(&env, None).unwrap();
    assert_eq!(c.delivery.templates_dir.as_deref(), Some(dir.path()));
    assert_eq!(c.delivery.default_locale, "es");
    let file = format!("[delivery]\ntemplates_dir = {d:?}\ndefault_locale = \"es\"\n");
    assert_eq!(
        load(&[], Some(&file)).unwrap().delivery.default_locale,
        "es"
    );

    // A placeholder the kind lacks: the setting and the file are named.
    std::fs::write(dir.path().join("es/password_reset.txt"), "{code}").unwrap();
    let e = load(&env, None).unwrap_err();
    assert_eq!(e.source_name, "TESSERA_TEMPLATES_DIR");
    assert!(e.message.contains("es/password_reset.txt"), "{e}");
    let e = load(&[], Some(&file)).unwrap_err();
    assert!(
        e.source_name.starts_with("delivery.templates_dir in "),
        "{e}"
    );
}

#[test]
fn rate_limit_classes_are_read_and_checked() {
    let d = load(&[], None).unwrap();
    let show = |r: &Option<tessera_core::gcra::RateRule>| r.map(|r| r.to_string());
    assert_eq!(show(&d.rate_limits.login_ip).as_deref(), Some("60/1m"));
    assert_eq!(show(&d.links.requests_per_ip).as_deref(), Some("10/15m"));
    assert_eq!(d.rate_limits.redis_prefix, "tessera:rl:");
    let env = [
        ("TESSERA_RATE_LIMIT_LOGIN", "20/1m"),
        ("TESSERA_RATE_LIMIT_REFRESH", "off"),
        ("TESSERA_RATE_LIMIT_REFRESH_USER", "5/1m"),
        ("TESSERA_LINK_REQUESTS_PER_IP", "5"),
        ("TESSERA_LINK_CONFIRMS_PER_IP", "3/1h,burst=6"),
    ];
    let toml = "[rate_limits]\nlogin_user = \"100/1h\"\nredis_prefix = \"eu:rl:\"\n";
    let c = load(&env, Some(toml)).unwrap();
    assert_eq!(show(&c.rate_limits.login_ip).as_deref(), Some("20/1m"));
    assert_eq!(show(&c.rate_limits.login_user).as_deref(), Some("100/1h"));
    assert_eq!(c.rate_limits.refresh_ip, None, "off");
    assert_eq!(show(&c.rate_limits.refresh_user).as_deref(), Some("5/1m"));
    assert_eq!(show(&d.rate_limits.refresh_user).as_deref(), Some("60/1m"));
    assert_eq!(c.rate_limits.redis_prefix, "eu:rl:");
    assert_eq!(show(&c.links.requests_per_ip).as_deref(), Some("5/15m"));
    assert_eq!(
        show(&c.links.confirms_per_ip).as_deref(),
        Some("3/1h,burst=6")
    );
    for (name, bad) in [
        ("TESSERA_RATE_LIMIT_LOGIN", "20"),
        ("TESSERA_RATE_LIMIT_LOGIN_USER", "20/1 minute"),
        ("TESSERA_RATE_LIMIT_INVITES", "0/1m"),
        ("TESSERA_RATE_LIMIT_AUTH_CODES", "5/1m,burst=0"),
        ("TESSERA_RATE_LIMIT_REDIS_PREFIX", "has space"),
        ("TESSERA_LINK_REQUESTS_PER_IP", "-1"),
    ] {
        assert_eq!(rejected_by(&[(name, bad)]), name, "{bad}");
    }
    let e = load(&[], Some("[rate_limits]\nlogin = \"lots\"\n")).unwrap_err();
    assert!(
        e.source_name.starts_with("rate_limits.login in "),
        "{}",
        e.source_name
    );
    assert!(e.message.contains("N/PERIOD"), "{}", e.message);
}
