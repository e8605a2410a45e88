//! GCRA (the generic cell rate algorithm), with redis-cell's figures: `CL.THROTTLE key
//! max_burst count period [quantity]` allows `count` requests per `period` seconds with bursts of
//! `max_burst + 1`. The state is one number, the theoretical arrival time (TAT) in nanoseconds
//! since the epoch, kept in an ordinary string key that expires when the bucket is full again.
//!
//! All arithmetic is integer nanoseconds in `i128`, so no argument a client sends can overflow
//! it; redis-cell's one float step (the emission interval is `period / count` rounded toward
//! zero to whole nanoseconds, and remaining is a truncated quotient) is reproduced exactly.

/// Nanoseconds per second.
const NANOS_PER_SECOND: i128 = 1_000_000_000;
/// Nanoseconds per millisecond.
const NANOS_PER_MILLISECOND: i128 = 1_000_000;

/// The limiter's parameters, as CL.THROTTLE takes them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Quota {
    /// Requests allowed at once beyond the steady rate.
    pub max_burst: i64,
    /// Requests per period.
    pub count: i64,
    /// The period, seconds.
    pub period_s: i64,
}

/// What CL.THROTTLE answers, and the state to store.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Outcome {
    /// The request was refused.
    pub limited: bool,
    /// `max_burst + 1` (saturating).
    pub limit: i64,
    /// Requests that would still be allowed now.
    pub remaining: i64,
    /// Nanoseconds until the request would be allowed; -1 s when allowed (or never).
    pub retry_after_ns: i128,
    /// Nanoseconds until the bucket is full again.
    pub reset_after_ns: i128,
    /// The new TAT to store with a TTL of `reset_after_ns`, when the request was allowed.
    pub new_tat_ns: Option<i128>,
}

impl Quota {
    /// The emission interval: nanoseconds between requests at the steady rate, as redis-cell
    /// computes it (`period_ns as f64 / count as f64`, truncated). Zero when count or period
    /// is zero, which the caller refuses.
    pub fn emission_interval_ns(&self) -> i128 {
        let period_ns = i128::from(self.period_s) * NANOS_PER_SECOND;
        if self.count == 0 || period_ns == 0 {
            return 0;
        }
        (period_ns as f64 / self.count as f64) as i128
    }
}

/// One request of `quantity` at `now_ns`, against the stored TAT (`None` when the key is
/// absent). The quota's figures must be positive (checked where they enter).
pub fn throttle(quota: Quota, quantity: i64, stored_tat_ns: Option<i128>, now_ns: i128) -> Outcome {
    let interval = quota.emission_interval_ns();
    assert!(interval > 0 && quota.max_burst >= 0 && quantity >= 0);
    let tolerance = interval * (i128::from(quota.max_burst) + 1);
    let increment = interval * i128::from(quantity);
    let tat = stored_tat_ns.unwrap_or(now_ns);
    let new_tat = tat.max(now_ns) + increment;
    let allow_at = new_tat - tolerance;
    let diff = now_ns - allow_at;
    let (limited, retry_after_ns, ttl, stored) = if diff < 0 {
        let retry = if increment <= tolerance {
            -diff
        } else {
            -NANOS_PER_SECOND
        };
        (true, retry, tat - now_ns, None)
    } else {
        (false, -NANOS_PER_SECOND, new_tat - now_ns, Some(new_tat))
    };
    let next = tolerance - ttl;
    // redis-cell divides whole microseconds as floats and truncates toward zero.
    let remaining = if next > -interval {
        ((next / 1000) as f64 / (interval / 1000) as f64) as i64
    } else {
        0
    };
    Outcome {
        limited,
        limit: quota.max_burst.saturating_add(1),
        remaining,
        retry_after_ns,
        reset_after_ns: ttl,
        new_tat_ns: stored,
    }
}

