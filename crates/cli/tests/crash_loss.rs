//! The outbox under a crash: the server is `kill -9`ed in the middle of a
//! burst of 1,000 state changes while the receiver is failing, then
//! restarted. Every committed change is delivered at least once (verified
//! with the official `standardwebhooks` crate), and nothing that was not
//! committed is delivered.

mod common;

use std::{
    collections::HashSet,
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use axum::{body::Bytes, extract::State, http::HeaderMap, http::StatusCode, routing::post, Router};
use serde_json::Value;

use common::Env;

struct Sink {
    secret: String,
    failing_until: Instant,
    ids: Mutex<HashSet<String>>,
    payload_ids: Mutex<HashSet<String>>,
}

async fn receive(State(s): State<Arc<Sink>>, headers: HeaderMap, body: Bytes) -> StatusCode {
    if Instant::now() < s.failing_until {
        return StatusCode::INTERNAL_SERVER_ERROR;
    }
    if standardwebhooks::Webhook::new(&s.secret)
        .unwrap()
        .verify(&body, &headers)
        .is_err()
    {
        return StatusCode::UNAUTHORIZED;
    }
    let id = headers["webhook-id"].to_str().unwrap().to_string();
    let payload: Value = serde_json::from_slice(&body).unwrap();
    s.ids.lock().unwrap().insert(id);
    if let Some(pid) = payload["id"].as_str() {
        s.payload_ids.lock().unwrap().insert(pid.to_string());
    }
    StatusCode::OK
}

/// A SQLite environment whose servers retry webhooks fast and without jitter.
fn env() -> Env {
    let retries = vec!["200ms"; 20].join(",");
    Env::sqlite()
        .with("TESSERA_WEBHOOK_POLL_INTERVAL", "50ms")
        .with("TESSERA_WEBHOOK_RETRY_SCHEDULE", &retries)
        .with("TESSERA_WEBHOOK_RETRY_JITTER", "0")
        // The receiver is a local port.
        .with("TESSERA_WEBHOOKS_ALLOW_PRIVATE_NETWORKS", "true")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_dash_nine_mid_burst_loses_and_invents_nothing() {
    let env = env();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let hook_url = format!("http://{}/hook", listener.local_addr().unwrap());
    let endpoint = env.json(&[
        "webhooks",
        "endpoints",
        "create",
        "--url",
        &hook_url,
        "--json",
    ]);
    let secret = endpoint["secret"].as_str().unwrap().to_string();
    let admin = env.json(&[
        "token", "create", "--name", "admin", "--scopes", "admin", "--json",
    ]);
    let admin = admin["secret"].as_str().unwrap().to_string();
    let sink = Arc::new(Sink {
        secret,
        failing_until: Instant::now() + Duration::from_secs(3),
        ids: Mutex::default(),
        payload_ids: Mutex::default(),
    });
    let app = Router::new()
        .route("/hook", post(receive))
        .with_state(sink.clone());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });

    let mut server = env.serve().await;
    let base = server.base.clone();
    let http = reqwest::Client::new();
    let committed = Arc::new(Mutex::new(Vec::<String>::new()));
    let mut tasks = Vec::new();
    for worker in 0..16 {
        let (http, base, admin, committed) =
            (http.clone(), base.clone(), admin.clone(), committed.clone());
        tasks.push(tokio::spawn(async move {
            for i in 0..(1000 / 16 + 1) {
                let body = serde_json::json!({ "name": format!("burst-{worker}-{i}") });
                let Ok(r) = http
                    .post(format!("{base}/v1/tokens"))
                    .bearer_auth(&admin)
                    .json(&body)
                    .send()
                    .await
                else {
                    return; // the server is gone
                };
                if r.status() == 201 {
                    let v: Value = r.json().await.unwrap_or(Value::Null);
                    if let Some(id) = v["token"]["id"].as_str() {
                        committed.lock().unwrap().push(id.to_string());
                    }
                }
            }
        }));
    }
    // Kill in the middle of the burst.
    while committed.lock().unwrap().len() < 300 {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    server.kill(); // SIGKILL
    for t in tasks {
        t.await.unwrap();
    }
    let acknowledged = committed.lock().unwrap().clone();
    assert!(
        acknowledged.len() >= 300 && acknowledged.len() < 1000,
        "killed mid-burst: {}",
        acknowledged.len()
    );

    let mut server = env.serve().await;
    // Every event in the outbox (= every committed change) must arrive.
    sqlx::any::install_default_drivers();
    let pool = sqlx::AnyPool::connect(&format!("sqlite://{}/tessera.db", env.dir.path().display()))
        .await
        .unwrap();
    let outbox: HashSet<String> = sqlx::query_scalar::<_, String>("SELECT id FROM outbox_events")
        .fetch_all(&pool)
        .await
        .unwrap()
        .into_iter()
        .collect();
    let deadline = Instant::now() + Duration::from_secs(90);
    loop {
        let got = sink.ids.lock().unwrap().clone();
        if outbox.is_subset(&got) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "{} of {} events delivered",
            got.len(),
            outbox.len()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let got = sink.ids.lock().unwrap().clone();
    assert!(
        got.is_subset(&outbox),
        "an event was delivered for a change that was never committed"
    );
    let payload_ids = sink.payload_ids.lock().unwrap().clone();
    for id in &acknowledged {
        assert!(
            payload_ids.contains(id),
            "acknowledged token {id} never announced"
        );
    }
    server.kill();
}
