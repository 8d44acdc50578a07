//! A bounded in-process map for the hot paths of token checks (verified
//! JWT signatures, session states): sharded so that concurrent readers on
//! different keys rarely meet on one lock, each lock a `std::sync::RwLock`
//! held only for a map operation, never across an `.await`.
//!
//! Bounded without LRU bookkeeping on hits: an insert into a full shard
//! first drops the entries its caller says are dead, and starts the shard
//! over if it is still full (the callers' entries are cheap to rebuild).

use std::{
    collections::HashMap,
    hash::{BuildHasher, Hash, RandomState},
    sync::RwLock,
};

const SHARDS: usize = 16;

pub struct HotCache<K, V> {
    shards: Vec<RwLock<HashMap<K, V>>>,
    per_shard: usize,
    hasher: RandomState,
}

impl<K: Hash + Eq, V: Clone> HotCache<K, V> {
    /// A cache of about `capacity` entries in all.
    pub fn new(capacity: usize) -> Self {
        Self {
            shards: (0..SHARDS).map(|_| RwLock::new(HashMap::new())).collect(),
            per_shard: capacity.div_ceil(SHARDS).max(1),
            hasher: RandomState::new(),
        }
    }

    fn shard<Q: Hash + ?Sized>(&self, key: &Q) -> &RwLock<HashMap<K, V>> {
        &self.shards[(self.hasher.hash_one(key) as usize) % SHARDS]
    }

    pub fn get<Q>(&self, key: &Q) -> Option<V>
    where
        K: std::borrow::Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        let shard = self.shard(key).read().unwrap_or_else(|p| p.into_inner());
        shard.get(key).cloned()
    }

    /// Drops the entry for `key`, if any.
    pub fn remove<Q>(&self, key: &Q)
    where
        K: std::borrow::Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        let mut shard = self.shard(key).write().unwrap_or_else(|p| p.into_inner());
        shard.remove(key);
    }

    /// Stores `value`; in a full shard, entries for which `alive` is false
    /// go first, then all of them if that was not enough.
    pub fn insert(&self, key: K, value: V, alive: impl Fn(&V) -> bool) {
        let mut shard = self.shard(&key).write().unwrap_or_else(|p| p.into_inner());
        if shard.len() >= self.per_shard && !shard.contains_key(&key) {
            shard.retain(|_, v| alive(v));
            if shard.len() >= self.per_shard {
                shard.clear();
            }
        }
        shard.insert(key, value);
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.shards
            .iter()
            .map(|s| s.read().unwrap_or_else(|p| p.into_inner()).len())
            .sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bounded_and_dead_entries_go_first() {
        let c: HotCache<u32, u32> = HotCache::new(16);
        for i in 0..1000 {
            c.insert(i, i, |v| v % 2 == 0);
        }
        assert!(c.len() <= 16 + SHARDS);
        c.insert(5000, 1, |_| true);
        assert_eq!(c.get(&5000), Some(1));
        c.remove(&5000);
        assert_eq!(c.get(&5000), None);
        assert_eq!(c.get(&123_456), None);
    }
}
