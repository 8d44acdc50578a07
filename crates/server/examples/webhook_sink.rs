//! A minimal webhook receiver for `bench/webhooks.sh`: accepts every POST
//! with 204 and counts it; `GET /count` returns the count. Not a verifier:
//! the tests verify signatures, this measures throughput.
//!
//! Run: `cargo run --release -p tessera-server --example webhook_sink -- 127.0.0.1:18182`

use std::sync::{
    atomic::{AtomicU64, Ordering},
    Arc,
};

use axum::{extract::State, http::StatusCode, routing::get, Router};

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let addr = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:18182".into());
    let count = Arc::new(AtomicU64::new(0));
    let app =
        Router::new()
            .route(
                "/hook",
                axum::routing::post(|State(c): State<Arc<AtomicU64>>| async move {
                    c.fetch_add(1, Ordering::Relaxed);
                    StatusCode::NO_CONTENT
                }),
            )
            .route(
                "/count",
                get(|State(c): State<Arc<AtomicU64>>| async move {
                    c.load(Ordering::Relaxed).to_string()
                }),
            )
            .with_state(count);
    let listener = tokio::net::TcpListener::bind(&addr).await.expect("bind");
    axum::serve(listener, app).await.expect("serve");
}
