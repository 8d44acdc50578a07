//! A webhook receiver for tests: verifies every delivery with the official
//! `standardwebhooks` crate, records what it accepted, and can be told to
//! fail the first N requests or answer with a fixed status.

use std::{
    collections::BTreeSet,
    sync::{
        atomic::{AtomicU16, AtomicUsize, Ordering},
        Arc, Mutex,
    },
};

use axum::{body::Bytes, extract::State, http::HeaderMap, http::StatusCode, routing::post, Router};
use serde_json::{json, Value};

use super::TestServer;

#[derive(Debug, Clone)]
pub struct Received {
    pub webhook_id: String,
    pub payload: Value,
}

#[derive(Default)]
pub struct ReceiverState {
    pub secret: Mutex<Option<String>>,
    /// Every request, verified or not, as (webhook-id, status we answered).
    pub requests: Mutex<Vec<(String, u16)>>,
    pub accepted: Mutex<Vec<Received>>,
    pub fail_first: AtomicUsize,
    /// When non-zero, answer every request with this status.
    pub fixed_status: AtomicU16,
    pub bad_signatures: AtomicUsize,
}

pub struct Receiver {
    pub url: String,
    pub state: Arc<ReceiverState>,
}

impl Receiver {
    pub async fn start() -> Self {
        let state = Arc::new(ReceiverState::default());
        let app = Router::new()
            .route("/hook", post(handle))
            .with_state(state.clone());
        let addr = super::serve(app).await;
        Self {
            url: format!("http://{addr}/hook"),
            state,
        }
    }

    pub fn set_secret(&self, secret: &str) {
        *self.state.secret.lock().unwrap() = Some(secret.to_string());
    }

    pub fn accepted(&self) -> Vec<Received> {
        self.state.accepted.lock().unwrap().clone()
    }

    /// Registers an endpoint (`body` plus this receiver's URL) on `s` and
    /// verifies deliveries with its secret. Returns the endpoint id.
    pub async fn subscribe(&self, s: &TestServer, body: Value) -> String {
        let mut body = body;
        body["url"] = json!(self.url);
        let c = s.as_admin().post_json("/v1/webhooks/endpoints", body).await;
        assert_eq!(c.status, reqwest::StatusCode::CREATED, "{}", c.text);
        let secret = c.body["secret"].as_str().unwrap();
        assert!(secret.starts_with("whsec_"));
        self.set_secret(secret);
        c.body["endpoint"]["id"].as_str().unwrap().to_string()
    }

    /// Waits until a delivery of every event type in `types` arrived, all
    /// with good signatures.
    pub async fn wait_for_events(&self, what: &str, types: &[&str]) -> Vec<Received> {
        let got = self
            .wait_for(what, |got| {
                let seen: BTreeSet<&str> = got
                    .iter()
                    .filter_map(|g| g.payload["event"].as_str())
                    .collect();
                types.iter().all(|t| seen.contains(t))
            })
            .await;
        assert_eq!(self.state.bad_signatures.load(Ordering::SeqCst), 0);
        got
    }

    /// Waits until `done` holds for the accepted deliveries, or panics.
    pub async fn wait_for(&self, what: &str, done: impl Fn(&[Received]) -> bool) -> Vec<Received> {
        for _ in 0..300 {
            let got = self.accepted();
            if done(&got) {
                return got;
            }
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
        panic!("timed out waiting for {what}; got {:?}", self.accepted());
    }
}

async fn handle(
    State(s): State<Arc<ReceiverState>>,
    headers: HeaderMap,
    body: Bytes,
) -> StatusCode {
    let id = headers
        .get("webhook-id")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string();
    let status = if s.fail_first.load(Ordering::SeqCst) > 0 {
        s.fail_first.fetch_sub(1, Ordering::SeqCst);
        StatusCode::INTERNAL_SERVER_ERROR
    } else if s.fixed_status.load(Ordering::SeqCst) != 0 {
        StatusCode::from_u16(s.fixed_status.load(Ordering::SeqCst)).unwrap()
    } else {
        let secret = s.secret.lock().unwrap().clone();
        let verified = secret
            .map(|secret| {
                standardwebhooks::Webhook::new(&secret)
                    .unwrap()
                    .verify(&body, &headers)
                    .is_ok()
            })
            .unwrap_or(false);
        if verified {
            s.accepted.lock().unwrap().push(Received {
                webhook_id: id.clone(),
                payload: serde_json::from_slice(&body).unwrap(),
            });
            StatusCode::NO_CONTENT
        } else {
            s.bad_signatures.fetch_add(1, Ordering::SeqCst);
            StatusCode::UNAUTHORIZED
        }
    };
    s.requests.lock().unwrap().push((id, status.as_u16()));
    status
}
