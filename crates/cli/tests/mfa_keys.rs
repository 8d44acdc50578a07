//! `TOTP_ENC_KEY` end to end with the real binary: a device enrolled under
//! one key keeps working after `tessera mfa rekey` moves it to another;
//! start-up (and `config check`) refuses a missing, wrong or too-short key
//! by name, while commands that open no secret need no key; `tessera mfa
//! devices/remove` act on the database; the secret is never stored in clear.
//! On SQLite (zero set-up) and on PostgreSQL (explicit `tessera migrate`).

mod common;

use std::{
    process::{Command, Stdio},
    time::{Duration, Instant},
};

use common::{post, unix_now, Env, Served, Vars, BIN};

use serde_json::{json, Value};
use sqlx::Connection;
use tessera_core::mfa::totp::{base32_decode, TotpParams};
use tessera_test_support::postgres_schema_url;

const SERVER_KEY: &str = "mfa-keys-test-server-key-0123456789abcdef";
const KEY1: &str = "totp-key-one-0123456789abcdef0123456789";
const KEY2: &str = "totp-key-two-0123456789abcdef0123456789";

/// Runs a command that must refuse to start; `serve` that unexpectedly
/// starts is killed after a while instead of hanging the test.
fn refuses(env: &Env, extra: Vars, args: &[&str], naming: &str) {
    let mut child = env
        .cmd_with(extra, args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(15);
    while child.try_wait().unwrap().is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("tessera {args:?} with {extra:?} started, but should have refused");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success(),
        "tessera {args:?} succeeded: {stderr}"
    );
    assert!(
        stderr.contains(naming),
        "tessera {args:?}: stderr does not name {naming}: {stderr}"
    );
    // One message per error, not the same refusal from the log and again.
    let mentions = stderr.lines().filter(|l| l.contains(naming)).count();
    assert_eq!(
        mentions, 1,
        "tessera {args:?}: said more than once: {stderr}"
    );
}

