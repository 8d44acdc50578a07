//! A cache of verified access-token signatures, so that a resource server
//! introspecting the same token many times (and every bearer check of
//! `/v1/users/me`) pays for one signature check, not one per call. Keyed by
//! the token's SHA-256; an entry keeps the verified claims, which are judged
//! again on every hit (expiry, not-before, issuer, audience), and the epoch
//! of the key set that verified it: when the published keys change, older
//! entries no longer count. Only valid signatures are cached, so garbage
//! cannot crowd out good entries; an entry is dead once its token expired.

use std::sync::Arc;

use tessera_core::{jwt::AccessClaims, token_format::TokenHash};

use super::hot_cache::HotCache;

/// Enough for every live access token of a busy deployment (an entry is a
/// few hundred bytes).
const CAPACITY: usize = 100_000;

#[derive(Clone)]
struct Verified {
    claims: Arc<AccessClaims>,
    key_epoch: u64,
}

pub struct SignatureCache {
    map: HotCache<[u8; 32], Verified>,
}

impl Default for SignatureCache {
    fn default() -> Self {
        Self {
            map: HotCache::new(CAPACITY),
        }
    }
}

impl SignatureCache {
    /// The claims of a token whose signature was verified under the key set
    /// of `key_epoch`.
    pub fn get(&self, hash: &TokenHash, key_epoch: u64) -> Option<Arc<AccessClaims>> {
        self.map
            .get(&hash.0)
            .filter(|v| v.key_epoch == key_epoch)
            .map(|v| v.claims)
    }

    pub fn insert(&self, hash: &TokenHash, claims: AccessClaims, key_epoch: u64) {
        let now = chrono::Utc::now().timestamp();
        let verified = Verified {
            claims: Arc::new(claims),
            key_epoch,
        };
        self.map.insert(hash.0, verified, |v| {
            v.claims.exp > now && v.key_epoch == key_epoch
        });
    }
}
