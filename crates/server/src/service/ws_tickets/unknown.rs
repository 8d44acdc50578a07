//! Tickets that match nothing (never issued, already redeemed, expired out
//! of Redis). A gateway passes on whatever a browser sends, so anyone can
//! produce these at will; one audit row and one webhook per attempt would
//! let them grow the log and flood receivers. Instead each gateway gets one
//! aggregated audit row per minute (a count, keyed alike on every replica),
//! and the `ws.connection.rejected` event goes out for the first attempt of
//! the minute on each replica; the rest are counted in memory and added to
//! the row by the background writer.

use std::{collections::HashMap, sync::Mutex};

use tessera_core::crypto::KeyedHasher;

/// Above this many gateways remembered, entries of past minutes go.
const MAX_REMEMBERED: usize = 10_000;

#[derive(Default)]
pub(super) struct UnknownTickets {
    /// The last minute in which each gateway's first unknown ticket was
    /// written by this replica.
    seen: Mutex<HashMap<String, i64>>,
}

impl UnknownTickets {
    /// Whether this is `client_id`'s first unknown ticket in `minute` here.
    pub fn first_of_minute(&self, client_id: &str, minute: i64) -> bool {
        let mut seen = self.seen.lock().unwrap_or_else(|e| e.into_inner());
        if seen.len() >= MAX_REMEMBERED {
            seen.retain(|_, m| *m >= minute);
        }
        seen.insert(client_id.to_string(), minute) != Some(minute)
    }
}

/// The aggregated row's key: the same on every replica, with no client id
/// in clear (64 bits of a keyed hash: two gateways would have to collide
/// within one minute to share a row).
pub(super) fn row_key(hasher: &KeyedHasher, client_id: &str, minute: i64) -> String {
    let hash = hasher.hash_hex(format!("row:{client_id}").as_bytes());
    format!(
        "ws.connection.reject:{}:unknown_or_used:{minute}",
        &hash[..16]
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_first_per_gateway_and_minute() {
        let u = UnknownTickets::default();
        assert!(u.first_of_minute("gw", 10));
        assert!(!u.first_of_minute("gw", 10));
        assert!(u.first_of_minute("other", 10));
        assert!(u.first_of_minute("gw", 11));
        assert!(!u.first_of_minute("gw", 11));
    }

    #[test]
    fn row_keys_hide_the_client() {
        let h = KeyedHasher::new(&"k".repeat(32), "t").unwrap();
        let key = row_key(&h, "gateway-1", 5);
        assert!(!key.contains("gateway-1"));
        assert_eq!(key, row_key(&h, "gateway-1", 5));
        assert_ne!(key, row_key(&h, "gateway-1", 6));
    }
}
