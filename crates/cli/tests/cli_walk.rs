//! The binary as an operator uses it: admin commands on the database, then
//! `tessera serve` answering over HTTP for what the CLI created. On SQLite
//! (zero set-up) and on PostgreSQL (explicit `tessera migrate`).

#[path = "cli_walk/clients.rs"]
mod clients;
mod common;
#[path = "cli_walk/controls.rs"]
mod controls;
#[path = "cli_walk/people.rs"]
mod people;

use std::process::{Command, Stdio};

use common::{Env, BIN};
use serde_json::Value;
use tessera_test_support::postgres_schema_url;

const KEY: &str = "cli-test-key-0123456789abcdef0123456789";
/// A well-formed id that names nothing.
const UNKNOWN_ID: &str = "01a20c4b-0000-7000-8000-000000000000";

async fn walk(env: Env) {
    let created = env.json(&[
        "token",
        "create",
        "--name",
        "deploy-bot",
        "--scopes",
        "read,write",
        "--owner",
        "ci",
        "--expires-in",
        "30d",
        "--metadata",
        r#"{"team":"infra"}"#,
        "--json",
    ]);
    let id = created["token"]["id"].as_str().unwrap().to_string();
    let secret = created["secret"].as_str().unwrap().to_string();
    assert_eq!(created["token"]["state"], "active");
    assert_eq!(created["token"]["metadata"]["team"], "infra");

    // verify: exit 0 valid, 1 invalid.
    assert!(env.run(&["token", "verify", &secret]).status.success());
    assert_eq!(
        env.run(&["token", "verify", "tsr_nope"]).status.code(),
        Some(1)
    );
    let mut child = env
        .cmd(&["token", "verify", "-", "--json"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    std::io::Write::write_all(child.stdin.as_mut().unwrap(), secret.as_bytes()).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success());
    assert_eq!(
        serde_json::from_slice::<Value>(&out.stdout).unwrap()["valid"],
        true
    );

    // The server answers for what the CLI created.
    let mut server = env.serve().await;
    let base = server.base.clone();
    let http = reqwest::Client::new();
    let v: Value = http
        .post(format!("{base}/v1/tokens/verify"))
        .json(&serde_json::json!({ "token": secret }))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(v["valid"], true);
    assert_eq!(v["token"]["id"], id.as_str());

    let shown = env.json(&["token", "show", &id, "--json"]);
    assert_eq!(shown["name"], "deploy-bot");
    let rotated = env.json(&["token", "rotate", &id, "--grace", "1h", "--json"]);
    let new_secret = rotated["secret"].as_str().unwrap().to_string();
    assert!(
        env.run(&["token", "verify", &secret]).status.success(),
        "old secret in grace"
    );
    assert!(env.run(&["token", "verify", &new_secret]).status.success());
    let revoked = env.json(&["token", "revoke", &id, "--reason", "done", "--json"]);
    assert_eq!(revoked["state"], "revoked");
    assert_eq!(
        env.run(&["token", "verify", &new_secret]).status.code(),
        Some(1)
    );
    let purged = env.json(&["token", "revoke", &id, "--purge", "--json"]);
    assert_eq!(purged["state"], "purged");
    let listed = env.json(&["token", "list", "--state", "purged", "--json"]);
    assert_eq!(listed["items"].as_array().unwrap().len(), 1);
    assert!(env.json(&["token", "delete", &id, "--json"])["deleted_at"].is_string());
    assert_eq!(
        env.json(&["token", "list", "--json"])["items"]
            .as_array()
            .unwrap()
            .len(),
        0
    );
    assert!(env.json(&["token", "restore", &id, "--json"])["deleted_at"].is_null());

    // Errors: exit 2, a problem object with --json, and a readable line on stderr.
    let out = env.run(&["token", "show", UNKNOWN_ID, "--json"]);
    assert_eq!(out.status.code(), Some(2));
    let problem: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(problem["code"], "token_not_found");
    let out = env.run(&["token", "create", "--name", "x", "--scopes", "root"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("unknown scope"));

    audit_walk(&env, &base).await;
    server.kill();
}

/// `tessera audit list|show`: what the server recorded, client details
/// opened with the same keys, and the CLI's own reads on record.
async fn audit_walk(env: &Env, base: &str) {
    let admin = env.json(&[
        "token", "create", "--name", "auditor", "--scopes", "admin", "--json",
    ]);
    let admin_id = admin["token"]["id"].as_str().unwrap();
    let r = reqwest::Client::new()
        .post(format!("{base}/v1/tokens"))
        .bearer_auth(admin["secret"].as_str().unwrap())
        .header("user-agent", "cli-walk/1")
        .json(&serde_json::json!({"name": "made-over-http"}))
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success());
    let actor = format!("token:{admin_id}");
    let listed = env.json(&[
        "audit",
        "list",
        "--actor",
        &actor,
        "--action",
        "token.create",
        "--json",
    ]);
    let items = listed["items"].as_array().unwrap();
    assert_eq!(items.len(), 1, "{listed}");
    assert_eq!(items[0]["ip"], "127.0.0.1");
    assert_eq!(items[0]["user_agent"], "cli-walk/1");
    let id = items[0]["id"].as_str().unwrap();
    let shown = env.json(&["audit", "show", id, "--json"]);
    assert_eq!(shown, items[0]);
    let text = env.run(&["audit", "show", id]);
    assert!(String::from_utf8_lossy(&text.stdout).contains("127.0.0.1"));
    let table = env.run(&["audit", "list", "--limit", "2"]);
    let table = String::from_utf8_lossy(&table.stdout).to_string();
    assert!(table.contains("more: --cursor"), "{table}");
    assert!(table.lines().all(|l| l.chars().count() <= 100), "{table}");

    // The CLI's own reads, newest first.
    let reads = env.json(&[
        "audit",
        "list",
        "--action",
        "audit.read",
        "--actor",
        "cli",
        "--json",
    ]);
    let reads = reads["items"].as_array().unwrap();
    assert_eq!(reads.len(), 4, "{reads:?}");
    assert_eq!(reads[1]["target_id"], id);
    assert_eq!(reads[0]["details"]["filters"]["limit"], 2);

    // A filter that cannot be used: exit 2, the API's problem.
    let out = env.run(&["audit", "list", "--outcome", "maybe", "--json"]);
    assert_eq!(out.status.code(), Some(2));
    let problem: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(problem["code"], "invalid_query");
    assert_eq!(problem["field"], "outcome");
    let out = env.run(&["audit", "show", UNKNOWN_ID, "--json"]);
    assert_eq!(out.status.code(), Some(2));
}

async fn walk_on_sqlite_with_no_setup() {
    let env = Env::sqlite();
    walk(env).await;
}

async fn walk_on_postgres_after_migrate() {
    let url = postgres_schema_url().await;
    let env = Env::postgres(url, KEY);
    // Before `migrate`, commands refuse and say what to do.
    let out = env.run(&["token", "list"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("tessera migrate"));
    let m = env.json(&["migrate", "--json"]);
    let status = env.json(&["migrate", "--status", "--json"]);
    assert_eq!(
        m["applied_now"], status["applied"],
        "a fresh database gets every migration"
    );
    assert!(!status["applied"].as_array().unwrap().is_empty());
    assert_eq!(
        env.json(&["migrate", "--status", "--json"])["pending"],
        serde_json::json!([])
    );
    walk(env).await;
}

fn bad_configuration_names_the_variable() {
    let env = Env::sqlite();
    let out = env
        .cmd(&["token", "list"])
        .env("DB_DRIVER", "postgres")
        .env("DB_PORT", "eighty")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("DB_PORT"));
    let out = env
        .cmd(&["serve"])
        .env("TESSERA_ENC_KEY", "short")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("TESSERA_ENC_KEY"));
}

