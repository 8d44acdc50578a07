//! The background writer that keeps verification free of synchronous writes:
//! uses are summed in memory and written once per flush, queued audit rows
//! land with the next flush, and nothing is written twice. On both backends.

use std::sync::Arc;

use chrono::{DateTime, Duration, TimeZone, Utc};
use serde_json::json;
use tessera_core::{
    api_token::ApiToken,
    audit::{Actor, AuditEntry, RequestContext},
    ids::new_id,
    token_format::TokenFormat,
};
use tessera_server::{metrics::Metrics, service::background::BackgroundWriter};
use tessera_store::{NewToken, Store};
use tessera_test_support::{backend_tests, TestDb};

/// Whole milliseconds, as the store keeps them.
fn at(ms: i64) -> DateTime<Utc> {
    Utc.timestamp_millis_opt(ms).unwrap()
}

async fn token(store: &Arc<dyn Store>) -> ApiToken {
    let generated = TokenFormat::default().generate();
    let token = ApiToken::new(new_id(), "bg", vec!["read".into()], Utc::now());
    let entry = AuditEntry::success(
        &Actor::Cli,
        "create",
        "api_token",
        &token.id,
        json!({}),
        &RequestContext::default(),
    );
    store
        .create_token(
            &NewToken {
                token: token.clone(),
                secret_hash: generated.hash,
            },
            &entry,
            &[],
        )
        .await
        .unwrap();
    token
}

async fn uses_are_summed_and_written_once_per_flush(db: TestDb) {
    let metrics = Arc::new(Metrics::new());
    let writer = BackgroundWriter::new(db.store.clone(), metrics.clone(), row_keys());
    let a = token(&db.store).await;
    let b = token(&db.store).await;
    let t0 = Utc::now().timestamp_millis();
    // Out of order, as concurrent requests may record them.
    writer.record_use(&a.id, at(t0 + 2_000));
    writer.record_use(&a.id, at(t0 + 1_000));
    writer.record_use(&a.id, at(t0 + 3_000));
    writer.record_use(&b.id, at(t0 + 500));

    // Nothing reaches the database before the flush.
    assert_eq!(
        db.store.get_token(&a.id).await.unwrap().unwrap().use_count,
        0
    );

    writer.flush().await;
    let a_now = db.store.get_token(&a.id).await.unwrap().unwrap();
    assert_eq!(a_now.use_count, 3);
    assert_eq!(
        a_now.last_used_at,
        Some(at(t0 + 3_000)),
        "the latest use wins"
    );
    let b_now = db.store.get_token(&b.id).await.unwrap().unwrap();
    assert_eq!(
        (b_now.use_count, b_now.last_used_at),
        (1, Some(at(t0 + 500)))
    );

    // A second flush has nothing to add; new uses add to the stored count,
    // and an older use does not move `last_used_at` back.
    writer.flush().await;
    writer.record_use(&a.id, at(t0 - Duration::hours(1).num_milliseconds()));
    writer.flush().await;
    let a_now = db.store.get_token(&a.id).await.unwrap().unwrap();
    assert_eq!(a_now.use_count, 4);
    assert_eq!(a_now.last_used_at, Some(at(t0 + 3_000)));
    assert_eq!(metrics.background_flush_errors.get(), 0);
}

async fn queued_audit_rows_land_with_the_next_flush(db: TestDb) {
    let metrics = Arc::new(Metrics::new());
    let writer = BackgroundWriter::new(db.store.clone(), metrics.clone(), row_keys());
    let target = new_id();
    for _ in 0..3 {
        writer.queue_audit(AuditEntry::success(
            &Actor::Cli,
            "verify",
            "api_token",
            &target,
            json!({"reason": "test"}),
            &RequestContext::default(),
        ));
    }
    assert!(db
        .store
        .audit_for_target(&target, 10)
        .await
        .unwrap()
        .is_empty());
    writer.flush().await;
    let rows = db.store.audit_for_target(&target, 10).await.unwrap();
    assert_eq!(rows.len(), 3);
    assert!(rows
        .iter()
        .all(|r| r.action == "verify" && r.details["reason"] == "test"));
    writer.flush().await;
    assert_eq!(
        db.store.audit_for_target(&target, 10).await.unwrap().len(),
        3
    );
    assert_eq!(metrics.audit_dropped.get(), 0);
}

/// A flush that fails (here: the tables are away) loses nothing: the uses
/// and rows are kept, counted as a flush error, and written by the next
/// flush once the database answers again.
async fn a_failed_flush_keeps_everything_for_the_next_one(db: TestDb) {
    let metrics = Arc::new(Metrics::new());
    let writer = BackgroundWriter::new(db.store.clone(), metrics.clone(), row_keys());
    let a = token(&db.store).await;
    let t0 = Utc::now().timestamp_millis();
    writer.record_use(&a.id, at(t0));
    writer.record_use(&a.id, at(t0 + 1));
    writer.queue_audit(AuditEntry::success(
        &Actor::Cli,
        "verify",
        "api_token",
        &a.id,
        json!({}),
        &RequestContext::default(),
    ));

    sqlx::any::install_default_drivers();
    let pool = sqlx::AnyPool::connect(&db.url).await.unwrap();
    let rename = |from: &str, to: &str| format!("ALTER TABLE {from} RENAME TO {to}");
    for (from, to) in [
        ("api_tokens", "api_tokens_away"),
        ("audit_log", "audit_log_away"),
    ] {
        sqlx::query(&rename(from, to)).execute(&pool).await.unwrap();
    }
    writer.flush().await;
    assert_eq!(
        metrics.background_flush_errors.get(),
        2,
        "usage and audit both failed"
    );
    // One more use while the database is away adds to the kept count.
    writer.record_use(&a.id, at(t0 + 2));
    for (from, to) in [
        ("api_tokens_away", "api_tokens"),
        ("audit_log_away", "audit_log"),
    ] {
        sqlx::query(&rename(from, to)).execute(&pool).await.unwrap();
    }

    writer.flush().await;
    let stored = db.store.get_token(&a.id).await.unwrap().unwrap();
    assert_eq!(
        (stored.use_count, stored.last_used_at),
        (3, Some(at(t0 + 2)))
    );
    let rows = db.store.audit_for_target(&a.id, 10).await.unwrap();
    assert_eq!(rows.iter().filter(|r| r.action == "verify").count(), 1);
    assert_eq!(metrics.background_flush_errors.get(), 2);
    assert_eq!(metrics.audit_dropped.get(), 0);
}

backend_tests!(
    uses_are_summed_and_written_once_per_flush,
    queued_audit_rows_land_with_the_next_flush,
    a_failed_flush_keeps_everything_for_the_next_one,
);

/// The keyed hash that names aggregated audit rows; any key will do here.
fn row_keys() -> tessera_core::crypto::KeyedHasher {
    tessera_core::crypto::KeyedHasher::new("background-writer-test-key-0123456789", "audit-row-key")
        .expect("a test key")
}
