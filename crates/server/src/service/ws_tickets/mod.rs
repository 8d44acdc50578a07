//! WebSocket tickets. Browsers cannot set `Authorization` on a WebSocket
//! handshake, so a signed-in person exchanges their access token for a
//! short, single-use ticket bound to their session, the optional audience
//! and their IP; the page puts it in the WebSocket URL and the gateway
//! (an OAuth2 client with `ws_tickets`) redeems it here, then reports the
//! connection's close. Tickets are stored only as SHA-256: in Redis (taken
//! with `GETDEL`) when `REDIS_URI` is set, else in the database (taken with
//! one `DELETE … RETURNING`). A redemption checks the session's state in the
//! store at that moment, and is one write transaction with its connection
//! row, audit row and `ws.connection.*` event.

mod events;
mod redis;
mod unknown;

use std::{net::IpAddr, sync::Arc, time::Duration};

use chrono::{DateTime, Utc};
use serde::Serialize;
use tessera_core::{
    audit::RequestContext,
    client::ClientIdentity,
    crypto::KeyedHasher,
    error::Entity,
    ids::{is_valid_id, new_id},
    session::Session,
    token_format::TokenFormat,
    ws_ticket::{
        validate_audience, validate_close, Presented, RejectReason, WsConnection, WsTicket,
    },
    DomainError, SecretString,
};
use tessera_store::{AuditAggregate, Store, WriteTx};
use utoipa::ToSchema;

use self::{events::Holder, redis::RedisTickets, unknown::UnknownTickets};
use super::{background::BackgroundWriter, sessions::AccessGrant, ServiceError};
use crate::metrics::Metrics;

/// The keyed-hash purpose of ticket IPs and aggregated row keys.
pub const HASH_PURPOSE: &str = "ws-tickets";

/// A new ticket, shown once.
#[derive(Debug, Serialize, ToSchema)]
pub struct IssuedTicket {
    /// Put it in the WebSocket URL; it works once.
    #[schema(value_type = String, example = "tsr_wst_…")]
    #[serde(serialize_with = "tessera_core::secret::serialize_exposed")]
    pub ticket: SecretString,
    /// Seconds until it expires.
    pub expires_in: u64,
}

/// A redemption's answer: the session behind the ticket, or exactly
/// `{"active": false}` for any refusal (the reason is in the audit log).
#[derive(Debug, Default, Serialize, ToSchema)]
pub struct Redemption {
    pub active: bool,
    /// The person (the access token's `sub`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sub: Option<String>,
    /// The session id.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sid: Option<String>,
    /// The session's scopes, space-separated.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub scope: Option<String>,
    /// Report the close with `POST /v1/ws-connections/{connection_id}/closed`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub connection_id: Option<String>,
    /// When the session ends at the latest (revocation ends it sooner).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub session_expires_at: Option<DateTime<Utc>>,
}

impl Redemption {
    fn inactive() -> Self {
        Self::default()
    }
}

/// A connection as the gateway's close report answers it.
#[derive(Debug, Serialize, ToSchema)]
pub struct WsConnectionView {
    pub connection_id: String,
    pub session_id: String,
    pub opened_at: DateTime<Utc>,
    pub closed_at: Option<DateTime<Utc>>,
    /// The WebSocket close code the gateway reported.
    pub code: Option<u16>,
    pub reason: Option<String>,
}

impl From<WsConnection> for WsConnectionView {
    fn from(c: WsConnection) -> Self {
        Self {
            connection_id: c.id,
            session_id: c.session_id,
            opened_at: c.opened_at,
            closed_at: c.closed_at,
            code: c.close_code,
            reason: c.close_reason,
        }
    }
}

/// What the gateway sends to redeem a ticket.
#[derive(Debug, Clone, Copy)]
pub struct RedeemRequest<'a> {
    pub ticket: &'a str,
    pub audience: Option<&'a str>,
    /// The address the WebSocket client connected from, as the gateway saw it.
    pub client_ip: Option<&'a str>,
}

pub struct WsTicketService {
    store: Arc<dyn Store>,
    /// `Some` when `REDIS_URI` is set: tickets live there.
    redis: Option<RedisTickets>,
    ttl: Duration,
    format: TokenFormat,
    /// Keys ticket IPs and aggregated rows; nothing is kept in clear.
    hasher: KeyedHasher,
    background: Arc<BackgroundWriter>,
    metrics: Arc<Metrics>,
    unknown: UnknownTickets,
}

