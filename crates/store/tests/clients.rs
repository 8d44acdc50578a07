//! The OAuth2 client registry's storage on SQLite and PostgreSQL: a client
//! round-trips with its digests, capabilities and audiences; a locked
//! read-modify-write persists; listings page newest first and hide deleted
//! clients; a change rolls back with its transaction.

use chrono::{Duration, Utc};
use tessera_core::{
    client::Capability,
    client_registry::{new_client_id, RegisteredClient},
    ids::now,
};
use tessera_store::ClientQuery;
use tessera_test_support::{backend_tests, TestDb};

fn client(name: &str) -> RegisteredClient {
    let at = now();
    RegisteredClient {
        id: new_client_id(),
        name: name.into(),
        secret_hash: "a".repeat(64),
        previous_secret_hash: None,
        previous_secret_expires_at: None,
        capabilities: vec![Capability::Introspect, Capability::WsTickets],
        audiences: Some(vec!["api".into(), "https://orders.example".into()]),
        created_at: at,
        updated_at: at,
        deleted_at: None,
        ip_allow: tessera_core::token_controls::parse_ip_list("ip_allow", &["10.0.0.0/8"]).unwrap(),
        ip_deny: vec![],
    }
}

async fn insert(db: &TestDb, c: &RegisteredClient) {
    let mut tx = db.store.begin_write().await.unwrap();
    tx.insert_client(c).await.unwrap();
    tx.commit().await.unwrap();
}

async fn a_client_round_trips_and_changes(db: TestDb) {
    let c = client("gateway");
    insert(&db, &c).await;
    assert_eq!(db.store.get_client(&c.id).await.unwrap(), Some(c.clone()));
    assert_eq!(db.store.get_client("cl_nothing").await.unwrap(), None);

    let mut tx = db.store.begin_write().await.unwrap();
    let mut locked = tx.lock_client(&c.id).await.unwrap().unwrap();
    locked.previous_secret_hash = Some(locked.secret_hash.clone());
    locked.previous_secret_expires_at = Some(now() + Duration::hours(1));
    locked.secret_hash = "b".repeat(64);
    locked.capabilities = vec![Capability::Revoke];
    locked.audiences = None;
    tx.update_client(&locked).await.unwrap();
    tx.commit().await.unwrap();
    assert_eq!(
        db.store.get_client(&c.id).await.unwrap(),
        Some(locked.clone())
    );

    // A change dropped before commit leaves nothing behind.
    let mut tx = db.store.begin_write().await.unwrap();
    let mut gone = tx.lock_client(&c.id).await.unwrap().unwrap();
    gone.deleted_at = Some(Utc::now());
    tx.update_client(&gone).await.unwrap();
    drop(tx);
    assert_eq!(db.store.get_client(&c.id).await.unwrap(), Some(locked));
    let mut tx = db.store.begin_write().await.unwrap();
    assert!(tx.lock_client("cl_nothing").await.unwrap().is_none());
}

async fn listings_page_newest_first_without_deleted(db: TestDb) {
    let mut ids = Vec::new();
    for n in 0..3 {
        let c = client(&format!("c{n}"));
        insert(&db, &c).await;
        ids.push(c.id);
    }
    let mut deleted = client("deleted");
    deleted.deleted_at = Some(now());
    insert(&db, &deleted).await;
    let query = |cursor: Option<String>, include_deleted| ClientQuery {
        include_deleted,
        cursor,
        limit: 2,
    };
    let first = db.store.list_clients(&query(None, false)).await.unwrap();
    let got: Vec<&str> = first.items.iter().map(|c| c.id.as_str()).collect();
    assert_eq!(got, [ids[2].as_str(), ids[1].as_str()]);
    let next = db
        .store
        .list_clients(&query(first.next_cursor, false))
        .await
        .unwrap();
    assert_eq!(next.items.len(), 1);
    assert_eq!(next.items[0].id, ids[0]);
    assert!(next.next_cursor.is_none());
    let all = db.store.list_clients(&query(None, true)).await.unwrap();
    assert_eq!(all.items[0].id, deleted.id);
}

backend_tests!(
    a_client_round_trips_and_changes,
    listings_page_newest_first_without_deleted,
);

fn main() -> std::process::ExitCode {
    tessera_test_support::harness::run(trials())
}
