//! Two `tessera serve` replicas on one PostgreSQL schema, as in production:
//! the replay check and the attempt lockout hold across processes, not just
//! within one. Twenty concurrent uses of one valid code give exactly one
//! success; fifty parallel wrong guesses get exactly five evaluations.
//! PostgreSQL only (SQLite is single-host); tessera_test_support's harness
//! reports it as skipped when no server is reachable, and fails it in CI or
//! when `TESSERA_TEST_POSTGRES_URL` is set.

mod common;

use std::{collections::BTreeMap, sync::Arc};

use common::{post, unix_now, Env};

use serde_json::json;
use tessera_core::mfa::totp::{base32_decode, TotpParams};
use tessera_test_support::postgres_schema_url;

const SERVER_KEY: &str = "mfa-replicas-server-key-0123456789abcdef";
const TOTP_KEY: &str = "mfa-replicas-totp-key-0123456789abcdef";

/// Enrols and confirms a device for `subject` on `base`; returns its
/// secret and parameters.
async fn active_device(
    http: &reqwest::Client,
    base: &str,
    token: &str,
    subject: &str,
) -> (Vec<u8>, TotpParams) {
    let path = format!("/v1/subjects/{subject}/totp");
    let enrolled = post(http, base, token, &path, json!({ "qr": "none" })).await;
    let id = enrolled["device_id"].as_str().unwrap();
    let secret = base32_decode(enrolled["secret"].as_str().unwrap()).unwrap();
    let params: TotpParams = serde_json::from_value(enrolled["device"]["params"].clone()).unwrap();
    let code = params.code_at(&secret, unix_now());
    let path = format!("/v1/subjects/{subject}/totp/{id}/confirm");
    let confirmed = post(http, base, token, &path, json!({ "code": code })).await;
    assert_eq!(confirmed["valid"], true, "{confirmed}");
    (secret, params)
}

/// Sends `codes.len()` verifications at once, the i-th to `bases[i % 2]`,
/// and counts the outcomes ("valid" or the failure code).
async fn burst(
    http: &reqwest::Client,
    bases: [&str; 2],
    token: &str,
    subject: &str,
    codes: Vec<String>,
) -> BTreeMap<String, usize> {
    // Everyone waits at the barrier so the requests really overlap.
    let barrier = Arc::new(tokio::sync::Barrier::new(codes.len()));
    let tasks: Vec<_> = codes
        .into_iter()
        .enumerate()
        .map(|(i, code)| {
            let (http, barrier) = (http.clone(), barrier.clone());
            let (base, token) = (bases[i % 2].to_string(), token.to_string());
            let path = format!("/v1/subjects/{subject}/totp/verify");
            tokio::spawn(async move {
                barrier.wait().await;
                post(&http, &base, &token, &path, json!({ "code": code })).await
            })
        })
        .collect();
    let mut counts = BTreeMap::new();
    for t in tasks {
        let v = t.await.unwrap();
        let outcome = if v["valid"] == true {
            "valid".to_string()
        } else {
            v["code"].as_str().unwrap_or("?").to_string()
        };
        *counts.entry(outcome).or_insert(0) += 1;
    }
    counts
}

async fn replay_and_lockout_hold_across_replicas() {
    let url = postgres_schema_url().await;
    // The environment every process gets: one database, the same keys.
    let env = Env::postgres(url, SERVER_KEY).with("TOTP_ENC_KEY", TOTP_KEY);
    env.json(&["migrate", "--json"]);
    let created = env.json(&[
        "token", "create", "--name", "app", "--scopes", "mfa", "--json",
    ]);
    let token = created["secret"].as_str().unwrap().to_string();
    let a = env.serve().await;
    let b = env.serve().await;
    let bases = [a.base.as_str(), b.base.as_str()];
    // Plenty of connections, so requests are not queued behind one another.
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(32)
        .build()
        .unwrap();

    // One valid code (the step after the confirm's), twenty times at once.
    let (secret, params) = active_device(&http, &a.base, &token, "alice").await;
    let code = params.code_at(&secret, unix_now() + 30);
    let counts = burst(&http, bases, &token, "alice", vec![code; 20]).await;
    eprintln!("one code, twenty requests: {counts:?}");
    assert_eq!(counts.get("valid"), Some(&1), "{counts:?}");
    // Replays give their attempt back, so none of them is LOCKED.
    assert_eq!(counts.get("REPLAYED"), Some(&19), "{counts:?}");

    // Fifty wrong guesses at once: five are evaluated, the rest are locked.
    let (secret, params) = active_device(&http, &b.base, &token, "bob").await;
    let now = unix_now();
    // A well-formed code that is none of the codes around now, so it can
    // only be wrong whenever the server evaluates it.
    let window: Vec<String> = (-3..=3)
        .map(|k| params.code_at(&secret, now + k * params.period))
        .collect();
    let wrong = (0..10u32)
        .map(|d| d.to_string().repeat(params.digits as usize))
        .find(|c| !window.contains(c))
        .unwrap();
    let counts = burst(&http, bases, &token, "bob", vec![wrong; 50]).await;
    let expected = BTreeMap::from([("INVALID".to_string(), 5), ("LOCKED".to_string(), 45)]);
    assert_eq!(counts, expected);
    // The lock is shared: even the right code is refused on either replica.
    for base in bases {
        let code = params.code_at(&secret, unix_now() + 30);
        let path = "/v1/subjects/bob/totp/verify";
        let v = post(&http, base, &token, path, json!({ "code": code })).await;
        assert_eq!(v, json!({ "valid": false, "code": "LOCKED" }), "{base}");
    }
}

tessera_test_support::tests! {
    multi_thread: #[needs(Postgres)] replay_and_lockout_hold_across_replicas;
}

fn main() -> std::process::ExitCode {
    tessera_test_support::harness::run(trials())
}