fn help_explains_every_command() {
    for args in [
        vec!["--help"],
        vec!["token", "--help"],
        vec!["token", "create", "--help"],
        vec!["serve", "--help"],
        vec!["migrate", "--help"],
        vec!["audit", "list", "--help"],
    ] {
        let out = Command::new(BIN).args(&args).output().unwrap();
        assert!(out.status.success());
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(text.len() > 200, "{args:?} help is too thin: {text}");
    }
}

fn invite_walk(env: &Env) {
    let created = env.json(&[
        "invite",
        "create",
        "--role",
        "member",
        "--scopes",
        "read",
        "--max-uses",
        "2",
        "--json",
    ]);
    let id = created["invite"]["id"].as_str().unwrap().to_string();
    let code = created["code"].as_str().unwrap().to_string();
    assert!(env.run(&["invite", "validate", &code]).status.success());
    assert_eq!(
        env.run(&["invite", "validate", "AAAA-BBBB-CCCC-DDDD"])
            .status
            .code(),
        Some(1)
    );
    let redeemed = env.json(&[
        "invite",
        "redeem",
        &code.to_lowercase(),
        "--subject",
        "user-1",
        "--json",
    ]);
    assert_eq!(redeemed["uses_left"], 1);
    assert_eq!(env.json(&["invite", "show", &id, "--json"])["uses"], 1);
    assert_eq!(
        env.json(&["invite", "revoke", &id, "--json"])["state"],
        "revoked"
    );
    let out = env.run(&["invite", "validate", &code, "--json"]);
    assert_eq!(out.status.code(), Some(1));
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v, serde_json::json!({"valid": false, "code": "REVOKED"}));
    assert_eq!(
        env.json(&["invite", "list", "--state", "revoked", "--json"])["items"]
            .as_array()
            .unwrap()
            .len(),
        1
    );
    let out = env.run(&[
        "invite",
        "create",
        "--role",
        "member",
        "--on-behalf-of",
        "u-1:member",
    ]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("invite_not_allowed"));
}

