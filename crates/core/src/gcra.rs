//! GCRA, the generic cell rate algorithm: the one decision behind every
//! request-rate limit, whatever store keeps its state (process memory, or a
//! Redis script that mirrors [`step`] line by line).
//!
//! A limit of `limit` per `period` lets one unit through every *emission
//! interval* `T = period / limit`, and tolerates a burst of `burst` units
//! (default: `limit`) at once. The only state per key is the *theoretical
//! arrival time* (TAT): when the key's bucket would be empty again. A request
//! of cost `c` at `now` moves it to `max(TAT, now) + c·T`, and is admitted
//! when that is at most `burst·T` ahead of `now`. So "100 per hour" admits
//! exactly 100 at once in a fresh hour, then one every 36 s.
//!
//! Times are whole microseconds. Every bound on a rule keeps them far below
//! 2^53, so the same arithmetic is exact in Rust integers and in Lua's
//! doubles (the Redis script), and both stores decide alike.

use std::{fmt, str::FromStr, time::Duration};

/// The longest period a rule may have.
pub const MAX_PERIOD: Duration = Duration::from_secs(366 * 24 * 3600);
/// The largest limit or burst a rule may have.
pub const MAX_UNITS: u32 = 1_000_000_000;
/// The largest tolerance (`burst · T`), about 35 years: with a Unix time in
/// microseconds (~2^51 today) every sum stays below 2^53.
const MAX_TOLERANCE_US: i64 = 1 << 50;

/// `limit` units per `period`, with bursts of up to `burst` units.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateRule {
    limit: u32,
    period: Duration,
    burst: u32,
}

impl RateRule {
    /// `limit` per `period`, with a burst of `limit`. A limit of 0, a period
    /// under a millisecond or over [`MAX_PERIOD`] is refused.
    pub fn new(limit: u32, period: Duration) -> Result<Self, String> {
        if limit == 0 || limit > MAX_UNITS {
            return Err(format!("the limit must be 1-{MAX_UNITS}"));
        }
        if period < Duration::from_millis(1) || period > MAX_PERIOD {
            return Err("the period must be 1ms-366d".into());
        }
        Self {
            limit,
            period,
            burst: limit,
        }
        .checked()
    }

    /// The same rule with a burst of `burst` units (1 and up).
    pub fn with_burst(self, burst: u32) -> Result<Self, String> {
        if burst == 0 || burst > MAX_UNITS {
            return Err(format!("the burst must be 1-{MAX_UNITS}"));
        }
        Self { burst, ..self }.checked()
    }

    /// The same rule with a burst of `burst` units, or of as many as the
    /// largest tolerance holds (about 35 years of the rate) when `burst` is
    /// more: a burst that would take longer to refill than that limits
    /// nothing more than the capped one.
    pub fn with_burst_at_most(self, burst: u32) -> Result<Self, String> {
        let most = (MAX_TOLERANCE_US / self.interval_us()).clamp(1, i64::from(MAX_UNITS));
        self.with_burst(burst.min(most as u32))
    }

    fn checked(self) -> Result<Self, String> {
        if self.tolerance_us() > MAX_TOLERANCE_US {
            return Err("the burst is too large for the period".into());
        }
        Ok(self)
    }

    pub fn limit(&self) -> u32 {
        self.limit
    }

    pub fn period(&self) -> Duration {
        self.period
    }

    pub fn burst(&self) -> u32 {
        self.burst
    }

    /// `T`: microseconds one unit takes to drain (at least 1).
    pub fn interval_us(&self) -> i64 {
        (self.period.as_micros() as i64 / i64::from(self.limit)).max(1)
    }

    /// `burst · T`: how far ahead of now the TAT may run.
    pub fn tolerance_us(&self) -> i64 {
        self.interval_us().saturating_mul(i64::from(self.burst))
    }

    /// The period in whole seconds, rounded up (the `w` of `RateLimit-Policy`).
    pub fn window_secs(&self) -> u64 {
        self.period.as_millis().div_ceil(1000) as u64
    }
}

/// `N/PERIOD`, or `N/PERIOD,burst=B`. `PERIOD` is a number and a unit
/// (`ms`, `s`, `m`, `h`, `d`), or a bare unit for one of it:
/// `20/1m`, `10/15m`, `100/h`, `5/1d,burst=10`.
impl FromStr for RateRule {
    type Err = String;

