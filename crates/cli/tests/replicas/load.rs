//! A steady load of verifications on every replica at once, that
//! keeps running while the test stops and restarts Redis: every answer must
//! be a normal `200` valid answer (the token's limit is far above what the
//! load uses), so any request that fails or is refused because of the
//! outage is recorded and reported.

use std::{
    sync::{
        atomic::{AtomicBool, Ordering},
        Arc,
    },
    time::Duration,
};

use serde_json::json;

use crate::cluster::{outcome, Cluster};

/// What the load saw.
pub struct Report {
    pub sent: usize,
    /// Each request that did not get a normal valid answer, and why.
    pub failures: Vec<String>,
}

pub struct Load {
    stop: Arc<AtomicBool>,
    tasks: Vec<tokio::task::JoinHandle<Report>>,
}

impl Load {
    /// Starts verifying `secret` (a token with a rate limit, so every
    /// request goes through the rate-limit store) as the admin, one loop
    /// per replica, so each has requests in flight when Redis goes.
    pub fn start(c: Arc<Cluster>, secret: String) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let tasks = (0..c.replicas.len())
            .map(|i| tokio::spawn(run(c.clone(), i, secret.clone(), stop.clone())))
            .collect();
        Self { stop, tasks }
    }

    /// Stops the load; what it saw.
    pub async fn stop(self) -> Report {
        self.stop.store(true, Ordering::Release);
        let mut all = Report {
            sent: 0,
            failures: Vec::new(),
        };
        for task in self.tasks {
            let report = task.await.unwrap();
            all.sent += report.sent;
            all.failures.extend(report.failures);
        }
        all
    }
}

/// Verifies `secret` on replica `i` until `stop`, a few milliseconds apart.
async fn run(c: Arc<Cluster>, i: usize, secret: String, stop: Arc<AtomicBool>) -> Report {
    let body = json!({"token": secret});
    let mut report = Report {
        sent: 0,
        failures: Vec::new(),
    };
    while !stop.load(Ordering::Acquire) {
        match c.try_verify(i, &body).await {
            Ok(v) if outcome(&v) == "VALID" => {}
            Ok(v) => report.failures.push(format!("replica {}: {v}", i + 1)),
            Err(e) => report.failures.push(e),
        }
        report.sent += 1;
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    report
}
