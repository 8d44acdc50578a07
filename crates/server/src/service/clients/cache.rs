//! What client authentication knows of registry clients without asking the
//! database: introspection runs it on every call, and a query per call would
//! halve its rate. An entry (the client's secret digests, capabilities,
//! audiences, or "no such live client") is trusted for the verify cache's
//! TTL at most. A change made on this replica replaces the entry at once;
//! one made elsewhere (another replica, the CLI) removes it within a
//! second, when this process reads the invalidation log
//! (`jobs::invalidations`). A std mutex guards the map, held only for a map
//! operation, never across `.await`.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use chrono::{DateTime, Utc};
use tessera_core::{client::Capability, client_registry::RegisteredClient, token_controls::IpNet};

/// Bound on cached ids (live and absent ones): past it, stale entries go
/// first, then everything, so a flood of made-up ids cannot grow memory.
const CAPACITY: usize = 10_000;

/// A live registry client as authentication needs it.
#[derive(Debug)]
pub(super) struct CachedClient {
    pub secret_hash: String,
    pub previous_secret_hash: Option<String>,
    pub previous_secret_expires_at: Option<DateTime<Utc>>,
    pub capabilities: Vec<Capability>,
    pub audiences: Option<Vec<String>>,
    pub ip_allow: Vec<IpNet>,
    pub ip_deny: Vec<IpNet>,
}

impl CachedClient {
    /// `None` for a deleted client: it authenticates as an unknown one.
    fn of(c: &RegisteredClient) -> Option<Self> {
        c.deleted_at.is_none().then(|| Self {
            secret_hash: c.secret_hash.clone(),
            previous_secret_hash: c.previous_secret_hash.clone(),
            previous_secret_expires_at: c.previous_secret_expires_at,
            capabilities: c.capabilities.clone(),
            audiences: c.audiences.clone(),
            ip_allow: c.ip_allow.clone(),
            ip_deny: c.ip_deny.clone(),
        })
    }

    /// The previous digest while its grace lasts at `now`.
    pub fn previous_hash_at(&self, now: DateTime<Utc>) -> Option<&str> {
        match (&self.previous_secret_hash, self.previous_secret_expires_at) {
            (Some(h), Some(until)) if now < until => Some(h),
            _ => None,
        }
    }
}

struct Entry {
    /// `None`: no live client has this id.
    client: Option<Arc<CachedClient>>,
    loaded: Instant,
}

/// The result of a lookup: fresh knowledge, or a miss to load.
pub(super) enum Lookup {
    Known(Option<Arc<CachedClient>>),
    /// Absent or stale; load it and [`RegistryCache::fill`] with this
    /// generation.
    Miss(u64),
}

pub(super) struct RegistryCache {
    ttl: Duration,
    inner: Mutex<Inner>,
}

#[derive(Default)]
struct Inner {
    entries: HashMap<String, Entry>,
    /// Bumped by every local change, so a load that started before the
    /// change cannot put the old state back ([`RegistryCache::fill`]).
    generation: u64,
}

