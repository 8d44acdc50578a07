//! The event stream for gateways (`GET /v1/events/stream`): the lifecycle
//! events of the webhook catalogue (a token revoked, a session revoked, …)
//! delivered to open connections within a second of their commit, and
//! resumable from the last position a client saw.
//!
//! The outbox is read in commit order through the store's positions
//! ([`tessera_store::EventFeed`], where the reason no late commit is ever
//! skipped is written down). One task per process (the hub, started with the
//! first stream) numbers new events every `events.poll_interval` while a
//! stream is open and publishes the head on a `watch` channel; each stream
//! then reads the events between its cursor and the head, a page at a time,
//! only when it is polled for more. So a slow client holds no lock and no
//! more than one page of events, and the number of streams is capped
//! (`events.max_streams`).
//!
//! A stream ends when the credential that opened it no longer would
//! ([`Opener`]): the invalidation poller hands every batch of changes to
//! [`EventStreamService::credentials_changed`], and each stream judges its
//! opener again when a change names it, and every keep-alive interval.

mod opener;
mod request;
mod subscription;

use std::{
    sync::{Arc, OnceLock, Weak},
    time::Duration,
};

use serde_json::json;
use tessera_core::{
    audit::{Actor, AuditEntry, RequestContext},
    crypto::Keyring,
    DomainError,
};
use tessera_store::{Invalidation, Store, StoreError};
use tokio::sync::{watch, Semaphore};

pub use opener::Opener;
pub use request::{StreamRequest, MAX_EVENTS, MAX_TIMEOUT_SECS};
pub use subscription::{StreamItem, Subscription};

use crate::{config::EventStreamSettings, metrics::Metrics};

/// Why a stream was not opened.
#[derive(Debug)]
pub enum OpenError {
    /// A parameter breaks a rule (422).
    Invalid(DomainError),
    /// `events.max_streams` streams are open in this process (503).
    Full,
    /// `Last-Event-ID` is beyond every position given (a cursor from
    /// another database): resuming there would skip events (409).
    Ahead,
    /// The database cannot be read (503).
    Unavailable(StoreError),
}

impl From<StoreError> for OpenError {
    fn from(e: StoreError) -> Self {
        Self::Unavailable(e)
    }
}

pub struct EventStreamService {
    inner: Arc<Inner>,
}

struct Inner {
    store: Arc<dyn Store>,
    /// Opens sealed payloads (`invite.created`), whose secret is then dropped.
    payloads: Keyring,
    settings: EventStreamSettings,
    metrics: Arc<Metrics>,
    /// One permit per open stream.
    slots: Arc<Semaphore>,
    /// The highest position numbered, as the hub last saw it.
    head: watch::Sender<i64>,
    /// `true` once the server shuts down: every stream ends.
    closing: watch::Sender<bool>,
    /// The latest batch of credential changes this process learned of.
    changes: watch::Sender<CredentialChanges>,
    hub: OnceLock<()>,
}

/// One batch of credential changes, numbered so that a stream that missed
/// a batch (the channel keeps only the latest) knows to judge its opener
/// again anyway.
#[derive(Debug, Clone, Default)]
pub(crate) struct CredentialChanges {
    pub generation: u64,
    /// `None`: anything may have changed (the log could not be read).
    pub rows: Option<Arc<[Invalidation]>>,
}

impl EventStreamService {
    pub fn new(
        store: Arc<dyn Store>,
        payloads: Keyring,
        settings: EventStreamSettings,
        metrics: Arc<Metrics>,
    ) -> Self {
        Self {
            inner: Arc::new(Inner {
                store,
                payloads,
                slots: Arc::new(Semaphore::new(settings.max_streams)),
                settings,
                metrics,
                head: watch::Sender::new(0),
                closing: watch::Sender::new(false),
                changes: watch::Sender::new(CredentialChanges::default()),
                hub: OnceLock::new(),
            }),
        }
    }

