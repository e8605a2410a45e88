//! Token-bucket rate limiter: per-tenant state in integer arithmetic.
//!
//! Each tenant has a bucket of at most `burst` tokens that refills by `rate_per_tick` tokens
//! per tick of a caller-supplied clock (the server uses microseconds). A request of `cost`
//! tokens is allowed when the bucket holds at least that many, and then takes them. Everything
//! is integer and wraps exactly as the FPGA `token_bucket` module does, which is checked
//! against this file bit for bit.
//!
//! ```
//! use ember_store::rate_limit::{RateLimiter, TokenBucketConfig};
//! let mut limiter = RateLimiter::new(4).unwrap();
//! let config = TokenBucketConfig { rate_per_tick: 1, burst: 10 };
//! limiter.configure(0, config, 0).unwrap();
//! assert!(limiter.check(0, 0, 10).unwrap().allowed);
//! assert!(!limiter.check(0, 3, 5).unwrap().allowed); // only 3 tokens came back
//! assert!(limiter.check(0, 5, 5).unwrap().allowed);
//! ```

use std::fmt;

/// Most tenants one limiter table holds: 2^20 buckets of 16 bytes is 16 MiB, enough for a
/// shard's tenants while bounding what a configuration can ask for.
pub const TENANT_COUNT_MAX: u32 = 1 << 20;

/// A tenant's limits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct TokenBucketConfig {
    /// Tokens added per elapsed tick.
    pub rate_per_tick: u16,
    /// Most tokens the bucket holds.
    pub burst: u32,
}

/// A tenant's bucket: the tokens left and the tick they were counted at.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct TokenBucket {
    /// Tokens in the bucket at `last_tick`; never more than the burst.
    pub tokens: u32,
    /// Tick of the last refill; ticks wrap at 2^32.
    pub last_tick: u32,
}

/// The outcome of one request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Decision {
    /// Whether the request may go ahead.
    pub allowed: bool,
    /// Tokens left in the bucket after the decision.
    pub tokens_left: u32,
}

impl TokenBucket {
    /// A full bucket at `now_tick`.
    pub fn full(config: TokenBucketConfig, now_tick: u32) -> Self {
        Self {
            tokens: config.burst,
            last_tick: now_tick,
        }
    }

    /// Refills for the ticks elapsed since the last call (wrapping), then takes `cost` tokens
    /// when there are enough.
    pub fn take(&mut self, config: TokenBucketConfig, now_tick: u32, cost: u32) -> Decision {
        let elapsed_ticks = now_tick.wrapping_sub(self.last_tick);
        let burst = u64::from(config.burst);
        let refill = (u64::from(elapsed_ticks) * u64::from(config.rate_per_tick)).min(burst);
        let tokens = (u64::from(self.tokens) + refill).min(burst) as u32;
        self.last_tick = now_tick;
        let allowed = tokens >= cost;
        self.tokens = if allowed { tokens - cost } else { tokens };
        Decision {
            allowed,
            tokens_left: self.tokens,
        }
    }
}

/// Why a limiter call was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RateLimitError {
    kind: RateLimitErrorKind,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum RateLimitErrorKind {
    TenantCount(u32),
    Tenant { tenant: u32, tenant_count: u32 },
}

impl fmt::Display for RateLimitError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.kind {
            RateLimitErrorKind::TenantCount(count) => {
                write!(f, "tenant count {count} is outside 1..={TENANT_COUNT_MAX}")
            }
            RateLimitErrorKind::Tenant {
                tenant,
                tenant_count,
            } => {
                write!(f, "tenant {tenant} is outside 0..{tenant_count}")
            }
        }
    }
}

impl std::error::Error for RateLimitError {}

/// A table of tenants' limits and buckets. A tenant that was never configured has a burst of
/// zero, so it is denied every request of non-zero cost.
#[derive(Debug, Clone)]
pub struct RateLimiter {
    configs: Vec<TokenBucketConfig>,
    buckets: Vec<TokenBucket>,
}

impl RateLimiter {
    /// A table of `tenant_count` unconfigured tenants.
    ///
    /// # Errors
    /// When `tenant_count` is not in `1..=TENANT_COUNT_MAX`.
    pub fn new(tenant_count: u32) -> Result<Self, RateLimitError> {
        if !(1..=TENANT_COUNT_MAX).contains(&tenant_count) {
            return Err(RateLimitError {
                kind: RateLimitErrorKind::TenantCount(tenant_count),
            });
        }
        let count = tenant_count as usize;
        Ok(Self {
            configs: vec![TokenBucketConfig::default(); count],
            buckets: vec![TokenBucket::default(); count],
        })
    }

