//! The OAuth2 client registry over HTTP on both backends: create (the
//! secret once), read, list with pagination, change, rotate, delete; the
//! clients of `INTROSPECTION_CLIENTS` listed read-only; audit rows and
//! webhook events without a secret.

use reqwest::StatusCode;
use serde_json::{json, Value};
use tessera_test_support::{backend_tests, TestDb};

use crate::common::{receiver::Receiver, TestServer};

const STATIC: (&str, &str) = ("INTROSPECTION_CLIENTS", "gateway:static-secret-0123456789");

/// Creates a client as the admin; returns the whole answer.
pub async fn create_client(s: &TestServer, body: Value) -> Value {
    let r = s.as_admin().post_json("/v1/clients", body).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    r.body
}

async fn create_read_change_rotate_delete(db: TestDb) {
    let s = TestServer::start_with(db, &[STATIC]).await;
    let created = create_client(
        &s,
        json!({"name": "API gateway", "capabilities": ["ws_tickets", "introspect", "introspect"],
               "audiences": ["api", "api"]}),
    )
    .await;
    let client = &created["client"];
    let id = client["id"].as_str().unwrap();
    let secret = created["client_secret"].as_str().unwrap();
    assert!(id.starts_with("cl_"), "{created}");
    assert!(
        secret.starts_with("tsc_") && secret.len() >= 4 + 43,
        "{secret}"
    );
    assert_eq!(client["name"], "API gateway");
    assert_eq!(client["capabilities"], json!(["introspect", "ws_tickets"]));
    assert_eq!(client["audiences"], json!(["api"]));
    assert_eq!(client["source"], "registry");
    assert!(client["created_at"].is_string(), "{client}");

    let got = s.as_admin().get(&format!("/v1/clients/{id}")).await;
    assert_eq!(got.status, StatusCode::OK, "{}", got.text);
    assert_eq!(&got.body, client);
    assert!(!got.text.contains(secret));

    let patched = s
        .as_admin()
        .patch_json(
            &format!("/v1/clients/{id}"),
            json!({"name": "Gateway", "capabilities": ["revoke"], "audiences": null}),
        )
        .await;
    assert_eq!(patched.status, StatusCode::OK, "{}", patched.text);
    assert_eq!(patched.body["capabilities"], json!(["revoke"]));
    assert!(patched.body["audiences"].is_null(), "{}", patched.text);
    // The same values again change nothing (and write no audit row).
    let same = s
        .as_admin()
        .patch_json(&format!("/v1/clients/{id}"), json!({"name": "Gateway"}))
        .await;
    assert_eq!(same.status, StatusCode::OK, "{}", same.text);
    assert_eq!(same.body["updated_at"], patched.body["updated_at"]);

    let rotated = s
        .as_admin()
        .post_json(
            &format!("/v1/clients/{id}/rotate-secret"),
            json!({"grace_seconds": 60}),
        )
        .await;
    assert_eq!(rotated.status, StatusCode::OK, "{}", rotated.text);
    let new_secret = rotated.body["client_secret"].as_str().unwrap();
    assert!(new_secret.starts_with("tsc_") && new_secret != secret);
    assert!(rotated.body["previous_secret_expires_at"].is_string());

    let too_long = s
        .as_admin()
        .post_json(
            &format!("/v1/clients/{id}/rotate-secret"),
            json!({"grace_seconds": 604_801}),
        )
        .await;
    too_long.assert_problem(StatusCode::UNPROCESSABLE_ENTITY, "validation_failed");

    let deleted = s.as_admin().delete(&format!("/v1/clients/{id}")).await;
    assert_eq!(deleted.status, StatusCode::NO_CONTENT, "{}", deleted.text);
    s.as_admin()
        .get(&format!("/v1/clients/{id}"))
        .await
        .assert_problem(StatusCode::NOT_FOUND, "client_not_found");

    // Every change has its audit row; none carries a secret.
    let audit = s.db.store.audit_for_target(id, 50).await.unwrap();
    let actions: Vec<&str> = audit.iter().map(|a| a.action.as_str()).collect();
    for action in [
        "client.create",
        "client.update",
        "client.rotate_secret",
        "client.delete",
    ] {
        assert!(actions.contains(&action), "{actions:?}");
    }
    let updates = actions.iter().filter(|a| **a == "client.update").count();
    assert_eq!(updates, 1, "{actions:?}");
    let dump = format!("{audit:?}");
    assert!(!dump.contains(secret) && !dump.contains(new_secret));
}

