//! Redis's LFU counter, bit for bit: an 8-bit logarithmic access counter and a 16-bit clock of
//! minutes, packed into the 24 bits Redis keeps in an object's `lru` field
//! (`(minutes << 8) | counter`). Eviction (`allkeys-lfu`, `volatile-lfu`), OBJECT FREQ and the
//! hit-ratio simulations read the same functions, so the server and the simulators agree.
//!
//! ```
//! use ember_store::lfu;
//!
//! let minutes = lfu::minutes(120_000); // two minutes after the epoch
//! let mut access = lfu::new_access(minutes);
//! assert_eq!(lfu::counter(access), lfu::INITIAL_COUNTER);
//! // A counter below the initial value always grows by one.
//! access = lfu::touch(access, minutes, 10, 1, 0.99);
//! assert_eq!(lfu::counter(access), lfu::INITIAL_COUNTER + 1);
//! ```

/// Counter of a key just written, as Redis's `LFU_INIT_VAL`: new keys are not evicted before
/// they had a chance to be read.
pub const INITIAL_COUNTER: u8 = 5;

/// Largest counter value; the counter saturates there.
pub const COUNTER_MAX: u8 = 255;

/// The 16-bit clock of minutes Redis keeps beside the counter (wraps every ~45 days).
pub fn minutes(now_ms: u64) -> u16 {
    ((now_ms / 60_000) & 0xffff) as u16
}

/// Packs a clock and a counter as Redis's `lru` field does.
pub fn pack(minutes: u16, counter: u8) -> u32 {
    (u32::from(minutes) << 8) | u32::from(counter)
}

/// The counter part of a packed access word.
pub fn counter(access: u32) -> u8 {
    (access & 0xff) as u8
}

/// The clock part of a packed access word.
pub fn last_decrement_minutes(access: u32) -> u16 {
    ((access >> 8) & 0xffff) as u16
}

/// The access word of a key created at `minutes`.
pub fn new_access(minutes: u16) -> u32 {
    pack(minutes, INITIAL_COUNTER)
}

/// Minutes between `then` and `now` on the wrapping 16-bit clock (Redis's `LFUTimeElapsed`).
pub fn minutes_elapsed(then: u16, now: u16) -> u16 {
    if now >= then {
        now - then
    } else {
        // Redis computes 65535 - then + now here (one less than the modular distance); kept for
        // bit-exact agreement with its FREQ replies.
        u16::MAX - then + now
    }
}

/// The counter after decay: one point per `decay_time_minutes` elapsed since the last decrement
/// (Redis's `LFUDecrAndReturn`; a decay time of 0 never decays). This is what OBJECT FREQ shows.
pub fn decayed_counter(access: u32, now_minutes: u16, decay_time_minutes: u32) -> u8 {
    let counter = counter(access);
    if decay_time_minutes == 0 {
        return counter;
    }
    let periods = u32::from(minutes_elapsed(last_decrement_minutes(access), now_minutes))
        / decay_time_minutes;
    if periods >= u32::from(counter) {
        0
    } else {
        counter - periods as u8
    }
}

/// The counter after one logarithmic increment (Redis's `LFULogIncr`): it grows by one with
/// probability `1 / ((counter - INITIAL_COUNTER) * log_factor + 1)`. `random` is uniform in
/// `[0, 1)`, passed in so that callers and tests choose the source.
pub fn log_increment(counter: u8, log_factor: u32, random: f64) -> u8 {
    if counter == COUNTER_MAX {
        return COUNTER_MAX;
    }
    let base = f64::from(counter.saturating_sub(INITIAL_COUNTER));
    let probability = 1.0 / (base * f64::from(log_factor) + 1.0);
    if random < probability {
        counter + 1
    } else {
        counter
    }
}

/// The access word after one read or write at `now_minutes` (Redis's `updateLFU`): decay, then
/// a logarithmic increment, then the clock set to now.
pub fn touch(
    access: u32,
    now_minutes: u16,
    log_factor: u32,
    decay_time_minutes: u32,
    random: f64,
) -> u32 {
    let decayed = decayed_counter(access, now_minutes, decay_time_minutes);
    pack(now_minutes, log_increment(decayed, log_factor, random))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn packing_round_trips() {
        let access = pack(0xabcd, 42);
        assert_eq!(
            (last_decrement_minutes(access), counter(access)),
            (0xabcd, 42)
        );
        assert_eq!(
            minutes(60_000 * 65_536),
            0,
            "the clock wraps at 2^16 minutes"
        );
    }

    #[test]
    fn decay_one_point_per_period() {
        let cases: &[(u16, u8, u16, u32, u8)] = &[
            // (then, counter, now, decay time, expected)
            (100, 10, 100, 1, 10),
            (100, 10, 103, 1, 7),
            (100, 10, 110, 2, 5),
            (100, 10, 200, 1, 0),
            (100, 10, 200, 0, 10),
            (65_530, 10, 2, 1, 3), // wrapped: 65535 - 65530 + 2 = 7 minutes
        ];
        for &(then, count, now, decay, expected) in cases {
            assert_eq!(
                decayed_counter(pack(then, count), now, decay),
                expected,
                "then {then} counter {count} now {now} decay {decay}"
            );
        }
    }

    #[test]
    fn increments_grow_logarithmically() {
        assert_eq!(
            log_increment(0, 10, 0.999),
            1,
            "below the initial value always grows"
        );
        assert_eq!(log_increment(255, 10, 0.0), 255, "saturates");
        // At counter 15 with factor 10 the probability is 1/101.
        assert_eq!(log_increment(15, 10, 0.009), 16);
        assert_eq!(log_increment(15, 10, 0.0100), 15);
        // A million hits with factor 10 reach the neighbourhood of 255, as Redis's table says.
        let mut state = 0x2545_f491_4f6c_dd1d_u64;
        let mut count = INITIAL_COUNTER;
        for _ in 0..1_000_000 {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            count = log_increment(count, 10, (state >> 11) as f64 / (1u64 << 53) as f64);
        }
        assert!(count >= 240, "a million hits reach {count}");
    }
}
