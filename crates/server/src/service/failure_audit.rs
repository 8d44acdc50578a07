//! Failed token verifications and failed client authentications (the
//! same mechanism, told apart by [`FailureKind`]), aggregated for the audit
//! log. Anyone can
//! send failures, so one audit row per failure would let a caller grow the
//! table at will; instead the background writer keeps one aggregate per
//! (client, failure code, minute) in memory, with a count and at most
//! [`MAX_SAMPLES`] sample token ids, and upserts it on every flush.
//!
//! The client is the per-IP limit key ([`ClientKey`]: an IPv4 address or an
//! IPv6 /64), so a client cannot spread itself over many rows by rotating
//! addresses inside its /64. Only the first row a replica writes for a
//! (client, minute) keeps the sealed full address, user agent and request id
//! of the failure that started it; the client's other codes that minute
//! (typically `RATE_LIMITED` after the first) are bare counts, linked to it
//! by the client part of their row key. That keeps a flooding client at
//! about 1 KB of audit data a minute, most of it the sealed user agent (see
//! `verify_failures` in the server's tests). The row key, used by every replica to add to the same row, is a
//! keyed hash of the client, so no address is stored in clear.

use std::{
    collections::{HashMap, HashSet},
    net::IpAddr,
};

use chrono::{DateTime, Utc};
use serde_json::json;
use tessera_core::{
    audit::{Actor, AuditEntry, RequestContext},
    crypto::KeyedHasher,
    rate_limit::ClientKey,
};
use tessera_store::AuditAggregate;

/// Sample token ids kept per aggregate.
pub const MAX_SAMPLES: usize = 3;

/// One failed verification, as the aggregate counts it.
#[derive(Debug, Clone, Copy)]
pub struct VerifyFailureEvent<'a> {
    pub client_ip: Option<IpAddr>,
    pub code: &'static str,
    /// The token, when the presented secret matched one (expired, revoked…).
    pub token_id: Option<&'a str>,
    pub at: DateTime<Utc>,
}

/// What failed: the aggregate's audit action, target type and samples.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FailureKind {
    /// `token.verify`; samples are the token ids a presented secret matched.
    TokenVerify,
    /// `client.authenticate`; samples are the client ids claimed (never a
    /// secret).
    ClientAuth,
}

impl FailureKind {
    fn action(self) -> &'static str {
        match self {
            Self::TokenVerify => "token.verify",
            Self::ClientAuth => "client.authenticate",
        }
    }

    fn target_type(self) -> &'static str {
        match self {
            Self::TokenVerify => "api_token",
            Self::ClientAuth => "client",
        }
    }

    fn samples_field(self) -> &'static str {
        match self {
            Self::TokenVerify => "sample_token_ids",
            Self::ClientAuth => "sample_client_ids",
        }
    }
}

/// What an aggregate is counted per.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct AggregateKey {
    kind: FailureKind,
    client: Option<ClientKey>,
    code: &'static str,
    /// Unix minute.
    minute: i64,
}

impl AggregateKey {
    pub fn of(event: &VerifyFailureEvent<'_>) -> Self {
        Self::new(FailureKind::TokenVerify, event)
    }

    /// The key of a failure of `kind`, from the same event shape.
    pub fn new(kind: FailureKind, event: &VerifyFailureEvent<'_>) -> Self {
        Self {
            kind,
            client: event.client_ip.map(ClientKey::of),
            code: event.code,
            minute: event.at.timestamp().div_euclid(60),
        }
    }

    /// The row key every replica derives alike: action, keyed hash of the
    /// client, code, minute.
    fn row_key(&self, hasher: &KeyedHasher) -> String {
        let client = self.client.as_ref().map_or("-", ClientKey::as_str);
        let hash = hasher.hash_hex(client.as_bytes());
        // 64 bits of the hash: two clients would have to collide within one
        // minute for their counts to merge.
        let action = self.kind.action();
        format!("{action}:{}:{}:{}", &hash[..16], self.code, self.minute)
    }

    fn client_minute(&self) -> ClientMinute {
        (self.client.clone(), self.minute)
    }
}

/// A client and a Unix minute: the unit whose first row carries the context.
type ClientMinute = (Option<ClientKey>, i64);

/// The failures of one key not yet written, with the first failure's
/// sealed context and the sample token ids seen this minute.
#[derive(Debug, Clone)]
pub struct Aggregate {
    context: RequestContext,
    samples: Vec<String>,
    unflushed: i64,
}

impl Aggregate {
    fn add(&mut self, token_id: Option<&str>) {
        self.unflushed += 1;
        if let Some(id) = token_id {
            if self.samples.len() < MAX_SAMPLES && !self.samples.iter().any(|s| s == id) {
                self.samples.push(id.to_string());
            }
        }
    }

