//! The hill climber that sizes W-TinyLFU's admission window (Caffeine's `climb` and
//! `determineAdjustment`; Einziger, Eytan, Friedman and Manes, "Adaptive Software Cache
//! Management", Middleware 2018). It watches the hit ratio over samples of requests: at the end
//! of each sample, if the hit ratio rose it steps the window the same way again, otherwise it
//! turns round. Steps shrink by [`STEP_DECAY`] each sample, so the window settles, and start
//! again at full size when the hit ratio jumps by [`RESTART_THRESHOLD`] or more (a new
//! workload). A recency-heavy workload (keys read again soon after they are written, or a loop
//! that the main space cannot hold) rewards a bigger window; a frequency-heavy one (a skewed
//! popularity) a smaller one.
//!
//! The climber knows nothing of keys: it counts hits and misses and answers how much to move
//! the window, in the units of the `capacity` it was given (bytes for the in-process
//! [`super::tinylfu::WTinyLfu`], millionths of the keys held for the keyspace's
//! `allkeys-tinylfu`). O(1) per request, five words of state.

/// First step, as a fraction of the capacity (Caffeine's `HILL_CLIMBER_STEP_PERCENT`, 6.25%).
pub const STEP_FRACTION: f64 = 0.0625;

/// Each step is this fraction of the previous one while the hit ratio moves little
/// (Caffeine's `HILL_CLIMBER_STEP_DECAY_RATE`).
pub const STEP_DECAY: f64 = 0.98;

/// A change of the hit ratio this large restarts the climber with a full step (Caffeine's
/// `HILL_CLIMBER_RESTART_THRESHOLD`).
pub const RESTART_THRESHOLD: f64 = 0.05;

/// The climber's state.
#[derive(Clone, Debug)]
pub struct HillClimber {
    hits: u64,
    misses: u64,
    previous_hit_ratio: f64,
    /// The next step, signed: positive grows the window.
    step: f64,
    capacity: u64,
}

impl HillClimber {
    /// A climber for a window inside `capacity` units. Its first step shrinks the window, as
    /// Caffeine's does (the window starts at 1%, and frequency-heavy workloads are the common
    /// case).
    pub fn new(capacity: u64) -> Self {
        HillClimber {
            hits: 0,
            misses: 0,
            previous_hit_ratio: 0.0,
            step: -STEP_FRACTION * capacity as f64,
            capacity,
        }
    }

    /// Starts again for a new capacity (the owner resets its window too).
    pub fn reset(&mut self, capacity: u64) {
        *self = Self::new(capacity);
    }

    /// Counts one request.
    pub fn record(&mut self, hit: bool) {
        if hit {
            self.hits += 1;
        } else {
            self.misses += 1;
        }
    }

    /// Requests counted in the current sample.
    pub fn requests(&self) -> u64 {
        self.hits + self.misses
    }

    /// Ends the sample if it holds `sample_requests` requests or more, returning how much to
    /// move the window (signed, in the capacity's units); `None` while the sample goes on.
    pub fn adjustment(&mut self, sample_requests: u64) -> Option<i64> {
        let requests = self.requests();
        if requests < sample_requests.max(1) {
            return None;
        }
        let hit_ratio = self.hits as f64 / requests as f64;
        let change = hit_ratio - self.previous_hit_ratio;
        let amount = if change >= 0.0 { self.step } else { -self.step };
        self.step = if change.abs() >= RESTART_THRESHOLD {
            STEP_FRACTION * self.capacity as f64 * amount.signum()
        } else {
            STEP_DECAY * amount
        };
        self.previous_hit_ratio = hit_ratio;
        self.hits = 0;
        self.misses = 0;
        Some(amount as i64)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Samples of 100 requests; `hits` per sample, in order; the adjustments returned.
    fn adjustments(capacity: u64, hits: &[u64]) -> Vec<i64> {
        let mut climber = HillClimber::new(capacity);
        hits.iter()
            .map(|&sample_hits| {
                for request in 0..100 {
                    climber.record(request < sample_hits);
                    if request < 99 {
                        assert_eq!(climber.adjustment(100), None, "mid-sample");
                    }
                }
                climber.adjustment(100).expect("the sample ended")
            })
            .collect()
    }

    #[test]
    fn steps_follow_the_hit_ratio() {
        struct Case {
            name: &'static str,
            hits: &'static [u64],
            expected: &'static [i64],
        }
        let cases = [
            Case {
                // A hit ratio that rises by a point (no restart) keeps the direction. The first
                // sample moves by the first step (6.25% of 10000, shrinking) and, its hit ratio
                // being 50 points above the start's 0, restarts it at full size; then each step
                // is 98% of the one before (612.5, 600.25; truncated).
                name: "rising keeps shrinking, steps decay",
                hits: &[50, 51, 52, 53],
                expected: &[-625, -625, -612, -600],
            },
            Case {
                // A fall turns round: the second sample lost a point, so the window grows.
                name: "a fall turns round",
                hits: &[50, 49, 49],
                expected: &[-625, 625, 612],
            },
            Case {
                // A jump of 5 points or more makes the next step a full one again, the same way.
                name: "a jump restarts",
                hits: &[50, 51, 60, 61],
                expected: &[-625, -625, -612, -625],
            },
            Case {
                // A drop of 5 points or more turns round with a full step.
                name: "a drop restarts the other way",
                hits: &[50, 51, 40, 40],
                expected: &[-625, -625, 612, 625],
            },
        ];
        for case in cases {
            assert_eq!(
                adjustments(10_000, case.hits),
                case.expected,
                "{}",
                case.name
            );
        }
    }
}
