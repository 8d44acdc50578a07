//! The shared tier: Redis, optional and allowed to fail. Nothing here returns
//! an error: Redis never makes a request fail.
//!
//! A circuit breaker keeps a hung or unreachable Redis from slowing every
//! request. Each operation has one timeout and no retry after a timeout; a
//! timeout or connection failure opens the breaker (logged once), and while
//! it is open every operation is skipped at once, so the cache serves from
//! memory and logins. Operations already waiting on Redis when it opens give
//! up with it rather than each waiting out its own timeout. After
//! `redis_breaker` the first operation (or health check) that finds the
//! breaker due starts one probe, a PING in the background, and itself still
//! skips Redis: half-open. The probe closes the breaker (logged once) or
//! opens it for another interval. A hung Redis thus costs one slow request.

use std::{
    future::Future,
    sync::{
        atomic::{AtomicI64, AtomicU8, Ordering},
        Arc, Mutex,
    },
    time::Duration,
};

use redis::{aio::MultiplexedConnection, AsyncConnectionConfig, RedisError, RedisResult};
use serde::Serialize;
use tokio::sync::Notify;

use crate::metrics::Metrics;

/// The breaker's state: Redis is used (closed), skipped (open), or skipped
/// while one probe finds out whether it is back (half-open).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum BreakerState {
    Closed,
    Open,
    HalfOpen,
}

const CLOSED: u8 = 0;
const OPEN: u8 = 1;
const HALF_OPEN: u8 = 2;

pub(crate) struct RedisTier {
    client: redis::Client,
    /// A multiplexed connection is shared by all tasks. It is cloned out of
    /// the std mutex before use, so the lock is never held across an `.await`.
    conn: Mutex<Option<MultiplexedConnection>>,
    /// `CLOSED`, `OPEN` or `HALF_OPEN`; atomics, so the hot path takes no lock.
    state: AtomicU8,
    /// While open: when a probe may go (unix milliseconds).
    probe_at_ms: AtomicI64,
    /// Wakes operations waiting on Redis when the breaker opens.
    opened: Notify,
    timeout: Duration,
    /// How long the breaker stays open before a probe.
    breaker: Duration,
    metrics: Arc<Metrics>,
}

fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

/// Deletes the lock only if this caller still holds it (it may have expired
/// and been taken by another replica meanwhile).
const RELEASE_LOCK: &str =
    "if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) else return 0 end";

/// Errors that mean "Redis is not reachable", as opposed to a bad command.
fn is_connectivity(e: &RedisError) -> bool {
    e.is_io_error() || e.is_connection_dropped() || e.is_connection_refusal() || e.is_timeout()
}

impl RedisTier {
    /// Parses the URL (`redis://`, `rediss://`, password, database); does not connect.
    pub fn new(
        url: &str,
        timeout: Duration,
        breaker: Duration,
        metrics: Arc<Metrics>,
    ) -> RedisResult<Self> {
        Ok(Self {
            client: redis::Client::open(url)?,
            conn: Mutex::new(None),
            state: AtomicU8::new(CLOSED),
            probe_at_ms: AtomicI64::new(0),
            opened: Notify::new(),
            timeout,
            breaker,
            metrics,
        })
    }

    /// Whether Redis is in use (the breaker is closed).
    pub fn is_up(&self) -> bool {
        self.state.load(Ordering::Acquire) == CLOSED
    }

    pub fn breaker_state(&self) -> BreakerState {
        match self.state.load(Ordering::Acquire) {
            CLOSED => BreakerState::Closed,
            OPEN => BreakerState::Open,
            _ => BreakerState::HalfOpen,
        }
    }

    /// While the breaker is open: milliseconds until the next probe may go.
    pub fn probe_in_ms(&self) -> Option<u64> {
        (self.breaker_state() == BreakerState::Open)
            .then(|| (self.probe_at_ms.load(Ordering::Acquire) - now_ms()).max(0) as u64)
    }

    fn set_conn(&self, c: Option<MultiplexedConnection>) {
        *self.conn.lock().unwrap_or_else(|p| p.into_inner()) = c;
    }