    fn entry(&self, key: &AggregateKey) -> AuditEntry {
        let window_start = DateTime::from_timestamp(key.minute * 60, 0).unwrap_or_default();
        let mut details = json!({
            "code": key.code,
            "window_start": window_start.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        });
        if !self.samples.is_empty() {
            details[key.kind.samples_field()] = json!(self.samples);
        }
        AuditEntry {
            actor: Actor::Anonymous.as_audit_string(),
            action: key.kind.action(),
            target_type: key.kind.target_type(),
            // The first token seen, so the row shows up in its history.
            target_id: self.samples.first().cloned(),
            outcome: "failure",
            details,
            context: self.context.clone(),
            channel: None,
        }
    }
}

/// Rows taken for one write: the map key, the aggregate as taken, the row.
pub type Batch = Vec<(AggregateKey, Aggregate, AuditAggregate)>;

/// The aggregates of this replica, bounded in number.
#[derive(Default)]
pub struct FailureAggregates {
    map: HashMap<AggregateKey, Aggregate>,
    /// The (client, minute)s whose first aggregate took the context.
    with_context: HashSet<ClientMinute>,
}

impl FailureAggregates {
    /// Counts a failure into an existing aggregate; `false` when there is
    /// none yet (the caller then builds the context, outside any lock, and
    /// calls [`Self::insert`]).
    pub fn add_existing(&mut self, key: &AggregateKey, token_id: Option<&str>) -> bool {
        match self.map.get_mut(key) {
            Some(agg) => {
                agg.add(token_id);
                true
            }
            None => false,
        }
    }

    /// Whether a new aggregate for `key` would keep a context: the first of
    /// its (client, minute). The caller skips sealing one when it would not
    /// ([`Self::insert`] decides again, under the same lock as the insert).
    pub fn wants_context(&self, key: &AggregateKey) -> bool {
        !self.with_context.contains(&key.client_minute())
    }

    /// Counts a failure, starting its aggregate with `context` if needed.
    /// `false` when the aggregate is new and `max` aggregates exist already:
    /// the failure is then dropped (the caller counts that).
    pub fn insert(
        &mut self,
        key: AggregateKey,
        token_id: Option<&str>,
        context: RequestContext,
        max: usize,
    ) -> bool {
        if let Some(agg) = self.map.get_mut(&key) {
            agg.add(token_id);
            return true;
        }
        if self.map.len() >= max {
            return false;
        }
        let context = if self.with_context.insert(key.client_minute()) {
            context
        } else {
            RequestContext::default()
        };
        let mut agg = Aggregate {
            context,
            samples: Vec::new(),
            unflushed: 0,
        };
        agg.add(token_id);
        self.map.insert(key, agg);
        true
    }

    /// Takes every aggregate with unwritten failures as a row, and forgets
    /// aggregates of minutes before `now`'s (their rows are complete).
    pub fn take(&mut self, hasher: &KeyedHasher, now: DateTime<Utc>) -> Batch {
        let mut batch = Vec::new();
        for (key, agg) in &mut self.map {
            if agg.unflushed == 0 {
                continue;
            }
            let row = AuditAggregate {
                key: key.row_key(hasher),
                entry: agg.entry(key),
                occurrences: agg.unflushed,
            };
            batch.push((key.clone(), agg.clone(), row));
            agg.unflushed = 0;
        }
        let minute = now.timestamp().div_euclid(60);
        self.map.retain(|k, _| k.minute >= minute);
        self.with_context.retain(|(_, m)| *m >= minute);
        batch
    }

    /// Puts back the counts of a batch that could not be written.
    pub fn restore(&mut self, batch: Batch) {
        for (key, taken, _) in batch {
            let unflushed = taken.unflushed;
            self.map
                .entry(key)
                .and_modify(|a| a.unflushed += unflushed)
                .or_insert(taken);
        }
    }

    pub fn len(&self) -> usize {
        self.map.len()
    }

    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hasher() -> KeyedHasher {
        KeyedHasher::new("test-encryption-key-0123456789abcdef", "t").unwrap()
    }

    fn at(secs: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(1_800_000_000 + secs, 0).unwrap()
    }

