//! Reading the audit log over HTTP (issue #13), on SQLite and PostgreSQL:
//! filters, pages newest first without a repeat, the client's IP address
//! and user agent in clear for the admin, the read itself on record as
//! `audit.read`, and the refusals (401, 403, 400 for a filter that cannot
//! be used, never quoting it).

use std::collections::HashSet;

use crate::common::TestServer;
use reqwest::StatusCode;
use serde_json::{json, Value};
use tessera_core::audit::{Actor, AuditEntry, RequestContext, SECURITY_CHANNEL};
use tessera_test_support::{backend_tests, TestDb};

const USER_AGENT: &str = "audit-read-test/1.0";

/// Issues a token over HTTP with a user agent of ours; returns its id.
async fn create_token(s: &TestServer, name: &str) -> String {
    let r = s
        .http
        .post(format!("{}/v1/tokens", s.base))
        .bearer_auth(&s.admin)
        .header("user-agent", USER_AGENT)
        .json(&json!({"name": name, "scopes": ["read"]}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::CREATED);
    let body: Value = r.json().await.unwrap();
    body["token"]["id"].as_str().unwrap().to_string()
}

async fn admin_actor(s: &TestServer) -> String {
    let me = s.as_admin().get("/v1/tokens/self").await;
    format!("token:{}", me.body["id"].as_str().unwrap())
}

fn items(body: &Value) -> &Vec<Value> {
    body["items"].as_array().expect("a page")
}

async fn filters_and_opened_client_details(db: TestDb) {
    let s = TestServer::start(db).await;
    let admin = admin_actor(&s).await;
    let mut created = Vec::new();
    for i in 0..3 {
        created.push(create_token(&s, &format!("audited-{i}")).await);
    }

    // Who did what: the three creations, newest first, client in clear.
    let r = s
        .as_admin()
        .get(&format!("/v1/audit?action=token.create&actor={admin}"))
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let got = items(&r.body);
    assert_eq!(got.len(), 3, "{}", r.body);
    let targets: Vec<&str> = got
        .iter()
        .map(|e| e["target_id"].as_str().unwrap())
        .collect();
    let newest_first: Vec<&str> = created.iter().rev().map(String::as_str).collect();
    assert_eq!(targets, newest_first);
    for e in got {
        assert_eq!(e["ip"], "127.0.0.1");
        assert_eq!(e["user_agent"], USER_AGENT);
        assert_eq!(e["outcome"], "success");
        assert_eq!(e["target_type"], "api_token");
        assert_eq!(e["channel"], Value::Null);
        assert_eq!(e["occurrences"], 1);
        assert!(e.get("ip_enc").is_none() && e.get("ip_sealed").is_none());
    }
    assert!(r.body["next_cursor"].is_null());

    // By target, by outcome, by time.
    let r = s
        .as_admin()
        .get(&format!(
            "/v1/audit?target_type=api_token&target_id={}",
            created[0]
        ))
        .await;
    assert_eq!(items(&r.body).len(), 1);
    let r = s
        .as_admin()
        .get("/v1/audit?action=token.create&outcome=failure")
        .await;
    assert!(items(&r.body).is_empty());
    let r = s
        .as_admin()
        .get("/v1/audit?since=2999-01-01T00:00:00Z")
        .await;
    assert!(items(&r.body).is_empty());
    let r = s
        .as_admin()
        .get("/v1/audit?since=2000-01-01T00:00:00%2B02:00&until=2999-01-01T00:00:00Z&action=token.create")
        .await;
    // The three over HTTP and the test's admin token, issued by the CLI path.
    assert_eq!(items(&r.body).len(), 4, "{}", r.body);

    // The security channel.
    let reuse = AuditEntry::success(
        &Actor::System,
        "token.refresh_reuse",
        "api_token",
        &created[1],
        json!({}),
        &RequestContext::default(),
    )
    .with_channel(SECURITY_CHANNEL);
    s.db.store.append_audit(&[reuse]).await.unwrap();
    let r = s.as_admin().get("/v1/audit?channel=audit").await;
    let got = items(&r.body);
    assert_eq!(got.len(), 1);
    assert_eq!(got[0]["action"], "token.refresh_reuse");
    assert_eq!(got[0]["channel"], "audit");
    assert_eq!(got[0]["ip"], Value::Null, "none was recorded");

    // One entry.
    let id = got[0]["id"].as_str().unwrap();
    let r = s.as_admin().get(&format!("/v1/audit/{id}")).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.body["id"], id);
    assert_eq!(r.body["channel"], "audit");
    let r = s
        .as_admin()
        .get("/v1/audit/01a20c4b-0000-7000-8000-000000000000")
        .await;
    r.assert_problem(StatusCode::NOT_FOUND, "audit_entry_not_found");
    let r = s.as_admin().get("/v1/audit/not-an-id").await;
    r.assert_problem(StatusCode::NOT_FOUND, "audit_entry_not_found");
}

