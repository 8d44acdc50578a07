//! The webhook dispatcher: turns outbox events into deliveries and sends
//! them, signed per Standard Webhooks, at least once.
//!
//! Each loop: fan out new outbox events to subscribed endpoints, lease due
//! deliveries (so with several replicas each is sent by one of them), send
//! them concurrently, and record every attempt in one batch. A crash between
//! sending and recording means the lease lapses and the delivery is sent
//! again: at least once, never lost. Receivers de-duplicate on `webhook-id`.
//!
//! Unless `webhooks.allow_private_networks` is set, nothing is sent to an
//! internal address (SSRF): a literal IP is checked before sending, a host
//! name by the client's resolver, and redirects are never followed. Such a
//! delivery fails at once, with the reason recorded on its attempt. The
//! operator's own `TOKENS_WEBHOOK_URL` is trusted configuration and exempt.

use std::{
    sync::Arc,
    time::{Duration, Instant},
};

use chrono::Utc;
use reqwest::{header::HeaderValue, redirect, StatusCode};
use tessera_core::{
    crypto::Keyring,
    event::SEALED_PAYLOAD_CONTEXT,
    ids::new_id,
    webhook::{secret_key, signature_header, DeliveryAttempt, RetrySchedule},
};
use tessera_store::{
    AttemptRecord, AttemptResult, DueDelivery, EndpointSecrets, EventPayload, Store, StoreError,
};
use tokio::task::JoinSet;

use super::address_guard::{is_refusal, PublicOnlyResolver, INTERNAL_ADDRESS_REASON};
use crate::{
    config::WebhookSettings,
    metrics::Metrics,
    service::webhooks::{literal_internal_ip, SECRET_CONTEXT},
};

const FAN_OUT_BATCH: u32 = 500;
const CLAIM_BATCH: u32 = 256;

pub struct Dispatcher {
    store: Arc<dyn Store>,
    /// For endpoints created through the API: public addresses only, unless
    /// private networks are allowed.
    http: reqwest::Client,
    /// For the operator's `TOKENS_WEBHOOK_URL`: any address.
    trusted_http: reqwest::Client,
    settings: WebhookSettings,
    /// Opens endpoint secrets.
    secrets: Keyring,
    /// Opens sealed payloads (`invite.created`).
    payloads: Keyring,
    metrics: Arc<Metrics>,
}

impl Dispatcher {
    pub fn new(
        store: Arc<dyn Store>,
        settings: WebhookSettings,
        secrets: Keyring,
        payloads: Keyring,
        metrics: Arc<Metrics>,
    ) -> Self {
        let client = |public_only: bool| {
            let builder = reqwest::Client::builder()
                // A redirect is not a success, and following one could send a
                // signed payload somewhere the operator never configured (or,
                // unchecked by the resolver's rule, to an internal address).
                .redirect(redirect::Policy::none())
                .timeout(settings.timeout)
                .user_agent(concat!("tessera-webhooks/", env!("CARGO_PKG_VERSION")));
            let builder = if public_only {
                builder.dns_resolver(Arc::new(PublicOnlyResolver))
            } else {
                builder
            };
            builder
                .build()
                .expect("the HTTP client builds with static settings")
        };
        Self {
            store,
            http: client(!settings.allow_private_networks),
            trusted_http: client(false),
            settings,
            secrets,
            payloads,
            metrics,
        }
    }

    /// Runs until the task is dropped, backing off while the database is down.
    pub fn spawn(self: Arc<Self>) -> tokio::task::JoinHandle<()> {
        tokio::spawn(async move {
            loop {
                match self.run_once().await {
                    Ok(0) => tokio::time::sleep(self.settings.poll_interval).await,
                    Ok(_) => {}
                    Err(e) => {
                        tracing::warn!(error = %e, "webhook dispatcher could not reach the database; retrying");
                        tokio::time::sleep(Duration::from_secs(2)).await;
                    }
                }
            }
        })
    }

