//! What the database last said about a session (live, revoked, its
//! deadlines), so that every access-token check (bearer authentication,
//! introspection) checks the session without a query on the hot path.
//!
//! Staleness is bounded three times. On this replica, every path that
//! revokes or deletes sessions bumps a generation after its transaction
//! commits, and an entry stored under an older generation does not count:
//! the very next check reads the database. A session revoked anywhere else
//! (another replica, the CLI) is forgotten within a second, when this
//! process reads the invalidation log (`jobs::invalidations`). And an entry
//! lives at most the verify cache's TTL (`TESSERA_VERIFY_CACHE_TTL`), the
//! bound while that log cannot be read. A lookup takes a [`Stamp`] before
//! its query, so a read that raced any invalidation is not stored.

use std::{
    sync::atomic::{AtomicU64, Ordering},
    time::{Duration, Instant},
};

use chrono::{DateTime, Utc};
use tessera_core::session::Session;

use crate::service::hot_cache::HotCache;

const CAPACITY: usize = 100_000;

#[derive(Clone)]
struct State {
    /// `None`: no such session (erased).
    deadlines: Option<Deadlines>,
    generation: u64,
    stored_at: Instant,
}

#[derive(Clone, Copy)]
struct Deadlines {
    revoked: bool,
    expires_at: DateTime<Utc>,
    idle_expires_at: DateTime<Utc>,
}

pub struct SessionStates {
    map: HotCache<String, State>,
    ttl: Duration,
    /// Bumped when every entry becomes stale ([`SessionStates::invalidate`]).
    generation: AtomicU64,
    /// Bumped by every invalidation, of all entries or of one session
    /// ([`SessionStates::forget`]): a lookup that started before one does
    /// not store what it read.
    epoch: AtomicU64,
}

/// When a lookup started, for [`SessionStates::store`].
#[derive(Debug, Clone, Copy)]
pub struct Stamp {
    generation: u64,
    epoch: u64,
}

impl SessionStates {
    /// `ttl` zero: nothing is cached, every check reads the database.
    pub fn new(ttl: Duration) -> Self {
        Self {
            map: HotCache::new(CAPACITY),
            ttl,
            generation: AtomicU64::new(0),
            epoch: AtomicU64::new(0),
        }
    }

    fn generation(&self) -> u64 {
        self.generation.load(Ordering::Acquire)
    }

    /// Taken before a lookup's query.
    pub fn stamp(&self) -> Stamp {
        Stamp {
            generation: self.generation(),
            epoch: self.epoch.load(Ordering::SeqCst),
        }
    }

    /// Whether the session is live at `now`, if a fresh entry says so for
    /// sure. An idle deadline that has passed is read again: a refresh on
    /// another replica may have moved it.
    pub fn live(&self, sid: &str, now: DateTime<Utc>) -> Option<bool> {
        if self.ttl.is_zero() {
            return None;
        }
        let state = self.map.get(sid)?;
        if state.generation != self.generation() || state.stored_at.elapsed() >= self.ttl {
            return None;
        }
        let Some(d) = state.deadlines else {
            return Some(false);
        };
        if d.revoked || now >= d.expires_at {
            return Some(false);
        }
        (now < d.idle_expires_at).then_some(true)
    }

    /// Stores what a lookup that started at `stamp` found, unless an
    /// invalidation came in between.
    pub fn store(&self, sid: &str, session: Option<&Session>, stamp: Stamp) {
        if self.ttl.is_zero() || stamp.epoch != self.epoch.load(Ordering::SeqCst) {
            return;
        }
        let generation = stamp.generation;
        let state = State {
            deadlines: session.map(|s| Deadlines {
                revoked: s.revoked_at.is_some(),
                expires_at: s.expires_at,
                idle_expires_at: s.idle_expires_at,
            }),
            generation,
            stored_at: Instant::now(),
        };
        let (ttl, current) = (self.ttl, generation);
        self.map.insert(sid.to_string(), state, |s| {
            s.generation == current && s.stored_at.elapsed() < ttl
        });
        // An invalidation between the check above and the insert (its
        // removal may have run before the insert): undo the insert.
        if stamp.epoch != self.epoch.load(Ordering::SeqCst) {
            self.map.remove(sid);
        }
    }

    /// Sessions changed in a committed transaction (revoked, deleted):
    /// every entry stored before is stale.
    pub fn invalidate(&self) {
        self.generation.fetch_add(1, Ordering::AcqRel);
        self.epoch.fetch_add(1, Ordering::SeqCst);
    }

    /// One session changed in a transaction committed elsewhere: its entry
    /// goes, the others stay.
    pub fn forget(&self, sid: &str) {
        self.epoch.fetch_add(1, Ordering::SeqCst);
        self.map.remove(sid);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn session(revoked: bool) -> Session {
        let now = Utc::now();
        Session {
            id: "s".into(),
            subject: "u".into(),
            user_id: None,
            client_id: None,
            scope: vec![],
            amr: vec![],
            created_at: now,
            updated_at: now,
            last_refreshed_at: None,
            idle_expires_at: now + chrono::Duration::hours(1),
            expires_at: now + chrono::Duration::hours(2),
            revoked_at: revoked.then_some(now),
            revoke_reason: None,
            ip_sealed: None,
            user_agent_sealed: None,
            device_hash: None,
        }
    }

    #[test]
    fn an_invalidation_makes_entries_stale_and_refuses_racing_stores() {
        let c = SessionStates::new(Duration::from_secs(60));
        let now = Utc::now();
        let g = c.stamp();
        c.store("s", Some(&session(false)), g);
        assert_eq!(c.live("s", now), Some(true));
        c.invalidate();
        assert_eq!(c.live("s", now), None);
        // A lookup that started before the invalidation stores nothing.
        c.store("s", Some(&session(false)), g);
        assert_eq!(c.live("s", now), None);
        c.store("s", Some(&session(true)), c.stamp());
        assert_eq!(c.live("s", now), Some(false));
        c.store("gone", None, c.stamp());
        assert_eq!(c.live("gone", now), Some(false));
        // Past the idle deadline: read again rather than trust the entry.
        c.store("s", Some(&session(false)), c.stamp());
        assert_eq!(c.live("s", now + chrono::Duration::minutes(90)), None);
    }

    #[test]
    fn forgetting_one_session_keeps_the_others_and_refuses_racing_stores() {
        let c = SessionStates::new(Duration::from_secs(60));
        let now = Utc::now();
        c.store("a", Some(&session(false)), c.stamp());
        c.store("b", Some(&session(false)), c.stamp());
        let racing = c.stamp();
        c.forget("a");
        assert_eq!(c.live("a", now), None);
        assert_eq!(c.live("b", now), Some(true));
        // A lookup of "a" that read before the revocation committed.
        c.store("a", Some(&session(false)), racing);
        assert_eq!(c.live("a", now), None);
        c.store("a", Some(&session(true)), c.stamp());
        assert_eq!(c.live("a", now), Some(false));
    }

    #[test]
    fn a_zero_ttl_caches_nothing() {
        let c = SessionStates::new(Duration::ZERO);
        c.store("s", Some(&session(false)), c.stamp());
        assert_eq!(c.live("s", Utc::now()), None);
    }
}
