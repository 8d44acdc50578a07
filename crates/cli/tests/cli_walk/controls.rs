//! Usage controls from the console: `tessera token create|update` with the
//! control flags, `tessera token unbind-device`, and `tessera client
//! create|update --ip-allow`, against the real binary on SQLite and
//! PostgreSQL; the JSON is the API's.

use serde_json::json;
use tessera_test_support::postgres_schema_url;

use super::common::Env;

const KEY: &str = "cli-test-key-0123456789abcdef0123456789";

async fn controls_walk(env: Env) {
    let created = env.json(&[
        "token",
        "create",
        "--name",
        "mobile",
        "--ip-allow",
        "10.0.0.0/8,2001:db8::/32",
        "--ip-deny",
        "10.9.0.0/16",
        "--device-binding",
        "first_use",
        "--credits",
        "1000",
        "--refill",
        "1000/1d",
        "--ratelimit",
        "default:100/1m",
        "--ratelimit",
        "burst:10/1s:20",
        "--json",
    ]);
    let t = &created["token"];
    let id = t["id"].as_str().unwrap().to_string();
    assert_eq!(t["ip_allow"], json!(["10.0.0.0/8", "2001:db8::/32"]), "{t}");
    assert_eq!(t["ip_deny"], json!(["10.9.0.0/16"]));
    assert_eq!(t["device_binding"], "first_use");
    assert_eq!(t["device_bound"], false);
    assert_eq!(t["credits"]["remaining"], 1000);
    assert_eq!(
        t["credits"]["refill"],
        json!({"amount": 1000, "interval": "1d"})
    );
    assert_eq!(
        t["ratelimits"],
        json!([{"name": "default", "limit": 100, "period": "1m"},
               {"name": "burst", "limit": 10, "period": "1s", "burst": 20}])
    );

    // The console's verify observes: no address, no device, nothing spent.
    let secret = created["secret"].as_str().unwrap();
    assert!(env.run(&["token", "verify", secret]).status.success());

    let updated = env.json(&[
        "token",
        "update",
        &id,
        "--ip-deny",
        "none",
        "--credits",
        "none",
        "--ratelimit",
        "none",
        "--device-binding",
        "required",
        "--device-id",
        "phone-1",
        "--json",
    ]);
    assert_eq!(updated["ip_deny"], json!([]), "{updated}");
    assert!(updated["credits"].is_null());
    assert_eq!(updated["ratelimits"], json!([]));
    assert_eq!(updated["device_bound"], true);
    assert!(!updated.to_string().contains("phone-1"));

    let shown = env.run(&["token", "show", &id]);
    let text = String::from_utf8_lossy(&shown.stdout);
    assert!(
        text.contains("10.0.0.0/8") && text.contains("required (bound)"),
        "{text}"
    );

    let unbound = env.json(&["token", "unbind-device", &id, "--json"]);
    assert_eq!(unbound["device_bound"], false);

    // Bad input is the API's problem, exit code 2.
    for args in [
        vec!["token", "create", "--name", "x", "--ip-allow", "10.0.0.1/8"],
        vec![
            "token",
            "create",
            "--name",
            "x",
            "--ratelimit",
            "default:100",
        ],
        vec!["token", "create", "--name", "x", "--credits", "many"],
        vec![
            "token",
            "create",
            "--name",
            "x",
            "--device-binding",
            "required",
        ],
    ] {
        let out = env.run(&args);
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        assert!(
            String::from_utf8_lossy(&out.stderr).contains("validation_failed"),
            "{args:?}"
        );
    }

    let client = env.json(&[
        "client",
        "create",
        "--name",
        "gw",
        "--capability",
        "verify",
        "--ip-allow",
        "203.0.113.0/24",
        "--json",
    ]);
    assert_eq!(client["client"]["ip_allow"], json!(["203.0.113.0/24"]));
    let cid = client["client"]["id"].as_str().unwrap();
    let changed = env.json(&["client", "update", cid, "--ip-allow", "none", "--json"]);
    assert_eq!(changed["ip_allow"], json!([]), "{changed}");
}

async fn controls_on_sqlite() {
    controls_walk(Env::sqlite()).await;
}

async fn controls_on_postgres() {
    let env = Env::postgres(postgres_schema_url().await, KEY);
    env.json(&["migrate", "--json"]);
    controls_walk(env).await;
}

tessera_test_support::tests! {
    current_thread:
        controls_on_sqlite,
        #[needs(Postgres)] controls_on_postgres;
}
