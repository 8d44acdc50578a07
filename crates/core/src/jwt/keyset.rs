//! Signing-key rotation as pure rules over stored key records: which key
//! signs now, which keys the JWKS publishes, and when a new or retired key
//! changes either. The store keeps the records; these functions decide.
//!
//! A rotation has two delays, both so that no valid token ever meets a
//! verifier that lacks its key:
//! - pre-publication: a new key is published at once but signs only from
//!   `signs_from`, so verifiers that cache the JWKS fetch it before they see
//!   a token signed with it;
//! - post-retirement: a retired key stays published until `publish_until`,
//!   when the last token it signed has expired.

use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};

use super::{Algorithm, DEFAULT_LEEWAY_SECS};

/// One signing key's lifecycle (its private part is stored sealed beside it).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyRecord {
    pub kid: String,
    pub alg: Algorithm,
    pub created_at: DateTime<Utc>,
    /// Published from creation on; signs only from this instant.
    pub signs_from: DateTime<Utc>,
    /// When it stopped signing, if it has.
    pub retired_at: Option<DateTime<Utc>>,
    /// A retired key stays in the JWKS until the last token it signed expires.
    pub publish_until: Option<DateTime<Utc>>,
}

impl KeyRecord {
    fn is_retired_at(&self, now: DateTime<Utc>) -> bool {
        self.retired_at.is_some_and(|r| r <= now)
    }
}

/// The newest record (by `created_at`, then `kid` for a stable tie-break).
fn newest<'a>(records: impl Iterator<Item = &'a KeyRecord>) -> Option<&'a KeyRecord> {
    records.max_by(|a, b| (a.created_at, &a.kid).cmp(&(b.created_at, &b.kid)))
}

/// The key that signs at `now`: the newest non-retired key whose
/// pre-publication is over. When none is (the very first key, created at
/// start-up), the newest non-retired key signs anyway: with no earlier key
/// there is no token a verifier could be missing, and the server must be
/// able to issue tokens at once. `None` only when every key is retired.
pub fn signing_key_at(records: &[KeyRecord], now: DateTime<Utc>) -> Option<&KeyRecord> {
    let live = || records.iter().filter(move |r| !r.is_retired_at(now));
    newest(live().filter(|r| r.signs_from <= now)).or_else(|| newest(live()))
}

/// The keys the JWKS publishes at `now`: every non-retired key (including
/// ones still in pre-publication), and retired ones until `publish_until`.
/// A retired record without `publish_until` is no longer published.
pub fn published_at(records: &[KeyRecord], now: DateTime<Utc>) -> Vec<&KeyRecord> {
    records
        .iter()
        .filter(|r| !r.is_retired_at(now) || r.publish_until.is_some_and(|until| until > now))
        .collect()
}

/// When a key created at `now` may start signing: after `prepublish`, the
/// longest time a verifier may cache our JWKS.
pub fn rotate_plan(now: DateTime<Utc>, prepublish: Duration) -> DateTime<Utc> {
    now + prepublish
}

/// Retires `record` at `now`. A token it signed at `now` lives at most
/// `access_ttl`, and verifiers accept it [`DEFAULT_LEEWAY_SECS`] longer, so
/// the JWKS keeps the key until `now + access_ttl + leeway`. A verifier
/// configured with a larger leeway needs the caller to add the difference
/// to `access_ttl`. Retiring a retired key changes nothing: its first
/// retirement already bounds its tokens.
pub fn retire(record: &mut KeyRecord, now: DateTime<Utc>, access_ttl: Duration) {
    if record.retired_at.is_some() {
        return;
    }
    record.retired_at = Some(now);
    record.publish_until = Some(now + access_ttl + Duration::seconds(DEFAULT_LEEWAY_SECS));
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(secs: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(1_700_000_000 + secs, 0).unwrap()
    }

    fn record(kid: &str, created: i64, signs_from: i64) -> KeyRecord {
        KeyRecord {
            kid: kid.into(),
            alg: Algorithm::EdDSA,
            created_at: at(created),
            signs_from: at(signs_from),
            retired_at: None,
            publish_until: None,
        }
    }

    fn kids(records: Vec<&KeyRecord>) -> Vec<&str> {
        records.iter().map(|r| r.kid.as_str()).collect()
    }

    #[test]
    fn the_first_key_signs_at_once_even_in_pre_publication() {
        let records = vec![record("a", 0, 3600)];
        assert_eq!(signing_key_at(&records, at(0)).unwrap().kid, "a");
        assert_eq!(signing_key_at(&[], at(0)), None);
    }

    #[test]
    fn a_new_key_signs_only_after_pre_publication_but_is_published_at_once() {
        let records = vec![record("old", 0, 0), record("new", 100, 100 + 600)];
        assert_eq!(signing_key_at(&records, at(100)).unwrap().kid, "old");
        assert_eq!(signing_key_at(&records, at(699)).unwrap().kid, "old");
        assert_eq!(signing_key_at(&records, at(700)).unwrap().kid, "new");
        assert_eq!(kids(published_at(&records, at(100))), ["old", "new"]);
    }

    #[test]
    fn the_newest_qualifying_key_signs_and_retired_keys_never_do() {
        let mut records = vec![record("a", 0, 0), record("b", 10, 10), record("c", 20, 20)];
        assert_eq!(signing_key_at(&records, at(30)).unwrap().kid, "c");
        retire(&mut records[2], at(30), Duration::minutes(15));
        assert_eq!(signing_key_at(&records, at(30)).unwrap().kid, "b");
        for r in &mut records {
            retire(r, at(40), Duration::minutes(15));
        }
        assert_eq!(signing_key_at(&records, at(40)), None);
    }

    #[test]
    fn a_retired_key_is_published_until_its_last_token_expires() {
        let mut r = record("a", 0, 0);
        retire(&mut r, at(100), Duration::seconds(900));
        let until = 100 + 900 + DEFAULT_LEEWAY_SECS;
        assert_eq!(r.retired_at, Some(at(100)));
        assert_eq!(r.publish_until, Some(at(until)));
        let records = [r];
        assert_eq!(kids(published_at(&records, at(until - 1))), ["a"]);
        assert!(published_at(&records, at(until)).is_empty());
    }

    #[test]
    fn retiring_twice_keeps_the_first_retirement() {
        let mut r = record("a", 0, 0);
        retire(&mut r, at(100), Duration::seconds(900));
        let first = r.clone();
        retire(&mut r, at(5000), Duration::seconds(900));
        assert_eq!(r, first);
    }

    #[test]
    fn a_retired_record_without_publish_until_is_not_published() {
        let mut r = record("a", 0, 0);
        r.retired_at = Some(at(10));
        assert!(published_at(&[r.clone()], at(10)).is_empty());
        // Retirement scheduled in the future: still signs and is published.
        assert_eq!(kids(published_at(&[r.clone()], at(9))), ["a"]);
        assert_eq!(signing_key_at(&[r], at(9)).unwrap().kid, "a");
    }

    #[test]
    fn rotate_plan_delays_signing_by_the_pre_publication() {
        assert_eq!(rotate_plan(at(0), Duration::minutes(10)), at(600));
    }

    #[test]
    fn equal_creation_times_break_ties_by_kid() {
        let records = vec![record("b", 0, 0), record("a", 0, 0)];
        assert_eq!(signing_key_at(&records, at(1)).unwrap().kid, "b");
    }
}