impl RegistryCache {
    pub fn new(ttl: Duration) -> Self {
        Self {
            ttl,
            inner: Mutex::new(Inner::default()),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn lookup(&self, id: &str) -> Lookup {
        let inner = self.lock();
        match inner.entries.get(id) {
            Some(e) if e.loaded.elapsed() < self.ttl => Lookup::Known(e.client.clone()),
            _ => Lookup::Miss(inner.generation),
        }
    }

    /// Stores what a load found, unless a local change happened since the
    /// load began (then the next lookup loads again). Returns the entry.
    pub fn fill(
        &self,
        id: &str,
        found: Option<&RegisteredClient>,
        generation: u64,
    ) -> Option<Arc<CachedClient>> {
        let client = found.and_then(CachedClient::of).map(Arc::new);
        let mut inner = self.lock();
        if inner.generation == generation {
            insert(&mut inner, self.ttl, id, client.clone());
        }
        client
    }

    /// A change this replica just committed: the new state replaces the
    /// entry at once and any load in flight is discarded.
    pub fn changed(&self, client: &RegisteredClient) {
        let cached = CachedClient::of(client).map(Arc::new);
        let mut inner = self.lock();
        inner.generation += 1;
        insert(&mut inner, self.ttl, &client.id, cached);
    }

    /// A change committed elsewhere: the entry goes (the next lookup loads
    /// it) and any load in flight is discarded.
    pub fn forget(&self, id: &str) {
        let mut inner = self.lock();
        inner.generation += 1;
        inner.entries.remove(id);
    }

    /// Every entry goes (the invalidation log cannot be read).
    pub fn clear(&self) {
        let mut inner = self.lock();
        inner.generation += 1;
        inner.entries.clear();
    }
}

fn insert(inner: &mut Inner, ttl: Duration, id: &str, client: Option<Arc<CachedClient>>) {
    if inner.entries.len() >= CAPACITY && !inner.entries.contains_key(id) {
        inner.entries.retain(|_, e| e.loaded.elapsed() < ttl);
        if inner.entries.len() >= CAPACITY {
            inner.entries.clear();
        }
    }
    inner.entries.insert(
        id.to_string(),
        Entry {
            client,
            loaded: Instant::now(),
        },
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    fn client(id: &str, deleted: bool) -> RegisteredClient {
        let now = tessera_core::ids::now();
        RegisteredClient {
            id: id.into(),
            name: "rs".into(),
            secret_hash: "h".into(),
            previous_secret_hash: None,
            previous_secret_expires_at: None,
            capabilities: vec![Capability::Introspect],
            audiences: None,
            created_at: now,
            updated_at: now,
            deleted_at: deleted.then_some(now),
            ip_allow: Vec::new(),
            ip_deny: Vec::new(),
        }
    }

    #[test]
    fn a_load_older_than_a_local_change_is_discarded() {
        let cache = RegistryCache::new(Duration::from_secs(5));
        let Lookup::Miss(generation) = cache.lookup("a") else {
            panic!("empty cache")
        };
        cache.changed(&client("a", true));
        cache.fill("a", Some(&client("a", false)), generation);
        assert!(matches!(cache.lookup("a"), Lookup::Known(None)));
    }

    #[test]
    fn a_change_elsewhere_drops_the_entry_and_a_racing_load() {
        let cache = RegistryCache::new(Duration::from_secs(5));
        cache.fill("a", Some(&client("a", false)), 0);
        cache.fill("b", Some(&client("b", false)), 0);
        let Lookup::Miss(generation) = cache.lookup("c") else {
            panic!("not cached")
        };
        cache.forget("a");
        assert!(matches!(cache.lookup("a"), Lookup::Miss(_)));
        assert!(matches!(cache.lookup("b"), Lookup::Known(Some(_))));
        cache.fill("c", None, generation);
        assert!(matches!(cache.lookup("c"), Lookup::Miss(_)), "raced");
        cache.clear();
        assert!(matches!(cache.lookup("b"), Lookup::Miss(_)));
    }

    #[test]
    fn a_flood_of_ids_is_bounded() {
        let cache = RegistryCache::new(Duration::from_secs(5));
        for n in 0..=CAPACITY {
            cache.fill(&format!("id-{n}"), None, 0);
        }
        let entries = cache.lock().entries.len();
        assert!(entries <= CAPACITY, "{entries}");
        assert!(matches!(
            cache.lookup(&format!("id-{CAPACITY}")),
            Lookup::Known(None)
        ));
    }

    #[test]
    fn the_previous_secret_counts_only_during_its_grace() {
        let now = tessera_core::ids::now();
        let mut c = client("a", false);
        c.previous_secret_hash = Some("old".into());
        c.previous_secret_expires_at = Some(now + chrono::Duration::seconds(1));
        let cached = CachedClient::of(&c).unwrap();
        assert_eq!(cached.previous_hash_at(now), Some("old"));
        assert_eq!(
            cached.previous_hash_at(now + chrono::Duration::seconds(1)),
            None
        );
    }

    #[test]
    fn entries_expire_with_the_ttl() {
        let cache = RegistryCache::new(Duration::ZERO);
        cache.changed(&client("a", false));
        assert!(matches!(cache.lookup("a"), Lookup::Miss(_)));
        let cache = RegistryCache::new(Duration::from_secs(5));
        cache.fill("a", Some(&client("a", false)), 0);
        assert!(matches!(cache.lookup("a"), Lookup::Known(Some(_))));
    }
}
