//! Load generator for `bench/totp.sh`: TOTP verification over HTTP against
//! the same server's `/healthz`, in alternating rounds.
//!
//! Why not wrk: a TOTP code is accepted once per step per subject (that is
//! the replay protection), so a realistic load is many subjects verifying a
//! fresh code once each. Setup enrols and confirms `subjects × rounds`
//! devices; each round then sends one valid verification per subject (the
//! code of the next step) at a fixed concurrency, and the same number of
//! `/healthz` requests, and prints req/s and latency percentiles.
//!
//! Usage: totp_load BASE_URL MFA_TOKEN [SUBJECTS_PER_ROUND] [ROUNDS] [CONCURRENCY]

use std::{
    sync::Arc,
    time::{Duration, Instant},
};

use serde_json::{json, Value};
use tessera_core::mfa::totp::{base32_decode, TotpParams};
use tokio::sync::Semaphore;

struct Device {
    subject: String,
    secret: Vec<u8>,
}

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.len() < 3 {
        eprintln!(
            "usage: totp_load BASE_URL MFA_TOKEN [SUBJECTS_PER_ROUND] [ROUNDS] [CONCURRENCY]"
        );
        std::process::exit(2);
    }
    let base = args[1].clone();
    let token = args[2].clone();
    let per_round: usize = args.get(3).and_then(|a| a.parse().ok()).unwrap_or(2000);
    let rounds: usize = args.get(4).and_then(|a| a.parse().ok()).unwrap_or(3);
    let concurrency: usize = args.get(5).and_then(|a| a.parse().ok()).unwrap_or(32);
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(concurrency)
        .build()
        .expect("client");

    eprintln!("enrolling and confirming {} devices…", per_round * rounds);
    let run = format!("{:x}", std::process::id());
    let names: Vec<String> = (0..per_round * rounds)
        .map(|i| format!("u_bench_{run}_{i}"))
        .collect();
    let devices = parallel(&names, concurrency, |subject| {
        let (http, base, token) = (http.clone(), base.clone(), token.clone());
        let subject = subject.clone();
        async move { enrol(&http, &base, &token, &subject).await }
    })
    .await;
    let devices: Vec<Device> = devices.results.into_iter().map(|(d, _)| d).collect();

    for (round, batch) in devices.chunks(per_round).enumerate() {
        let health = parallel(batch, concurrency, |_| {
            let (http, url) = (http.clone(), format!("{base}/healthz"));
            async move {
                let r = http.get(url).send().await.expect("healthz");
                assert!(r.status().is_success());
            }
        })
        .await;
        let now = chrono::Utc::now().timestamp();
        let verify = parallel(batch, concurrency, |d| {
            let (http, base, token) = (http.clone(), base.clone(), token.clone());
            let code = TotpParams::default().code_at(&d.secret, now + 30);
            let subject = d.subject.clone();
            async move {
                let url = format!("{base}/v1/subjects/{subject}/totp/verify");
                let r = post(&http, &url, &token, json!({ "code": code }), "verify").await;
                assert_eq!(r["valid"], true, "{r}");
            }
        })
        .await;
        for (name, results) in [("GET /healthz", &health), ("POST …/totp/verify", &verify)] {
            let (rps, p50, p95, p99) = summary(results);
            println!(
                "ROUND {} {name} {rps:.0} {p50:.2} {p95:.2} {p99:.2}",
                round + 1
            );
        }
    }
}

/// POSTs `body` to `url` with the bearer `token`; the JSON reply. Panics
/// naming `what` when the request or the JSON fails.
async fn post(http: &reqwest::Client, url: &str, token: &str, body: Value, what: &str) -> Value {
    let sent = http.post(url).bearer_auth(token).json(&body).send().await;
    let reply = sent.unwrap_or_else(|e| panic!("{what}: {e}"));
    reply
        .json()
        .await
        .unwrap_or_else(|e| panic!("{what}: json: {e}"))
}

async fn enrol(http: &reqwest::Client, base: &str, token: &str, subject: &str) -> Device {
    let url = format!("{base}/v1/subjects/{subject}/totp");
    let e = post(http, &url, token, json!({ "qr": "none" }), "enrol").await;
    let secret = base32_decode(e["secret"].as_str().expect("secret")).expect("base32");
    let code = TotpParams::default().code_at(&secret, chrono::Utc::now().timestamp());
    let id = e["device_id"].as_str().expect("device id");
    let url = format!("{base}/v1/subjects/{subject}/totp/{id}/confirm");
    let c = post(http, &url, token, json!({ "code": code }), "confirm").await;
    assert_eq!(c["valid"], true, "{c}");
    Device {
        subject: subject.to_string(),
        secret,
    }
}

/// Results of one batch: each item's result and latency, and the wall time.
struct Batch<R> {
    results: Vec<(R, Duration)>,
    wall: Duration,
}

/// Runs `f` over `items` with at most `concurrency` in flight.
async fn parallel<T: Sync, R: Send + 'static, F, Fut>(
    items: &[T],
    concurrency: usize,
    f: F,
) -> Batch<R>
where
    F: Fn(&T) -> Fut,
    Fut: std::future::Future<Output = R> + Send + 'static,
{
    let gate = Arc::new(Semaphore::new(concurrency));
    let started = Instant::now();
    let mut tasks = Vec::with_capacity(items.len());
    for item in items {
        let permit = gate.clone().acquire_owned().await.expect("semaphore");
        let fut = f(item);
        tasks.push(tokio::spawn(async move {
            let t = Instant::now();
            let r = fut.await;
            drop(permit);
            (r, t.elapsed())
        }));
    }
    let mut results = Vec::with_capacity(tasks.len());
    for t in tasks {
        results.push(t.await.expect("task"));
    }
    Batch {
        results,
        wall: started.elapsed(),
    }
}

/// req/s over the batch's wall time, and p50/p95/p99 latency in ms.
fn summary<R>(batch: &Batch<R>) -> (f64, f64, f64, f64) {
    let mut ms: Vec<f64> = batch
        .results
        .iter()
        .map(|(_, d)| d.as_secs_f64() * 1e3)
        .collect();
    ms.sort_by(f64::total_cmp);
    let pct = |p: f64| ms[((ms.len() as f64 * p).ceil() as usize).clamp(1, ms.len()) - 1];
    (
        batch.results.len() as f64 / batch.wall.as_secs_f64(),
        pct(0.50),
        pct(0.95),
        pct(0.99),
    )
}
