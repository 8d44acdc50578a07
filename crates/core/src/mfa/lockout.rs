//! Attempt limiting for second-factor checks: every check first reserves an
//! attempt, atomically, and only then is the code compared. So fifty guesses
//! in parallel get at most `max_failures` evaluations, whatever the timing.

use chrono::{DateTime, Duration, Utc};

/// How many failures lock a subject out, and for how long.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LockoutPolicy {
    pub max_failures: i64,
    pub lockout: Duration,
}

impl Default for LockoutPolicy {
    fn default() -> Self {
        Self {
            max_failures: 5,
            lockout: Duration::minutes(5),
        }
    }
}

/// A subject's counter as stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AttemptCounter {
    /// Attempts reserved since the last success (in flight or failed).
    pub failures: i64,
    pub locked_until: Option<DateTime<Utc>>,
    pub updated_at: DateTime<Utc>,
}

/// The outcome of a reservation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reservation {
    /// Go ahead and check the code. `last` is set for the attempt that used
    /// up the allowance: if it fails, the subject is locked.
    Granted {
        counter: AttemptCounter,
        last: bool,
    },
    Locked {
        until: DateTime<Utc>,
    },
}

impl AttemptCounter {
    pub fn fresh(now: DateTime<Utc>) -> Self {
        Self {
            failures: 0,
            locked_until: None,
            updated_at: now,
        }
    }

    /// Reserves one attempt at `now`. The counter that comes back is what to
    /// store. A lapsed lockout, or failures older than one lockout period,
    /// start a fresh count.
    pub fn reserve(self, now: DateTime<Utc>, policy: &LockoutPolicy) -> Reservation {
        let mut c = self;
        match c.locked_until {
            Some(until) if until > now => return Reservation::Locked { until },
            Some(_) => c = Self::fresh(now),
            None if c.updated_at + policy.lockout <= now => c = Self::fresh(now),
            None => {}
        }
        if c.failures >= policy.max_failures {
            // Reserved attempts still in flight used the allowance up.
            return Reservation::Locked {
                until: c.updated_at + policy.lockout,
            };
        }
        c.failures += 1;
        c.updated_at = now;
        let last = c.failures >= policy.max_failures;
        if last {
            // Locked provisionally now, so the lock holds even if this
            // process dies mid-check; a success clears it.
            c.locked_until = Some(now + policy.lockout);
        }
        Reservation::Granted { counter: c, last }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn five_reservations_then_locked_until_the_lockout_ends() {
        let p = LockoutPolicy::default();
        let t0 = Utc::now();
        let mut c = AttemptCounter::fresh(t0);
        for i in 1..=5 {
            match c.reserve(t0, &p) {
                Reservation::Granted { counter, last } => {
                    assert_eq!(last, i == 5);
                    c = counter;
                }
                other => panic!("attempt {i}: {other:?}"),
            }
        }
        assert_eq!(
            c.reserve(t0 + Duration::seconds(10), &p),
            Reservation::Locked {
                until: t0 + p.lockout
            }
        );
        match c.reserve(t0 + p.lockout, &p) {
            Reservation::Granted { counter, last } => {
                assert_eq!(counter.failures, 1);
                assert!(!last);
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn old_failures_decay() {
        let p = LockoutPolicy::default();
        let t0 = Utc::now();
        let c = AttemptCounter {
            failures: 4,
            locked_until: None,
            updated_at: t0,
        };
        match c.reserve(t0 + Duration::minutes(6), &p) {
            Reservation::Granted { counter, .. } => assert_eq!(counter.failures, 1),
            other => panic!("{other:?}"),
        }
    }
}
