//! The in-process cache in front of the verification lookup.
//!
//! It caches what the database said about a secret hash (the token record, or
//! "no such secret"), never a verdict: state, expiry and scopes are evaluated
//! against the cached record on every hit, so expiry is exact. Changes made
//! by this process invalidate at once; changes made anywhere else (another
//! replica, the CLI) within a second, when this process reads them from the
//! invalidation log (`jobs::invalidations`). Entries also live for a short
//! TTL, the bound while that log cannot be read.
//!
//! The lock is a `std::sync::RwLock` held only for a map operation, never
//! across an `.await`.

use std::{
    collections::{HashMap, HashSet},
    hash::{BuildHasherDefault, Hasher},
    sync::{
        atomic::{AtomicU64, Ordering},
        Arc, RwLock,
    },
    time::{Duration, Instant},
};

use chrono::{DateTime, Utc};
use tessera_core::{api_token::ApiToken, token_format::TokenHash};

/// What the database said about one secret hash.
#[derive(Debug, Clone)]
pub enum CachedLookup {
    Found {
        token: Arc<ApiToken>,
        valid_until: Option<DateTime<Utc>>,
    },
    /// No such secret. Safe to cache: a hash that was unknown can only become
    /// known by being issued, and a freshly issued secret was never looked up.
    Missing,
}

struct Entry {
    value: CachedLookup,
    stored_at: Instant,
}

/// The keys are SHA-256 outputs, already uniformly distributed, so hashing
/// them again with SipHash would be wasted work on the hot path.
#[derive(Default)]
struct PrehashedHasher(u64);

impl Hasher for PrehashedHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        let mut first = [0u8; 8];
        let n = bytes.len().min(8);
        first[..n].copy_from_slice(&bytes[..n]);
        self.0 ^= u64::from_le_bytes(first);
    }

    // The array's length prefix carries no information.
    fn write_usize(&mut self, _: usize) {}
}

type Map = HashMap<[u8; 32], Entry, BuildHasherDefault<PrehashedHasher>>;

pub struct VerifyCache {
    map: RwLock<Map>,
    ttl: Duration,
    capacity: usize,
    /// Bumped by every invalidation. A lookup that started before a bump must
    /// not store its (possibly stale) result.
    generation: AtomicU64,
}

impl VerifyCache {
    pub fn new(ttl: Duration, capacity: usize) -> Self {
        Self {
            map: RwLock::new(Map::default()),
            ttl,
            capacity,
            generation: AtomicU64::new(0),
        }
    }

    pub fn generation(&self) -> u64 {
        self.generation.load(Ordering::Acquire)
    }

    pub fn get(&self, hash: &TokenHash) -> Option<CachedLookup> {
        if self.ttl.is_zero() {
            return None;
        }
        let map = self.map.read().unwrap_or_else(|p| p.into_inner());
        let entry = map.get(&hash.0)?;
        (entry.stored_at.elapsed() < self.ttl).then(|| entry.value.clone())
    }

    /// Stores `value` unless an invalidation happened since `generation` was read.
    pub fn insert(&self, hash: &TokenHash, value: CachedLookup, generation: u64) {
        if self.ttl.is_zero() {
            return;
        }
        let mut map = self.map.write().unwrap_or_else(|p| p.into_inner());
        if self.generation.load(Ordering::Acquire) != generation {
            return;
        }
        if map.len() >= self.capacity {
            let ttl = self.ttl;
            map.retain(|_, e| e.stored_at.elapsed() < ttl);
            if map.len() >= self.capacity {
                // Still full of fresh entries: start over rather than track LRU
                // order on every hit.
                map.clear();
            }
        }
        map.insert(
            hash.0,
            Entry {
                value,
                stored_at: Instant::now(),
            },
        );
    }

    /// Drops every entry for one token (all of its secrets).
    pub fn invalidate_token(&self, token_id: &str) {
        self.invalidate_tokens(&HashSet::from([token_id]));
    }

    /// Drops every entry for these tokens, in one pass over the map.
    pub fn invalidate_tokens(&self, token_ids: &HashSet<&str>) {
        let mut map = self.map.write().unwrap_or_else(|p| p.into_inner());
        self.generation.fetch_add(1, Ordering::AcqRel);
        map.retain(|_, e| match &e.value {
            CachedLookup::Found { token, .. } => !token_ids.contains(token.id.as_str()),
            CachedLookup::Missing => true,
        });
    }

    /// Drops every entry: nothing cached can be trusted past now.
    pub fn clear(&self) {
        let mut map = self.map.write().unwrap_or_else(|p| p.into_inner());
        self.generation.fetch_add(1, Ordering::AcqRel);
        map.clear();
    }

    pub fn len(&self) -> usize {
        self.map.read().unwrap_or_else(|p| p.into_inner()).len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}