    /// One pass; returns how much work it found (events fanned out plus
    /// deliveries attempted).
    pub async fn run_once(&self) -> Result<usize, StoreError> {
        let now = Utc::now();
        let fanned = self.store.fan_out(now, FAN_OUT_BATCH).await?;
        // The lease outlives the longest possible attempt, with room to record it.
        let lease = chrono::Duration::from_std(self.settings.timeout * 2 + Duration::from_secs(5))
            .unwrap_or(chrono::Duration::seconds(35));
        let due = self.store.claim_due(now, now + lease, CLAIM_BATCH).await?;
        let attempted = due.len();
        let mut set = JoinSet::new();
        let mut records = Vec::with_capacity(attempted);
        for d in due {
            if set.len() >= self.settings.concurrency {
                if let Some(Ok(r)) = set.join_next().await {
                    records.push(r);
                }
            }
            let job = self.prepare(d);
            let http = if job.public_only {
                self.http.clone()
            } else {
                self.trusted_http.clone()
            };
            let schedule = self.settings.retry.clone();
            let metrics = self.metrics.clone();
            set.spawn(async move { send(http, job, &schedule, &metrics).await });
        }
        while let Some(r) = set.join_next().await {
            if let Ok(r) = r {
                records.push(r);
            }
        }
        self.store.record_attempts(&records).await?;
        Ok(fanned + attempted)
    }

    fn prepare(&self, d: DueDelivery) -> Prepared {
        let body = match &d.payload {
            EventPayload::Clear(v) => Ok(v.to_string()),
            EventPayload::Sealed(sealed) => self
                .payloads
                .open(sealed, SEALED_PAYLOAD_CONTEXT)
                .ok()
                .and_then(|b| String::from_utf8(b).ok())
                .ok_or("the sealed payload does not decrypt with the configured keys"),
        };
        let trusted = self.settings.allow_private_networks
            || self.settings.default_url.as_deref() == Some(d.url.as_str());
        Prepared {
            keys: self.signing_keys(&d.secrets),
            body,
            public_only: !trusted,
            delivery: d,
        }
    }

    /// Current secret, plus the previous one while its overlap lasts.
    fn signing_keys(&self, s: &EndpointSecrets) -> Vec<Vec<u8>> {
        let open = |sealed: &str| {
            self.secrets
                .open(sealed, SECRET_CONTEXT)
                .ok()
                .and_then(|b| String::from_utf8(b).ok())
                .and_then(|secret| secret_key(&secret))
        };
        let mut keys: Vec<Vec<u8>> = open(&s.current).into_iter().collect();
        if let Some((prev, until)) = &s.previous {
            if *until > Utc::now() {
                keys.extend(open(prev));
            }
        }
        keys
    }
}

struct Prepared {
    delivery: DueDelivery,
    body: Result<String, &'static str>,
    keys: Vec<Vec<u8>>,
    /// Internal addresses are refused (every endpoint but the operator's).
    public_only: bool,
}

/// Why an attempt got no response; `refused` when the address rule, not
/// the network, stopped it (that does not change by retrying).
struct NoResponse {
    reason: String,
    refused: bool,
}

impl NoResponse {
    fn transport(reason: impl Into<String>) -> Self {
        Self {
            reason: reason.into(),
            refused: false,
        }
    }

    fn refused() -> Self {
        Self {
            reason: INTERNAL_ADDRESS_REASON.into(),
            refused: true,
        }
    }
}

