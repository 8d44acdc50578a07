//! The shared tier: Redis, optional and allowed to fail. Every operation has
//! a timeout and one retry on timeout; a connection failure marks Redis down
//! (logged once), after which requests skip it without waiting until the
//! health check finds it back (logged once). Nothing here returns an error:
//! Redis never makes a request fail.

use std::{
    future::Future,
    sync::{
        atomic::{AtomicBool, Ordering},
        Arc, Mutex,
    },
    time::Duration,
};

use redis::{aio::MultiplexedConnection, AsyncConnectionConfig, RedisError, RedisResult};

use crate::metrics::Metrics;

pub(crate) struct RedisTier {
    client: redis::Client,
    /// A multiplexed connection is shared by all tasks. It is cloned out of
    /// the std mutex before use, so the lock is never held across an `.await`.
    conn: Mutex<Option<MultiplexedConnection>>,
    up: AtomicBool,
    timeout: Duration,
    metrics: Arc<Metrics>,
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
    pub fn new(url: &str, timeout: Duration, metrics: Arc<Metrics>) -> RedisResult<Self> {
        Ok(Self {
            client: redis::Client::open(url)?,
            conn: Mutex::new(None),
            up: AtomicBool::new(true),
            timeout,
            metrics,
        })
    }

    pub fn is_up(&self) -> bool {
        self.up.load(Ordering::Acquire)
    }

    fn set_conn(&self, c: Option<MultiplexedConnection>) {
        *self.conn.lock().unwrap_or_else(|p| p.into_inner()) = c;
    }

    fn mark_down(&self, why: &str) {
        self.set_conn(None);
        // swap: only the caller that flips the state logs, however many fail at once.
        if self.up.swap(false, Ordering::AcqRel) {
            self.metrics.redis_degraded.set(1);
            self.metrics
                .redis_transitions
                .with_label_values(&["down"])
                .inc();
            tracing::warn!(
                reason = why,
                "Redis is unreachable: serving upstream tokens from memory and logging in directly until it returns"
            );
        }
    }

    fn mark_up(&self) {
        if !self.up.swap(true, Ordering::AcqRel) {
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

    /// Runs `op` if Redis is up: with a timeout, one retry on timeout, and on
    /// a connectivity failure marks Redis down. `None` means "no answer".
    async fn run<T, F, Fut>(&self, op: F) -> Option<T>
    where
        F: Fn(MultiplexedConnection) -> Fut,
        Fut: Future<Output = RedisResult<T>>,
    {
        if !self.is_up() {
            return None;
        }
        for attempt in 0..2 {
            let existing = self.conn.lock().unwrap_or_else(|p| p.into_inner()).clone();
            let reused = existing.is_some();
            let result = tokio::time::timeout(self.timeout, async {
                let conn = match existing {
                    Some(c) => c,
                    None => self.connect().await?,
                };
                op(conn).await
            })
            .await;
            match result {
                Ok(Ok(v)) => return Some(v),
                Ok(Err(e)) => {
                    self.metrics.redis_errors.inc();
                    if !is_connectivity(&e) {
                        tracing::warn!(error = e.category(), "Redis command failed");
                        return None;
                    }
                    // Retry once on a timeout, and once with a fresh connection when the
                    // kept one broke (e.g. Redis restarted between two requests): only
                    // then is Redis really down.
                    if attempt == 0 && (e.is_timeout() || reused) {
                        if !e.is_timeout() {
                            self.set_conn(None);
                        }
                        continue;
                    }
                    self.mark_down(e.category());
                    return None;
                }
                Err(_elapsed) => {
                    self.metrics.redis_errors.inc();
                    if attempt == 1 {
                        self.mark_down("timed out twice");
                    }
                }
            }
        }
        None
    }

    /// PING (on the kept connection, else a new one); flips the state and
    /// logs the transition. Returns whether Redis answered.
    pub async fn health_check(&self) -> bool {
        let ping = |conn: Option<MultiplexedConnection>| async move {
            let mut conn = match conn {
                Some(c) => c,
                None => self.connect().await?,
            };
            redis::cmd("PING").query_async::<String>(&mut conn).await
        };
        let existing = self.conn.lock().unwrap_or_else(|p| p.into_inner()).clone();
        let mut outcome = tokio::time::timeout(self.timeout, ping(existing.clone())).await;
        if existing.is_some() && !matches!(outcome, Ok(Ok(_))) {
            // The kept connection may just be stale: judge Redis by a fresh one.
            self.set_conn(None);
            outcome = tokio::time::timeout(self.timeout, ping(None)).await;
        }
        match outcome {
            Ok(Ok(_)) => {
                self.mark_up();
                true
            }
            Ok(Err(e)) => {
                self.metrics.redis_errors.inc();
                self.mark_down(e.category());
                false
            }
            Err(_) => {
                self.metrics.redis_errors.inc();
                self.mark_down("health check timed out");
                false
            }
        }
    }

    pub async fn get(&self, key: &str) -> Option<String> {
        self.run(|mut c| async move {
            redis::cmd("GET")
                .arg(key)
                .query_async::<Option<String>>(&mut c)
                .await
        })
        .await
        .flatten()
    }

    pub async fn set_ex(&self, key: &str, value: &str, ttl_secs: u64) -> bool {
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
    pub async fn try_lock(&self, key: &str, value: &str, ms: u64) -> Option<bool> {
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

    pub async fn unlock(&self, key: &str, value: &str) {
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

    pub async fn del(&self, key: &str) -> bool {
        self.run(|mut c| async move { redis::cmd("DEL").arg(key).query_async::<i64>(&mut c).await })
            .await
            .is_some_and(|n| n > 0)
    }

    /// Deletes every key matching `pattern`, walking with SCAN (never KEYS,
    /// which blocks the server on a large keyspace). Returns how many went.
    pub async fn delete_matching(&self, pattern: &str) -> u64 {
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
