//! Who may read the event stream and what holds it open, on SQLite and
//! PostgreSQL: admin tokens and clients with `events` only; the per-process
//! cap (503, and the slot back when a client hangs up); keep-alives that
//! keep a quiet stream past the connection idle timeout; shutdown ends
//! streams; a sealed event arrives without its secret.

use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::json;
use tessera_test_support::TestDb;

use crate::{
    common::{
        people,
        sse::{self, As},
        TestServer,
    },
    ws_tickets::gateway,
};

const WAIT: Duration = Duration::from_secs(5);

async fn admins_and_clients_with_events_only(db: TestDb) {
    let s = TestServer::start(db).await;
    let r = sse::open(&s, As::Nobody, "", None).await.err().unwrap();
    r.assert_problem(StatusCode::UNAUTHORIZED, "unauthorized");
    let challenge = r.headers["www-authenticate"].to_str().unwrap();
    assert!(
        challenge.contains("Bearer") && challenge.contains("Basic"),
        "{challenge}"
    );
    let r = sse::open(&s, As::Bearer("tsr_not_a_token"), "", None)
        .await
        .err()
        .unwrap();
    r.assert_problem(StatusCode::UNAUTHORIZED, "unauthorized");

    let (_, reader) = s
        .create(json!({"name": "reader", "scopes": ["read"]}))
        .await;
    let r = sse::open(&s, As::Bearer(&reader), "", None)
        .await
        .err()
        .unwrap();
    r.assert_problem(StatusCode::FORBIDDEN, "forbidden");

    // A client without the capability, or with a wrong secret: as every
    // failed client authentication, `invalid_client`.
    let chat = gateway(&s, "chat-gateway", &["ws_tickets", "introspect"]).await;
    let edge = gateway(&s, "edge-gateway", &["events"]).await;
    for (id, secret) in [(&chat.id, chat.secret.as_str()), (&edge.id, "tsc_wrong")] {
        let r = sse::open(&s, As::Client(id, secret), "", None)
            .await
            .err()
            .unwrap();
        assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{}", r.text);
        assert_eq!(r.body, json!({"error": "invalid_client"}));
        assert!(r.headers["www-authenticate"]
            .to_str()
            .unwrap()
            .starts_with("Basic"));
    }

    let mut stream = sse::open_ok(
        &s,
        As::Client(&edge.id, &edge.secret),
        "types=revoked",
        None,
    )
    .await;
    let (id, _) = s.create(json!({"name": "t"})).await;
    s.revoke(&id, None).await;
    let m = stream.next_event(WAIT).await.unwrap();
    assert_eq!(m.json(), json!({"event": "revoked", "id": id}));
    // Who opened it is audited.
    let audit = s.db.store.list_audit(&Default::default()).await.unwrap();
    let opened = audit
        .items
        .iter()
        .find(|a| a.action == "events.stream")
        .unwrap();
    assert_eq!(opened.actor, format!("client:{}", edge.id));
    assert_eq!(opened.details["types"], json!(["revoked"]));
}

/// `TESSERA_EVENTS_MAX_STREAMS` per process: one more is `503
/// too_many_streams`; a stream that ends, or whose client hangs up, frees
/// its slot.
async fn streams_are_capped(db: TestDb) {
    let env = [
        ("TESSERA_EVENTS_MAX_STREAMS", "1"),
        // Keep-alives every second: a hung-up client is noticed at the next.
        ("TESSERA_HTTP_IDLE_TIMEOUT", "3s"),
    ];
    let s = TestServer::start_with(db, &env).await;
    let first = sse::open_ok(&s, As::Admin, "timeout=1", None).await;
    let r = sse::open(&s, As::Admin, "", None).await.err().unwrap();
    r.assert_problem(StatusCode::SERVICE_UNAVAILABLE, "too_many_streams");
    assert!(r.headers.contains_key("retry-after"));
    assert!(first.rest(WAIT).await.is_empty(), "ends after its timeout");

    let hung_up = open_when_free(&s).await;
    let metrics = people::metrics(&s).await;
    assert_eq!(people::metric(&metrics, "tokens_event_streams_open"), 1.0);
    drop(hung_up);
    let started = Instant::now();
    drop(open_when_free(&s).await);
    println!(
        "a hung-up stream's slot came back after {:?}",
        started.elapsed()
    );
}

/// A stream, as soon as a slot is free (within [`WAIT`]).
async fn open_when_free(s: &TestServer) -> sse::Stream {
    let started = Instant::now();
    loop {
        match sse::open(s, As::Admin, "", None).await {
            Ok(stream) => return stream,
            Err(r) => r.assert_problem(StatusCode::SERVICE_UNAVAILABLE, "too_many_streams"),
        }
        assert!(started.elapsed() < WAIT, "no slot came free");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A quiet stream outlives the connection idle timeout: its keep-alive
/// comments are bytes moving. Shutdown ends it at once.
async fn keep_alives_hold_a_quiet_stream(db: TestDb) {
    let env = [("TESSERA_HTTP_IDLE_TIMEOUT", "1s")];
    let mut s = TestServer::start_with(db, &env).await;
    let mut stream = sse::open_ok(&s, As::Admin, "types=revoked", None).await;
    assert!(stream.next(WAIT).await.unwrap().event.is_none());
    assert_eq!(stream.next_event(Duration::from_millis(2500)).await, None);
    assert!(stream.comments >= 3, "{} keep-alives", stream.comments);
    let (id, _) = s.create(json!({"name": "t"})).await;
    s.revoke(&id, None).await;
    let m = stream
        .next_event(WAIT)
        .await
        .expect("the stream is still open");
    assert_eq!(m.json()["id"], id.as_str());

    let started = Instant::now();
    s.stop().await;
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(stream.next(WAIT).await, None, "the stream ended");
}

/// `invite.created` is sealed in the outbox because it carries the code:
/// the stream opens it and sends it without the code.
async fn sealed_events_arrive_without_their_secret(db: TestDb) {
    let s = TestServer::start(db).await;
    let mut stream = sse::open_ok(&s, As::Admin, "types=invite.created", None).await;
    let r = s
        .as_admin()
        .post_json("/v1/invites", json!({"grants": {"role": "member"}}))
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    let code = r.body["code"].as_str().unwrap();
    let m = stream.next_event(WAIT).await.unwrap();
    assert_eq!(
        m.json(),
        json!({"event": "invite.created", "id": r.body["invite"]["id"]})
    );
    assert!(!m.data.unwrap().contains(code));
}

tessera_test_support::backend_tests!(
    admins_and_clients_with_events_only,
    streams_are_capped,
    keep_alives_hold_a_quiet_stream,
    sealed_events_arrive_without_their_secret,
);
