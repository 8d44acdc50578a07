//! `tessera config check` refuses exactly what `tessera serve` refuses, with
//! the same one message, over a table of configurations; and on the default
//! set-up no command but `serve` prints a warning. On SQLite, and for
//! PostgreSQL's own refusal (a schema behind), on PostgreSQL.

mod common;

use std::{
    io::{BufRead, BufReader},
    process::Stdio,
    time::Duration,
};

use common::{Env, Vars};

const KEY: &str = "config-agrees-test-key-0123456789abcdef";

/// What a command did: `None` when it started (or succeeded), else its
/// `error:` line.
type Verdict = Option<String>;

/// The one error line of a refusal; panics unless there is exactly one.
fn error_line(stderr: &str, what: &str) -> String {
    let errors: Vec<&str> = stderr.lines().filter(|l| l.contains("error")).collect();
    assert_eq!(
        errors.len(),
        1,
        "{what}: one message per error, got: {stderr}"
    );
    errors[0].trim().to_string()
}

/// `serve` on port 0 (text logs): started when it logs that it is serving.
fn serve(env: &Env, vars: Vars) -> Verdict {
    let mut child = env
        .cmd_with(vars, &["serve", "--listen", "127.0.0.1:0"])
        .env("TESSERA_LOG_FORMAT", "text")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("tessera serve runs");
    let stderr = child.stderr.take().expect("piped");
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut all = String::new();
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if line.contains("tessera is serving") {
                let _ = tx.send(None);
            }
            all.push_str(&line);
            all.push('\n');
        }
        let _ = tx.send(Some(all));
    });
    let verdict = match rx.recv_timeout(Duration::from_secs(20)) {
        Ok(None) => None,
        Ok(Some(all)) => Some(error_line(&all, "serve")),
        Err(_) => panic!("serve {vars:?} neither started nor refused in 20 s"),
    };
    let _ = child.kill();
    let _ = child.wait();
    verdict
}

fn config_check(env: &Env, vars: Vars) -> (Verdict, String) {
    let out = env
        .cmd_with(vars, &["config", "check"])
        .env("TESSERA_LOG_FORMAT", "text")
        .output()
        .expect("tessera config check runs");
    let stderr = String::from_utf8_lossy(&out.stderr).to_string();
    if out.status.success() {
        (None, stderr)
    } else {
        (Some(error_line(&stderr, "config check")), stderr)
    }
}

fn config_check_refuses_exactly_what_serve_refuses() {
    let dir = tempfile::tempdir().unwrap();
    let bad_upstream = dir.path().join("bad-upstream.toml");
    std::fs::write(
        &bad_upstream,
        "[upstreams.partner]\nkind = \"carrier_pigeon\"\n",
    )
    .unwrap();
    let bad_upstream = bad_upstream.display().to_string();
    let templates = dir.path().join("mail");
    std::fs::create_dir_all(templates.join("en")).unwrap();
    std::fs::write(templates.join("en/password_reset.txt"), "{link} {code}").unwrap();
    let templates = templates.display().to_string();
    // (configuration, whether both start, what the refusal names)
    #[rustfmt::skip]
    let table: &[(Vars, bool, &str)] = &[
        (&[], true, ""),
        (&[("DB_PORT", "5433")], true, ""),
        (&[("DB_PORT", "eighty")], false, "DB_PORT"),
        (&[("DB_DRIVER", "mysql")], false, "DB_DRIVER"),
        (&[("DB_HOST", "a/b")], false, "DB_HOST"),
        (&[("DB_DRIVER", "postgres")], false, "TESSERA_ENC_KEY"),
        (&[("DATABASE_URL", "postgres://postgres@127.0.0.1:1/none"), ("TESSERA_ENC_KEY", KEY)], false, "cannot open the database"),
        (&[("TESSERA_ENC_KEY", "short")], false, "TESSERA_ENC_KEY"),
        (&[("TOTP_ENC_KEY", "too-short")], false, "TOTP_ENC_KEY"),
        (&[("TESSERA_LOG", "info,[span]=debug")], false, "TESSERA_LOG"),
        (&[("TESSERA_TRUST_PROXY_HEADERS", "true"), ("TESSERA_TRUSTED_PROXIES", "10.0.0.0/8")], false, "TESSERA_TRUST"),
        (&[("SMTP_URL", "ftp://mail.example")], false, "SMTP_URL"),
        (&[("REDIS_URI", "http://cache")], false, "REDIS_URI"),
        (&[("TESSERA_TEMPLATES_DIR", templates.as_str())], false, "TESSERA_TEMPLATES_DIR"),
        (&[("TESSERA_DEFAULT_LOCALE", "de")], false, "TESSERA_DEFAULT_LOCALE"),
        (&[("TESSERA_TOKEN_DEFAULT_TTL", "400d")], false, "TESSERA_TOKEN"),
        (&[("TESSERA_ALLOWED_ORIGINS", "https://app.example.com, *")], false, "TESSERA_ALLOWED_ORIGINS: entry 2"),
        (&[("TESSERA_CONFIG", bad_upstream.as_str())], false, "upstreams: unknown variant"),
        (&[("TESSERA_TLS_KEY", "/nonexistent/tls.key")], false, "TESSERA_TLS_KEY"),
        (&[("TESSERA_TLS_CERT", "/nonexistent/tls.pem"), ("TESSERA_TLS_KEY", "/nonexistent/tls.key")], false, "TESSERA_TLS_CERT"),
        (&[("TESSERA_TLS_CERT", bad_upstream.as_str()), ("TESSERA_TLS_KEY", "/nonexistent/tls.key")], false, "TESSERA_TLS_CERT"),
    ];
    for (vars, starts, naming) in table {
        // A fresh data directory per row: an earlier row cannot leave state.
        let env = Env::sqlite();
        let served = serve(&env, vars);
        let (checked, _) = config_check(&env, vars);
        assert_eq!(served.is_none(), *starts, "serve {vars:?}: {served:?}");
        let (Some(served), Some(checked)) = (&served, &checked) else {
            assert_eq!(
                checked, None,
                "config check {vars:?} refused what serve started"
            );
            continue;
        };
        assert!(
            served.contains(naming),
            "serve {vars:?} does not name {naming}: {served}"
        );
        assert_eq!(
            checked, served,
            "config check {vars:?} says something else than serve"
        );
    }
}

