//! Sessions for people from the console: `tessera user …`, `session …` and
//! `keys …` against the real binary and a running server, on SQLite and on
//! PostgreSQL; an import of bcrypt, scrypt and Argon2id hashes that logs in
//! with each original password and leaves Argon2id behind; and export and
//! erasure from the CLI and over HTTP.

use std::{io::Write, process::Stdio};

use serde_json::{json, Value};
use tessera_test_support::postgres_schema_url;

use super::common::{post, Env};

const KEY: &str = "cli-test-key-0123456789abcdef0123456789";
const PASSWORD: &str = "correct horse battery staple 1987 zebra";
const NEW_PASSWORD: &str = "purple elephant marches at dawn 4412";
const AGENT: &str = "people-walk/1.0 (test)";

/// `tessera ARGS` with `input` on stdin; must succeed; its JSON.
fn json_stdin(env: &Env, args: &[&str], input: &str) -> Value {
    let mut child = env
        .cmd(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(input.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "tessera {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

/// POST /v1/auth/login; the response's status and JSON.
async fn login(base: &str, email: &str, password: &str) -> (u16, Value) {
    let r = reqwest::Client::new()
        .post(format!("{base}/v1/auth/login"))
        .header("user-agent", AGENT)
        .json(&json!({ "email": email, "password": password }))
        .send()
        .await
        .unwrap();
    (r.status().as_u16(), r.json().await.unwrap())
}

fn items(v: &Value) -> &Vec<Value> {
    v["items"].as_array().unwrap()
}

async fn people_walk(env: Env) {
    let ada = json_stdin(
        &env,
        &[
            "user",
            "create",
            "--email",
            "Ada@Example.com",
            "--display-name",
            "Ada",
            "--role",
            "member",
            "--role",
            "ops",
            "--email-verified",
            "--password-stdin",
            "--json",
        ],
        &format!("{PASSWORD}\n"),
    );
    let id = ada["id"].as_str().unwrap().to_string();
    assert_eq!(ada["email"], "ada@example.com");
    assert_eq!(ada["roles"], json!(["member", "ops"]));
    assert_eq!(ada["has_password"], true);
    let bare = env.json(&["user", "create", "--email", "bo@example.com", "--json"]);
    assert_eq!(
        bare["has_password"], false,
        "no --password-stdin, no password"
    );
    let taken = env.run(&["user", "create", "--email", "ada@example.com", "--json"]);
    assert_eq!(taken.status.code(), Some(2));
    assert_eq!(
        serde_json::from_slice::<Value>(&taken.stdout).unwrap()["code"],
        "email_taken"
    );
    assert_eq!(items(&env.json(&["user", "list", "--json"])).len(), 2);
    let by_email = env.json(&["user", "list", "--email", "ADA@example.com", "--json"]);
    assert_eq!(items(&by_email)[0]["id"], id.as_str());
    assert!(items(&env.json(&["user", "list", "--status", "disabled", "--json"])).is_empty());
    assert_eq!(
        env.json(&["user", "show", &id, "--json"])["display_name"],
        "Ada"
    );

    let server = env.serve().await;
    let (status, session) = login(&server.base, "ada@example.com", PASSWORD).await;
    assert_eq!(status, 200, "{session}");
    let sid = session["session_id"].as_str().unwrap().to_string();
    let listed = env.json(&["session", "list", "--user", &id, "--active", "--json"]);
    assert_eq!(items(&listed)[0]["id"], sid.as_str());
    assert_eq!(
        env.run(&["session", "list", "--active"]).status.code(),
        Some(2)
    );

    // Export: the session and the login's audit row with the client decrypted.
    let export = env.json(&["user", "export", &id]);
    assert_eq!(export["user"]["id"], id.as_str());
    assert_eq!(export["sessions"][0]["id"], sid.as_str());
    assert_eq!(export["sessions"][0]["ip"], "127.0.0.1");
    assert_eq!(export["sessions"][0]["user_agent"], AGENT);
    let audit = export["audit"].as_array().unwrap();
    assert!(audit.iter().any(|r| r["action"] == "auth.login"
        && r["ip"] == "127.0.0.1"
        && r["user_agent"] == AGENT));
    assert!(audit.iter().any(|r| r["action"] == "user.create"));
    assert!(
        !export.to_string().contains("argon2"),
        "no hash in an export"
    );

    // Disable ends the session; enable, a new password, revoke, unlock.
    assert_eq!(
        env.json(&["user", "disable", &id, "--json"])["status"],
        "disabled"
    );
    assert!(items(&env.json(&["session", "list", "--user", &id, "--active", "--json"])).is_empty());
    assert_eq!(
        login(&server.base, "ada@example.com", PASSWORD).await.0,
        401
    );
    assert_eq!(
        env.json(&["user", "enable", &id, "--json"])["status"],
        "active"
    );
    json_stdin(
        &env,
        &["user", "set-password", &id, "--password-stdin", "--json"],
        NEW_PASSWORD,
    );
    assert_eq!(
        login(&server.base, "ada@example.com", PASSWORD).await.0,
        401
    );
    let (status, second) = login(&server.base, "ada@example.com", NEW_PASSWORD).await;
    assert_eq!(status, 200, "{second}");
    let sid2 = second["session_id"].as_str().unwrap();
    assert_eq!(
        env.json(&["session", "revoke", sid2, "--json"])["state"],
        "revoked"
    );
    assert_eq!(
        env.json(&["user", "unlock", &id, "--json"])["id"],
        id.as_str()
    );

    keys_walk(&env);
    erase_walk(&env, &server.base, &id).await;
    let deleted = env.json(&["user", "delete", bare["id"].as_str().unwrap(), "--json"]);
    assert!(deleted["deleted_at"].is_string());
    drop(server);
}

fn keys_walk(env: &Env) {
    let keys = env.json(&["keys", "list", "--json"]);
    assert_eq!(items(&keys).len(), 1);
    assert_eq!(items(&keys)[0]["state"], "signing");
    let rotated = env.json(&["keys", "rotate", "--json"]);
    assert_ne!(rotated["kid"], items(&keys)[0]["kid"]);
    assert_eq!(items(&env.json(&["keys", "list", "--json"])).len(), 2);
    let out = env.run(&["keys", "retire", "no-such-kid", "--json"]);
    assert_eq!(out.status.code(), Some(2));
    // Idempotent: nothing to re-seal under the same key, twice.
    assert_eq!(env.json(&["keys", "rekey", "--json"])["resealed"], 0);
    assert_eq!(env.json(&["keys", "rekey", "--json"])["resealed"], 0);
}

/// Erases `id` from the CLI, and a second user over HTTP.
async fn erase_walk(env: &Env, base: &str, id: &str) {
    let refused = env.run(&["user", "erase", id]);
    assert_eq!(refused.status.code(), Some(2), "no --yes and no terminal");
    let report = env.json(&["user", "erase", id, "--yes", "--json"]);
    assert_eq!(report["erased_now"], true);
    assert_eq!(report["sessions_deleted"], 2);
    assert!(
        report["audit_rows_scrubbed"].as_u64().unwrap() >= 2,
        "{report}"
    );
    let export = env.json(&["user", "export", id]);
    assert_eq!(export["user"]["email"], format!("erased+{id}@invalid"));
    assert_eq!(export["user"]["status"], "disabled");
    assert!(export["user"].get("display_name").is_none());
    assert_eq!(export["user"]["has_password"], false);
    assert!(export["erased_at"].is_string());
    assert_eq!(export["sessions"], json!([]));
    let audit = export["audit"].as_array().unwrap();
    assert!(audit
        .iter()
        .all(|r| r.get("ip").is_none() && r.get("user_agent").is_none()));
    assert!(audit
        .iter()
        .any(|r| r["action"] == "user.erase" && r["actor"] == "cli"));
    assert!(
        audit.iter().any(|r| r["action"] == "auth.login"),
        "rows stay"
    );
    assert_eq!(login(base, "ada@example.com", NEW_PASSWORD).await.0, 401);
    assert_eq!(
        env.json(&["user", "erase", id, "--yes", "--json"])["erased_now"],
        false
    );
    // The e-mail is free again.
    json_stdin(
        env,
        &[
            "user",
            "create",
            "--email",
            "ada@example.com",
            "--password-stdin",
            "--json",
        ],
        PASSWORD,
    );

    let admin = env.json(&[
        "token", "create", "--name", "dpo", "--scopes", "admin", "--json",
    ]);
    let token = admin["secret"].as_str().unwrap();
    let cy = json_stdin(
        env,
        &[
            "user",
            "create",
            "--email",
            "cy@example.com",
            "--password-stdin",
            "--json",
        ],
        PASSWORD,
    );
    let cy_id = cy["id"].as_str().unwrap();
    assert_eq!(login(base, "cy@example.com", PASSWORD).await.0, 200);
    let http = reqwest::Client::new();
    let exported: Value = http
        .get(format!("{base}/v1/users/{cy_id}/export"))
        .bearer_auth(token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(exported["sessions"][0]["user_agent"], AGENT);
    let report = post(
        &http,
        base,
        token,
        &format!("/v1/users/{cy_id}/erase"),
        json!({}),
    )
    .await;
    assert_eq!(report["sessions_deleted"], 1);
    let after = env.json(&["user", "export", cy_id]);
    assert_eq!(after["user"]["email"], format!("erased+{cy_id}@invalid"));
}

async fn people_on_sqlite() {
    people_walk(Env::sqlite()).await;
}

async fn people_on_postgres() {
    let env = Env::postgres(postgres_schema_url().await, KEY);
    env.json(&["migrate", "--json"]);
    people_walk(env).await;
}

/// Hashes as the replaced service stored them: Argon2id with weak
/// parameters, bcrypt cost 4, scrypt ln=4.
fn legacy_hashes() -> [(&'static str, String, &'static str); 3] {
    use argon2::password_hash::{PasswordHasher, SaltString};
    let salt = SaltString::from_b64("c29tZXNhbHRzb21lc2FsdA").unwrap();
    let argon = argon2::Argon2::new(
        argon2::Algorithm::Argon2id,
        argon2::Version::V0x13,
        argon2::Params::new(1024, 1, 1, None).unwrap(),
    )
    .hash_password(b"argon password 11 violet", &salt)
    .unwrap()
    .to_string();
    let scrypt = scrypt::Scrypt
        .hash_password_customized(
            b"scrypt password 22 orange",
            None,
            None,
            scrypt::Params::new(4, 8, 1, 32).unwrap(),
            &salt,
        )
        .unwrap()
        .to_string();
    let bcrypt = bcrypt::hash("bcrypt password 33 indigo", 4).unwrap();
    [
        ("argon@example.com", argon, "argon password 11 violet"),
        ("bcrypt@example.com", bcrypt, "bcrypt password 33 indigo"),
        ("scrypt@example.com", scrypt, "scrypt password 22 orange"),
    ]
}

/// The stored hash of a user, read from the database the binary uses.
async fn stored_hash(env: &Env, email: &str) -> String {
    let url = env
        .postgres_url
        .clone()
        .unwrap_or_else(|| format!("sqlite://{}/tessera.db", env.dir.path().display()));
    let store = tessera_store::connect(&url).await.unwrap();
    let user = store.find_user_by_email(email).await.unwrap().unwrap();
    store.close().await;
    user.password_hash.unwrap()
}

async fn import_walk(env: Env) {
    let hashes = legacy_hashes();
    let mut file = String::new();
    for (email, hash, _) in &hashes {
        let record = json!({"email": email, "email_verified": true, "roles": ["member"], "password_hash": hash});
        file.push_str(&format!("{record}\n"));
    }
    file.push_str(
        "{\"email\":\"bad@example.com\",\"email_verified\":false,\"roles\":[],\"password_hash\":\"$2b$04$truncatedsecretvalue\"}\n",
    );
    let path = env.dir.path().join("users.jsonl");
    std::fs::write(&path, file).unwrap();
    let path = path.display().to_string();

    let dry = env.run(&["user", "import", &path, "--dry-run", "--json"]);
    let dry: Value = serde_json::from_slice(&dry.stdout).unwrap();
    assert_eq!(
        (dry["created"].as_u64(), dry["failed"].as_u64()),
        (Some(3), Some(1))
    );
    assert!(
        items(&env.json(&["user", "list", "--json"])).is_empty(),
        "dry run"
    );

    let first = env.run(&["user", "import", &path, "--json"]);
    assert_eq!(first.status.code(), Some(2), "a line failed");
    let first: Value = serde_json::from_slice(&first.stdout).unwrap();
    assert_eq!(first["created"], 3);
    assert_eq!(first["failed"], 1);
    let bad = &first["records"][3];
    assert_eq!(bad["line"], 4);
    assert!(bad["reason"].as_str().unwrap().contains("bcrypt"), "{bad}");
    assert!(
        !first.to_string().contains("truncatedsecretvalue"),
        "no hash in a report"
    );
    for (email, hash, _) in &hashes {
        assert_eq!(&stored_hash(&env, email).await, hash, "stored as it is");
    }
    let again = env.run(&["user", "import", &path]);
    let text = String::from_utf8_lossy(&again.stdout);
    assert!(text.contains("created 0, skipped 3, failed 1"), "{text}");
    assert!(text.contains("line 4: failed"), "{text}");
    assert_eq!(items(&env.json(&["user", "list", "--json"])).len(), 3);

    let csv = env.dir.path().join("more.csv");
    std::fs::write(
        &csv,
        format!(
            "email,email_verified,roles,password_hash,display_name\n\
             dee@example.com,true,member;ops,{},\"Dee, D.\"\n",
            hashes[1].1
        ),
    )
    .unwrap();
    let csv_run = env.json(&["user", "import", &csv.display().to_string(), "--json"]);
    assert_eq!(csv_run["created"], 1);
    let dee = env.json(&["user", "list", "--email", "dee@example.com", "--json"]);
    assert_eq!(items(&dee)[0]["roles"], json!(["member", "ops"]));
    assert_eq!(items(&dee)[0]["display_name"], "Dee, D.");

    let server = env.serve().await;
    for (email, hash, password) in &hashes {
        let (status, body) = login(&server.base, email, password).await;
        assert_eq!(status, 200, "{email}: {body}");
        let now = stored_hash(&env, email).await;
        assert!(now.starts_with("$argon2id$"), "{email}: {now}");
        assert_ne!(&now, hash, "{email} was re-hashed");
    }
    drop(server);
}

async fn import_on_sqlite() {
    import_walk(Env::sqlite()).await;
}

async fn import_on_postgres() {
    let env = Env::postgres(postgres_schema_url().await, KEY);
    env.json(&["migrate", "--json"]);
    import_walk(env).await;
}

fn help_for_people_commands() {
    for args in [
        vec!["user", "--help"],
        vec!["user", "import", "--help"],
        vec!["user", "erase", "--help"],
        vec!["session", "--help"],
        vec!["keys", "rotate", "--help"],
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
        people_on_sqlite,
        #[needs(Postgres)] people_on_postgres,
        import_on_sqlite,
        #[needs(Postgres)] import_on_postgres;
    sync:
        help_for_people_commands;
}