    fn event<'a>(
        ip: &str,
        code: &'static str,
        token: Option<&'a str>,
        secs: i64,
    ) -> VerifyFailureEvent<'a> {
        VerifyFailureEvent {
            client_ip: Some(ip.parse().unwrap()),
            code,
            token_id: token,
            at: at(secs),
        }
    }

    fn count(aggs: &mut FailureAggregates, e: VerifyFailureEvent<'_>) {
        let key = AggregateKey::of(&e);
        if !aggs.add_existing(&key, e.token_id) {
            assert!(aggs.insert(key, e.token_id, RequestContext::default(), 100));
        }
    }

    #[test]
    fn one_row_per_client_code_and_minute_with_three_samples() {
        let mut aggs = FailureAggregates::default();
        // 1,000 failures: one client (two addresses of one /64), one minute.
        for i in 0..1000 {
            let token = format!("tok-{}", i % 5);
            let ip = if i % 2 == 0 {
                "2001:db8::1"
            } else {
                "2001:db8::2"
            };
            count(&mut aggs, event(ip, "REVOKED", Some(&token), 0));
        }
        for _ in 0..10 {
            count(&mut aggs, event("203.0.113.1", "NOT_FOUND", None, 30));
        }
        count(&mut aggs, event("203.0.113.1", "NOT_FOUND", None, 61));
        let batch = aggs.take(&hasher(), at(61));
        assert_eq!(batch.len(), 3);
        let revoked = batch.iter().find(|(k, ..)| k.code == "REVOKED").unwrap();
        assert_eq!(revoked.2.occurrences, 1000);
        assert_eq!(
            revoked.2.entry.details["sample_token_ids"],
            json!(["tok-0", "tok-1", "tok-2"])
        );
        assert_eq!(revoked.2.entry.target_id.as_deref(), Some("tok-0"));
        // The finished minute is forgotten, the current one kept.
        assert_eq!(aggs.len(), 1);
        // Row keys are deterministic and never the address in clear.
        let again = AggregateKey::of(&event("203.0.113.1", "NOT_FOUND", None, 61));
        let keys: Vec<&str> = batch.iter().map(|(.., r)| r.key.as_str()).collect();
        assert!(keys.contains(&again.row_key(&hasher()).as_str()));
        assert!(keys
            .iter()
            .all(|k| !k.contains("203.0.113") && !k.contains("2001")));
    }

    #[test]
    fn a_failed_write_puts_the_counts_back() {
        let mut aggs = FailureAggregates::default();
        for _ in 0..5 {
            count(&mut aggs, event("203.0.113.1", "MALFORMED", None, 0));
        }
        let batch = aggs.take(&hasher(), at(120));
        assert!(aggs.is_empty());
        aggs.restore(batch);
        count(&mut aggs, event("203.0.113.1", "MALFORMED", None, 0));
        let batch = aggs.take(&hasher(), at(120));
        assert_eq!(batch[0].2.occurrences, 6);
    }

    #[test]
    fn only_a_client_minutes_first_row_keeps_the_context() {
        let mut aggs = FailureAggregates::default();
        let context = RequestContext {
            request_id: Some("req-1".into()),
            ip_sealed: Some("k:ip".into()),
            user_agent_sealed: Some("k:ua".into()),
        };
        let key = |ip: &str, code, secs| AggregateKey::of(&event(ip, code, None, secs));
        assert!(aggs.wants_context(&key("203.0.113.1", "NOT_FOUND", 0)));
        for (ip, code, secs) in [
            ("203.0.113.1", "NOT_FOUND", 0),
            ("203.0.113.1", "RATE_LIMITED", 1),
            ("203.0.113.2", "RATE_LIMITED", 2),
            ("203.0.113.1", "RATE_LIMITED", 61),
        ] {
            assert!(aggs.insert(key(ip, code, secs), None, context.clone(), 10));
        }
        // The client's other codes that minute need no sealing.
        assert!(!aggs.wants_context(&key("203.0.113.1", "MALFORMED", 2)));
        let batch = aggs.take(&hasher(), at(0));
        let has_context = |ip, code, secs| {
            let k = key(ip, code, secs);
            let (.., row) = batch.iter().find(|(bk, ..)| *bk == k).unwrap();
            row.entry.context.user_agent_sealed.is_some()
        };
        assert!(has_context("203.0.113.1", "NOT_FOUND", 0));
        assert!(!has_context("203.0.113.1", "RATE_LIMITED", 1));
        // Another client, and the same client's next minute, start afresh.
        assert!(has_context("203.0.113.2", "RATE_LIMITED", 2));
        assert!(has_context("203.0.113.1", "RATE_LIMITED", 61));
        let bare = key("203.0.113.1", "RATE_LIMITED", 1);
        let (.., row) = batch.iter().find(|(bk, ..)| *bk == bare).unwrap();
        assert!(row.entry.context.ip_sealed.is_none() && row.entry.context.request_id.is_none());
        assert!(row.entry.details.get("sample_token_ids").is_none());
    }

    #[test]
    fn the_number_of_aggregates_is_bounded() {
        let mut aggs = FailureAggregates::default();
        let key = |i: u8| AggregateKey::of(&event(&format!("203.0.113.{i}"), "NOT_FOUND", None, 0));
        assert!(aggs.insert(key(1), None, RequestContext::default(), 1));
        assert!(!aggs.insert(key(2), None, RequestContext::default(), 1));
        assert!(aggs.insert(key(1), None, RequestContext::default(), 1));
    }
}
