//! A token revoked with `tessera token revoke` (another process, straight
//! on the database) is refused by a running `tessera serve` within one
//! second, on SQLite and on PostgreSQL: the revocation's invalidation row
//! reaches the server's verify cache, whose TTL is set to five minutes here
//! so that nothing else can explain it. The time is printed.

mod common;

use std::time::{Duration, Instant};

use common::Env;
use serde_json::{json, Value};
use tessera_test_support::postgres_schema_url;

const KEY: &str = "revocation-test-key-0123456789abcdef0123";

async fn verify(http: &reqwest::Client, base: &str, secret: &str) -> Value {
    let r = http
        .post(format!("{base}/v1/tokens/verify"))
        .json(&json!({ "token": secret }))
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success(), "{}", r.status());
    r.json().await.unwrap()
}

async fn revoked_on_the_database_is_refused_within_a_second(env: Env) {
    let env = env.with("TESSERA_VERIFY_CACHE_TTL", "5m");
    if env.postgres_url.is_some() {
        env.json(&["migrate", "--json"]);
    }
    let created = env.json(&["token", "create", "--name", "app", "--json"]);
    let id = created["token"]["id"].as_str().unwrap().to_string();
    let secret = created["secret"].as_str().unwrap().to_string();
    let served = env.serve().await;
    let http = reqwest::Client::new();
    // Twice: the second answer comes from the cache.
    for _ in 0..2 {
        assert_eq!(verify(&http, &served.base, &secret).await["valid"], true);
    }

    let revoked = env.json(&["token", "revoke", &id, "--json"]);
    assert_eq!(revoked["state"], "revoked");
    let since = Instant::now();
    loop {
        let answer = verify(&http, &served.base, &secret).await;
        let waited = since.elapsed();
        if answer["code"] == "REVOKED" {
            eprintln!(
                "refused {} ms after `tessera token revoke` returned",
                waited.as_millis()
            );
            assert!(waited < Duration::from_secs(1), "{waited:?}");
            break;
        }
        assert!(
            waited < Duration::from_secs(3),
            "still {answer} after {waited:?}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

async fn on_sqlite() {
    revoked_on_the_database_is_refused_within_a_second(Env::sqlite()).await;
}

async fn on_postgres() {
    let env = Env::postgres(postgres_schema_url().await, KEY);
    revoked_on_the_database_is_refused_within_a_second(env).await;
}

tessera_test_support::tests! {
    multi_thread: on_sqlite, #[needs(Postgres)] on_postgres;
}

fn main() -> std::process::ExitCode {
    tessera_test_support::harness::run(trials())
}
