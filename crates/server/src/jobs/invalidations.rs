//! Keeps this process's caches in step with credential changes committed
//! anywhere: another replica, or the CLI working on the database directly.
//!
//! Every such change writes an invalidation row in its own transaction (the
//! store does it, see `tessera_store::InvalidationLog`). This task reads the
//! new rows every [`POLL_INTERVAL`], and at once when PostgreSQL notifies a
//! commit, and drops what the caches hold about each record named: the
//! verify cache by token, session states by session, registry clients by
//! id; a user's change (disable, delete, erase) makes every session state
//! stale, since states are keyed by session and such changes are rare; and
//! event streams judge their openers again. So a revocation reaches every
//! replica within a second. The poll is the source
//! of truth; the notification only shortens the wait, and a lost one costs
//! at most one interval.
//!
//! A process that cannot read the log drops all its caches once and says
//! so: its entries then last at most the cache TTL, as before the log. The
//! rows it missed are read when the database returns.

use std::{collections::HashSet, sync::Arc, time::Duration};

use tessera_store::{Invalidation, InvalidationFeed, InvalidationKind};
use tokio::{sync::Notify, task::JoinHandle};

use crate::runtime::Services;

/// How often the log is read without a notification: the bound on how late
/// a change reaches this process, with room to spare under one second.
pub const POLL_INTERVAL: Duration = Duration::from_millis(250);

/// How long rows are kept: far beyond any reader's lag. The maintenance job
/// deletes older ones.
pub const RETENTION: chrono::Duration = chrono::Duration::hours(1);

/// How long a lost listener connection waits before it is opened again.
const LISTEN_RETRY: Duration = Duration::from_secs(5);

/// Starts the poller and, where the database can notify, its listener.
pub fn spawn(services: Arc<Services>) -> Vec<JoinHandle<()>> {
    let wake = Arc::new(Notify::new());
    vec![
        tokio::spawn(poll(services.clone(), wake.clone())),
        tokio::spawn(listen(services, wake)),
    ]
}

/// Reads the log every interval, or sooner when woken, and applies what is new.
async fn poll(services: Arc<Services>, wake: Arc<Notify>) {
    let mut feed = InvalidationFeed::default();
    let mut failing = false;
    loop {
        match feed.poll(&*services.store).await {
            Ok(rows) => {
                if failing {
                    tracing::info!("the invalidation log can be read again");
                    failing = false;
                }
                apply(&services, &rows);
            }
            Err(e) => {
                services.metrics.invalidation_poll_failures.inc();
                if !failing {
                    tracing::warn!(
                        error = %e,
                        "cannot read the invalidation log; dropped this process's caches \
                         (cached entries now last at most TESSERA_VERIFY_CACHE_TTL)"
                    );
                    forget_everything(&services);
                    failing = true;
                }
            }
        }
        tokio::select! {
            _ = tokio::time::sleep(POLL_INTERVAL) => {}
            _ = wake.notified() => {}
        }
    }
}

/// Drops what the caches hold about each record the rows name.
fn apply(services: &Services, rows: &[Invalidation]) {
    let mut tokens = HashSet::new();
    for row in rows {
        services
            .metrics
            .cache_invalidations
            .with_label_values(&[row.kind.as_str()])
            .inc();
        let id = row.target_id.as_str();
        match row.kind {
            InvalidationKind::Token => {
                tokens.insert(id);
            }
            InvalidationKind::Session => services.sessions.session_changed_elsewhere(id),
            InvalidationKind::User => services.sessions.sessions_changed(),
            InvalidationKind::Client => services.clients.forget_cached(id),
        }
    }
    // One pass over the verify cache for all of them.
    if !tokens.is_empty() {
        services.tokens.forget_cached(&tokens);
    }
    // Event streams judge their openers with reads of the database itself,
    // not of these caches.
    if !rows.is_empty() {
        services.events.credentials_changed(rows);
    }
}

fn forget_everything(services: &Services) {
    services.tokens.forget_all_cached();
    services.sessions.sessions_changed();
    services.clients.forget_all_cached();
    services.events.credentials_unknown();
}

/// Wakes the poller at every notified commit. Returns at once on a
/// backend without notifications; on a lost connection, logs once and
/// tries again every [`LISTEN_RETRY`].
async fn listen(services: Arc<Services>, wake: Arc<Notify>) {
    // Whether the outage in progress has been logged.
    let mut down = false;
    loop {
        match services.store.listen_invalidations().await {
            Ok(None) => return,
            Ok(Some(mut listener)) => {
                if down {
                    tracing::info!("listening for invalidations again");
                }
                // Anything committed while it was not listening.
                wake.notify_one();
                let error = loop {
                    match listener.wait().await {
                        Ok(()) => wake.notify_one(),
                        Err(e) => break e,
                    }
                };
                tracing::warn!(error = %error, "lost the invalidation listener; polling alone finds invalidations");
                down = true;
            }
            Err(e) if !down => {
                tracing::warn!(error = %e, "cannot listen for invalidations; polling alone finds them");
                down = true;
            }
            Err(_) => {}
        }
        tokio::time::sleep(LISTEN_RETRY).await;
    }
}
