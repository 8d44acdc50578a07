//! Tickets in Redis (when `REDIS_URI` is set): one key per ticket, named by
//! the ticket's SHA-256, that expires with the ticket (`SET … PX … NX`), and
//! is taken with `GETDEL`, which Redis runs atomically, so of concurrent
//! redemptions exactly one gets the value. Unlike the upstream cache, here
//! Redis is the store of record: when it is down, issuing and redeeming
//! answer 503 rather than fall back to a store the other replicas do not read.

use std::{sync::Mutex, time::Duration};

use redis::aio::MultiplexedConnection;
use tessera_core::ws_ticket::WsTicket;

use crate::service::{error::Dependency, ServiceError};

/// Each operation's limit: a hung Redis costs one slow request, not many.
const TIMEOUT: Duration = Duration::from_secs(2);
const KEY_PREFIX: &str = "tessera:ws_ticket:";

pub(super) struct RedisTickets {
    client: redis::Client,
    /// Shared by all tasks; cloned out of the lock before use, so the lock
    /// is never held across an `.await`. Dropped after an error.
    conn: Mutex<Option<MultiplexedConnection>>,
}

fn unavailable(what: &str, e: &dyn std::fmt::Display) -> ServiceError {
    tracing::warn!(error = %e, "redis: could not {what} a websocket ticket");
    ServiceError::Unavailable(Dependency::TicketStore)
}

impl RedisTickets {
    /// Parses the URL; connects on first use.
    pub fn new(url: &str) -> Result<Self, redis::RedisError> {
        Ok(Self {
            client: redis::Client::open(url)?,
            conn: Mutex::new(None),
        })
    }

    async fn connection(&self) -> Result<MultiplexedConnection, ServiceError> {
        let cached = self.conn.lock().unwrap_or_else(|e| e.into_inner()).clone();
        if let Some(c) = cached {
            return Ok(c);
        }
        let c = tokio::time::timeout(TIMEOUT, self.client.get_multiplexed_async_connection())
            .await
            .map_err(|e| unavailable("connect for", &e))?
            .map_err(|e| unavailable("connect for", &e))?;
        *self.conn.lock().unwrap_or_else(|e| e.into_inner()) = Some(c.clone());
        Ok(c)
    }

    /// Runs `cmd`, dropping the connection on any failure.
    async fn run<T: redis::FromRedisValue>(
        &self,
        what: &str,
        cmd: redis::Cmd,
    ) -> Result<T, ServiceError> {
        let mut conn = self.connection().await?;
        let result = tokio::time::timeout(TIMEOUT, cmd.query_async::<T>(&mut conn)).await;
        let failed = |e: &dyn std::fmt::Display| {
            *self.conn.lock().unwrap_or_else(|e| e.into_inner()) = None;
            unavailable(what, e)
        };
        match result {
            Ok(Ok(v)) => Ok(v),
            Ok(Err(e)) => Err(failed(&e)),
            Err(e) => Err(failed(&e)),
        }
    }

    pub async fn put(
        &self,
        hash: &str,
        ticket: &WsTicket,
        ttl: Duration,
    ) -> Result<(), ServiceError> {
        let value = serde_json::to_string(ticket).map_err(|e| unavailable("encode", &e))?;
        let mut cmd = redis::cmd("SET");
        cmd.arg(format!("{KEY_PREFIX}{hash}"))
            .arg(value)
            .arg("PX")
            .arg(ttl.as_millis() as u64)
            .arg("NX");
        let _: Option<String> = self.run("store", cmd).await?;
        Ok(())
    }

    /// Takes the ticket: `None` when Redis has no such key (never issued,
    /// already taken, or expired).
    pub async fn take(&self, hash: &str) -> Result<Option<WsTicket>, ServiceError> {
        let mut cmd = redis::cmd("GETDEL");
        cmd.arg(format!("{KEY_PREFIX}{hash}"));
        let value: Option<String> = self.run("take", cmd).await?;
        // A value that does not parse was not written by this version: as
        // good as absent.
        Ok(value.and_then(|v| serde_json::from_str(&v).ok()))
    }
}
