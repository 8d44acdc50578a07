//! Revocation everywhere within one second, on both backends. A change made
//! straight on the database by another process (the CLI: a second
//! `Services::open` calling the same services) reaches a running server's
//! caches within a second: a revoked API token is `REVOKED`, a revoked
//! session's access token inactive at introspection, a deleted registry
//! client refused. Three replicas on one database: a revocation on the first
//! reaches the other two within a second. The verify cache's TTL is set to
//! five minutes, so only the invalidation log can explain it; the times are
//! printed.

use std::time::Instant;

use reqwest::StatusCode;
use serde_json::{json, Value};
use tessera_core::{
    audit::{Actor, RequestContext},
    session::RevokeReason,
};
use tessera_server::Services;
use tessera_test_support::{backend_tests, timing::within_a_second, TestDb};

use crate::{
    clients_api::create_client,
    common::{
        config,
        people::{create_user, metric, metrics, signed_in},
        TestServer,
    },
    introspection::{env, introspect, post_form, Auth},
};

/// Long enough that an entry never expires during a test.
const LONG_TTL: (&str, &str) = ("TESSERA_VERIFY_CACHE_TTL", "5m");

fn settings() -> Vec<(&'static str, &'static str)> {
    let mut e = env();
    e.push(LONG_TTL);
    e
}

/// Verifies `secret` on `s` twice (the second answer from the cache).
async fn cached_valid(s: &TestServer, secret: &str) {
    for _ in 0..2 {
        assert_eq!(s.verify(secret).await["valid"], true);
    }
}

async fn cached_active(s: &TestServer, access_token: &str) {
    for _ in 0..2 {
        assert_eq!(introspect(s, access_token).await["active"], true);
    }
}

async fn introspect_as(s: &TestServer, id: &str, secret: &str) -> StatusCode {
    let auth = Auth::Basic(id, secret);
    post_form(s, "/oauth2/introspect", &[("token", "x")], auth)
        .await
        .status
}

async fn a_change_made_on_the_database_reaches_a_running_server_within_a_second(db: TestDb) {
    let s = TestServer::start_with(db, &settings()).await;
    let (token_id, secret) = s.create(json!({"name": "app"})).await;
    cached_valid(&s, &secret).await;
    create_user(&s, "cli@example.com").await;
    let login = signed_in(&s, "cli@example.com").await;
    let (at, sid) = (
        login["access_token"].as_str().unwrap(),
        login["session_id"].as_str().unwrap(),
    );
    cached_active(&s, at).await;
    let created = create_client(&s, json!({"name": "rs", "capabilities": ["introspect"]})).await;
    let (client_id, client_secret) = (
        created["client"]["id"].as_str().unwrap(),
        created["client_secret"].as_str().unwrap(),
    );
    for _ in 0..2 {
        assert_eq!(
            introspect_as(&s, client_id, client_secret).await,
            StatusCode::OK
        );
    }

    // What `tessera token revoke`, `tessera session revoke` and `tessera
    // client delete` do: the same services, opened by another process.
    let cli = Services::open(&config(&s.db.url, s.data_dir.path(), &settings()))
        .await
        .unwrap();
    let ctx = RequestContext::default();
    cli.tokens
        .revoke(&token_id, false, None, &Actor::Cli, &ctx)
        .await
        .unwrap();
    let since = Instant::now();
    within_a_second(
        "a token revoked by another process is REVOKED",
        since,
        || s.verify(&secret),
        |v: &Value| v["code"] == "REVOKED",
    )
    .await;
    cli.sessions
        .revoke(sid, RevokeReason::Admin, &Actor::Cli, &ctx)
        .await
        .unwrap();
    let since = Instant::now();
    within_a_second(
        "a session revoked by another process is inactive",
        since,
        || introspect(&s, at),
        |v: &Value| v["active"] == false,
    )
    .await;
    cli.clients
        .delete(client_id, &Actor::Cli, &ctx)
        .await
        .unwrap();
    let since = Instant::now();
    within_a_second(
        "a client deleted by another process is refused",
        since,
        || introspect_as(&s, client_id, client_secret),
        |status: &StatusCode| *status == StatusCode::UNAUTHORIZED,
    )
    .await;
    let m = metrics(&s).await;
    for kind in ["token", "session", "client"] {
        let series = format!("tokens_cache_invalidations_total{{kind=\"{kind}\"}}");
        assert!(metric(&m, &series) >= 1.0, "{series}");
    }
}

async fn three_replicas_see_a_revocation_within_a_second(db: TestDb) {
    let first = TestServer::start_with(db, &settings()).await;
    let second = first.replica(&settings()).await;
    let third = first.replica(&settings()).await;
    let (token_id, secret) = first.create(json!({"name": "shared"})).await;
    cached_valid(&second, &secret).await;
    cached_valid(&third, &secret).await;
    create_user(&first, "everywhere@example.com").await;
    let login = signed_in(&first, "everywhere@example.com").await;
    let (at, sid) = (
        login["access_token"].as_str().unwrap(),
        login["session_id"].as_str().unwrap(),
    );
    cached_active(&third, at).await;

    let r = first.revoke(&token_id, None).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let since = Instant::now();
    for (name, replica) in [("2", &second), ("3", &third)] {
        within_a_second(
            &format!("token revoked on replica 1: REVOKED on replica {name}"),
            since,
            || replica.verify(&secret),
            |v: &Value| v["code"] == "REVOKED",
        )
        .await;
    }

    let r = first
        .as_admin()
        .delete(&format!("/v1/sessions/{sid}"))
        .await;
    assert!(r.status.is_success(), "{}", r.text);
    let since = Instant::now();
    within_a_second(
        "session revoked on replica 1: inactive at introspection on replica 3",
        since,
        || introspect(&third, at),
        |v: &Value| v["active"] == false,
    )
    .await;
}

backend_tests!(
    a_change_made_on_the_database_reaches_a_running_server_within_a_second,
    three_replicas_see_a_revocation_within_a_second,
);