/// Seconds as CL.THROTTLE shows them: truncated, then one more when a millisecond or more
/// is left over (redis-cell rounds up so that a fast client never retries too early).
pub fn reply_seconds(duration_ns: i128) -> i64 {
    let whole = duration_ns / NANOS_PER_SECOND;
    let rest_ms = (duration_ns % NANOS_PER_SECOND) / NANOS_PER_MILLISECOND;
    // A burst near i64::MAX makes figures past i64 seconds: they saturate.
    (whole + i128::from(rest_ms > 0)).clamp(i128::from(i64::MIN), i128::from(i64::MAX)) as i64
}

/// The TTL to store the TAT with, milliseconds: redis-cell truncates, Ember keeps at least 1
/// so that a key is never stored without its expiry.
pub fn ttl_ms(reset_after_ns: i128) -> u64 {
    (reset_after_ns / NANOS_PER_MILLISECOND).max(1) as u64
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: i128 = NANOS_PER_SECOND;

    /// Burst 4 (limit 5), 1 per 60 s: a hand-computed sequence at fixed times.
    #[test]
    fn hand_computed_sequence() {
        let quota = Quota {
            max_burst: 4,
            count: 1,
            period_s: 60,
        };
        let t0 = 1_000_000 * S;
        let mut tat = None;
        // (time, limited, remaining, retry_after s, reset_after s)
        let cases: &[(i128, bool, i64, i64, i64)] = &[
            (t0, false, 4, -1, 60),
            (t0, false, 3, -1, 120),
            (t0, false, 2, -1, 180),
            (t0, false, 1, -1, 240),
            (t0, false, 0, -1, 300),
            (t0, true, 0, 60, 300),
            (t0 + 30 * S, true, 0, 30, 270),
            (t0 + 60 * S, false, 0, -1, 300),
            (t0 + 200 * S, false, 1, -1, 220),
        ];
        for (index, &(now, limited, remaining, retry_s, reset_s)) in cases.iter().enumerate() {
            let outcome = throttle(quota, 1, tat, now);
            assert_eq!(outcome.limited, limited, "case {index}");
            assert_eq!(outcome.limit, 5, "case {index}");
            assert_eq!(outcome.remaining, remaining, "case {index}");
            assert_eq!(
                reply_seconds(outcome.retry_after_ns),
                retry_s,
                "case {index}"
            );
            assert_eq!(
                reply_seconds(outcome.reset_after_ns),
                reset_s,
                "case {index}"
            );
            if let Some(new_tat) = outcome.new_tat_ns {
                tat = Some(new_tat);
            }
        }
    }

    #[test]
    fn quantity_beyond_the_burst_never_fits() {
        let quota = Quota {
            max_burst: 1,
            count: 10,
            period_s: 1,
        };
        let outcome = throttle(quota, 5, None, 0);
        assert!(outcome.limited);
        assert_eq!(reply_seconds(outcome.retry_after_ns), -1);
        let zero = throttle(quota, 0, None, 0);
        assert!(!zero.limited);
        assert_eq!(zero.remaining, 2);
    }

    #[test]
    fn extreme_figures_saturate() {
        let quota = Quota {
            max_burst: i64::MAX,
            count: 1,
            period_s: 315_360_000,
        };
        let first = throttle(quota, i64::MAX, None, 0);
        assert!(!first.limited);
        assert_eq!(reply_seconds(first.reset_after_ns), i64::MAX);
        let second = throttle(quota, i64::MAX, first.new_tat_ns, 0);
        assert!(second.limited);
        assert_eq!(reply_seconds(second.retry_after_ns), i64::MAX);
        assert_eq!(
            ttl_ms(second.reset_after_ns.min(i128::from(u64::MAX))),
            u64::MAX / 1_000_000
        );
    }

    #[test]
    fn rounding_of_seconds() {
        let cases: &[(i128, i64)] = &[
            (-S, -1),
            (0, 0),
            (S, 1),
            (S + 999_999, 1),
            (S + 1_000_000, 2),
            (59 * S + 999 * NANOS_PER_MILLISECOND, 60),
        ];
        for &(ns, seconds) in cases {
            assert_eq!(reply_seconds(ns), seconds, "{ns} ns");
        }
    }
}