    fn from_str(v: &str) -> Result<Self, String> {
        let expected = || format!("expected N/PERIOD such as 20/1m or 100/1h,burst=150, got {v:?}");
        let (rate, burst) = match v.split_once(',') {
            Some((rate, extra)) => {
                let b = extra.trim().strip_prefix("burst=").ok_or_else(expected)?;
                (rate, Some(b.trim().parse::<u32>().map_err(|_| expected())?))
            }
            None => (v, None),
        };
        let (n, period) = rate.split_once('/').ok_or_else(expected)?;
        let limit = n.trim().parse::<u32>().map_err(|_| expected())?;
        let period = parse_period(period.trim()).ok_or_else(expected)?;
        let rule = Self::new(limit, period)?;
        match burst {
            Some(b) => rule.with_burst(b),
            None => Ok(rule),
        }
    }
}

/// `15m`, `1h`, `h`: a whole number of one unit.
fn parse_period(v: &str) -> Option<Duration> {
    let split = v.find(|c: char| !c.is_ascii_digit()).unwrap_or(v.len());
    let (digits, unit) = v.split_at(split);
    let n: u64 = if digits.is_empty() {
        1
    } else {
        digits.parse().ok()?
    };
    let unit_ms: u64 = match unit {
        "ms" => 1,
        "s" => 1_000,
        "m" => 60_000,
        "h" => 3_600_000,
        "d" => 86_400_000,
        _ => return None,
    };
    n.checked_mul(unit_ms).map(Duration::from_millis)
}

/// The rule as [`RateRule::from_str`] reads it, in the largest whole unit.
impl fmt::Display for RateRule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let ms = self.period.as_millis();
        let (n, unit) = [
            (86_400_000, "d"),
            (3_600_000, "h"),
            (60_000, "m"),
            (1_000, "s"),
        ]
        .into_iter()
        .find(|(u, _)| ms.is_multiple_of(*u))
        .map_or((ms, "ms"), |(u, name)| (ms / u, name));
        write!(f, "{}/{n}{unit}", self.limit)?;
        if self.burst != self.limit {
            write!(f, ",burst={}", self.burst)?;
        }
        Ok(())
    }
}

/// What a check does to the key's state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Count the cost when it is within the limit (a request rate).
    Consume = 0,
    /// Count nothing: would the cost be admitted now? (A failure limit
    /// before the attempt; introspection of a limit.)
    Peek = 1,
    /// Count the cost whether or not it is within the limit, never beyond a
    /// full burst (a failure, counted after the fact).
    Force = 2,
    /// A failure limit before the attempt: on a key with nothing counted
    /// (a full bucket) like `Peek`; on a key with failures counted like
    /// `Consume`, so that concurrent attempts cannot all pass through the
    /// one unit that drained. The cost was counted exactly when the answer
    /// is `allowed` with a `reset` above 0.
    Reserve = 3,
    /// Give back `cost` units counted earlier (a reserved attempt that did
    /// not fail), never below a full bucket.
    Refund = 4,
}

/// The answer to one check, in the terms of the IETF `RateLimit` fields.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateDecision {
    pub allowed: bool,
    /// The rule's limit per period (the policy's quota).
    pub limit: u32,
    /// Units that would still be admitted now, after this check.
    pub remaining: u32,
    /// Seconds until the full burst is available again (rounded up).
    pub reset: u64,
    /// When refused: seconds until this cost would be admitted (at least
    /// 1); 0 when admitted.
    pub retry_after: u64,
}

impl RateDecision {
    /// The decision from a store's raw answer: whether the cost was within
    /// the limit, how far the stored TAT is ahead of now (`level_us`), and
    /// by how much the cost overshot the tolerance (`over_us`, negative or
    /// zero when it fit). The Redis script answers exactly these three.
    pub fn from_state(rule: &RateRule, allowed: bool, level_us: i64, over_us: i64) -> Self {
        let level = level_us.max(0);
        let room = (rule.tolerance_us() - level).max(0);
        let remaining = (room / rule.interval_us()).min(i64::from(rule.burst)) as u32;
        Self {
            allowed,
            limit: rule.limit,
            remaining,
            reset: ceil_secs(level),
            retry_after: if allowed {
                0
            } else {
                ceil_secs(over_us).max(1)
            },
        }
    }
}

fn ceil_secs(us: i64) -> u64 {
    (us.max(0) as u64).div_ceil(1_000_000)
}