/// PostgreSQL's own refusal: a schema behind this version (SQLite migrates
/// itself). Both refuse it with the same line; after `migrate` both start.
async fn an_unmigrated_postgres_database_is_refused_by_both() {
    let env = Env::postgres(tessera_test_support::postgres_schema_url().await, KEY);
    let served = serve(&env, &[]).expect("serve refuses an unmigrated schema");
    assert!(served.contains("tessera migrate"), "{served}");
    assert_eq!(config_check(&env, &[]).0, Some(served));
    env.json(&["migrate", "--json"]);
    assert_eq!(serve(&env, &[]), None);
    assert_eq!(config_check(&env, &[]).0, None);
}

fn a_set_but_ignored_database_setting_is_a_warning_of_config_check() {
    let env = Env::sqlite();
    let (verdict, stderr) = config_check(&env, &[("DB_HOST", "db.internal"), ("DB_PORT", "5433")]);
    assert_eq!(verdict, None, "{stderr}");
    for name in ["DB_HOST", "DB_PORT"] {
        assert!(
            stderr.contains(&format!("warning: {name}: is set but ignored")),
            "{stderr}"
        );
    }
}

/// `--deep` goes further than `serve`'s start-up: an SMTP server that does
/// not answer fails it, by feature name, while plain `config check` passes.
fn a_deep_check_names_what_does_not_answer() {
    let env = Env::sqlite();
    let smtp: Vars = &[("SMTP_URL", "smtp://127.0.0.1:1?tls=none")];
    assert_eq!(config_check(&env, smtp).0, None);
    let out = env.run_with(smtp, &["config", "check", "--deep"]);
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
    );
    assert_eq!(out.status.code(), Some(2), "{stdout}{stderr}");
    assert!(stdout.contains("e-mail codes    FAILED"), "{stdout}");
    assert!(stderr.contains("do not answer: e-mail codes"), "{stderr}");
}

fn no_command_but_serve_warns_on_the_default_set_up() {
    let env = Env::sqlite();
    let text: Vars = &[("TESSERA_LOG_FORMAT", "text")];
    let run = |args: &[&str]| {
        let out = env.run_with(text, args);
        let stderr = String::from_utf8_lossy(&out.stderr).to_string();
        assert!(
            out.status.success() || args[1] == "verify",
            "{args:?}: {stderr}"
        );
        let loud = stderr
            .lines()
            .find(|l| l.contains("WARN") || l.to_lowercase().contains("warning"));
        assert_eq!(loud, None, "tessera {args:?} warned on the default set-up");
        String::from_utf8_lossy(&out.stdout).to_string()
    };
    let secret = run(&[
        "token",
        "create",
        "--name",
        "first",
        "--scopes",
        "admin",
        "--secret-only",
    ]);
    let secret = secret.trim();
    let listed = run(&["token", "list"]);
    let id = listed
        .lines()
        .nth(1)
        .and_then(|l| l.split_whitespace().next())
        .expect("a row");
    run(&["token", "show", id]);
    run(&["token", "verify", secret]);
    run(&["token", "verify", "tsr_nonsense"]);
    // A long issuer: the column that used to overflow (`token:<id>` is 42).
    let issuer = "u_a-very-long-subject-name-0123456789:admin";
    run(&[
        "invite",
        "create",
        "--role",
        "member",
        "--on-behalf-of",
        issuer,
    ]);
    let invites = run(&["invite", "list"]);
    run(&["mfa", "devices", "alice"]);
    run(&["migrate", "--status"]);
    run(&["jobs", "list"]);
    run(&["webhooks", "endpoints", "list"]);
    run(&["upstream", "list"]);
    run(&["config", "check", "--deep"]);
    assert!(invites.lines().count() >= 2, "{invites}");
    for line in listed.lines().chain(invites.lines()) {
        assert!(
            line.chars().count() <= 100,
            "wider than 100 columns: {line}"
        );
    }
}

tessera_test_support::tests! {
    multi_thread: #[needs(Postgres)] an_unmigrated_postgres_database_is_refused_by_both;
    sync: config_check_refuses_exactly_what_serve_refuses,
        a_set_but_ignored_database_setting_is_a_warning_of_config_check,
        a_deep_check_names_what_does_not_answer,
        no_command_but_serve_warns_on_the_default_set_up;
}

fn main() -> std::process::ExitCode {
    tessera_test_support::harness::run(trials())
}