    /// Whether an operation may use Redis now. A closed breaker admits; an
    /// open one that is due starts the probe (once: the CAS elects it) and,
    /// like a half-open one, does not admit.
    fn admit(self: &Arc<Self>) -> bool {
        match self.state.load(Ordering::Acquire) {
            CLOSED => true,
            OPEN if now_ms() >= self.probe_at_ms.load(Ordering::Acquire) => {
                let elected = self
                    .state
                    .compare_exchange(OPEN, HALF_OPEN, Ordering::AcqRel, Ordering::Acquire)
                    .is_ok();
                if elected {
                    self.spawn_probe();
                }
                self.metrics.redis_skipped.inc();
                false
            }
            _ => {
                self.metrics.redis_skipped.inc();
                false
            }
        }
    }

    fn spawn_probe(self: &Arc<Self>) {
        let Ok(rt) = tokio::runtime::Handle::try_current() else {
            // No runtime to probe on: stay open for another interval.
            self.open("no runtime for a probe");
            return;
        };
        let tier = self.clone();
        rt.spawn(async move {
            tier.set_conn(None);
            tier.ping().await;
        });
    }

    /// Opens the breaker for `breaker`: Redis is skipped until a probe finds
    /// it back. Logged on the transition from closed only.
    fn open(&self, why: &str) {
        self.set_conn(None);
        let until = now_ms() + self.breaker.as_millis() as i64;
        self.probe_at_ms.store(until, Ordering::Release);
        // swap: only the caller that flips the state logs, however many fail at once.
        let previous = self.state.swap(OPEN, Ordering::AcqRel);
        self.opened.notify_waiters();
        if previous == CLOSED {
            self.metrics.redis_degraded.set(1);
            self.metrics
                .redis_transitions
                .with_label_values(&["down"])
                .inc();
            tracing::warn!(
                reason = why,
                retry_in_ms = self.breaker.as_millis() as u64,
                "Redis is unreachable or hung: serving upstream tokens from memory and logging in directly until it returns"
            );
        } else {
            tracing::debug!(
                reason = why,
                "Redis is still unreachable: breaker stays open"
            );
        }
    }

    fn close(&self) {
        if self.state.swap(CLOSED, Ordering::AcqRel) != CLOSED {
            self.metrics.redis_degraded.set(0);
            self.metrics
                .redis_transitions
                .with_label_values(&["up"])
                .inc();
            tracing::info!("Redis is reachable again: using it as the shared upstream token cache");
        }
    }

    async fn connect(&self) -> RedisResult<MultiplexedConnection> {
        let config = AsyncConnectionConfig::new()
            .set_connection_timeout(self.timeout)
            .set_response_timeout(self.timeout);
        let c = self
            .client
            .get_multiplexed_async_connection_with_config(&config)
            .await?;
        self.set_conn(Some(c.clone()));
        Ok(c)
    }

    /// Runs `op` if the breaker admits it: with one timeout and no retry
    /// after one (a request costs at most one timeout); a kept connection
    /// that broke fast (Redis restarted) is retried once on a fresh one. A
    /// timeout or connectivity failure opens the breaker. `None` means "no answer".
    async fn run<T, F, Fut>(self: &Arc<Self>, op: F) -> Option<T>
    where
        F: Fn(MultiplexedConnection) -> Fut,
        Fut: Future<Output = RedisResult<T>>,
    {
        if !self.admit() {
            return None;
        }
        // Registered before the state is read again, so an opening between
        // the two is not missed.
        let opened = self.opened.notified();
        tokio::pin!(opened);
        opened.as_mut().enable();
        for attempt in 0..2 {
            if !self.is_up() {
                return None;
            }
            let existing = self.conn.lock().unwrap_or_else(|p| p.into_inner()).clone();
            let reused = existing.is_some();
            let attempt_op = tokio::time::timeout(self.timeout, async {
                let conn = match existing {
                    Some(c) => c,
                    None => self.connect().await?,
                };
                op(conn).await
            });
            let result = tokio::select! {
                r = attempt_op => r,
                // Another operation found Redis hung: do not wait out our own timeout.
                () = &mut opened => return None,
            };
            match result {
                Ok(Ok(v)) => return Some(v),
                Ok(Err(e)) => {
                    self.metrics.redis_errors.inc();
                    if !is_connectivity(&e) {
                        tracing::warn!(error = e.category(), "Redis command failed");
                        return None;
                    }
                    if attempt == 0 && reused && !e.is_timeout() {
                        self.set_conn(None);
                        continue;
                    }
                    self.open(e.category());
                    return None;
                }
                Err(_elapsed) => {
                    self.metrics.redis_errors.inc();
                    self.open("timed out");
                    return None;
                }
            }
        }
        None
    }

