//! OAuth2 clients from the console: `tessera client …` against the real
//! binary on SQLite and PostgreSQL, the secret printed once, and the server
//! answering for a client the CLI made.

use serde_json::{json, Value};
use tessera_test_support::postgres_schema_url;

use super::common::Env;

const KEY: &str = "cli-test-key-0123456789abcdef0123456789";

async fn clients_walk(env: Env) {
    let created = env.json(&[
        "client",
        "create",
        "--name",
        "orders API",
        "--capability",
        "introspect",
        "--capability",
        "ws_tickets",
        "--audience",
        "orders",
        "--json",
    ]);
    let id = created["client"]["id"].as_str().unwrap().to_string();
    let secret = created["client_secret"].as_str().unwrap().to_string();
    assert!(
        id.starts_with("cl_") && secret.starts_with("tsc_"),
        "{created}"
    );
    assert_eq!(created["client"]["audiences"], json!(["orders"]));

    let shown = env.json(&["client", "show", &id, "--json"]);
    assert_eq!(shown["capabilities"], json!(["introspect", "ws_tickets"]));
    assert!(!shown.to_string().contains(&secret));
    let listed = env.json(&["client", "list", "--json"]);
    assert_eq!(listed["items"][0]["id"], id.as_str());

    let updated = env.json(&[
        "client",
        "update",
        &id,
        "--capability",
        "revoke",
        "--any-audience",
        "--json",
    ]);
    assert_eq!(updated["capabilities"], json!(["revoke"]));
    assert!(updated["audiences"].is_null(), "{updated}");

    let rotated = env.json(&[
        "client",
        "rotate-secret",
        &id,
        "--grace-seconds",
        "3600",
        "--json",
    ]);
    let new_secret = rotated["client_secret"].as_str().unwrap();
    assert!(new_secret.starts_with("tsc_") && new_secret != secret);
    assert!(
        rotated["previous_secret_expires_at"].is_string(),
        "{rotated}"
    );

    // Without --json: the details, the secret once, a reminder on stderr.
    let out = env.run(&[
        "client",
        "create",
        "--name",
        "people",
        "--capability",
        "verify",
    ]);
    assert!(out.status.success());
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("client_secret tsc_"), "{stdout}");
    assert!(String::from_utf8_lossy(&out.stderr).contains("only time"));

    // Bad input is the API's problem, exit code 2.
    let out = env.run(&["client", "create", "--name", "x", "--capability", "root"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("validation_failed"));

    // The server answers for the client the CLI made.
    let admin = env.json(&[
        "token", "create", "--name", "a", "--scopes", "admin", "--json",
    ]);
    let admin = admin["secret"].as_str().unwrap().to_string();
    let server = env.serve().await;
    let got: Value = reqwest::Client::new()
        .get(format!("{}/v1/clients/{id}", server.base))
        .bearer_auth(&admin)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(got["name"], "orders API", "{got}");
    drop(server);

    let deleted = env.json(&["client", "delete", &id, "--json"]);
    assert_eq!(deleted["deleted"], true);
    let out = env.run(&["client", "show", &id]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("client_not_found"));
}

async fn clients_on_sqlite() {
    clients_walk(Env::sqlite()).await;
}

async fn clients_on_postgres() {
    let env = Env::postgres(postgres_schema_url().await, KEY);
    env.json(&["migrate", "--json"]);
    clients_walk(env).await;
}

fn help_for_client_commands() {
    for args in [
        vec!["client", "--help"],
        vec!["client", "create", "--help"],
        vec!["client", "rotate-secret", "--help"],
    ] {
        let out = std::process::Command::new(super::common::BIN)
            .args(&args)
            .output()
            .unwrap();
        assert!(out.status.success());
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(text.len() > 300, "{args:?} help is too thin: {text}");
    }
}

tessera_test_support::tests! {
    current_thread:
        clients_on_sqlite,
        #[needs(Postgres)] clients_on_postgres;
    sync:
        help_for_client_commands;
}
