//! The verification cache on its own (no database): what it stores, when it
//! refuses to store, how it forgets. The HTTP suites see it only through
//! timing; these pin its rules.

use std::{sync::Arc, time::Duration};

use chrono::Utc;
use tessera_core::{api_token::ApiToken, token_format::TokenHash};
use tessera_server::service::verify_cache::{CachedLookup, VerifyCache};

fn hash(n: u8) -> TokenHash {
    TokenHash([n; 32])
}

fn found(id: &str) -> CachedLookup {
    CachedLookup::Found {
        token: Arc::new(ApiToken::new(id, "t", vec!["read".into()], Utc::now())),
        valid_until: None,
    }
}

fn token_id(lookup: Option<CachedLookup>) -> Option<String> {
    match lookup? {
        CachedLookup::Found { token, .. } => Some(token.id.clone()),
        CachedLookup::Missing => Some("<missing>".into()),
    }
}

fn a_stored_lookup_is_served_until_its_ttl_passes() {
    let cache = VerifyCache::new(Duration::from_millis(200), 100);
    assert!(cache.is_empty());
    cache.insert(&hash(1), found("a"), cache.generation());
    cache.insert(&hash(2), CachedLookup::Missing, cache.generation());
    assert_eq!(cache.len(), 2);
    assert_eq!(token_id(cache.get(&hash(1))).as_deref(), Some("a"));
    assert_eq!(token_id(cache.get(&hash(2))).as_deref(), Some("<missing>"));
    assert!(cache.get(&hash(3)).is_none(), "never stored");
    std::thread::sleep(Duration::from_millis(250));
    assert!(
        cache.get(&hash(1)).is_none(),
        "expired entries are not served"
    );
}

fn a_zero_ttl_disables_the_cache() {
    let cache = VerifyCache::new(Duration::ZERO, 100);
    cache.insert(&hash(1), found("a"), cache.generation());
    assert!(cache.is_empty());
    assert!(cache.get(&hash(1)).is_none());
}

fn a_lookup_that_raced_an_invalidation_is_not_stored() {
    let cache = VerifyCache::new(Duration::from_secs(60), 100);
    // The lookup reads the generation, then the token changes (revoked by
    // this process) before the lookup's result arrives: it may be stale.
    let generation = cache.generation();
    cache.invalidate_token("a");
    cache.insert(&hash(1), found("a"), generation);
    assert!(cache.get(&hash(1)).is_none());
    // A lookup started after the change is stored.
    cache.insert(&hash(1), found("a"), cache.generation());
    assert!(cache.get(&hash(1)).is_some());
}

fn invalidating_a_token_drops_all_its_secrets_and_nothing_else() {
    let cache = VerifyCache::new(Duration::from_secs(60), 100);
    let g = cache.generation();
    cache.insert(&hash(1), found("a"), g); // current secret
    cache.insert(&hash(2), found("a"), g); // previous secret, in its grace period
    cache.insert(&hash(3), found("b"), g);
    cache.insert(&hash(4), CachedLookup::Missing, g);
    cache.invalidate_token("a");
    assert!(cache.get(&hash(1)).is_none());
    assert!(cache.get(&hash(2)).is_none());
    assert_eq!(token_id(cache.get(&hash(3))).as_deref(), Some("b"));
    assert_eq!(token_id(cache.get(&hash(4))).as_deref(), Some("<missing>"));
    assert!(cache.generation() > g);
}

fn a_full_cache_drops_expired_entries_first_and_starts_over_when_all_are_fresh() {
    // Full of expired entries: they are dropped, the fresh one stays.
    let cache = VerifyCache::new(Duration::from_millis(100), 3);
    for n in 1..=3 {
        cache.insert(&hash(n), found("old"), cache.generation());
    }
    std::thread::sleep(Duration::from_millis(150));
    cache.insert(&hash(9), found("new"), cache.generation());
    assert_eq!(cache.len(), 1);
    assert_eq!(token_id(cache.get(&hash(9))).as_deref(), Some("new"));

    // Full of fresh entries: cleared, so memory stays bounded by the capacity.
    let cache = VerifyCache::new(Duration::from_secs(60), 3);
    for n in 1..=3 {
        cache.insert(&hash(n), found("x"), cache.generation());
    }
    cache.insert(&hash(9), found("y"), cache.generation());
    assert_eq!(cache.len(), 1);
    assert!(cache.get(&hash(1)).is_none());
    assert_eq!(token_id(cache.get(&hash(9))).as_deref(), Some("y"));
}

tessera_test_support::tests! {
    sync:
        a_stored_lookup_is_served_until_its_ttl_passes,
        a_zero_ttl_disables_the_cache,
        a_lookup_that_raced_an_invalidation_is_not_stored,
        invalidating_a_token_drops_all_its_secrets_and_nothing_else,
        a_full_cache_drops_expired_entries_first_and_starts_over_when_all_are_fresh;
}
