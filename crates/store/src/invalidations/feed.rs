//! Reading the invalidation log in commit order, although it is numbered in
//! write order.
//!
//! A row's number is taken when it is written, its visibility comes at
//! commit: on PostgreSQL a transaction that wrote number N may commit after
//! one that wrote N+1, so a reader that saw N+1 and then asked only for
//! "after N+1" would never see N. The feed therefore remembers the numbers
//! it skipped (gaps) and asks for them again at every poll, for a grace
//! period; a gap that never fills was a rolled-back transaction (or a
//! number the sequence skipped). Rows are returned once each. On SQLite,
//! writers are serialised, so numbers commit in order and there are no
//! gaps to wait for; the same code serves both.

use std::{
    collections::{BTreeMap, HashSet},
    time::{Duration, Instant},
};

use super::{Invalidation, InvalidationLog};
use crate::error::StoreError;

/// Rows read per query; a poll reads on while batches come back full.
const BATCH: u32 = 1000;
/// Where a new reader starts: the newest rows, whose missing numbers may
/// still commit. Also the most numbers one jump records as gaps, and the
/// most gaps kept (the oldest go first): a hole that large is a sequence
/// that skipped ahead, not transactions in flight.
const WINDOW: usize = 64;

/// A reader's position in the log: the highest number seen and the lower
/// numbers not seen yet.
pub struct InvalidationFeed {
    last: Option<i64>,
    /// Skipped numbers, each with when it was first skipped.
    gaps: BTreeMap<i64, Instant>,
    grace: Duration,
}

impl InvalidationFeed {
    /// How long a skipped number is asked for again: longer than any
    /// transaction that changes a credential should stay open.
    pub const DEFAULT_GRACE: Duration = Duration::from_secs(60);

    pub fn new(grace: Duration) -> Self {
        Self {
            last: None,
            gaps: BTreeMap::new(),
            grace,
        }
    }

    /// The rows committed since the previous poll, including late commits
    /// of numbers skipped before, each returned once, in number order. The
    /// first poll only finds where the log stands and returns nothing (a
    /// reader's caches start empty); on an error nothing moves, so the next
    /// poll reads the same rows again.
    pub async fn poll<L: InvalidationLog + ?Sized>(
        &mut self,
        log: &L,
    ) -> Result<Vec<Invalidation>, StoreError> {
        let now = Instant::now();
        let Some(mut last) = self.last else {
            let newest = log.latest_invalidations(WINDOW as u32).await?;
            self.start(&newest, now);
            return Ok(Vec::new());
        };
        let grace = self.grace;
        self.gaps
            .retain(|_, since| now.duration_since(*since) < grace);
        let mut fresh = Vec::new();
        let mut gaps = self.gaps.clone();
        loop {
            let also: Vec<i64> = gaps.keys().copied().collect();
            let rows = log.invalidations_after(last, &also, BATCH).await?;
            let full = rows.len() >= BATCH as usize;
            for row in rows {
                if row.seq > last {
                    skipped(&mut gaps, last, row.seq, now);
                    last = row.seq;
                    fresh.push(row);
                } else if gaps.remove(&row.seq).is_some() {
                    fresh.push(row);
                }
            }
            if !full {
                break;
            }
        }
        self.last = Some(last);
        self.gaps = gaps;
        Ok(fresh)
    }

    /// Starts after the newest row, with the numbers missing among the
    /// newest rows as gaps: transactions in flight while this reader starts.
    fn start(&mut self, newest: &[Invalidation], now: Instant) {
        let seen: HashSet<i64> = newest.iter().map(|r| r.seq).collect();
        let (Some(&max), Some(&min)) = (seen.iter().max(), seen.iter().min()) else {
            self.last = Some(0);
            return;
        };
        for seq in min + 1..max {
            if !seen.contains(&seq) {
                self.gaps.insert(seq, now);
            }
        }
        trim(&mut self.gaps);
        self.last = Some(max);
    }

    /// How many skipped numbers are being asked for again.
    pub fn pending_gaps(&self) -> usize {
        self.gaps.len()
    }
}

impl Default for InvalidationFeed {
    fn default() -> Self {
        Self::new(Self::DEFAULT_GRACE)
    }
}

/// Records the numbers between `last` and `next` (exclusive) as gaps; at
/// most the [`WINDOW`] nearest `next`.
fn skipped(gaps: &mut BTreeMap<i64, Instant>, last: i64, next: i64, now: Instant) {
    let from = (last + 1).max(next - WINDOW as i64);
    for seq in from..next {
        gaps.insert(seq, now);
    }
    trim(gaps);
}

