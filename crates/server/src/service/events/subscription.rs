//! One open stream: its cursor, its filter, when it ends, and at most one
//! page of events read ahead. It reads only when asked for the next item,
//! so a client that does not read makes it wait, holding nothing but its
//! slot (the connection's idle timeout then closes it).

use std::{collections::VecDeque, sync::Arc};

use serde_json::{json, Value};
use tessera_core::event::{without_secrets, SEALED_PAYLOAD_CONTEXT};
use tessera_store::{EventPayload, FeedEvent};
use tokio::{
    sync::{watch, OwnedSemaphorePermit},
    time::Instant,
};

use super::{request::ValidRequest, Inner};

/// Events read from the database at a time, per stream.
const PAGE: u32 = 100;

/// What a stream sends.
#[derive(Debug, Clone, PartialEq)]
pub enum StreamItem {
    /// First, the position the stream starts at (an SSE `id` without data):
    /// a client that reconnects before any event arrives resumes from here
    /// rather than from "now", so it misses nothing in between.
    Start { position: i64 },
    /// An event: its position (the SSE `id`), type and payload (the JSON a
    /// webhook receiver gets, without the secret of a sealed event).
    Event {
        position: i64,
        event_type: String,
        data: String,
    },
}

pub struct Subscription {
    inner: Arc<Inner>,
    /// Every event at or below this position was read (sent or filtered).
    cursor: i64,
    types: Vec<String>,
    head: watch::Receiver<i64>,
    closing: watch::Receiver<bool>,
    deadline: Option<Instant>,
    /// Events still to send before ending, when the client set a maximum.
    remaining: Option<u64>,
    pending: VecDeque<StreamItem>,
    _slot: Slot,
}

/// The stream's place under the cap, and its share of the gauge.
struct Slot {
    _permit: OwnedSemaphorePermit,
    inner: Arc<Inner>,
}

impl Drop for Slot {
    fn drop(&mut self) {
        self.inner.metrics.event_streams_open.dec();
    }
}

impl Subscription {
    pub(super) fn new(
        inner: Arc<Inner>,
        permit: OwnedSemaphorePermit,
        start: i64,
        request: ValidRequest,
    ) -> Self {
        inner.metrics.event_streams_open.inc();
        Self {
            cursor: start,
            types: request.types,
            head: inner.head.subscribe(),
            closing: inner.closing.subscribe(),
            deadline: request.timeout.map(|t| Instant::now() + t),
            remaining: request.max_events,
            pending: VecDeque::from([StreamItem::Start { position: start }]),
            _slot: Slot {
                _permit: permit,
                inner: inner.clone(),
            },
            inner,
        }
    }

    /// The next item, or `None` when the stream ends: its `timeout` or
    /// `max_events` reached, the server shutting down, or the database
    /// unreadable (the client resumes with `Last-Event-ID`).
    pub async fn next(&mut self) -> Option<StreamItem> {
        loop {
            if self.remaining == Some(0) {
                return None;
            }
            if let Some(item) = self.pending.pop_front() {
                if matches!(item, StreamItem::Event { .. }) {
                    self.remaining = self.remaining.map(|n| n - 1);
                    self.inner.metrics.events_streamed.inc();
                }
                return Some(item);
            }
            let head = *self.head.borrow_and_update();
            if head > self.cursor {
                if let Err(e) = self.read_up_to(head).await {
                    tracing::warn!(error = %e, "an event stream cannot read the outbox; ending it");
                    return None;
                }
                continue;
            }
            if !self.wait().await {
                return None;
            }
        }
    }

    /// Reads the next page of events in `(cursor, head]`. A short page
    /// means every event up to `head` has been read, filtered ones too.
    async fn read_up_to(&mut self, head: i64) -> Result<(), tessera_store::StoreError> {
        let page = self
            .inner
            .store
            .events_between(self.cursor, head, &self.types, PAGE)
            .await?;
        self.cursor = match page.last() {
            Some(last) if page.len() == PAGE as usize => last.seq,
            _ => head,
        };
        for event in page {
            let item = self.item(event);
            self.pending.push_back(item);
        }
        Ok(())
    }

    /// Until the head moves (`true`), or the stream is to end (`false`).
    async fn wait(&mut self) -> bool {
        if *self.closing.borrow_and_update() || self.deadline.is_some_and(|d| Instant::now() >= d) {
            return false;
        }
        let deadline = self.deadline;
        let expiry = async move {
            match deadline {
                Some(at) => tokio::time::sleep_until(at).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            changed = self.head.changed() => changed.is_ok(),
            _ = self.closing.changed() => false,
            _ = expiry => false,
        }
    }

    fn item(&self, event: FeedEvent) -> StreamItem {
        let data = match event.payload {
            EventPayload::Clear(payload) => payload.to_string(),
            EventPayload::Sealed(sealed) => self.open_sealed(&sealed, &event.event_type),
        };
        StreamItem::Event {
            position: event.seq,
            event_type: event.event_type,
            data,
        }
    }

    /// A sealed payload opened, without its secret; if it does not open
    /// (keys changed), only its type, so the stream still says it happened.
    fn open_sealed(&self, sealed: &str, event_type: &str) -> String {
        let opened = self
            .inner
            .payloads
            .open(sealed, SEALED_PAYLOAD_CONTEXT)
            .ok()
            .and_then(|bytes| serde_json::from_slice::<Value>(&bytes).ok());
        match opened {
            Some(payload) => without_secrets(payload).to_string(),
            None => {
                tracing::warn!(
                    event_type,
                    "a sealed event does not open with the configured keys"
                );
                json!({ "event": event_type }).to_string()
            }
        }
    }
}
