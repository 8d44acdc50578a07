//! Scheduled jobs, each proved on both backends, and two servers on one
//! PostgreSQL running a job once per interval, not twice.

use crate::common;

use std::time::Duration;

use common::TestServer;
use reqwest::StatusCode;
use serde_json::json;
use sqlx::Row;
use tessera_server::scheduler::{self, Job};
use tessera_test_support::TestDb;

/// Jobs never run on their own in these tests: each is run by hand.
const MANUAL: &[(&str, &str)] = &[("TESSERA_JOBS_ENABLED", "false")];
/// Jobs by hand, and a dispatcher that never polls during the test, so the
/// outbox still holds the events a test reads back.
const MANUAL_KEEP_OUTBOX: &[(&str, &str)] = &[
    ("TESSERA_JOBS_ENABLED", "false"),
    ("TESSERA_WEBHOOK_POLL_INTERVAL", "1h"),
];

async fn services(
    s: &TestServer,
) -> (
    tessera_server::Services,
    tessera_server::config::JobSettings,
) {
    let config = common::config(&s.db.url, s.data_dir.path(), MANUAL);
    (
        tessera_server::Services::open(&config).await.unwrap(),
        config.jobs,
    )
}

async fn revoke_expired_tokens(db: TestDb) {
    let s = TestServer::start_with(db, MANUAL_KEEP_OUTBOX).await;
    let (id, secret) = s.create(json!({"name": "short", "expires_in": 1})).await;
    let (keep, _) = s.create(json!({"name": "long"})).await;
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let (svc, settings) = services(&s).await;
    let run = scheduler::run_now(&svc, &settings, Job::RevokeExpiredTokens, "test")
        .await
        .unwrap();
    assert_eq!((run.outcome.as_str(), run.items), ("success", 1));
    let t = s.as_admin().get(&format!("/v1/tokens/{id}")).await.body;
    assert_eq!(t["state"], "revoked");
    assert_eq!(
        s.as_admin().get(&format!("/v1/tokens/{keep}")).await.body["state"],
        "active"
    );
    let audit = s.db.store.audit_for_target(&id, 10).await.unwrap();
    assert!(audit.iter().any(|a| a.action == "token.revoke"
        && a.actor == "system"
        && a.details["reason"] == "expired"));
    let events: Vec<_> =
        s.db.store
            .pending_events(100)
            .await
            .unwrap()
            .into_iter()
            .map(|e| e.event_type)
            .collect();
    assert!(events.contains(&"expired".to_string()) && events.contains(&"revoked".to_string()));
    // Idempotent: a second run touches nothing.
    let again = scheduler::run_now(&svc, &settings, Job::RevokeExpiredTokens, "test")
        .await
        .unwrap();
    assert_eq!(again.items, 0);
    assert_eq!(s.verify(&secret).await["code"], "REVOKED");
}

async fn rotate_expiring_tokens_and_claim_the_successor_once(db: TestDb) {
    let s = TestServer::start_with(db, MANUAL_KEEP_OUTBOX).await;
    // Inside the 7-day window; due once past half its lifetime.
    let (old, old_secret) = s
        .create(json!({"name": "rotating", "owner": "svc", "scopes": ["read", "write"], "metadata": {"k": "v"}, "expires_in": 10, "auto_rotate": true}))
        .await;
    let (not_opted, _) = s.create(json!({"name": "manual", "expires_in": 10})).await;
    let (svc, settings) = services(&s).await;
    let early = scheduler::run_now(&svc, &settings, Job::RotateExpiringTokens, "test")
        .await
        .unwrap();
    assert_eq!(early.items, 0, "not rotated before half its lifetime");
    tokio::time::sleep(Duration::from_millis(5100)).await;
    let run = scheduler::run_now(&svc, &settings, Job::RotateExpiringTokens, "test")
        .await
        .unwrap();
    assert_eq!(run.items, 1);
    let t = s.as_admin().get(&format!("/v1/tokens/{old}")).await.body;
    let successor_id = t["successor_id"]
        .as_str()
        .expect("successor linked")
        .to_string();
    assert!(s
        .as_admin()
        .get(&format!("/v1/tokens/{not_opted}"))
        .await
        .body["successor_id"]
        .is_null());
    let claim = s
        .with_token(&old_secret)
        .post("/v1/tokens/self/successor")
        .await;
    assert_eq!(claim.status, StatusCode::OK, "{}", claim.text);
    assert_eq!(claim.body["token"]["id"], successor_id.as_str());
    assert_eq!(claim.body["token"]["name"], "rotating");
    assert_eq!(claim.body["token"]["owner"], "svc");
    assert_eq!(claim.body["token"]["scopes"], json!(["read", "write"]));
    assert_eq!(claim.body["token"]["metadata"], json!({"k": "v"}));
    let new_secret = claim.body["secret"].as_str().unwrap();
    assert_eq!(s.verify(new_secret).await["valid"], true);
    assert_eq!(
        s.verify(&old_secret).await["valid"],
        true,
        "the old token works until it expires"
    );
    s.with_token(&old_secret)
        .post("/v1/tokens/self/successor")
        .await
        .assert_problem(StatusCode::NOT_FOUND, "successor_not_available");
    let rotated =
        s.db.store
            .pending_events(100)
            .await
            .unwrap()
            .into_iter()
            .find(|e| e.event_type == "rotated")
            .unwrap();
    match rotated.payload {
        tessera_store::EventPayload::Clear(p) => assert_eq!(
            p,
            json!({"event": "rotated", "id": old, "new_id": successor_id})
        ),
        other => panic!("unexpected {other:?}"),
    }
    let again = scheduler::run_now(&svc, &settings, Job::RotateExpiringTokens, "test")
        .await
        .unwrap();
    assert_eq!(again.items, 0, "one successor per token");
    assert!(
        !s.db.all_text().await.contains(&new_secret[4..]),
        "successor secret stored in clear"
    );
}

