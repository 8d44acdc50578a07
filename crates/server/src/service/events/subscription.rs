//! One open stream: its cursor, its filter, when it ends, and at most one
//! page of events read ahead. It reads only when asked for the next item,
//! so a client that does not read makes it wait, holding nothing but its
//! slot (the connection's idle timeout then closes it). It also ends when
//! its opener no longer passes (see [`super::opener`]).

use std::{collections::VecDeque, sync::Arc, time::Duration};

use serde_json::{json, Value};
use tessera_core::event::{without_secrets, SEALED_PAYLOAD_CONTEXT};
use tessera_store::{EventPayload, FeedEvent};
use tokio::{
    sync::{watch, OwnedSemaphorePermit},
    time::Instant,
};

use super::{
    opener::{Judgement, Opener},
    request::ValidRequest,
    CredentialChanges, Inner,
};

/// Events read from the database at a time, per stream.
const PAGE: u32 = 100;

/// The opener's first judgement after the stream opened: it covers a
/// change that committed while the request was being authenticated.
const FIRST_CHECK: Duration = Duration::from_secs(1);

/// What woke a waiting stream.
enum Wake {
    /// New events may be there.
    Head,
    /// A credential changed, or the opener's periodic judgement is due.
    Judge,
    /// The stream is to end.
    End,
}

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
    /// The request's `timeout`.
    deadline: Option<Instant>,
    /// When the opener's credential ends by itself (an access token's
    /// `exp`, a token's expiry, a rotated secret's grace), as last judged.
    credential_ends: Option<Instant>,
    /// Events still to send before ending, when the client set a maximum.
    remaining: Option<u64>,
    pending: VecDeque<StreamItem>,
    opener: Opener,
    changes: watch::Receiver<CredentialChanges>,
    /// The generation of the last batch of changes looked at.
    seen: u64,
    /// When the opener is judged next even if no change names it.
    judge_at: Instant,
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
        opener: Opener,
    ) -> Self {
        inner.metrics.event_streams_open.inc();
        let now = Instant::now();
        let timeout = request.timeout.map(|t| now + t);
        let credential_ends = opener.expires_at().map(instant_of);
        let mut changes = inner.changes.subscribe();
        let seen = changes.borrow_and_update().generation;
        Self {
            cursor: start,
            types: request.types,
            head: inner.head.subscribe(),
            closing: inner.closing.subscribe(),
            deadline: timeout,
            credential_ends,
            remaining: request.max_events,
            pending: VecDeque::from([StreamItem::Start { position: start }]),
            opener,
            changes,
            seen,
            judge_at: now + FIRST_CHECK,
            _slot: Slot {
                _permit: permit,
                inner: inner.clone(),
            },
            inner,
        }
    }

    /// The next item, or `None` when the stream ends: its `timeout` or
    /// `max_events` reached, its opener no longer admitted, the server
    /// shutting down, or the database unreadable (the client resumes with
    /// `Last-Event-ID`).
    pub async fn next(&mut self) -> Option<StreamItem> {
        loop {
            if self.remaining == Some(0) {
                return None;
            }
            // A stream busy with events may never wait: shutdown, the
            // credential's end and its judgement hold here too.
            let ended = self.credential_ends.is_some_and(|at| Instant::now() >= at);
            if *self.closing.borrow() || ended {
                return None;
            }
            if self.judgement_due() && !self.opener_admitted().await {
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
            match self.wait().await {
                Wake::Head => {}
                Wake::Judge => {
                    if !self.opener_admitted().await {
                        return None;
                    }
                }
                Wake::End => return None,
            }
        }
    }

    /// Whether a batch of changes arrived or the periodic judgement is due
    /// (cheap: no read).
    fn judgement_due(&self) -> bool {
        self.changes.has_changed().unwrap_or(false) || Instant::now() >= self.judge_at
    }

    /// Judges the opener again when the latest changes may concern it (or
    /// a batch was missed, or its periodic judgement is due); `false` ends
    /// the stream, as does a database that cannot say (it fails closed: the
    /// client reconnects, and is judged then).
    async fn opener_admitted(&mut self) -> bool {
        let changes = self.changes.borrow_and_update().clone();
        let missed = changes.generation > self.seen.saturating_add(1);
        let named = match &changes.rows {
            Some(rows) => rows.iter().any(|row| self.opener.concerns(row)),
            None => true,
        };
        let concerned = changes.generation != self.seen && (missed || named);
        self.seen = changes.generation;
        if !concerned && Instant::now() < self.judge_at {
            return true;
        }
        self.judge_at = Instant::now() + self.inner.settings.keep_alive;
        let store = &*self.inner.store;
        match self.opener.judge(store, chrono::Utc::now()).await {
            Ok(Judgement::Admitted { until }) => {
                self.credential_ends = until.map(instant_of);
                true
            }
            Ok(Judgement::Ended) => {
                tracing::info!(
                    "an event stream ended: the credential that opened it no longer admits it"
                );
                self.inner.metrics.event_streams_ended_by_credential.inc();
                false
            }
            Err(e) => {
                tracing::warn!(error = %e, "an event stream cannot judge its opener; ending it");
                false
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

    /// Until the head moves, a credential changes or the opener's judgement
    /// is due, or the stream is to end.
    async fn wait(&mut self) -> Wake {
        let ends = self.deadline.into_iter().chain(self.credential_ends).min();
        if *self.closing.borrow_and_update() || ends.is_some_and(|d| Instant::now() >= d) {
            return Wake::End;
        }
        let expiry = async move {
            match ends {
                Some(at) => tokio::time::sleep_until(at).await,
                None => std::future::pending().await,
            }
        };
        let judge_at = self.judge_at;
        tokio::select! {
            changed = self.head.changed() => if changed.is_ok() { Wake::Head } else { Wake::End },
            _ = self.closing.changed() => Wake::End,
            _ = expiry => Wake::End,
            _ = self.changes.changed() => Wake::Judge,
            _ = tokio::time::sleep_until(judge_at) => Wake::Judge,
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

/// The monotonic instant of a wall-clock time (now, if it has passed).
fn instant_of(at: chrono::DateTime<chrono::Utc>) -> Instant {
    Instant::now() + (at - chrono::Utc::now()).to_std().unwrap_or_default()
}
