//! The in-process store of GCRA state: one theoretical arrival time per key,
//! in a map split into shards so that concurrent checks on different keys
//! rarely wait on one lock. A std mutex is held only for one map operation,
//! never across an `.await`. Memory is bounded: a key whose bucket is full
//! again holds no information and is dropped first; past the bound, the key
//! nearest to full goes.

use std::{
    collections::HashMap,
    hash::{BuildHasher, RandomState},
    sync::Mutex,
};

use tessera_core::gcra::{step, Mode, RateDecision, RateRule};

const SHARDS: usize = 16;
/// Keys tracked per process (a flood of distinct client addresses cannot
/// grow memory past this: about 100 bytes a key).
pub const MAX_KEYS: usize = 100_000;

pub struct MemoryStore {
    shards: Vec<Mutex<HashMap<String, i64>>>,
    per_shard: usize,
    hasher: RandomState,
}

impl Default for MemoryStore {
    fn default() -> Self {
        Self::with_capacity(MAX_KEYS)
    }
}

impl MemoryStore {
    /// At most about `max_keys` keys.
    pub fn with_capacity(max_keys: usize) -> Self {
        Self {
            shards: (0..SHARDS).map(|_| Mutex::new(HashMap::new())).collect(),
            per_shard: max_keys.div_ceil(SHARDS).max(1),
            hasher: RandomState::new(),
        }
    }

    /// One check of `key` at `now` (microseconds since the Unix epoch).
    pub fn decide(
        &self,
        key: &str,
        rule: &RateRule,
        cost: u32,
        mode: Mode,
        now: i64,
    ) -> RateDecision {
        let shard = &self.shards[self.hasher.hash_one(key) as usize % SHARDS];
        let mut map = shard.lock().unwrap_or_else(|p| p.into_inner());
        // A TAT in the past is a full bucket: the same as no entry.
        let tat = map.get(key).copied().filter(|t| *t > now);
        let (write, decision) = step(tat, now, rule, cost, mode);
        match write {
            Some(t) if t > now => {
                if !map.contains_key(key) && map.len() >= self.per_shard {
                    make_room(&mut map, now, self.per_shard);
                }
                map.insert(key.to_string(), t);
            }
            Some(_) => {
                map.remove(key);
            }
            None => {}
        }
        decision
    }

    /// Sets `key` to `until` (µs), or forgets it when `until` is not after
    /// `now`: a mark that lapses by itself (see `RateLimits`' failure hints).
    pub fn mark(&self, key: &str, until: i64, now: i64) {
        let shard = &self.shards[self.hasher.hash_one(key) as usize % SHARDS];
        let mut map = shard.lock().unwrap_or_else(|p| p.into_inner());
        if until <= now {
            map.remove(key);
            return;
        }
        if !map.contains_key(key) && map.len() >= self.per_shard {
            make_room(&mut map, now, self.per_shard);
        }
        map.insert(key.to_string(), until);
    }

    /// Whether `key` holds a time after `now` (a bucket with something
    /// counted, or a mark that has not lapsed).
    pub fn holds(&self, key: &str, now: i64) -> bool {
        let shard = &self.shards[self.hasher.hash_one(key) as usize % SHARDS];
        let map = shard.lock().unwrap_or_else(|p| p.into_inner());
        map.get(key).is_some_and(|t| *t > now)
    }

    /// Keys held.
    pub fn keys(&self) -> usize {
        self.shards
            .iter()
            .map(|s| s.lock().unwrap_or_else(|p| p.into_inner()).len())
            .sum()
    }
}

/// Drops every full bucket; when none is, the one nearest to full (the
/// least a limit loses by forgetting it).
fn make_room(map: &mut HashMap<String, i64>, now: i64, bound: usize) {
    map.retain(|_, tat| *tat > now);
    if map.len() < bound {
        return;
    }
    if let Some(nearest) = map
        .iter()
        .min_by_key(|(_, tat)| **tat)
        .map(|(k, _)| k.clone())
    {
        map.remove(&nearest);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: i64 = 1_000_000;

    fn rule(v: &str) -> RateRule {
        v.parse().unwrap()
    }

    #[test]
    fn each_key_has_its_own_bucket() {
        let m = MemoryStore::default();
        let r = rule("3/1m");
        for _ in 0..3 {
            assert!(m.decide("a", &r, 1, Mode::Consume, 0).allowed);
        }
        let d = m.decide("a", &r, 1, Mode::Consume, 0);
        assert!(!d.allowed);
        assert!((1..=60).contains(&d.retry_after));
        assert!(m.decide("b", &r, 1, Mode::Consume, 0).allowed);
        // Keys of different limiters are different strings, so different buckets.
        assert!(m.decide("x:a", &r, 1, Mode::Consume, 0).allowed);
    }

    #[test]
    fn a_full_bucket_is_forgotten() {
        let m = MemoryStore::default();
        let r = rule("2/1m");
        m.decide("a", &r, 1, Mode::Consume, 0);
        assert_eq!(m.keys(), 1);
        // A peek stores nothing; a check after the bucket drained stores
        // the new TAT over the stale one.
        m.decide("b", &r, 1, Mode::Peek, 0);
        assert_eq!(m.keys(), 1);
        assert!(m.decide("a", &r, 2, Mode::Consume, 61 * S).allowed);
    }

    #[test]
    fn memory_is_bounded() {
        let m = MemoryStore::with_capacity(160);
        let r = rule("1/1h");
        for i in 0..10_000 {
            m.decide(&format!("k{i}"), &r, 1, Mode::Consume, i);
        }
        assert!(m.keys() <= 160, "{}", m.keys());
        // The newest keys are kept: the oldest were nearest to full.
        assert!(!m.decide("k9999", &r, 1, Mode::Consume, 10_000).allowed);
    }

    #[test]
    fn a_mark_lapses_by_itself() {
        let m = MemoryStore::default();
        m.mark("a", 5 * S, 0);
        assert!(m.holds("a", 4 * S));
        assert!(!m.holds("a", 5 * S), "lapsed");
        assert!(!m.holds("b", 0));
        m.mark("a", 0, S);
        assert_eq!(m.keys(), 0, "a mark in the past is forgotten");
    }
}