async fn pages_walk_every_entry_once(db: TestDb) {
    let s = TestServer::start(db).await;
    for i in 0..7 {
        create_token(&s, &format!("paged-{i}")).await;
    }
    // 8 creations (with the test's admin token), pages of 3.
    let mut seen = Vec::new();
    let mut path = "/v1/audit?action=token.create&limit=3".to_string();
    let mut pages = 0;
    loop {
        let r = s.as_admin().get(&path).await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.text);
        let page = items(&r.body);
        assert!(page.len() <= 3);
        seen.extend(
            page.iter()
                .map(|e| (e["at"].clone(), e["id"].as_str().unwrap().to_string())),
        );
        pages += 1;
        match r.body["next_cursor"].as_str() {
            Some(c) => path = format!("/v1/audit?action=token.create&limit=3&cursor={c}"),
            None => break,
        }
    }
    assert_eq!(pages, 3);
    assert_eq!(seen.len(), 8);
    let unique: HashSet<_> = seen.iter().map(|(_, id)| id).collect();
    assert_eq!(unique.len(), 8, "no entry twice");
    let ids: Vec<&String> = seen.iter().map(|(_, id)| id).collect();
    let mut sorted = ids.clone();
    sorted.sort();
    sorted.reverse();
    assert_eq!(ids, sorted, "newest first");
}

async fn reading_is_audited(db: TestDb) {
    let s = TestServer::start(db).await;
    let admin = admin_actor(&s).await;
    let id = create_token(&s, "looked-at").await;
    let r = s
        .as_admin()
        .get(&format!("/v1/audit?target_id={id}&limit=10"))
        .await;
    let entry = items(&r.body)[0]["id"].as_str().unwrap().to_string();
    s.as_admin().get(&format!("/v1/audit/{entry}")).await;

    let r = s
        .as_admin()
        .get(&format!("/v1/audit?action=audit.read&actor={admin}"))
        .await;
    let reads = items(&r.body);
    assert_eq!(reads.len(), 2, "{}", r.body);
    // Newest first: the show, then the list with its filters.
    assert_eq!(reads[0]["target_type"], "audit_log");
    assert_eq!(reads[0]["target_id"], entry.as_str());
    assert_eq!(
        reads[1]["details"],
        json!({"filters": {"target_id": id, "limit": 10}, "returned": 1})
    );
    assert_eq!(reads[1]["target_id"], Value::Null);
    // Who read is on record, and the row holds no opened value.
    assert_eq!(reads[1]["ip"], "127.0.0.1");
    assert!(!reads[1]["details"].to_string().contains("127.0.0.1"));
}

async fn only_admins_read_it(db: TestDb) {
    let s = TestServer::start(db).await;
    let (_, reader) = s
        .create(json!({"name": "reader", "scopes": ["read"]}))
        .await;
    for path in [
        "/v1/audit",
        "/v1/audit/01a20c4b-0000-7000-8000-000000000000",
    ] {
        s.as_anonymous()
            .get(path)
            .await
            .assert_problem(StatusCode::UNAUTHORIZED, "unauthorized");
        s.with_token(&reader)
            .get(path)
            .await
            .assert_problem(StatusCode::FORBIDDEN, "forbidden");
    }
}

async fn unusable_filters_are_400(db: TestDb) {
    let s = TestServer::start(db).await;
    for (query, field) in [
        ("outcome=sideways", "outcome"),
        (
            "since=2024-02-01T00:00:00Z&until=2024-01-01T00:00:00Z",
            "since",
        ),
        ("since=last-tuesday", "since"),
        ("until=2024-99-01T00:00:00Z", "until"),
        ("cursor=zz-not-a-cursor", "cursor"),
        ("limit=0", "limit"),
        ("limit=501", "limit"),
    ] {
        let r = s.as_admin().get(&format!("/v1/audit?{query}")).await;
        r.assert_problem(StatusCode::BAD_REQUEST, "invalid_query");
        assert_eq!(r.body["field"], field, "{query}");
        let detail = r.body["detail"].as_str().unwrap();
        for echoed in ["sideways", "last-tuesday", "zz-not", "2024-99", "501"] {
            assert!(!detail.contains(echoed), "{query}: {detail}");
        }
    }
    // Not a filter at all, or not a number: the query string is refused.
    for query in ["colour=red", "limit=many"] {
        let r = s.as_admin().get(&format!("/v1/audit?{query}")).await;
        r.assert_problem(StatusCode::BAD_REQUEST, "invalid_query");
    }
    // No refused read is on record.
    let r = s.as_admin().get("/v1/audit?action=audit.read").await;
    assert_eq!(items(&r.body).len(), 0, "{}", r.body);
}

backend_tests!(
    filters_and_opened_client_details,
    pages_walk_every_entry_once,
    reading_is_audited,
    only_admins_read_it,
    unusable_filters_are_400,
);