async fn purge_old_logs_keeps_recent_rows(db: TestDb) {
    let s = TestServer::start_with(db, MANUAL).await;
    let (id, _) = s.create(json!({"name": "audited"})).await;
    sqlx::any::install_default_drivers();
    let pool = sqlx::AnyPool::connect(&s.db.url).await.unwrap();
    let old_ms = (chrono::Utc::now() - chrono::Duration::days(400)).timestamp_millis();
    sqlx::query("INSERT INTO audit_log (id, at, actor, action, target_type, target_id, outcome, details) VALUES ('old-row', $1, 'cli', 'token.create', 'api_token', 'x', 'success', '{}')")
        .bind(old_ms)
        .execute(&pool)
        .await
        .unwrap();
    let (svc, settings) = services(&s).await;
    let run = scheduler::run_now(&svc, &settings, Job::PurgeOldLogs, "test")
        .await
        .unwrap();
    assert!(run.items >= 1);
    let left: i64 = sqlx::query("SELECT COUNT(*) AS n FROM audit_log WHERE id = 'old-row'")
        .fetch_one(&pool)
        .await
        .unwrap()
        .get("n");
    assert_eq!(left, 0);
    assert!(
        !s.db
            .store
            .audit_for_target(&id, 10)
            .await
            .unwrap()
            .is_empty(),
        "recent rows are kept"
    );
    let summary = s.db.store.job_summary("purge_old_logs").await.unwrap();
    assert!(summary.last_success_at.is_some());
    assert_eq!(summary.last_run.unwrap().outcome, "success");
}

