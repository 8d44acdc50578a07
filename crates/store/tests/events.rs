//! The outbox in commit order (`EventFeed`), on both backends: an event
//! that committed after a later id was read is still found above the
//! reader's cursor; positions are gap-free and unique under concurrent
//! writers and concurrent numbering passes; type filters and limits.

use std::{collections::HashSet, sync::Arc};

use sqlx::AnyPool;
use tessera_core::{event::OutboxEvent, ids::new_id};
use tessera_store::{FeedEvent, Store};
use tessera_test_support::TestDb;

async fn append(store: &Arc<dyn Store>, event: OutboxEvent) {
    let mut tx = store.begin_write().await.unwrap();
    tx.append_events(&[event]).await.unwrap();
    tx.commit().await.unwrap();
}

/// Everything after `cursor` as a reader sees it now: number, then read.
async fn read_after(store: &Arc<dyn Store>, cursor: i64) -> (Vec<FeedEvent>, i64) {
    let head = store.sequence_events().await.unwrap();
    let events = store.events_between(cursor, head, &[], 1000).await.unwrap();
    (events, head)
}

/// Writes an outbox row as a transaction that took its id at `id` and
/// committed only now would: on SQLite, whose single writer cannot hold
/// two transactions open at once, this is how an id from before a
/// committed one appears (another process's UUIDv7 of the same
/// millisecond, or a clock behind).
async fn insert_late(url: &str, id: &str, event_type: &str) {
    sqlx::any::install_default_drivers();
    let pool = AnyPool::connect(url).await.unwrap();
    sqlx::query(
        "INSERT INTO outbox_events (id, event_type, payload, payload_sealed, created_at) \
         VALUES ($1, $2, $3, 0, $4)",
    )
    .bind(id)
    .bind(event_type)
    .bind(format!(r#"{{"event":"{event_type}","id":"late"}}"#))
    .bind(chrono::Utc::now().timestamp_millis())
    .execute(&pool)
    .await
    .unwrap();
    pool.close().await;
}

/// The issue's case: event A takes its id before event B, B commits and is
/// read, then A commits. A reader resuming after B's position gets A.
async fn a_late_commit_with_a_lower_id_is_not_skipped(db: TestDb) {
    let store = &db.store;
    let (_, start) = read_after(store, 0).await;
    let early_id = new_id();
    append(store, OutboxEvent::token_revoked("tok-b")).await;
    let (seen, cursor) = read_after(store, start).await;
    assert_eq!(seen.len(), 1);
    let b = &seen[0];
    assert!(early_id < b.id, "A's id sorts before B's");
    assert_eq!(b.seq, cursor);

    insert_late(&db.url, &early_id, "session.revoked").await;
    let (resumed, _) = read_after(store, cursor).await;
    let ids: Vec<&str> = resumed.iter().map(|e| e.id.as_str()).collect();
    assert_eq!(
        ids,
        [early_id.as_str()],
        "the late commit is after the cursor"
    );
    assert!(resumed[0].seq > b.seq);
    assert_eq!(resumed[0].event_type, "session.revoked");
}

/// The same with two real transactions open at once (PostgreSQL).
async fn concurrent_transactions_commit_out_of_id_order() {
    let db = TestDb::postgres().await;
    let store = &db.store;
    let (_, start) = read_after(store, 0).await;
    let mut a = store.begin_write().await.unwrap();
    a.append_events(&[OutboxEvent::token_revoked("tok-a")])
        .await
        .unwrap();
    let mut b = store.begin_write().await.unwrap();
    b.append_events(&[OutboxEvent::token_revoked("tok-b")])
        .await
        .unwrap();
    b.commit().await.unwrap();
    let (seen, cursor) = read_after(store, start).await;
    assert_eq!(seen.len(), 1, "only B has committed");
    a.commit().await.unwrap();
    let (resumed, _) = read_after(store, cursor).await;
    assert_eq!(resumed.len(), 1);
    assert!(resumed[0].id < seen[0].id, "A's id is the lower one");
    assert!(resumed[0].seq > seen[0].seq);
}

/// Writers and numbering passes at once (several "replicas" on one
/// database): a reader that follows the head sees every event exactly
/// once, and positions are 1..=n without a gap.
async fn concurrent_writers_and_passes_lose_nothing(db: TestDb) {
    let store = db.store.clone();
    let writers: Vec<_> = (0..4)
        .map(|w| {
            let store = store.clone();
            tokio::spawn(async move {
                for i in 0..25 {
                    append(&store, OutboxEvent::token_revoked(&format!("w{w}-{i}"))).await;
                }
            })
        })
        .collect();
    let other = TestDb::open(&db.url).await.store;
    let passes = tokio::spawn(async move {
        for _ in 0..50 {
            other.sequence_events().await.unwrap();
            tokio::task::yield_now().await;
        }
    });
    let mut seen = Vec::new();
    let mut cursor = 0;
    let mut idle_rounds = 0;
    while idle_rounds < 3 {
        let (events, head) = read_after(&store, cursor).await;
        idle_rounds = if events.is_empty() && writers.iter().all(|w| w.is_finished()) {
            idle_rounds + 1
        } else {
            0
        };
        seen.extend(events.into_iter().map(|e| (e.seq, e.id)));
        cursor = head;
    }
    passes.await.unwrap();
    let ids: HashSet<&String> = seen.iter().map(|(_, id)| id).collect();
    assert_eq!(seen.len(), 100, "every event once");
    assert_eq!(ids.len(), 100, "no duplicates");
    let positions: Vec<i64> = seen.iter().map(|(seq, _)| *seq).collect();
    assert_eq!(
        positions,
        (1..=100).collect::<Vec<_>>(),
        "gap-free, in order"
    );
}

async fn types_filter_and_limits_apply(db: TestDb) {
    let store = &db.store;
    append(store, OutboxEvent::token_revoked("t1")).await;
    append(store, OutboxEvent::token_updated("t1", &["name"])).await;
    append(store, OutboxEvent::token_revoked("t2")).await;
    let head = store.sequence_events().await.unwrap();
    assert_eq!(head, 3);
    let revoked = store
        .events_between(0, head, &["revoked".into()], 10)
        .await
        .unwrap();
    assert_eq!(revoked.iter().map(|e| e.seq).collect::<Vec<_>>(), [1, 3]);
    let two = ["revoked".to_string(), "updated".to_string()];
    let first = store.events_between(0, head, &two, 2).await.unwrap();
    assert_eq!(first.iter().map(|e| e.seq).collect::<Vec<_>>(), [1, 2]);
    assert!(store
        .events_between(1, 2, &["revoked".into()], 10)
        .await
        .unwrap()
        .is_empty());
    // Nothing new: the head stays, and nothing is written.
    assert_eq!(store.sequence_events().await.unwrap(), 3);
}

tessera_test_support::tests! {
    backends:
    a_late_commit_with_a_lower_id_is_not_skipped,
    concurrent_writers_and_passes_lose_nothing,
    types_filter_and_limits_apply;
    multi_thread: #[needs(Postgres)] concurrent_transactions_commit_out_of_id_order;
}

fn main() -> std::process::ExitCode {
    tessera_test_support::harness::run(trials())
}