impl WsTicketService {
    /// `redis_url` only parsed here; Redis is reached on first use.
    pub fn new(
        store: Arc<dyn Store>,
        redis_url: Option<&str>,
        ttl: Duration,
        hasher: KeyedHasher,
        background: Arc<BackgroundWriter>,
        metrics: Arc<Metrics>,
    ) -> Result<Self, ::redis::RedisError> {
        Ok(Self {
            store,
            redis: redis_url.map(RedisTickets::new).transpose()?,
            ttl,
            format: TokenFormat::ws_ticket(),
            hasher,
            background,
            metrics,
            unknown: UnknownTickets::default(),
        })
    }

    fn count(&self, outcome: &str) {
        self.metrics
            .clients
            .ws_tickets
            .with_label_values(&[outcome])
            .inc();
    }

    /// The keyed hash an IP is compared by (IPv4-mapped IPv6 as IPv4).
    fn ip_hash(&self, ip: IpAddr) -> String {
        self.hasher
            .hash_hex(format!("ip:{}", ip.to_canonical()).as_bytes())
    }

    /// A ticket for the signed-in person's session, bound to `audience` and
    /// the caller's IP.
    pub async fn issue(
        &self,
        grant: &AccessGrant,
        audience: Option<&str>,
        client_ip: Option<IpAddr>,
    ) -> Result<IssuedTicket, ServiceError> {
        let audience = validate_audience(audience)?;
        let now = tessera_core::ids::now();
        let raw = self.format.generate();
        let claims = &grant.claims;
        let ticket = WsTicket {
            session_id: claims.sid.clone(),
            subject: claims.sub.clone(),
            scope: claims.scope.clone(),
            audience,
            ip_hash: client_ip.map(|ip| self.ip_hash(ip)),
            issued_at: now,
            expires_at: now + self.ttl,
        };
        let hash = raw.hash.to_hex();
        match &self.redis {
            Some(redis) => redis.put(&hash, &ticket, self.ttl).await?,
            None => {
                let mut tx = self.store.begin_write().await?;
                tx.delete_expired_ws_tickets(&ticket.session_id, now)
                    .await?;
                tx.insert_ws_ticket(&hash, &ticket).await?;
                tx.commit().await?;
            }
        }
        self.count("issued");
        Ok(IssuedTicket {
            ticket: raw.raw,
            expires_in: self.ttl.as_secs(),
        })
    }

    /// Redeems a ticket for `client` (a gateway with `ws_tickets`): once,
    /// for a live session, the right audience and (when given) IP.
    pub async fn redeem(
        &self,
        req: RedeemRequest<'_>,
        client: &ClientIdentity,
        ctx: &RequestContext,
    ) -> Result<Redemption, ServiceError> {
        let audience = validate_audience(req.audience)?;
        let ip_hash = req
            .client_ip
            .map(|s| {
                s.parse::<IpAddr>().map_err(|_| {
                    DomainError::invalid("client_ip", "must be an IPv4 or IPv6 address")
                })
            })
            .transpose()?
            .map(|ip| self.ip_hash(ip));
        let Ok(hash) = self.format.parse(req.ticket) else {
            return self.reject_unknown(client, ctx).await;
        };
        let hash = hash.to_hex();
        let from_redis = match &self.redis {
            Some(redis) => Some(redis.take(&hash).await?),
            // A read first, so that unknown tickets (which anyone can send)
            // cost no write transaction; the take below stays the one that
            // decides.
            None if !self.store.ws_ticket_exists(&hash).await? => {
                return self.reject_unknown(client, ctx).await
            }
            None => None,
        };
        let mut tx = self.store.begin_write().await?;
        let ticket = match from_redis {
            Some(taken) => taken,
            None => tx.take_ws_ticket(&hash).await?,
        };
        let Some(ticket) = ticket else {
            drop(tx);
            return self.reject_unknown(client, ctx).await;
        };
        let now = tessera_core::ids::now();
        // Under the session's row lock: a revocation commits before this
        // (and is seen) or after the connection opened.
        let session = tx.lock_session(&ticket.session_id).await?;
        let presented = Presented {
            audience: audience.as_deref(),
            ip_hash: ip_hash.as_deref(),
            client_audiences: client.audiences.as_deref(),
        };
        let verdict = ticket.check(&presented, now).and_then(|()| match &session {
            Some(s) if s.is_active_at(now) => Ok(()),
            _ => Err(RejectReason::SessionRevoked),
        });
        match (verdict, session) {
            (Ok(()), Some(session)) => self.open(tx, ticket, session, client, ctx, now).await,
            (verdict, session) => {
                let holder = Holder {
                    session_id: &ticket.session_id,
                    subject: &ticket.subject,
                    user_id: session.as_ref().and_then(|s| s.user_id.as_deref()),
                };
                let reason = verdict.err().unwrap_or(RejectReason::SessionRevoked);
                let (audit, event) = events::rejected(&holder, reason, &client.id, ctx);
                tx.append_audit(&[audit]).await?;
                tx.append_events(&[event]).await?;
                tx.commit().await?;
                self.count("rejected");
                Ok(Redemption::inactive())
            }
        }
    }