/// Issue 11, item 10: dispatched outbox events were never purged. The
/// retention job now removes old dispatched events and old finished
/// deliveries (with their attempts), and keeps what is still needed:
/// undispatched events, pending deliveries and their events, recent history.
async fn purge_old_logs_removes_old_webhook_history(db: TestDb) {
    let s = TestServer::start_with(db, MANUAL_KEEP_OUTBOX).await;
    sqlx::any::install_default_drivers();
    let pool = sqlx::AnyPool::connect(&s.db.url).await.unwrap();
    let now = chrono::Utc::now();
    let old = (now - chrono::Duration::days(40)).timestamp_millis();
    let recent = (now - chrono::Duration::days(1)).timestamp_millis();
    // (event, dispatched_at) then (delivery, event, status, updated_at).
    let events: &[(&str, Option<i64>)] = &[
        ("ev-old-alone", Some(old)),
        ("ev-old-succeeded", Some(old)),
        ("ev-old-failed", Some(old)),
        ("ev-old-pending", Some(old)),
        ("ev-old-undispatched", None),
        ("ev-recent", Some(recent)),
        ("ev-old-recently-failed", Some(old)),
    ];
    for (id, dispatched) in events {
        sqlx::query("INSERT INTO outbox_events (id, event_type, payload, created_at, dispatched_at) VALUES ($1, 'created', '{}', $2, $3)")
            .bind(*id).bind(old).bind(*dispatched)
            .execute(&pool).await.unwrap();
    }
    let deliveries = [
        ("dl-old-succeeded", "ev-old-succeeded", "succeeded", old),
        ("dl-old-failed", "ev-old-failed", "failed", old),
        ("dl-old-pending", "ev-old-pending", "pending", old),
        ("dl-recent", "ev-recent", "succeeded", recent),
        (
            "dl-recently-failed",
            "ev-old-recently-failed",
            "failed",
            recent,
        ),
    ];
    for (id, event, status, updated) in deliveries {
        sqlx::query("INSERT INTO webhook_deliveries (id, event_id, endpoint_id, event_type, status, attempts, created_at, updated_at) VALUES ($1, $2, 'ep-gone', 'created', $3, 1, $4, $4)")
            .bind(id).bind(event).bind(status).bind(updated)
            .execute(&pool).await.unwrap();
        sqlx::query("INSERT INTO webhook_attempts (id, delivery_id, at, status_code, latency_ms) VALUES ($1, $2, $3, 200, 5)")
            .bind(format!("at-{id}")).bind(id).bind(updated)
            .execute(&pool).await.unwrap();
    }

    let (svc, settings) = services(&s).await;
    assert_eq!(settings.webhook_event_retention, chrono::Duration::days(30));
    let run = scheduler::run_now(&svc, &settings, Job::PurgeOldLogs, "test")
        .await
        .unwrap();
    assert_eq!(run.outcome, "success");

    let ids = |sql: &'static str| {
        let pool = pool.clone();
        async move {
            let rows = sqlx::query(sql).fetch_all(&pool).await.unwrap();
            let mut ids: Vec<String> = rows.iter().map(|r| r.get::<String, _>("id")).collect();
            ids.sort();
            ids
        }
    };
    let kept_events = ids("SELECT id FROM outbox_events WHERE id LIKE 'ev-%'").await;
    assert_eq!(
        kept_events,
        [
            "ev-old-pending",
            "ev-old-recently-failed",
            "ev-old-undispatched",
            "ev-recent"
        ]
    );
    let kept_deliveries = ids("SELECT id FROM webhook_deliveries WHERE id LIKE 'dl-%'").await;
    assert_eq!(
        kept_deliveries,
        ["dl-old-pending", "dl-recent", "dl-recently-failed"]
    );
    let kept_attempts =
        ids("SELECT delivery_id AS id FROM webhook_attempts WHERE delivery_id LIKE 'dl-%'").await;
    assert_eq!(
        kept_attempts, kept_deliveries,
        "attempts go with their deliveries"
    );
    // What operators read still reads: every listed delivery has its attempts.
    let listed = s.as_admin().get("/v1/webhooks/deliveries?limit=100").await;
    assert_eq!(listed.status, StatusCode::OK, "{}", listed.text);
    let mut listed_ids: Vec<&str> = listed.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|d| d["id"].as_str())
        .filter(|id| id.starts_with("dl-"))
        .collect();
    listed_ids.sort();
    assert_eq!(listed_ids, kept_deliveries);
}

async fn resend_pending_webhooks_runs(db: TestDb) {
    let s = TestServer::start_with(db, MANUAL).await;
    let (svc, settings) = services(&s).await;
    let run = scheduler::run_now(&svc, &settings, Job::ResendPendingWebhooks, "test")
        .await
        .unwrap();
    assert_eq!(run.outcome, "success");
}

tessera_test_support::tests! {
    backends:
        revoke_expired_tokens,
        rotate_expiring_tokens_and_claim_the_successor_once,
        purge_old_logs_keeps_recent_rows,
        purge_old_logs_removes_old_webhook_history,
        resend_pending_webhooks_runs;
    multi_thread: #[needs(Postgres)] two_servers_on_one_postgres_run_a_job_once_per_interval;
}

async fn two_servers_on_one_postgres_run_a_job_once_per_interval() {
    let db = TestDb::postgres().await;
    let url = db.url.clone();
    let fast_checks = [
        ("TESSERA_JOB_CHECK_INTERVAL", "50ms"),
        ("TESSERA_JOB_PURGE_OLD_LOGS_INTERVAL", "1h"),
    ];
    let a = TestServer::start_with(db, &fast_checks).await;
    let b = TestServer::start_with(TestDb::open(&url).await, &fast_checks).await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    sqlx::any::install_default_drivers();
    let pool = sqlx::AnyPool::connect(&url).await.unwrap();
    let rows = sqlx::query("SELECT holder FROM job_runs WHERE job = 'purge_old_logs'")
        .fetch_all(&pool)
        .await
        .unwrap();
    assert_eq!(
        rows.len(),
        1,
        "the job ran {} times across two servers",
        rows.len()
    );
    let m =
        a.as_anonymous().get("/metrics").await.text + &b.as_anonymous().get("/metrics").await.text;
    assert!(m.contains("tokens_job_last_success_timestamp_seconds{job=\"purge_old_logs\"}"));
}