/// One check: the TAT to store (`None`: leave the state as it is) and the
/// decision. `tat` is the stored TAT, if any; `now` the current time in
/// microseconds (any epoch, the same for every call on a key).
pub fn step(
    tat: Option<i64>,
    now: i64,
    rule: &RateRule,
    cost: u32,
    mode: Mode,
) -> (Option<i64>, RateDecision) {
    let tolerance = rule.tolerance_us();
    let dirty = tat.is_some_and(|t| t > now);
    let tat = tat.map_or(now, |t| t.max(now));
    let units = i64::from(cost).saturating_mul(rule.interval_us());
    let new_tat = tat.saturating_add(units);
    let allowed = new_tat - now <= tolerance;
    let stored = match mode {
        Mode::Consume if allowed => new_tat,
        Mode::Reserve if allowed && dirty => new_tat,
        Mode::Consume | Mode::Peek | Mode::Reserve => tat,
        Mode::Force => new_tat.min(now + tolerance),
        Mode::Refund => (tat - units).max(now),
    };
    let write = (stored != tat).then_some(stored);
    let decision = RateDecision::from_state(rule, allowed, stored - now, new_tat - now - tolerance);
    (write, decision)
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: i64 = 1_000_000;

    fn rule(v: &str) -> RateRule {
        v.parse().unwrap()
    }

    /// Runs `n` checks at `now` against `tat`, returning the admitted count.
    fn burst(tat: &mut Option<i64>, now: i64, r: &RateRule, n: u32, cost: u32) -> u32 {
        let mut admitted = 0;
        for _ in 0..n {
            let (write, d) = step(*tat, now, r, cost, Mode::Consume);
            if let Some(w) = write {
                *tat = Some(w);
            }
            admitted += u32::from(d.allowed);
        }
        admitted
    }

    #[test]
    fn a_fresh_period_admits_exactly_the_limit() {
        for (text, n) in [("100/1h", 100), ("20/1m", 20), ("1/1d", 1), ("7/1h", 7)] {
            let r = rule(text);
            let mut tat = None;
            assert_eq!(
                burst(&mut tat, 1_700_000_000 * S, &r, 3 * n, 1),
                n,
                "{text}"
            );
        }
    }

    #[test]
    fn after_the_burst_one_unit_per_interval() {
        let r = rule("60/1m"); // one a second
        let t0 = 10 * S;
        let mut tat = None;
        assert_eq!(burst(&mut tat, t0, &r, 100, 1), 60);
        assert_eq!(burst(&mut tat, t0 + S / 2, &r, 5, 1), 0, "half an interval");
        assert_eq!(burst(&mut tat, t0 + S, &r, 5, 1), 1);
        assert_eq!(burst(&mut tat, t0 + 11 * S, &r, 50, 1), 10);
        // A full period of quiet refills the whole burst.
        assert_eq!(burst(&mut tat, t0 + 200 * S, &r, 100, 1), 60);
    }

    #[test]
    fn a_steady_rate_at_the_limit_is_never_refused() {
        let r = rule("10/1s");
        let mut tat = None;
        for i in 0..1_000 {
            assert_eq!(burst(&mut tat, i * S / 10, &r, 1, 1), 1, "request {i}");
        }
    }

    #[test]
    fn cost_counts_several_units() {
        let r = rule("100/1h");
        let mut tat = None;
        assert_eq!(burst(&mut tat, 0, &r, 10, 30), 3, "3 × 30 fit in 100");
        let (_, d) = step(tat, 0, &r, 10, Mode::Peek);
        assert!(d.allowed, "10 units are left");
        assert_eq!(d.remaining, 10);
        let (_, d) = step(tat, 0, &r, 11, Mode::Consume);
        assert!(!d.allowed);
        // One unit drains every 36 s: 11 fit after 36 s.
        assert_eq!(d.retry_after, 36);
        let (_, d) = step(tat, 36 * S, &r, 11, Mode::Consume);
        assert!(d.allowed);
        // A cost over the burst never fits.
        let (_, d) = step(None, 0, &r, 101, Mode::Consume);
        assert!(!d.allowed);
    }

    #[test]
    fn retry_reset_and_remaining() {
        let r = rule("3/1m"); // one every 20 s
        let mut tat = None;
        let (w, d) = step(tat, 0, &r, 1, Mode::Consume);
        tat = w;
        assert_eq!((d.allowed, d.limit, d.remaining, d.reset), (true, 3, 2, 20));
        assert_eq!(d.retry_after, 0);
        burst(&mut tat, 0, &r, 2, 1);
        let (w, d) = step(tat, 5 * S, &r, 1, Mode::Consume);
        assert_eq!(w, None, "a refusal stores nothing");
        assert_eq!((d.allowed, d.remaining), (false, 0));
        assert_eq!(d.retry_after, 15, "the next unit drains at 20 s");
        assert_eq!(d.reset, 55, "the bucket is empty again at 60 s");
        // Retry-After rounds up and is never 0.
        let (_, d) = step(tat, 20 * S - 1, &r, 1, Mode::Consume);
        assert_eq!(d.retry_after, 1);
    }

    #[test]
    fn peek_counts_nothing_and_force_counts_within_a_burst() {
        let r = rule("2/1m");
        let (w, d) = step(None, 0, &r, 1, Mode::Peek);
        assert_eq!(w, None);
        assert!(d.allowed);
        let mut tat = None;
        for _ in 0..5 {
            let (w, _) = step(tat, 0, &r, 1, Mode::Force);
            tat = w.or(tat);
        }
        assert_eq!(tat, Some(60 * S), "capped at a full burst");
        let (_, d) = step(tat, 0, &r, 1, Mode::Peek);
        assert!(!d.allowed);
        assert_eq!(d.retry_after, 30);
        let (_, d) = step(tat, 30 * S, &r, 1, Mode::Peek);
        assert!(d.allowed, "capped: one interval later a failure is allowed");
    }

    #[test]
    fn reserve_counts_only_on_a_key_with_failures_and_refund_gives_back() {
        let r = rule("3/1m"); // one every 20 s
        let (w, d) = step(None, 0, &r, 1, Mode::Reserve);
        assert_eq!(
            (w, d.allowed, d.reset),
            (None, true, 0),
            "clean: nothing counted"
        );
        let tat = Some(20 * S); // one failure counted
        let (w, d) = step(tat, 0, &r, 1, Mode::Reserve);
        assert_eq!((w, d.allowed, d.reset), (Some(40 * S), true, 40), "counted");
        let (w, d) = step(Some(60 * S), 0, &r, 1, Mode::Reserve);
        assert_eq!(
            (w, d.allowed),
            (None, false),
            "full: refused, nothing counted"
        );
        assert_eq!(d.retry_after, 20);
        let (w, _) = step(Some(40 * S), 0, &r, 1, Mode::Refund);
        assert_eq!(w, Some(20 * S));
        let (w, _) = step(Some(10 * S), 0, &r, 1, Mode::Refund);
        assert_eq!(w, Some(0), "never below a full bucket (the store drops it)");
        let (w, _) = step(None, 0, &r, 1, Mode::Refund);
        assert_eq!(w, None);
    }

    #[test]
    fn an_explicit_burst() {
        let r = rule("60/1m,burst=5");
        let mut tat = None;
        assert_eq!(burst(&mut tat, 0, &r, 20, 1), 5);
        assert_eq!(burst(&mut tat, S, &r, 20, 1), 1);
        assert_eq!(r.to_string(), "60/1m,burst=5");
    }

    #[test]
    fn rules_parse_and_print() {
        for (text, limit, secs, printed) in [
            ("20/1m", 20, 60, "20/1m"),
            ("10/15m", 10, 900, "10/15m"),
            ("100/h", 100, 3600, "100/1h"),
            ("5/1d", 5, 86_400, "5/1d"),
            ("3/90s", 3, 90, "3/90s"),
            (" 7 / 2h ", 7, 7200, "7/2h"),
            ("1/60m", 1, 3600, "1/1h"),
        ] {
            let r = rule(text);
            assert_eq!((r.limit(), r.window_secs()), (limit, secs), "{text}");
            assert_eq!(r.to_string(), printed);
        }
        for bad in [
            "",
            "20",
            "20/",
            "/1m",
            "0/1m",
            "-1/1m",
            "20/1x",
            "20/0s",
            "20/1m,burst=0",
            "20/1m,b=3",
            "1/367d",
            "x/1m",
            "20/1.5m",
            "20/1m,burst=",
        ] {
            assert!(bad.parse::<RateRule>().is_err(), "{bad:?}");
        }
        assert!(
            "1/1d,burst=1000000000".parse::<RateRule>().is_err(),
            "too large"
        );
    }
}