    /// Records the connection a good ticket opens, in the redemption's
    /// transaction, and answers the gateway.
    async fn open(
        &self,
        mut tx: WriteTx,
        ticket: WsTicket,
        session: Session,
        client: &ClientIdentity,
        ctx: &RequestContext,
        now: DateTime<Utc>,
    ) -> Result<Redemption, ServiceError> {
        let connection = WsConnection {
            id: new_id(),
            session_id: session.id,
            subject: session.subject,
            user_id: session.user_id,
            client_id: client.id.clone(),
            audience: ticket.audience,
            opened_at: now,
            closed_at: None,
            close_code: None,
            close_reason: None,
        };
        tx.insert_ws_connection(&connection).await?;
        let (audit, event) = events::opened(&connection, ctx);
        tx.append_audit(&[audit]).await?;
        tx.append_events(&[event]).await?;
        tx.commit().await?;
        self.count("redeemed");
        Ok(Redemption {
            active: true,
            sub: Some(ticket.subject),
            sid: Some(connection.session_id),
            scope: Some(ticket.scope),
            connection_id: Some(connection.id),
            session_expires_at: Some(session.expires_at),
        })
    }

    /// A ticket that matches nothing: counted into the gateway's row of the
    /// minute; the first of the minute on this replica writes it (with the
    /// event) at once, the rest go through the background writer.
    async fn reject_unknown(
        &self,
        client: &ClientIdentity,
        ctx: &RequestContext,
    ) -> Result<Redemption, ServiceError> {
        self.count("rejected");
        let minute = Utc::now().timestamp().div_euclid(60);
        let window_start = DateTime::from_timestamp(minute * 60, 0).unwrap_or_default();
        let key = unknown::row_key(&self.hasher, &client.id, minute);
        if self.unknown.first_of_minute(&client.id, minute) {
            let (entry, event) = events::unknown(&client.id, window_start, ctx);
            let row = AuditAggregate {
                key,
                entry,
                occurrences: 1,
            };
            let mut tx = self.store.begin_write().await?;
            tx.upsert_audit_aggregates(&[row]).await?;
            tx.append_events(&[event]).await?;
            tx.commit().await?;
        } else {
            self.background
                .count_aggregate(key, || events::unknown(&client.id, window_start, ctx).0);
        }
        Ok(Redemption::inactive())
    }

    /// The gateway's report that a connection ended. Idempotent: a second
    /// report answers the connection as first closed, with no new event.
    /// Another gateway's connection is "not found".
    pub async fn closed(
        &self,
        id: &str,
        code: Option<i64>,
        reason: Option<String>,
        client: &ClientIdentity,
        ctx: &RequestContext,
    ) -> Result<WsConnectionView, ServiceError> {
        let not_found = || ServiceError::from(DomainError::NotFound(Entity::WsConnection));
        if !is_valid_id(id) {
            return Err(not_found());
        }
        let (code, reason) = validate_close(code, reason)?;
        let conn = self
            .store
            .get_ws_connection(id)
            .await?
            .filter(|c| c.client_id == client.id)
            .ok_or_else(not_found)?;
        if conn.closed_at.is_some() {
            return Ok(conn.into());
        }
        let now = tessera_core::ids::now();
        let mut tx = self.store.begin_write().await?;
        if !tx
            .close_ws_connection(id, now, code, reason.as_deref())
            .await?
        {
            // Closed meanwhile by a concurrent report.
            drop(tx);
            let conn = self
                .store
                .get_ws_connection(id)
                .await?
                .ok_or_else(not_found)?;
            return Ok(conn.into());
        }
        let conn = WsConnection {
            closed_at: Some(now),
            close_code: code,
            close_reason: reason,
            ..conn
        };
        let (audit, event) = events::closed(&conn, ctx);
        tx.append_audit(&[audit]).await?;
        tx.append_events(&[event]).await?;
        tx.commit().await?;
        Ok(conn.into())
    }
}
