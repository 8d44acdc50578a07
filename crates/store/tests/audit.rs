//! Aggregated audit rows (issue #11, item 2): one row per key, whatever the
//! number of writes and writers, on SQLite and PostgreSQL.

use serde_json::json;
use tessera_core::audit::{AuditEntry, RequestContext};
use tessera_store::AuditAggregate;
use tessera_test_support::{backend_tests, TestDb};

fn aggregate(key: &str, samples: &[&str], occurrences: i64) -> AuditAggregate {
    AuditAggregate {
        key: key.to_string(),
        entry: AuditEntry {
            actor: "anonymous".into(),
            action: "token.verify",
            target_type: "api_token",
            target_id: Some("tok-1".into()),
            outcome: "failure",
            details: json!({"code": "REVOKED", "sample_token_ids": samples}),
            context: RequestContext {
                request_id: Some("req-1".into()),
                ip_sealed: Some("k:sealed-ip".into()),
                user_agent_sealed: None,
            },
            channel: None,
        },
        occurrences,
    }
}

async fn upserts_add_to_one_row_per_key(db: TestDb) {
    let store = db.store.clone();
    store
        .upsert_audit_aggregates(&[aggregate("a", &["tok-1"], 5), aggregate("b", &[], 1)])
        .await
        .unwrap();
    // Later writes, also concurrent ones (several replicas), add their counts.
    let writes: Vec<_> = (0..10)
        .map(|_| {
            let store = store.clone();
            tokio::spawn(async move {
                store
                    .upsert_audit_aggregates(&[aggregate("a", &["tok-1", "tok-2"], 3)])
                    .await
                    .unwrap()
            })
        })
        .collect();
    for w in writes {
        w.await.unwrap();
    }
    // Shorter details never replace longer ones.
    store
        .upsert_audit_aggregates(&[aggregate("a", &[], 1)])
        .await
        .unwrap();
    let rows = store.audit_for_target("tok-1", 10).await.unwrap();
    assert_eq!(rows.len(), 2, "one row per key: {rows:?}");
    let a = rows.iter().find(|r| r.occurrences > 1).unwrap();
    assert_eq!(a.occurrences, 5 + 30 + 1);
    assert_eq!(a.details["sample_token_ids"], json!(["tok-1", "tok-2"]));
    assert_eq!(a.request_id.as_deref(), Some("req-1"));
    // Ordinary rows (no key) never conflict with each other.
    let plain = AuditEntry::success(
        &tessera_core::audit::Actor::Cli,
        "token.create",
        "api_token",
        "tok-1",
        json!({}),
        &RequestContext::default(),
    );
    store.append_audit(&[plain.clone(), plain]).await.unwrap();
    let rows = store.audit_for_target("tok-1", 10).await.unwrap();
    assert_eq!(rows.len(), 4);
    assert_eq!(rows.iter().filter(|r| r.occurrences == 1).count(), 3);
}

backend_tests!(upserts_add_to_one_row_per_key);

fn main() -> std::process::ExitCode {
    tessera_test_support::harness::run(trials())
}
