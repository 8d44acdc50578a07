//! An event stream does not outlive the credential that opened it, on
//! SQLite and PostgreSQL: a stream opened by an admin token ends when the
//! token is revoked or rotated, one opened by a client when the client
//! loses `events` or is deleted, one opened by a person's access token when
//! the session is revoked or the user disabled. Streams of other openers go
//! on. The times are printed; the bound asserted is loose (the design's is
//! one poll of the invalidation log, 250 ms, plus the database read).

use std::time::{Duration, Instant};

use reqwest::{Method, StatusCode};
use serde_json::json;
use tessera_test_support::TestDb;

use crate::{
    common::{
        people,
        sse::{self, As, Stream},
        TestServer,
    },
    ws_tickets::gateway,
};

/// Far above the design's bound, so a loaded machine does not fail it; a
/// stream that never ends still does.
const ENDS_WITHIN: Duration = Duration::from_secs(5);

/// Waits for `stream` to end and prints how long it took after `since`.
async fn assert_ends(stream: &mut Stream, what: &str, since: Instant) {
    assert!(
        stream.ends_within(ENDS_WITHIN).await,
        "the stream opened by {what} is still open"
    );
    println!(
        "stream of {what} ended {:?} after the change",
        since.elapsed()
    );
}

/// The admin's own stream, still open: a new event arrives on it.
async fn still_delivers(s: &TestServer, stream: &mut Stream) {
    let (id, _) = s.create(json!({"name": "probe"})).await;
    // Earlier `created` events come first.
    loop {
        let m = stream
            .next_event(ENDS_WITHIN)
            .await
            .expect("the stream ended");
        if m.json()["id"] == json!(id) {
            return;
        }
    }
}

async fn tokens_and_clients_end_their_streams(db: TestDb) {
    let s = TestServer::start(db).await;
    let mut bystander = sse::open_ok(&s, As::Admin, "types=created", None).await;

    let (revoked_id, revoked) = s.create(json!({"name": "ops", "scopes": ["admin"]})).await;
    let mut stream = sse::open_ok(&s, As::Bearer(&revoked), "types=created", None).await;
    let at = Instant::now();
    assert_eq!(s.revoke(&revoked_id, None).await.status, StatusCode::OK);
    assert_ends(&mut stream, "a revoked admin token", at).await;
    // Reconnecting with it is refused.
    let r = sse::open(&s, As::Bearer(&revoked), "", None)
        .await
        .err()
        .unwrap();
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);

    // A rotation without grace ends the old secret, and its stream.
    let (rotated_id, rotated) = s.create(json!({"name": "ops2", "scopes": ["admin"]})).await;
    let mut stream = sse::open_ok(&s, As::Bearer(&rotated), "", None).await;
    let at = Instant::now();
    assert_eq!(s.rotate(&rotated_id, None).await.status, StatusCode::OK);
    assert_ends(&mut stream, "a rotated admin token", at).await;

    // A client that loses the capability, and one that is deleted.
    let edge = gateway(&s, "edge", &["events"]).await;
    let mut stream = sse::open_ok(&s, As::Client(&edge.id, &edge.secret), "", None).await;
    let at = Instant::now();
    let path = format!("/v1/clients/{}", edge.id);
    let body = json!({"capabilities": ["introspect"]});
    let r = s.as_admin().patch_json(&path, body).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_ends(&mut stream, "a client without events", at).await;

    // A client whose secret is rotated (no grace), and one with a grace:
    // its stream ends when the grace does.
    let rotated_client = gateway(&s, "rotated", &["events"]).await;
    let auth = As::Client(&rotated_client.id, &rotated_client.secret);
    let mut stream = sse::open_ok(&s, auth, "", None).await;
    let at = Instant::now();
    let path = format!("/v1/clients/{}/rotate-secret", rotated_client.id);
    let r = s.as_admin().post_json(&path, json!({})).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_ends(&mut stream, "a client whose secret was rotated", at).await;
    let graced = gateway(&s, "graced", &["events"]).await;
    let mut stream = sse::open_ok(&s, As::Client(&graced.id, &graced.secret), "", None).await;
    let path = format!("/v1/clients/{}/rotate-secret", graced.id);
    let r = s
        .as_admin()
        .post_json(&path, json!({"grace_seconds": 2}))
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let at = Instant::now();
    assert!(
        !stream.ends_within(Duration::from_millis(1200)).await,
        "ended inside its grace"
    );
    assert_ends(&mut stream, "a client whose secret's grace ran out", at).await;

    let gone = gateway(&s, "gone", &["events"]).await;
    let mut stream = sse::open_ok(&s, As::Client(&gone.id, &gone.secret), "", None).await;
    let at = Instant::now();
    let r = s
        .as_admin()
        .delete(&format!("/v1/clients/{}", gone.id))
        .await;
    assert!(r.status.is_success(), "{}", r.text);
    assert_ends(&mut stream, "a deleted client", at).await;

    still_delivers(&s, &mut bystander).await;
    let metrics = people::metrics(&s).await;
    let ended = people::metric(&metrics, "tokens_event_streams_ended_by_credential_total");
    assert_eq!(ended, 5.0, "{metrics}");
}

/// A person with the `ops` role opens a stream with an access token.
async fn admin_person_stream(s: &TestServer, email: &str) -> (String, String, Stream) {
    let body = json!({"email": email, "password": people::PASSWORD, "roles": ["ops"]});
    let r = s.as_admin().post_json("/v1/users", body).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    let user_id = r.body["id"].as_str().unwrap().to_string();
    let login = people::signed_in(s, email).await;
    let access = login["access_token"].as_str().unwrap().to_string();
    let sid = login["session_id"].as_str().unwrap().to_string();
    let stream = sse::open_ok(s, As::Bearer(&access), "", None).await;
    (user_id, sid, stream)
}

async fn sessions_and_users_end_their_streams(db: TestDb) {
    // People with the `ops` role get the admin scope.
    let s = TestServer::start_with(db, &[("TESSERA_ROLE_SCOPES", "ops=admin")]).await;
    let mut bystander = sse::open_ok(&s, As::Admin, "types=created", None).await;

    let (_, sid, mut stream) = admin_person_stream(&s, "ada@example.com").await;
    let at = Instant::now();
    let r = s
        .as_admin()
        .send(Method::DELETE, &format!("/v1/sessions/{sid}"), None)
        .await;
    assert!(r.status.is_success(), "{}", r.text);
    assert_ends(&mut stream, "a revoked session", at).await;

    let (user_id, _, mut stream) = admin_person_stream(&s, "grace@example.com").await;
    let at = Instant::now();
    let r = s
        .as_admin()
        .post(&format!("/v1/users/{user_id}/disable"))
        .await;
    assert!(r.status.is_success(), "{}", r.text);
    assert_ends(&mut stream, "a disabled user", at).await;

    still_delivers(&s, &mut bystander).await;
}

tessera_test_support::backend_tests!(
    tokens_and_clients_end_their_streams,
    sessions_and_users_end_their_streams,
);