async fn send(
    http: reqwest::Client,
    job: Prepared,
    schedule: &RetrySchedule,
    metrics: &Metrics,
) -> AttemptRecord {
    let d = &job.delivery.delivery;
    let started = Instant::now();
    let outcome = post(&http, &job).await;
    let latency = started.elapsed();
    metrics.webhook_latency.observe(latency.as_secs_f64());
    let now = Utc::now();
    let (status_code, error, result) = match outcome {
        Ok((s, _)) if s.is_success() => (Some(s.as_u16()), None, AttemptResult::Succeeded),
        Ok((StatusCode::GONE, _)) => (
            Some(410),
            Some("410 Gone: endpoint disabled".to_string()),
            AttemptResult::EndpointGone,
        ),
        Err(NoResponse {
            reason,
            refused: true,
        }) => (None, Some(reason), AttemptResult::Failed),
        other => {
            let (code, error, retry_after) = match other {
                Ok((s, retry_after)) => (
                    Some(s.as_u16()),
                    format!("HTTP {}", s.as_u16()),
                    retry_after,
                ),
                Err(e) => (None, e.reason, None),
            };
            // Retry-After is honoured only where it has that meaning.
            let retry_after = retry_after
                .filter(|_| matches!(code, Some(429 | 503)))
                .map(Duration::from_secs);
            let result = match schedule.next_delay(d.attempts as usize + 1, retry_after) {
                Some(delay) => AttemptResult::RetryAt(
                    now + chrono::Duration::from_std(delay).unwrap_or(chrono::Duration::hours(10)),
                ),
                None => AttemptResult::Failed,
            };
            (code, Some(error), result)
        }
    };
    if result == AttemptResult::Succeeded {
        metrics.webhooks_sent.inc();
    } else {
        metrics.webhooks_failed.inc();
        tracing::info!(delivery_id = %d.id, event_type = %d.event_type, status = ?status_code, error = ?error, "webhook attempt failed");
    }
    AttemptRecord {
        attempt: DeliveryAttempt {
            id: new_id(),
            delivery_id: d.id.clone(),
            at: now,
            status_code: status_code.map(i64::from),
            latency_ms: latency.as_millis() as i64,
            error,
        },
        endpoint_id: d.endpoint_id.clone(),
        result,
    }
}

/// Signs and POSTs one delivery: the response status and its Retry-After
/// (seconds), or why there was no response.
async fn post(
    http: &reqwest::Client,
    job: &Prepared,
) -> Result<(StatusCode, Option<u64>), NoResponse> {
    let d = &job.delivery.delivery;
    if job.public_only {
        // A literal IP never reaches the resolver: check it here.
        let url = reqwest::Url::parse(&job.delivery.url)
            .map_err(|_| NoResponse::transport("the endpoint URL does not parse"))?;
        if literal_internal_ip(&url).is_some() {
            return Err(NoResponse::refused());
        }
    }
    match (&job.body, job.keys.is_empty()) {
        (Err(e), _) => Err(NoResponse::transport(*e)),
        (_, true) => Err(NoResponse::transport(
            "the endpoint secret does not decrypt with the configured keys",
        )),
        (Ok(body), false) => {
            let ts = Utc::now().timestamp();
            let signature = signature_header(&job.keys, &d.event_id, ts, body.as_bytes());
            http.post(&job.delivery.url)
                .header("content-type", "application/json")
                .header("webhook-id", &d.event_id)
                .header("webhook-timestamp", ts.to_string())
                .header("webhook-signature", signature)
                .body(body.clone())
                .send()
                .await
                .map(|r| {
                    let retry_after = r
                        .headers()
                        .get("retry-after")
                        .and_then(|v: &HeaderValue| v.to_str().ok())
                        .and_then(|v| v.trim().parse::<u64>().ok());
                    (r.status(), retry_after)
                })
                .map_err(describe)
        }
    }
}

/// A short, safe description of a transport error: never the URL, which
/// may carry credentials in its query.
fn describe(e: reqwest::Error) -> NoResponse {
    if is_refusal(&e) {
        NoResponse::refused()
    } else if e.is_timeout() {
        NoResponse::transport("timed out")
    } else if e.is_connect() {
        NoResponse::transport("could not connect")
    } else if e.is_redirect() {
        NoResponse::transport("redirect not followed")
    } else {
        NoResponse::transport("request failed")
    }
}