    /// PING on a fresh connection (the kept one is dropped when the breaker
    /// opens): closes the breaker if Redis answers, else opens it again.
    async fn ping(&self) -> bool {
        let ping = async {
            let mut conn = self.connect().await?;
            redis::cmd("PING").query_async::<String>(&mut conn).await
        };
        match tokio::time::timeout(self.timeout, ping).await {
            Ok(Ok(_)) => {
                self.close();
                true
            }
            Ok(Err(e)) => {
                self.metrics.redis_errors.inc();
                self.open(e.category());
                false
            }
            Err(_) => {
                self.metrics.redis_errors.inc();
                self.open("health check timed out");
                false
            }
        }
    }

    /// Whether Redis answers. With the breaker closed, PINGs it (on the kept
    /// connection, then on a fresh one if that was stale: at most one
    /// timeout); while open, answers `false` at once, starting the probe
    /// when it is due.
    pub async fn health_check(self: &Arc<Self>) -> bool {
        if !self.admit() {
            return false;
        }
        let existing = self.conn.lock().unwrap_or_else(|p| p.into_inner()).clone();
        if let Some(mut conn) = existing {
            let cmd = redis::cmd("PING");
            match tokio::time::timeout(self.timeout, cmd.query_async::<String>(&mut conn)).await {
                Ok(Ok(_)) => return true,
                Ok(Err(e)) if !e.is_timeout() => self.set_conn(None),
                // A timeout is not retried: one is all a caller may wait.
                _ => {
                    self.metrics.redis_errors.inc();
                    self.open("health check timed out");
                    return false;
                }
            }
        }
        self.ping().await
    }

    pub async fn get(self: &Arc<Self>, key: &str) -> Option<String> {
        self.run(|mut c| async move {
            redis::cmd("GET")
                .arg(key)
                .query_async::<Option<String>>(&mut c)
                .await
        })
        .await
        .flatten()
    }

    pub async fn set_ex(self: &Arc<Self>, key: &str, value: &str, ttl_secs: u64) -> bool {
        self.run(|mut c| async move {
            redis::cmd("SET")
                .arg(key)
                .arg(value)
                .arg("EX")
                .arg(ttl_secs)
                .query_async::<()>(&mut c)
                .await
        })
        .await
        .is_some()
    }

    /// `SET key value NX PX ms`: `Some(true)` if this caller took the lock,
    /// `None` if Redis did not answer.
    pub async fn try_lock(self: &Arc<Self>, key: &str, value: &str, ms: u64) -> Option<bool> {
        self.run(|mut c| async move {
            redis::cmd("SET")
                .arg(key)
                .arg(value)
                .arg("NX")
                .arg("PX")
                .arg(ms)
                .query_async::<Option<String>>(&mut c)
                .await
        })
        .await
        .map(|r| r.is_some())
    }

    pub async fn unlock(self: &Arc<Self>, key: &str, value: &str) {
        self.run(|mut c| async move {
            redis::cmd("EVAL")
                .arg(RELEASE_LOCK)
                .arg(1)
                .arg(key)
                .arg(value)
                .query_async::<i64>(&mut c)
                .await
        })
        .await;
    }

    pub async fn del(self: &Arc<Self>, key: &str) -> bool {
        self.run(|mut c| async move { redis::cmd("DEL").arg(key).query_async::<i64>(&mut c).await })
            .await
            .is_some_and(|n| n > 0)
    }

    /// Deletes every key matching `pattern`, walking with SCAN (never KEYS,
    /// which blocks the server on a large keyspace). Returns how many went.
    pub async fn delete_matching(self: &Arc<Self>, pattern: &str) -> u64 {
        let mut cursor: u64 = 0;
        let mut deleted = 0;
        loop {
            let Some((next, keys)) = self
                .run(|mut c| async move {
                    redis::cmd("SCAN")
                        .arg(cursor)
                        .arg("MATCH")
                        .arg(pattern)
                        .arg("COUNT")
                        .arg(500)
                        .query_async::<(u64, Vec<String>)>(&mut c)
                        .await
                })
                .await
            else {
                return deleted;
            };
            if !keys.is_empty() {
                let keys = &keys;
                deleted += self
                    .run(|mut c| async move {
                        redis::cmd("DEL").arg(keys).query_async::<u64>(&mut c).await
                    })
                    .await
                    .unwrap_or(0);
            }
            if next == 0 {
                return deleted;
            }
            cursor = next;
        }
    }
}