fn invites_on_sqlite() {
    invite_walk(&Env::sqlite());
}

async fn invites_on_postgres() {
    let url = postgres_schema_url().await;
    let env = Env::postgres(url, KEY);
    env.json(&["migrate", "--json"]);
    invite_walk(&env);
}

fn webhooks_and_jobs_from_the_cli() {
    // Without the development setting, an internal address is refused with
    // the same stable code as over HTTP, and no endpoint is made.
    let refused = Env::sqlite().run(&[
        "webhooks",
        "endpoints",
        "create",
        "--url",
        "http://127.0.0.1:9/hook",
    ]);
    assert!(!refused.status.success());
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(stderr.contains("webhook_url_forbidden"), "{stderr}");
    // The walk below sends to a local port, as a developer would.
    let env = Env::sqlite().with("TESSERA_WEBHOOKS_ALLOW_PRIVATE_NETWORKS", "true");
    let created = env.json(&[
        "webhooks",
        "endpoints",
        "create",
        "--url",
        "http://127.0.0.1:9/hook",
        "--events",
        "created,revoked",
        "--json",
    ]);
    let id = created["endpoint"]["id"].as_str().unwrap().to_string();
    assert!(created["secret"].as_str().unwrap().starts_with("whsec_"));
    assert_eq!(
        env.json(&["webhooks", "endpoints", "list", "--json"])["items"]
            .as_array()
            .unwrap()
            .len(),
        1
    );
    let updated = env.json(&[
        "webhooks",
        "endpoints",
        "update",
        &id,
        "--disable",
        "--json",
    ]);
    assert!(updated["disabled_at"].is_string());
    assert!(
        env.json(&["webhooks", "endpoints", "rotate-secret", &id, "--json"])["secret"].is_string()
    );
    assert!(
        env.json(&["webhooks", "deliveries", "--status", "failed", "--json"])["items"].is_array()
    );
    let out = env.run(&["webhooks", "retry", UNKNOWN_ID, "--json"]);
    assert_eq!(out.status.code(), Some(2));
    let jobs = env.json(&["jobs", "list", "--json"]);
    assert_eq!(jobs["items"].as_array().unwrap().len(), 4);
    let run = env.json(&["jobs", "run", "revoke_expired_tokens", "--json"]);
    assert_eq!(run["outcome"], "success");
    assert_eq!(env.run(&["jobs", "run", "nope"]).status.code(), Some(2));
    let listed = env.json(&["jobs", "list", "--json"]);
    assert!(listed["items"][0]["last_success_at"].is_string());
}

fn upstream_commands() {
    let env = Env::sqlite();
    let file = env.dir.path().join("tessera.toml");
    std::fs::write(
        &file,
        "[upstreams.cpj]\nkind = \"json_login\"\nurl = \"http://127.0.0.1:9/auth\"\nbody = { login = \"{user}\" }\ntoken_pointer = \"/token\"\nexpiry_minutes = 30\ndefault_user = \"api\"\n",
    )
    .unwrap();
    let with_config = |args: &[&str]| env.cmd(args).env("TESSERA_CONFIG", &file).output().unwrap();
    let out = with_config(&["upstream", "list"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["items"][0]["upstream"]["name"], "cpj");
    let out = with_config(&["upstream", "token", "cpj"]);
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(
        serde_json::from_slice::<Value>(&out.stdout).unwrap()["code"],
        "upstream_login_failed"
    );
    let out = with_config(&["upstream", "info", "nope"]);
    assert_eq!(
        serde_json::from_slice::<Value>(&out.stdout).unwrap()["code"],
        "upstream_not_found"
    );
    assert!(with_config(&["upstream", "health"]).status.success());
    assert!(with_config(&["upstream", "clear"]).status.success());
}

tessera_test_support::tests! {
    current_thread:
        walk_on_sqlite_with_no_setup,
        #[needs(Postgres)] walk_on_postgres_after_migrate,
        #[needs(Postgres)] invites_on_postgres;
    sync:
        bad_configuration_names_the_variable,
        help_explains_every_command,
        invites_on_sqlite,
        webhooks_and_jobs_from_the_cli,
        upstream_commands;
}

fn main() -> std::process::ExitCode {
    tessera_test_support::harness::run(
        trials()
            .into_iter()
            .chain(people::trials())
            .chain(clients::trials())
            .chain(controls::trials()),
    )
}
