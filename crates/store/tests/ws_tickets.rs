//! WebSocket tickets and connections in storage, on both backends: a ticket
//! is taken once (expired ones too, so the caller can say whose it was), a
//! connection closes once, and the purge removes expired tickets and old
//! closed connections only.

use chrono::{Duration, Utc};
use tessera_core::{
    ids::new_id,
    ws_ticket::{WsConnection, WsTicket},
};
use tessera_test_support::{backend_tests, TestDb};

fn ticket(expires_in: Duration) -> WsTicket {
    let now = Utc::now();
    WsTicket {
        session_id: new_id(),
        subject: "u_1".into(),
        scope: "profile".into(),
        audience: Some("chat".into()),
        ip_hash: Some("h".into()),
        issued_at: now,
        expires_at: now + expires_in,
    }
}

async fn a_ticket_is_taken_once(db: TestDb) {
    let store = &db.store;
    let (live, expired) = (ticket(Duration::seconds(30)), ticket(Duration::seconds(-1)));
    let mut tx = store.begin_write().await.unwrap();
    tx.insert_ws_ticket("live", &live).await.unwrap();
    tx.insert_ws_ticket("expired", &expired).await.unwrap();
    tx.commit().await.unwrap();
    assert!(store.ws_ticket_exists("live").await.unwrap());
    assert!(!store.ws_ticket_exists("nope").await.unwrap());

    let mut tx = store.begin_write().await.unwrap();
    let taken = tx.take_ws_ticket("live").await.unwrap();
    assert_eq!(taken.as_ref().map(|t| t.subject.as_str()), Some("u_1"));
    assert_eq!(taken.unwrap().audience.as_deref(), Some("chat"));
    assert_eq!(tx.take_ws_ticket("live").await.unwrap(), None);
    // Rolled back: the ticket is still there.
    drop(tx);
    let mut tx = store.begin_write().await.unwrap();
    assert!(tx.take_ws_ticket("live").await.unwrap().is_some());
    let e = tx.take_ws_ticket("expired").await.unwrap().unwrap();
    assert!(e.expires_at < Utc::now());
    tx.commit().await.unwrap();
    assert!(!store.ws_ticket_exists("live").await.unwrap());
}

async fn connections_close_once_and_old_state_is_purged(db: TestDb) {
    let store = &db.store;
    let now = Utc::now();
    let conn = WsConnection {
        id: new_id(),
        session_id: new_id(),
        subject: "u_1".into(),
        user_id: None,
        client_id: "gw".into(),
        audience: None,
        opened_at: now,
        closed_at: None,
        close_code: None,
        close_reason: None,
    };
    let mut tx = store.begin_write().await.unwrap();
    tx.insert_ws_connection(&conn).await.unwrap();
    tx.insert_ws_ticket("old", &ticket(Duration::seconds(-5)))
        .await
        .unwrap();
    tx.insert_ws_ticket("new", &ticket(Duration::seconds(30)))
        .await
        .unwrap();
    assert!(tx
        .close_ws_connection(&conn.id, now, Some(1001), Some("away"))
        .await
        .unwrap());
    assert!(!tx
        .close_ws_connection(&conn.id, now, Some(1000), None)
        .await
        .unwrap());
    tx.commit().await.unwrap();
    let got = store.get_ws_connection(&conn.id).await.unwrap().unwrap();
    assert_eq!(
        (got.close_code, got.close_reason.as_deref()),
        (Some(1001), Some("away"))
    );
    assert_eq!(
        got.closed_at.map(|t| t.timestamp_millis()),
        Some(now.timestamp_millis())
    );

    // An issue clears its own session's expired tickets only.
    let mut other = ticket(Duration::seconds(-5));
    let mut mine = ticket(Duration::seconds(-5));
    mine.session_id = "s-mine".into();
    other.session_id = "s-other".into();
    let mut tx = store.begin_write().await.unwrap();
    tx.insert_ws_ticket("mine", &mine).await.unwrap();
    tx.insert_ws_ticket("other", &other).await.unwrap();
    assert_eq!(
        tx.delete_expired_ws_tickets("s-mine", now).await.unwrap(),
        1
    );
    tx.commit().await.unwrap();
    assert!(!store.ws_ticket_exists("mine").await.unwrap());
    assert!(store.ws_ticket_exists("other").await.unwrap());

    // Closed after the horizon: kept; the expired tickets go.
    let n = store
        .purge_ws_state(Utc::now(), now - Duration::hours(1))
        .await
        .unwrap();
    assert_eq!(n, 2);
    assert!(store.ws_ticket_exists("new").await.unwrap());
    let n = store
        .purge_ws_state(Utc::now(), now + Duration::seconds(1))
        .await
        .unwrap();
    assert_eq!(n, 1);
    assert_eq!(store.get_ws_connection(&conn.id).await.unwrap(), None);
}

backend_tests!(
    a_ticket_is_taken_once,
    connections_close_once_and_old_state_is_purged,
);

fn main() -> std::process::ExitCode {
    tessera_test_support::harness::run(trials())
}
