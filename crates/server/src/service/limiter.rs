//! Per-client failure limiting (brute-force defence for guessable codes):
//! at most N failures per client in a sliding minute, then 429 until the
//! oldest failure leaves the window.
//!
//! Counts live in this process: with several replicas the effective limit is
//! N per replica, which still caps guessing at a tiny fraction of an 80-bit
//! code space. A std mutex is held only for a map operation, never across an
//! `.await`.

use std::{
    collections::{HashMap, VecDeque},
    net::IpAddr,
    sync::Mutex,
    time::{Duration, Instant},
};

const WINDOW: Duration = Duration::from_secs(60);
/// Bound on tracked clients; past it, clients with no recent failure are
/// forgotten first.
const MAX_CLIENTS: usize = 100_000;

pub struct FailureLimiter {
    limit: usize,
    failures: Mutex<HashMap<IpAddr, VecDeque<Instant>>>,
}

impl FailureLimiter {
    /// `limit` failures per minute; 0 disables limiting.
    pub fn new(limit: u32) -> Self {
        Self {
            limit: limit as usize,
            failures: Mutex::new(HashMap::new()),
        }
    }

    /// `Err(seconds to wait)` while `client` is over its limit.
    pub fn check(&self, client: Option<IpAddr>) -> Result<(), i64> {
        let (Some(ip), true) = (client, self.limit > 0) else {
            return Ok(());
        };
        let now = Instant::now();
        let mut map = self.failures.lock().unwrap_or_else(|p| p.into_inner());
        let Some(times) = map.get_mut(&ip) else {
            return Ok(());
        };
        while times
            .front()
            .is_some_and(|t| now.duration_since(*t) >= WINDOW)
        {
            times.pop_front();
        }
        if times.len() < self.limit {
            return Ok(());
        }
        let oldest = *times.front().expect("non-empty when over the limit");
        let wait = WINDOW.saturating_sub(now.duration_since(oldest));
        Err(wait.as_secs_f64().ceil().max(1.0) as i64)
    }

    pub fn record_failure(&self, client: Option<IpAddr>) {
        let (Some(ip), true) = (client, self.limit > 0) else {
            return;
        };
        let now = Instant::now();
        let mut map = self.failures.lock().unwrap_or_else(|p| p.into_inner());
        if map.len() >= MAX_CLIENTS && !map.contains_key(&ip) {
            map.retain(|_, t| {
                t.back()
                    .is_some_and(|last| now.duration_since(*last) < WINDOW)
            });
        }
        let times = map.entry(ip).or_default();
        times.push_back(now);
        // Only the newest `limit` failures matter for the decision.
        while times.len() > self.limit {
            times.pop_front();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blocks_after_the_limit_per_client() {
        let l = FailureLimiter::new(3);
        let a: IpAddr = "203.0.113.1".parse().unwrap();
        let b: IpAddr = "203.0.113.2".parse().unwrap();
        for _ in 0..3 {
            assert!(l.check(Some(a)).is_ok());
            l.record_failure(Some(a));
        }
        let wait = l.check(Some(a)).unwrap_err();
        assert!((1..=60).contains(&wait));
        assert!(l.check(Some(b)).is_ok());
        assert!(l.check(None).is_ok(), "no client address, no limit");
        assert!(FailureLimiter::new(0).check(Some(a)).is_ok());
    }
}
