//! Cache-rebuild leases after memcached's (Nishtala et al., "Scaling Memcache at Facebook"):
//! when a hot key is missing or about to expire, exactly one caller gets a lease, a token that
//! gives it the right to rebuild the value; the others get the value while it is still there,
//! or a hint of how long to wait. A lease ends when its holder stores the value with the token
//! (`SETLEASE`), or when it runs out, so a holder that dies blocks nobody for long.
//!
//! Leases belong to the shard that owns their key; the table is bounded by [`LEASES_MAX`].

use std::collections::HashMap;

/// Most leases one shard holds at once: each is a rebuild in progress, so even a cache with
/// millions of hot keys has far fewer at one time; past this GETLEASE answers an error.
pub const LEASES_MAX: usize = 1 << 20;

/// One lease: its token and when it runs out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Lease {
    /// What the holder presents to SETLEASE.
    pub token: u64,
    /// Milliseconds since the epoch at which the lease ends by itself.
    pub expires_at_ms: u64,
}

/// What GETLEASE's caller is told about the lease of a key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Grant {
    /// The caller holds a new lease with this token: it must rebuild.
    Granted(u64),
    /// Another caller holds the lease for this many more milliseconds.
    Held(u64),
}

/// One shard's leases, by database and key.
#[derive(Debug, Default)]
pub struct Leases {
    leases: HashMap<(usize, Vec<u8>), Lease>,
    /// Tokens handed out so far; the next token is derived from it.
    issued: u64,
    /// Mixed into every token, so that tokens differ between shards and runs.
    salt: u64,
}

impl Leases {
    /// An empty table whose tokens are mixed with `salt`.
    pub fn with_salt(salt: u64) -> Self {
        Self {
            salt,
            ..Self::default()
        }
    }

    /// The live lease of `key`, dropping it when it has run out (counted in `expired`).
    fn live(&mut self, db: usize, key: &[u8], now_ms: u64, expired: &mut u64) -> Option<Lease> {
        let lookup = (db, key.to_vec());
        let lease = *self.leases.get(&lookup)?;
        if lease.expires_at_ms <= now_ms {
            self.leases.remove(&lookup);
            *expired += 1;
            return None;
        }
        Some(lease)
    }

    /// Grants a lease of `lease_ms` on `key` to the caller unless a live one exists.
    ///
    /// # Errors
    /// When the table is full of live leases.
    pub fn acquire(
        &mut self,
        db: usize,
        key: &[u8],
        lease_ms: u64,
        now_ms: u64,
        expired: &mut u64,
    ) -> Result<Grant, &'static str> {
        if let Some(lease) = self.live(db, key, now_ms, expired) {
            return Ok(Grant::Held(lease.expires_at_ms - now_ms));
        }
        if self.leases.len() >= LEASES_MAX {
            let before = self.leases.len();
            self.leases.retain(|_, lease| lease.expires_at_ms > now_ms);
            *expired += (before - self.leases.len()) as u64;
            if self.leases.len() >= LEASES_MAX {
                return Err("ERR too many leases in progress");
            }
        }
        self.issued += 1;
        // A token is never 0 (0 means "no lease" in GETLEASE's reply); mixing keeps tokens of
        // one shard from being guessed from another's.
        let token = (mix(self.issued ^ self.salt) & (i64::MAX as u64)).max(1);
        self.leases.insert(
            (db, key.to_vec()),
            Lease {
                token,
                expires_at_ms: now_ms + lease_ms,
            },
        );
        Ok(Grant::Granted(token))
    }

    /// Ends the lease of `key` if `token` is its live token; false otherwise (stale, run out,
    /// or someone else's).
    pub fn redeem(
        &mut self,
        db: usize,
        key: &[u8],
        token: u64,
        now_ms: u64,
        expired: &mut u64,
    ) -> bool {
        match self.live(db, key, now_ms, expired) {
            Some(lease) if lease.token == token => {
                self.leases.remove(&(db, key.to_vec()));
                true
            }
            _ => false,
        }
    }
}

/// SplitMix64's finaliser: a bijection, so distinct counters give distinct tokens.
fn mix(mut value: u64) -> u64 {
    value = value.wrapping_add(0x9e37_79b9_7f4a_7c15);
    value = (value ^ (value >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    value = (value ^ (value >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    value ^ (value >> 31)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_holder_until_redeemed_or_expired() {
        let mut leases = Leases::with_salt(7);
        let mut expired = 0;
        let Ok(Grant::Granted(token)) = leases.acquire(0, b"k", 100, 1000, &mut expired) else {
            panic!("first caller gets the lease");
        };
        assert_eq!(
            leases.acquire(0, b"k", 100, 1040, &mut expired),
            Ok(Grant::Held(60))
        );
        assert!(!leases.redeem(0, b"k", token ^ 1, 1050, &mut expired));
        assert!(leases.redeem(0, b"k", token, 1050, &mut expired));
        assert!(
            !leases.redeem(0, b"k", token, 1050, &mut expired),
            "redeemed once"
        );
        let Ok(Grant::Granted(second)) = leases.acquire(0, b"k", 100, 1060, &mut expired) else {
            panic!("free again");
        };
        assert_ne!(second, token);
        assert_eq!(expired, 0);
        assert!(matches!(
            leases.acquire(0, b"k", 100, 1160, &mut expired),
            Ok(Grant::Granted(_))
        ));
        assert_eq!(expired, 1, "the holder died: its lease ran out");
        assert!(!leases.redeem(0, b"k", second, 1161, &mut expired));
    }
}