async fn bad_input_is_a_problem(db: TestDb) {
    let s = TestServer::start_with(db, &[STATIC]).await;
    let admin = s.as_admin();
    for body in [
        json!({"name": "x", "capabilities": []}),
        json!({"name": "x", "capabilities": ["root"]}),
        json!({"name": "", "capabilities": ["introspect"]}),
        json!({"name": "x", "capabilities": ["introspect"], "audiences": []}),
        json!({"name": "x", "capabilities": ["introspect"], "audiences": ["a b"]}),
    ] {
        let r = admin.post_json("/v1/clients", body.clone()).await;
        assert_eq!(
            r.status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{body}: {}",
            r.text
        );
    }
    admin
        .get("/v1/clients/cl_00000000000000000000000000000000")
        .await
        .assert_problem(StatusCode::NOT_FOUND, "client_not_found");
    admin
        .get("/v1/clients?cursor=nope")
        .await
        .assert_problem(StatusCode::BAD_REQUEST, "invalid_query");
    // A client of the environment is shown but not changed here.
    let env = admin.get("/v1/clients/gateway").await;
    assert_eq!(env.status, StatusCode::OK, "{}", env.text);
    assert_eq!(env.body["source"], "environment");
    assert_eq!(env.body["capabilities"], json!(["introspect", "revoke"]));
    assert!(!env.text.contains("static-secret"));
    for r in [
        admin
            .patch_json("/v1/clients/gateway", json!({"name": "x"}))
            .await,
        admin.delete("/v1/clients/gateway").await,
        admin
            .post_json("/v1/clients/gateway/rotate-secret", json!({}))
            .await,
    ] {
        r.assert_problem(StatusCode::CONFLICT, "client_from_environment");
    }
    // Admin scope only.
    let anon = s
        .as_anonymous()
        .post_json(
            "/v1/clients",
            json!({"name": "x", "capabilities": ["introspect"]}),
        )
        .await;
    assert_eq!(anon.status, StatusCode::UNAUTHORIZED, "{}", anon.text);
}

async fn the_list_pages_and_shows_the_environment_first(db: TestDb) {
    let s = TestServer::start_with(db, &[STATIC]).await;
    let mut ids = Vec::new();
    for n in 0..3 {
        let c = create_client(
            &s,
            json!({"name": format!("c{n}"), "capabilities": ["introspect"]}),
        )
        .await;
        ids.push(c["client"]["id"].as_str().unwrap().to_string());
    }
    let first = s.as_admin().get("/v1/clients?limit=2").await;
    assert_eq!(first.status, StatusCode::OK, "{}", first.text);
    let items = first.body["items"].as_array().unwrap();
    assert_eq!(items[0]["id"], "gateway", "{}", first.text);
    assert_eq!(items[1]["id"], ids[2].as_str());
    assert_eq!(items[2]["id"], ids[1].as_str());
    let cursor = first.body["next_cursor"].as_str().unwrap();
    let second = s
        .as_admin()
        .get(&format!("/v1/clients?limit=2&cursor={cursor}"))
        .await;
    let items = second.body["items"].as_array().unwrap();
    assert_eq!(items.len(), 1, "{}", second.text);
    assert_eq!(items[0]["id"], ids[0].as_str());
    assert!(second.body["next_cursor"].is_null());
}

async fn changes_reach_webhooks_without_a_secret(db: TestDb) {
    let s = TestServer::start_with(db, &[("TESSERA_WEBHOOK_POLL_INTERVAL", "50ms")]).await;
    let receiver = Receiver::start().await;
    receiver
        .subscribe(
            &s,
            json!({"event_types": ["client.created", "client.secret_rotated", "client.deleted"]}),
        )
        .await;
    let created = create_client(&s, json!({"name": "rs", "capabilities": ["introspect"]})).await;
    let id = created["client"]["id"].as_str().unwrap();
    let rotated = s
        .as_admin()
        .post_json(&format!("/v1/clients/{id}/rotate-secret"), json!({}))
        .await;
    assert_eq!(rotated.status, StatusCode::OK, "{}", rotated.text);
    let deleted = s.as_admin().delete(&format!("/v1/clients/{id}")).await;
    assert_eq!(deleted.status, StatusCode::NO_CONTENT);
    let got = receiver
        .wait_for_events(
            "client events",
            &["client.created", "client.secret_rotated", "client.deleted"],
        )
        .await;
    let text = format!("{got:?}");
    assert!(text.contains(id), "{text}");
    for secret in [&created["client_secret"], &rotated.body["client_secret"]] {
        assert!(!text.contains(secret.as_str().unwrap()));
    }
}

backend_tests!(
    create_read_change_rotate_delete,
    bad_input_is_a_problem,
    the_list_pages_and_shows_the_environment_first,
    changes_reach_webhooks_without_a_secret,
);