/// Everything the database holds that could hide a secret: the raw
/// SQLite files, or every PostgreSQL table of this test's schema as text.
async fn stored_bytes(env: &Env) -> Vec<u8> {
    let Some(url) = &env.postgres_url else {
        let mut bytes = Vec::new();
        for suffix in ["", "-wal", "-journal"] {
            let path = env.dir.path().join(format!("tessera.db{suffix}"));
            if let Ok(b) = std::fs::read(path) {
                bytes.extend(b);
            }
        }
        assert!(!bytes.is_empty(), "no SQLite file found");
        return bytes;
    };
    tessera_test_support::TestDb::open(url)
        .await
        .all_text()
        .await
        .into_bytes()
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

async fn key_lifecycle(env: Env) {
    let key1: Vars = &[("TOTP_ENC_KEY", KEY1)];
    let key2: Vars = &[("TOTP_ENC_KEY", KEY2)];
    let rotating: Vars = &[("TOTP_ENC_KEY", KEY2), ("TOTP_ENC_KEY_PREVIOUS", KEY1)];
    let http = reqwest::Client::new();
    let created = env.json(&[
        "token", "create", "--name", "app", "--scopes", "mfa", "--json",
    ]);
    let token = created["secret"].as_str().unwrap().to_string();

    // Enrol and confirm under key 1.
    let server = Served::start(env.cmd_with(key1, &[])).await;
    let enrolled = post(
        &http,
        &server.base,
        &token,
        "/v1/subjects/alice/totp",
        json!({ "name": "phone", "qr": "none" }),
    )
    .await;
    let device_id = enrolled["device_id"].as_str().unwrap().to_string();
    let secret_b32 = enrolled["secret"].as_str().unwrap().to_string();
    let secret = base32_decode(&secret_b32).expect("base32 secret");
    let params: TotpParams = serde_json::from_value(enrolled["device"]["params"].clone()).unwrap();
    let confirmed = post(
        &http,
        &server.base,
        &token,
        &format!("/v1/subjects/alice/totp/{device_id}/confirm"),
        json!({ "code": params.code_at(&secret, unix_now()) }),
    )
    .await;
    assert_eq!(confirmed["valid"], true, "{confirmed}");
    server.stop();

    let listed = env.json_with(key1, &["mfa", "devices", "alice", "--json"]);
    let items = listed["items"].as_array().unwrap();
    assert_eq!(items.len(), 1, "{listed}");
    assert_eq!(items[0]["id"], device_id.as_str());
    assert_eq!(items[0]["status"], "active");
    assert_eq!(items[0]["name"], "phone");
    assert!(items[0]["confirmed_at"].is_string());
    let table = env.run_with(key1, &["mfa", "devices", "alice"]);
    let table = String::from_utf8_lossy(&table.stdout);
    assert!(
        table.contains(&device_id) && table.contains("active"),
        "{table}"
    );

    // Missing, wrong and too-short keys stop the server, and `config check`
    // says so too, with a message naming the variable. Commands that never
    // open a TOTP secret work without the key.
    refuses(
        &env,
        &[],
        &["serve", "--listen", "127.0.0.1:0"],
        "TOTP_ENC_KEY",
    );
    refuses(&env, &[], &["config", "check"], "TOTP_ENC_KEY");
    for args in [&["mfa", "devices", "alice"][..], &["token", "list"]] {
        let out = env.run_with(&[], args);
        assert!(
            out.status.success(),
            "{args:?} needs no TOTP_ENC_KEY: {out:?}"
        );
    }
    refuses(
        &env,
        key2,
        &["serve", "--listen", "127.0.0.1:0"],
        "TOTP_ENC_KEY",
    );
    refuses(&env, key2, &["mfa", "rekey"], "TOTP_ENC_KEY");
    refuses(&env, key2, &["config", "check"], "TOTP_ENC_KEY");
    let short: Vars = &[("TOTP_ENC_KEY", "too-short")];
    refuses(
        &env,
        short,
        &["serve", "--listen", "127.0.0.1:0"],
        "TOTP_ENC_KEY",
    );
    refuses(&env, short, &["mfa", "devices", "alice"], "TOTP_ENC_KEY");

    // Rotation: new key current, old key previous, rekey; again is a no-op.
    let report = env.json_with(rotating, &["mfa", "rekey", "--json"]);
    assert_eq!(report["rekeyed"], 1, "{report}");
    let key_id = report["key_id"].as_str().unwrap().to_string();
    assert!(!key_id.is_empty());
    let again = env.json_with(rotating, &["mfa", "rekey", "--json"]);
    assert_eq!(again, json!({ "rekeyed": 0, "key_id": key_id }));
    // The old key alone no longer opens anything: the secret really moved.
    refuses(&env, key1, &["config", "check"], "TOTP_ENC_KEY");

    // The new key alone now starts the server, and the device still works.
    let server = Served::start(env.cmd_with(key2, &[])).await;
    let verify = "/v1/subjects/alice/totp/verify";
    // The confirm code used the current step; the next one is still unused.
    let code = params.code_at(&secret, unix_now() + 30);
    let v = post(&http, &server.base, &token, verify, json!({ "code": code })).await;
    assert_eq!(v, json!({ "valid": true, "device_id": device_id }));
    let v = post(&http, &server.base, &token, verify, json!({ "code": code })).await;
    assert_eq!(v["code"], "REPLAYED", "{v}");

    // Never in clear: not as base32, not as raw bytes.
    let stored = stored_bytes(&env).await;
    assert!(
        !contains(&stored, secret_b32.as_bytes()),
        "base32 secret stored"
    );
    assert!(!contains(&stored, &secret), "raw secret stored");
    if let Some(url) = &env.postgres_url {
        let sealed: Vec<(String, String)> =
            sqlx::query_as("SELECT secret_enc, secret_key_id FROM totp_devices")
                .fetch_all(&mut sqlx::PgConnection::connect(url).await.unwrap())
                .await
                .unwrap();
        assert_eq!(sealed.len(), 1);
        assert!(!sealed[0].0.contains(&secret_b32) && !sealed[0].0.is_empty());
        assert_eq!(sealed[0].1, key_id, "sealed under the key rekey reported");
    }

    // Remove from the CLI while the server runs: its codes stop at once.
    let removed = env.json_with(key2, &["mfa", "remove", "alice", &device_id, "--json"]);
    assert_eq!(removed["removed"], true);
    let code = params.code_at(&secret, unix_now() + 30);
    let v = post(&http, &server.base, &token, verify, json!({ "code": code })).await;
    assert_eq!(v, json!({ "valid": false, "code": "NO_DEVICE" }));
    let out = env.run_with(key2, &["mfa", "remove", "alice", &device_id, "--json"]);
    assert_eq!(out.status.code(), Some(2));
    let problem: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(problem["code"], "device_not_found");
    assert!(String::from_utf8_lossy(&out.stderr).contains("device_not_found"));
    let listed = env.json_with(key2, &["mfa", "devices", "alice", "--json"]);
    assert_eq!(listed, json!({ "items": [] }));
    server.stop();

    let stored = stored_bytes(&env).await;
    assert!(
        !contains(&stored, secret_b32.as_bytes()),
        "base32 secret stored"
    );
}

async fn totp_key_rotation_on_sqlite() {
    key_lifecycle(Env::sqlite()).await;
}

async fn totp_key_rotation_on_postgres() {
    let url = postgres_schema_url().await;
    let env = Env::postgres(url, SERVER_KEY);
    env.json(&["migrate", "--json"]);
    key_lifecycle(env).await;
}

fn rekey_help_explains_the_rotation() {
    let out = Command::new(BIN)
        .args(["mfa", "rekey", "--help"])
        .output()
        .unwrap();
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    let needles = [
        "TOTP_ENC_KEY_PREVIOUS",
        "1. ",
        "2. ",
        "3. ",
        "tessera mfa rekey",
    ];
    let missing: Vec<_> = needles.iter().filter(|n| !text.contains(*n)).collect();
    assert!(missing.is_empty(), "rekey --help lacks {missing:?}: {text}");
    for args in [&["mfa"][..], &["mfa", "devices"], &["mfa", "remove"]] {
        let out = Command::new(BIN).args(args).arg("--help").output().unwrap();
        assert!(out.status.success(), "{args:?}");
        assert!(String::from_utf8_lossy(&out.stdout).len() > 200, "{args:?}");
    }
}

tessera_test_support::tests! {
    multi_thread: totp_key_rotation_on_sqlite, #[needs(Postgres)] totp_key_rotation_on_postgres;
    sync: rekey_help_explains_the_rotation;
}

fn main() -> std::process::ExitCode {
    tessera_test_support::harness::run(trials())
}
