//! The shared store of GCRA state: Redis, when `REDIS_URI` is set. One Lua
//! script per check reads the key's theoretical arrival time, decides exactly
//! as `tessera_core::gcra::step` does, and writes the new one, atomically, on
//! Redis's clock; so every replica sees one bucket and the limit is exact
//! across them. The script is loaded once (`SCRIPT LOAD`) and called with
//! `EVALSHA`; a Redis that lost it (restarted, flushed) answers `NOSCRIPT`
//! and the check runs it with `EVAL`, which loads it again.
//!
//! Redis is never allowed to fail a request. A check has [`TIMEOUT`]; any
//! failure (refused, timed out, an error reply) returns `None`, and the
//! caller decides in process. The first failure logs one line, sets
//! `tokens_rate_limiter_fallback` to 1 and starts one background task that
//! pings Redis every [`PROBE_EVERY`]; until it answers, checks skip Redis
//! at once (no request waits on a dead Redis), and when it answers the
//! store is used again, with one more log line.
//!
//! Keys are `{prefix}{limiter}:{keyed hash}`: what is limited (an address,
//! an account) never reaches Redis in clear.

use std::{
    sync::{
        atomic::{AtomicBool, AtomicU64, Ordering},
        Arc, Mutex, Weak,
    },
    time::Duration,
};

use redis::{aio::MultiplexedConnection, AsyncConnectionConfig, ErrorKind, RedisResult};
use tessera_core::{
    crypto::KeyedHasher,
    gcra::{Mode, RateDecision, RateRule},
};

use crate::metrics::Metrics;

/// Each check's budget: a slow Redis costs a request at most this much.
pub const TIMEOUT: Duration = Duration::from_millis(100);
/// How often a Redis that failed is asked whether it is back.
pub const PROBE_EVERY: Duration = Duration::from_secs(2);
/// The probe's own budget (it runs in the background, so it may connect
/// over TLS to a distant Redis).
const PROBE_TIMEOUT: Duration = Duration::from_secs(2);

/// KEYS[1]: the bucket. ARGV: the emission interval and the tolerance (µs),
/// the cost, the mode (0 consume, 1 peek, 2 force, 3 reserve, 4 refund, as
/// `gcra::Mode` numbers them). Answers `{allowed,
/// level, over}` as `RateDecision::from_state` takes them. Integers all
/// through (below 2^53, exact in Lua's numbers); `%.0f` writes them without
/// an exponent.
const SCRIPT: &str = r"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local interval = tonumber(ARGV[1])
local tolerance = tonumber(ARGV[2])
local cost = tonumber(ARGV[3])
local mode = tonumber(ARGV[4])
local tat = tonumber(redis.call('GET', KEYS[1]) or '0') or 0
local dirty = tat > now
if tat < now then tat = now end
local units = cost * interval
local new_tat = tat + units
local allowed = new_tat - now <= tolerance
local stored = tat
if mode == 0 or (mode == 3 and dirty) then
  if allowed then stored = new_tat end
elseif mode == 2 then
  stored = math.min(new_tat, now + tolerance)
elseif mode == 4 then
  stored = math.max(tat - units, now)
end
if stored ~= tat then
  if stored > now then
    redis.call('SET', KEYS[1], string.format('%.0f', stored), 'PX', math.ceil((stored - now) / 1000) + 1)
  else
    redis.call('DEL', KEYS[1])
  end
end
local a = 0
if allowed then a = 1 end
return {a, stored - now, new_tat - now - tolerance}
";

pub struct RedisStore {
    client: redis::Client,
    prefix: String,
    hasher: KeyedHasher,
    /// Cloned out of the lock before use: no lock is held across an `.await`.
    conn: Mutex<Option<MultiplexedConnection>>,
    /// The script's SHA-1 once `SCRIPT LOAD` answered it.
    sha: Mutex<Option<String>>,
    /// Redis is in use (no failure since the last successful probe).
    up: AtomicBool,
    /// A probe task is running.
    probing: AtomicBool,
    /// Checks sent to Redis so far.
    round_trips: AtomicU64,
    metrics: Arc<Metrics>,
    timeout: Duration,
    probe_every: Duration,
}

impl RedisStore {
    /// Parses the URL; connects on first use. `prefix` starts every key
    /// (`TESSERA_RATE_LIMIT_REDIS_PREFIX`); `hasher` hides what is limited.
    pub fn new(
        url: &str,
        prefix: &str,
        hasher: KeyedHasher,
        metrics: Arc<Metrics>,
    ) -> RedisResult<Self> {
        Ok(Self {
            client: redis::Client::open(url)?,
            prefix: prefix.to_string(),
            hasher,
            conn: Mutex::new(None),
            sha: Mutex::new(None),
            up: AtomicBool::new(true),
            probing: AtomicBool::new(false),
            round_trips: AtomicU64::new(0),
            metrics,
            timeout: TIMEOUT,
            probe_every: PROBE_EVERY,
        })
    }

    /// A shorter probe interval (tests).
    pub fn probing_every(mut self, every: Duration) -> Self {
        self.probe_every = every;
        self
    }

    /// Whether checks use Redis now.
    pub fn is_up(&self) -> bool {
        self.up.load(Ordering::Acquire)
    }