    /// Opens a stream for `actor`: checks the request, takes a slot, numbers
    /// what has committed so far and starts at the head (or at the client's
    /// `Last-Event-ID`). The opening is audited (`events.stream`).
    pub async fn open(
        &self,
        request: StreamRequest,
        opener: Opener,
        actor: &Actor,
        ctx: &RequestContext,
    ) -> Result<Subscription, OpenError> {
        let request = request.validate().map_err(OpenError::Invalid)?;
        let slot = self
            .inner
            .slots
            .clone()
            .try_acquire_owned()
            .map_err(|_| OpenError::Full)?;
        self.start_hub();
        let head = self.inner.store.sequence_events().await?;
        self.inner.publish(head);
        let start = match request.resume_after {
            Some(after) if after > head => return Err(OpenError::Ahead),
            Some(after) => after,
            None => head,
        };
        let details = json!({
            "types": request.types,
            "resumed_from": request.resume_after,
            "timeout_seconds": request.timeout.map(|t| t.as_secs()),
            "max_events": request.max_events,
        });
        let entry = AuditEntry::success(actor, "events.stream", "event_stream", "", details, ctx);
        self.inner.store.append_audit(&[entry]).await?;
        Ok(Subscription::new(
            self.inner.clone(),
            slot,
            start,
            request,
            opener,
        ))
    }

    /// Credential changes committed anywhere (the invalidation poller's
    /// batch): every stream whose opener one of them names judges it again.
    pub fn credentials_changed(&self, rows: &[Invalidation]) {
        self.announce(Some(rows.into()));
    }

    /// This process lost track of changes (the log cannot be read): every
    /// stream judges its opener again.
    pub fn credentials_unknown(&self) {
        self.announce(None);
    }

    fn announce(&self, rows: Option<Arc<[Invalidation]>>) {
        self.inner.changes.send_modify(|c| {
            c.generation += 1;
            c.rows = rows;
        });
    }

    /// Ends every stream (shutdown), so that draining connections does not
    /// wait for streams that never end by themselves.
    pub fn close(&self) {
        self.inner.closing.send_replace(true);
    }

    /// Streams open now.
    pub fn open_streams(&self) -> usize {
        self.inner.settings.max_streams - self.inner.slots.available_permits()
    }

    /// How often an idle stream sends a keep-alive comment.
    pub fn keep_alive(&self) -> Duration {
        self.inner.settings.keep_alive
    }

    /// Starts the hub once, on the runtime of the first stream's request
    /// (admin commands never open one, so they never run it).
    fn start_hub(&self) {
        self.inner.hub.get_or_init(|| {
            tokio::spawn(hub(Arc::downgrade(&self.inner)));
        });
    }
}

impl Inner {
    /// Raises the published head (never lowers it: a slower pass may
    /// report an older one).
    fn publish(&self, head: i64) {
        self.head.send_if_modified(|h| {
            let newer = head > *h;
            if newer {
                *h = head;
            }
            newer
        });
    }

    fn streams_open(&self) -> bool {
        self.slots.available_permits() < self.settings.max_streams
    }
}

/// Numbers new events and publishes the head every poll interval while a
/// stream is open; ends with the service or at shutdown.
async fn hub(inner: Weak<Inner>) {
    let mut failures: u32 = 0;
    loop {
        let Some(this) = inner.upgrade() else { return };
        let mut closing = this.closing.subscribe();
        if *closing.borrow_and_update() {
            return;
        }
        let pause = this.settings.poll_interval;
        if this.streams_open() {
            match this.store.sequence_events().await {
                Ok(head) => {
                    failures = 0;
                    this.publish(head);
                }
                Err(e) => {
                    // Once, then every 40th time: the streams see no new
                    // events meanwhile, and resume where they were.
                    if failures.is_multiple_of(40) {
                        tracing::warn!(error = %e, "the event stream cannot read the outbox");
                    }
                    failures = failures.saturating_add(1);
                }
            }
        }
        drop(this);
        tokio::select! {
            _ = tokio::time::sleep(pause.max(Duration::from_millis(1))) => {}
            _ = closing.changed() => return,
        }
    }
}