    /// Number of tenants.
    pub fn tenant_count(&self) -> u32 {
        self.configs.len() as u32
    }

    fn index(&self, tenant: u32) -> Result<usize, RateLimitError> {
        if tenant < self.tenant_count() {
            Ok(tenant as usize)
        } else {
            Err(RateLimitError {
                kind: RateLimitErrorKind::Tenant {
                    tenant,
                    tenant_count: self.tenant_count(),
                },
            })
        }
    }

    /// Sets a tenant's limits and fills its bucket at `now_tick`.
    ///
    /// # Errors
    /// When `tenant` is not below the tenant count.
    pub fn configure(
        &mut self,
        tenant: u32,
        config: TokenBucketConfig,
        now_tick: u32,
    ) -> Result<(), RateLimitError> {
        let index = self.index(tenant)?;
        self.configs[index] = config;
        self.buckets[index] = TokenBucket::full(config, now_tick);
        Ok(())
    }

    /// Decides one request of `cost` tokens for `tenant` at `now_tick`.
    ///
    /// # Errors
    /// When `tenant` is not below the tenant count.
    pub fn check(
        &mut self,
        tenant: u32,
        now_tick: u32,
        cost: u32,
    ) -> Result<Decision, RateLimitError> {
        let index = self.index(tenant)?;
        Ok(self.buckets[index].take(self.configs[index], now_tick, cost))
    }

    /// A tenant's bucket, for INFO and tests.
    ///
    /// # Errors
    /// When `tenant` is not below the tenant count.
    pub fn bucket(&self, tenant: u32) -> Result<TokenBucket, RateLimitError> {
        Ok(self.buckets[self.index(tenant)?])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bounds_are_checked() {
        assert!(RateLimiter::new(0).is_err());
        assert!(RateLimiter::new(TENANT_COUNT_MAX + 1).is_err());
        let mut limiter = RateLimiter::new(2).unwrap();
        let err = limiter.check(2, 0, 1).unwrap_err();
        assert_eq!(err.to_string(), "tenant 2 is outside 0..2");
        assert!(limiter
            .configure(5, TokenBucketConfig::default(), 0)
            .is_err());
    }

    #[test]
    fn unconfigured_tenant_is_denied() {
        let mut limiter = RateLimiter::new(1).unwrap();
        assert!(!limiter.check(0, 100, 1).unwrap().allowed);
        assert!(limiter.check(0, 100, 0).unwrap().allowed);
    }

    #[test]
    fn named_cases() {
        let config = TokenBucketConfig {
            rate_per_tick: 2,
            burst: 10,
        };
        // (tick, cost, allowed, tokens_left) applied in order to one bucket filled at tick 0.
        let cases: &[(u32, u32, bool, u32)] = &[
            (0, 4, true, 6),
            (0, 7, false, 6),
            (1, 7, true, 1),    // +2
            (100, 0, true, 10), // refill caps at burst
            (100, 11, false, 10),
            (100, 10, true, 0),
            (u32::MAX, 1, true, 9), // huge elapsed: capped refill, no overflow
            (3, 1, true, 9),        // clock wrapped: 4 ticks, +8 capped at 10, minus 1
        ];
        let mut bucket = TokenBucket::full(config, 0);
        for (index, &(tick, cost, allowed, tokens_left)) in cases.iter().enumerate() {
            let decision = bucket.take(config, tick, cost);
            assert_eq!(
                decision,
                Decision {
                    allowed,
                    tokens_left
                },
                "case {index}"
            );
        }
    }

    #[test]
    fn rate_over_time_matches_arithmetic() {
        let config = TokenBucketConfig {
            rate_per_tick: 3,
            burst: 1_000,
        };
        let mut bucket = TokenBucket::full(config, 0);
        assert!(bucket.take(config, 0, 1_000).allowed);
        let allowed = (1..=1_000u32)
            .filter(|&tick| bucket.take(config, tick, 5).allowed)
            .count();
        // 3 tokens a tick, 5 a request: 3000 tokens buy 600 requests.
        assert_eq!(allowed, 600);
    }
}
