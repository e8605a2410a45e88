//! A cheap clock for timing commands.
//!
//! Every command is timed for INFO commandstats, latencystats and the slow log. A connection's
//! commands share clock reads ([`crate::client::CommandClock`]: one command's end is the next
//! one's start), yet that one read a command was 5.6% of the shard's time under pipelined GETs
//! of one key; a script's `redis.call`s cannot share reads (the Lua between two calls is not
//! the commands' time), so each call read the clock twice, and `clock_gettime` was 5% of the
//! shard's time under EVALSHA of the flash-sale script (three calls). Reading the CPU's
//! time-stamp counter costs about half as much (measured here: 16 ns against 7.5 ns a read, CPU
//! time of a loop of 5 million).
//!
//! The counter is used only where it is a clock: x86-64, a CPU that says its counter is
//! invariant (constant rate, never stopped), and a kernel that uses it as its own clock source
//! (it checks the counter across cores and switches away when it misbehaves). Elsewhere
//! [`Ticks`] are nanoseconds of [`Instant`]. The counter's rate is measured against `Instant`
//! once per process ([`calibrate`], at start-up).

use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// How long the counter's rate is measured against `Instant`: a clock read's jitter (tens of
/// nanoseconds) is then a few parts in 100,000 of the rate.
const CALIBRATION: Duration = Duration::from_millis(2);

/// A point in time, in the clock's own units.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Ticks(u64);

/// How ticks become time.
#[derive(Debug)]
enum Source {
    /// The time-stamp counter; nanoseconds per tick as a 32.32 fixed-point number.
    Counter { nanoseconds_per_tick_q32: u64 },
    /// Nanoseconds since `epoch`.
    Instant { epoch: Instant },
}

static SOURCE: OnceLock<Source> = OnceLock::new();

/// Chooses the clock and measures the counter's rate; [`now`] does it on first use when
/// start-up did not (a 2 ms wait, once).
pub fn calibrate() {
    SOURCE.get_or_init(choose);
}

/// The time now.
#[inline]
pub fn now() -> Ticks {
    match SOURCE.get_or_init(choose) {
        Source::Counter { .. } => Ticks(counter()),
        Source::Instant { epoch } => Ticks(epoch.elapsed().as_nanos() as u64),
    }
}

/// Whole microseconds from `start` to now.
#[inline]
pub fn since_us(start: Ticks) -> u64 {
    elapsed_us(start, now())
}

/// Whole microseconds from `start` to `end` (0 when `end` is earlier).
pub fn elapsed_us(start: Ticks, end: Ticks) -> u64 {
    let ticks = end.0.saturating_sub(start.0);
    let nanoseconds = match SOURCE.get_or_init(choose) {
        Source::Counter {
            nanoseconds_per_tick_q32,
        } => match ticks.checked_mul(*nanoseconds_per_tick_q32) {
            // The usual span (a command: well under the 2^32 ticks that overflow it).
            Some(product) => product >> 32,
            None => ((u128::from(ticks) * u128::from(*nanoseconds_per_tick_q32)) >> 32) as u64,
        },
        Source::Instant { .. } => ticks,
    };
    nanoseconds / 1_000
}

#[cfg(target_arch = "x86_64")]
#[inline]
fn counter() -> u64 {
    // SAFETY: RDTSC exists on every x86-64 CPU and reads a register; it has no preconditions.
    unsafe { std::arch::x86_64::_rdtsc() }
}

#[cfg(not(target_arch = "x86_64"))]
fn counter() -> u64 {
    unreachable!("the counter is chosen only on x86-64")
}

fn choose() -> Source {
    let fallback = || Source::Instant {
        epoch: Instant::now(),
    };
    if !counter_is_a_clock() {
        return fallback();
    }
    let Some((start_ticks, start)) = paired_read() else {
        return fallback();
    };
    while start.elapsed() < CALIBRATION {
        std::hint::spin_loop();
    }
    let Some((end_ticks, end)) = paired_read() else {
        return fallback();
    };
    let ticks = end_ticks.saturating_sub(start_ticks);
    if ticks == 0 {
        return fallback();
    }
    let nanoseconds = end.duration_since(start).as_nanos();
    Source::Counter {
        nanoseconds_per_tick_q32: ((nanoseconds << 32) / u128::from(ticks)) as u64,
    }
}

/// The widest gap between two `Instant` reads around a counter read for the pair to count as
/// simultaneous: a preemption in between (common on a loaded virtual machine) would otherwise
/// skew the measured rate by its length over [`CALIBRATION`].
const PAIR_GAP_MAX: Duration = Duration::from_micros(5);

/// Tries a counter read bracketed by two `Instant` reads that close together.
const PAIR_TRIES_MAX: usize = 1_000;

/// A counter read and the `Instant` in the middle of the two reads around it, or `None` when
/// no try was close enough.
fn paired_read() -> Option<(u64, Instant)> {
    (0..PAIR_TRIES_MAX).find_map(|_| {
        let before = Instant::now();
        let ticks = counter();
        let after = Instant::now();
        let gap = after.duration_since(before);
        (gap <= PAIR_GAP_MAX).then(|| (ticks, before + gap / 2))
    })
}

/// True when the time-stamp counter is invariant and the kernel keeps time with it.
fn counter_is_a_clock() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        // CPUID exists on every x86-64 CPU (safe to call since Rust 1.87); leaf 0x80000000
        // answers the highest extended leaf, and 0x80000007 is read only when it exists.
        let invariant = {
            use std::arch::x86_64::__cpuid;
            __cpuid(0x8000_0000).eax >= 0x8000_0007 && __cpuid(0x8000_0007).edx & (1 << 8) != 0
        };
        let kernel_uses_it = std::fs::read_to_string(
            "/sys/devices/system/clocksource/clocksource0/current_clocksource",
        )
        .is_ok_and(|source| source.trim() == "tsc");
        invariant && kernel_uses_it
    }
    #[cfg(not(target_arch = "x86_64"))]
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn measures_what_instant_measures() {
        calibrate();
        // Each read of ours is bracketed by two of Instant's, so the interval ours measured
        // lies between the inner and the outer one, give or take the calibrated rate's error.
        let (before_start, start, after_start) = (Instant::now(), now(), Instant::now());
        std::thread::sleep(Duration::from_millis(20));
        let (before_end, end, after_end) = (Instant::now(), now(), Instant::now());
        let ours = elapsed_us(start, end);
        let shortest = before_end.duration_since(after_start).as_micros() as u64;
        let longest = after_end.duration_since(before_start).as_micros() as u64;
        assert!(
            ours + 1 >= shortest - shortest / 100 && ours <= longest + longest / 100 + 1,
            "{ours} us, not within {shortest}..{longest} us ({:?})",
            SOURCE.get()
        );
        assert_eq!(elapsed_us(end, start), 0);
    }
}