/// Keeps the [`WINDOW`] highest gaps.
fn trim(gaps: &mut BTreeMap<i64, Instant>) {
    while gaps.len() > WINDOW {
        gaps.pop_first();
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use async_trait::async_trait;
    use chrono::{DateTime, Utc};

    use super::*;
    use crate::invalidations::{InvalidationKind, InvalidationListener};

    /// A log whose committed rows the test sets.
    #[derive(Default)]
    struct Log(Mutex<Vec<Invalidation>>);

    impl Log {
        fn commit(&self, seq: i64) {
            let mut rows = self.0.lock().unwrap();
            rows.push(Invalidation {
                seq,
                kind: InvalidationKind::Token,
                target_id: format!("t{seq}"),
                created_at: Utc::now(),
            });
            rows.sort_by_key(|r| r.seq);
        }
    }

    #[async_trait]
    impl InvalidationLog for Log {
        async fn invalidations_after(
            &self,
            after: i64,
            also: &[i64],
            limit: u32,
        ) -> Result<Vec<Invalidation>, StoreError> {
            let rows = self.0.lock().unwrap();
            Ok(rows
                .iter()
                .filter(|r| r.seq > after || also.contains(&r.seq))
                .take(limit as usize)
                .cloned()
                .collect())
        }

        async fn latest_invalidations(&self, limit: u32) -> Result<Vec<Invalidation>, StoreError> {
            let rows = self.0.lock().unwrap();
            Ok(rows.iter().rev().take(limit as usize).cloned().collect())
        }

        async fn purge_invalidations(&self, _: DateTime<Utc>) -> Result<u64, StoreError> {
            Ok(0)
        }

        async fn listen_invalidations(&self) -> Result<Option<InvalidationListener>, StoreError> {
            Ok(None)
        }
    }

    fn seqs(rows: Vec<Invalidation>) -> Vec<i64> {
        rows.into_iter().map(|r| r.seq).collect()
    }

    #[tokio::test]
    async fn a_late_commit_of_a_lower_number_is_seen_once() {
        let log = Log::default();
        log.commit(1);
        let mut feed = InvalidationFeed::default();
        assert!(
            feed.poll(&log).await.unwrap().is_empty(),
            "starts at the end"
        );
        // 2 is taken by a transaction still open; 3 commits first.
        log.commit(3);
        assert_eq!(seqs(feed.poll(&log).await.unwrap()), [3]);
        assert_eq!(feed.pending_gaps(), 1);
        log.commit(2);
        log.commit(4);
        assert_eq!(seqs(feed.poll(&log).await.unwrap()), [2, 4]);
        assert_eq!(feed.pending_gaps(), 0);
        assert!(feed.poll(&log).await.unwrap().is_empty(), "each row once");
    }

    #[tokio::test]
    async fn numbers_in_flight_at_start_are_waited_for() {
        let log = Log::default();
        log.commit(1);
        log.commit(3);
        let mut feed = InvalidationFeed::default();
        assert!(feed.poll(&log).await.unwrap().is_empty());
        log.commit(2);
        assert_eq!(seqs(feed.poll(&log).await.unwrap()), [2]);
    }

    #[tokio::test]
    async fn a_gap_that_never_fills_is_given_up_after_the_grace() {
        let log = Log::default();
        let mut feed = InvalidationFeed::new(Duration::from_millis(50));
        feed.poll(&log).await.unwrap();
        log.commit(2); // 1 rolled back
        assert_eq!(seqs(feed.poll(&log).await.unwrap()), [2]);
        assert_eq!(feed.pending_gaps(), 1);
        tokio::time::sleep(Duration::from_millis(80)).await;
        assert!(feed.poll(&log).await.unwrap().is_empty());
        assert_eq!(feed.pending_gaps(), 0);
    }

    #[tokio::test]
    async fn a_sequence_that_jumps_ahead_leaves_a_bounded_number_of_gaps() {
        let log = Log::default();
        let mut feed = InvalidationFeed::default();
        feed.poll(&log).await.unwrap();
        log.commit(1_000_000);
        assert_eq!(seqs(feed.poll(&log).await.unwrap()), [1_000_000]);
        assert_eq!(feed.pending_gaps(), WINDOW);
    }

    #[tokio::test]
    async fn full_batches_are_read_on() {
        let log = Log::default();
        let mut feed = InvalidationFeed::default();
        feed.poll(&log).await.unwrap();
        for seq in 1..=(BATCH as i64 * 2 + 5) {
            log.commit(seq);
        }
        let rows = feed.poll(&log).await.unwrap();
        assert_eq!(rows.len(), BATCH as usize * 2 + 5);
        assert_eq!(feed.pending_gaps(), 0);
    }
}
