//! `expire-jitter-pct`: relative TTLs (EXPIRE, PEXPIRE, SET EX/PX, SETEX, PSETEX, GETEX EX/PX)
//! are lengthened by a random 0..pct percent, so keys written together by a cache filler do not
//! all expire in the same second and send their readers to the database at once (a cache
//! avalanche). Absolute times (EXPIREAT, PEXPIREAT, EXAT, PXAT) are what the client asked for
//! and stay as they are. 0, the default, leaves every TTL exactly as given, as Redis does.

use crate::config::Config;

/// The configuration parameter's name.
pub const PARAMETER: &str = "expire-jitter-pct";

/// `ttl_ms` lengthened by a random 0..=`expire-jitter-pct` percent of itself. Saturates rather
/// than overflows: the caller's own bound check (Redis's "invalid expire time") still applies
/// to the TTL as given.
pub fn jittered_ms(config: &Config, ttl_ms: u64) -> u64 {
    let percent = config.integer(PARAMETER);
    debug_assert!((0..=100).contains(&percent), "validated by the config");
    if percent <= 0 || ttl_ms == 0 {
        return ttl_ms;
    }
    let spread_ms = ttl_ms.saturating_mul(percent as u64) / 100;
    extend(ttl_ms, spread_ms, rand::random::<u64>())
}

/// `ttl_ms` plus `random` reduced to 0..=`spread_ms`.
fn extend(ttl_ms: u64, spread_ms: u64, random: u64) -> u64 {
    let extra_ms = if spread_ms == u64::MAX {
        random
    } else {
        random % (spread_ms + 1)
    };
    ttl_ms.saturating_add(extra_ms)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn extension_stays_within_the_spread() {
        let cases: &[(&str, u64, u64, u64, u64)] = &[
            ("no spread", 100_000, 0, 12345, 100_000),
            ("random below spread", 100_000, 10_000, 2_500, 102_500),
            ("random wraps", 100_000, 10_000, 10_001, 100_000),
            ("top of the spread", 100_000, 10_000, 10_000, 110_000),
            ("saturates", u64::MAX - 1, 10, 7, u64::MAX),
        ];
        for &(name, ttl_ms, spread_ms, random, expected) in cases {
            assert_eq!(extend(ttl_ms, spread_ms, random), expected, "{name}");
        }
    }

    #[test]
    fn off_by_default_and_bounded_when_on() {
        let mut config = Config::default();
        assert_eq!(jittered_ms(&config, 100_000), 100_000, "0 = off");
        config.set(PARAMETER, "10").unwrap();
        for _ in 0..1000 {
            let ttl_ms = jittered_ms(&config, 100_000);
            assert!((100_000..=110_000).contains(&ttl_ms), "{ttl_ms}");
        }
        assert!(config.set(PARAMETER, "101").is_err());
        assert!(config.set(PARAMETER, "-1").is_err());
    }
}
