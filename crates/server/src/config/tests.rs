//! Configuration layering and validation.

use std::{collections::HashMap, time::Duration};

use super::*;

fn load(env: &[(&str, &str)], file: Option<&str>) -> Result<Config, ConfigError> {
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
