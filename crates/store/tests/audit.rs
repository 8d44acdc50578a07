//! Aggregated audit rows (issue #11, item 2): one row per key, whatever the
//! number of writes and writers; and reading the log back (issue #13):
//! filters, the channel, and keyset pages newest first. On SQLite and
//! PostgreSQL.

use chrono::{Duration, Utc};
use serde_json::json;
use tessera_core::audit::{Actor, AuditEntry, RequestContext, SECURITY_CHANNEL};
use tessera_store::{AuditAggregate, AuditQuery};
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

fn entry(actor: &Actor, action: &'static str, target: &str) -> AuditEntry {
    AuditEntry::success(
        actor,
        action,
        "api_token",
        target,
        json!({}),
        &RequestContext::default(),
    )
}

async fn listing_filters_and_pages_newest_first(db: TestDb) {
    let store = db.store.clone();
    let token = Actor::Token("t-admin".into());
    // 7 rows in separate transactions (so in time order), one of them a
    // security event and one a failure.
    for i in 0..5 {
        store
            .append_audit(&[entry(&Actor::Cli, "token.create", &format!("tok-{i}"))])
            .await
            .unwrap();
    }
    let reuse = entry(&token, "token.refresh", "tok-1").with_channel(SECURITY_CHANNEL);
    let failed = AuditEntry {
        outcome: "failure",
        ..entry(&token, "token.revoke", "tok-2")
    };
    store.append_audit(&[reuse]).await.unwrap();
    store.append_audit(&[failed]).await.unwrap();

    // Every row, a page at a time: each once, newest first.
    let mut seen = Vec::new();
    let mut cursor = None;
    loop {
        let q = AuditQuery {
            limit: 3,
            cursor,
            ..Default::default()
        };
        let page = store.list_audit(&q).await.unwrap();
        assert!(page.items.len() <= 3);
        seen.extend(page.items);
        match page.next_cursor {
            Some(c) => cursor = Some(c),
            None => break,
        }
    }
    assert_eq!(seen.len(), 7);
    let ids: std::collections::HashSet<_> = seen.iter().map(|r| r.id.clone()).collect();
    assert_eq!(ids.len(), 7, "no row twice");
    assert!(seen
        .windows(2)
        .all(|w| (w[0].at, &w[0].id) > (w[1].at, &w[1].id)));
    assert_eq!(seen[0].action, "token.revoke");
    assert_eq!(seen[1].channel.as_deref(), Some("audit"));
    assert_eq!(seen[2].channel, None);

    let list = |q: AuditQuery| {
        let store = store.clone();
        async move { store.list_audit(&q).await.unwrap().items }
    };
    let by_channel = list(AuditQuery {
        channel: Some("audit".into()),
        ..Default::default()
    })
    .await;
    assert_eq!(by_channel.len(), 1);
    assert_eq!(by_channel[0].action, "token.refresh");
    let mine = list(AuditQuery {
        actor: Some("token:t-admin".into()),
        outcome: Some("success".into()),
        ..Default::default()
    })
    .await;
    assert_eq!(mine.len(), 1);
    let about = list(AuditQuery {
        target_type: Some("api_token".into()),
        target_id: Some("tok-2".into()),
        ..Default::default()
    })
    .await;
    assert_eq!(about.len(), 2);
    let created = list(AuditQuery {
        action: Some("token.create".into()),
        ..Default::default()
    })
    .await;
    assert_eq!(created.len(), 5);

    // Time window: `since` inclusive, `until` exclusive.
    let first = seen.last().unwrap();
    let from_first = list(AuditQuery {
        since: Some(first.at),
        ..Default::default()
    })
    .await;
    assert_eq!(from_first.len(), 7);
    let before_first = list(AuditQuery {
        until: Some(first.at),
        ..Default::default()
    })
    .await;
    assert!(before_first.is_empty());
    let future = list(AuditQuery {
        since: Some(Utc::now() + Duration::hours(1)),
        ..Default::default()
    })
    .await;
    assert!(future.is_empty());

    // A cursor no row has: an empty page, not an error.
    let unknown = list(AuditQuery {
        cursor: Some("01a20c4b-0000-7000-8000-000000000000".into()),
        ..Default::default()
    })
    .await;
    assert!(unknown.is_empty());

    // One row by id, channel included.
    let got = store.get_audit(&seen[1].id).await.unwrap().unwrap();
    assert_eq!(got.channel.as_deref(), Some("audit"));
    assert_eq!(got.target_id.as_deref(), Some("tok-1"));
    assert!(store
        .get_audit("01a20c4b-0000-7000-8000-000000000000")
        .await
        .unwrap()
        .is_none());
}

/// Rows written in one transaction share their time; the id orders them,
/// and the cursor still walks them without a gap or a repeat.
async fn rows_of_one_instant_page_by_id(db: TestDb) {
    let store = db.store.clone();
    let batch: Vec<_> = (0..5)
        .map(|i| entry(&Actor::System, "token.expire", &format!("tok-{i}")))
        .collect();
    store.append_audit(&batch).await.unwrap();
    let first = store
        .list_audit(&AuditQuery {
            limit: 2,
            ..Default::default()
        })
        .await
        .unwrap();
    let rest = store
        .list_audit(&AuditQuery {
            limit: 10,
            cursor: first.next_cursor.clone(),
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(first.items.len() + rest.items.len(), 5);
    assert!(rest.next_cursor.is_none());
    let mut ids: Vec<_> = first
        .items
        .iter()
        .chain(&rest.items)
        .map(|r| r.id.clone())
        .collect();
    let walked = ids.clone();
    ids.sort();
    ids.reverse();
    assert_eq!(walked, ids, "newest (highest id) first");
}

backend_tests!(
    upserts_add_to_one_row_per_key,
    listing_filters_and_pages_newest_first,
    rows_of_one_instant_page_by_id,
);

fn main() -> std::process::ExitCode {
    tessera_test_support::harness::run(trials())
}