    /// Checks sent to Redis so far (answered or not).
    pub fn round_trips(&self) -> u64 {
        self.round_trips.load(Ordering::Relaxed)
    }

    /// One check in Redis; `None` when Redis is down or failed (the caller
    /// decides in process).
    pub async fn decide(
        self: &Arc<Self>,
        limiter: &str,
        key: &str,
        rule: &RateRule,
        cost: u32,
        mode: Mode,
    ) -> Option<RateDecision> {
        if !self.is_up() {
            return None;
        }
        let bucket = format!(
            "{}{limiter}:{}",
            self.prefix,
            self.hasher.hash_hex(key.as_bytes())
        );
        self.round_trips.fetch_add(1, Ordering::Relaxed);
        match tokio::time::timeout(self.timeout, self.eval(&bucket, rule, cost, mode)).await {
            Ok(Ok(d)) => Some(d),
            Ok(Err(e)) => {
                self.failed(e.category());
                None
            }
            Err(_) => {
                self.failed("timed out");
                None
            }
        }
    }

    async fn eval(
        &self,
        bucket: &str,
        rule: &RateRule,
        cost: u32,
        mode: Mode,
    ) -> RedisResult<RateDecision> {
        let mut conn = self.connection(self.timeout).await?;
        let sha = self.sha.lock().unwrap_or_else(|p| p.into_inner()).clone();
        let sha = match sha {
            Some(sha) => sha,
            None => self.load_script(&mut conn).await?,
        };
        let args = (rule.interval_us(), rule.tolerance_us(), cost, mode as i64);
        let mut call = redis::cmd("EVALSHA");
        call.arg(&sha).arg(1).arg(bucket).arg(args);
        let reply: RedisResult<(i64, i64, i64)> = call.query_async(&mut conn).await;
        let (allowed, level, over) = match reply {
            Err(e) if e.kind() == ErrorKind::NoScriptError => {
                let mut call = redis::cmd("EVAL");
                call.arg(SCRIPT).arg(1).arg(bucket).arg(args);
                call.query_async(&mut conn).await?
            }
            other => other?,
        };
        Ok(RateDecision::from_state(rule, allowed == 1, level, over))
    }

    async fn load_script(&self, conn: &mut MultiplexedConnection) -> RedisResult<String> {
        let sha: String = redis::cmd("SCRIPT")
            .arg("LOAD")
            .arg(SCRIPT)
            .query_async(conn)
            .await?;
        *self.sha.lock().unwrap_or_else(|p| p.into_inner()) = Some(sha.clone());
        Ok(sha)
    }

    async fn connection(&self, timeout: Duration) -> RedisResult<MultiplexedConnection> {
        let kept = self.conn.lock().unwrap_or_else(|p| p.into_inner()).clone();
        if let Some(c) = kept {
            return Ok(c);
        }
        let config = AsyncConnectionConfig::new()
            .set_connection_timeout(timeout)
            .set_response_timeout(timeout);
        let c = self
            .client
            .get_multiplexed_async_connection_with_config(&config)
            .await?;
        *self.conn.lock().unwrap_or_else(|p| p.into_inner()) = Some(c.clone());
        Ok(c)
    }

    /// A check failed: drop the connection, and on the first failure log
    /// once, raise the gauge and start probing.
    fn failed(self: &Arc<Self>, why: &str) {
        *self.conn.lock().unwrap_or_else(|p| p.into_inner()) = None;
        if self.up.swap(false, Ordering::AcqRel) {
            self.metrics.rate_limiter_fallback.set(1);
            tracing::warn!(
                reason = why,
                prefix = %self.prefix,
                "Redis is unavailable: rate limits fall back to this process \
                 (each replica limits on its own) until it returns"
            );
        }
        self.start_probe();
    }

    /// Starts the probe task unless one runs. It holds the store weakly, so
    /// a dropped store ends it.
    fn start_probe(self: &Arc<Self>) {
        if self.probing.swap(true, Ordering::AcqRel) {
            return;
        }
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            self.probing.store(false, Ordering::Release);
            return;
        };
        let weak: Weak<Self> = Arc::downgrade(self);
        let every = self.probe_every;
        runtime.spawn(async move {
            loop {
                tokio::time::sleep(every).await;
                let Some(store) = weak.upgrade() else { return };
                if store.ping().await {
                    store.probing.store(false, Ordering::Release);
                    store.up.store(true, Ordering::Release);
                    store.metrics.rate_limiter_fallback.set(0);
                    tracing::info!(
                        prefix = %store.prefix,
                        "Redis is reachable again: rate limits are shared again"
                    );
                    return;
                }
            }
        });
    }

    /// PING (and the script loaded) on a fresh connection.
    async fn ping(&self) -> bool {
        *self.conn.lock().unwrap_or_else(|p| p.into_inner()) = None;
        let attempt = async {
            let mut conn = self.connection(PROBE_TIMEOUT).await?;
            redis::cmd("PING").query_async::<String>(&mut conn).await?;
            self.load_script(&mut conn).await
        };
        let ok = matches!(
            tokio::time::timeout(PROBE_TIMEOUT, attempt).await,
            Ok(Ok(_))
        );
        if !ok {
            *self.conn.lock().unwrap_or_else(|p| p.into_inner()) = None;
        }
        ok
    }
}
