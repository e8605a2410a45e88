//! Cache eviction policies as engines over abstract keys: each policy tracks `u64` key ids
//! with byte sizes (and TTLs, for the `volatile-` policies) and, when asked, names the key to
//! evict. Nothing here holds values or measures memory: the owner of the keys (the keyspace,
//! or [`SimulatedCache`] in the hit-ratio benchmark) decides when it is over its limit and asks
//! [`EvictionPolicy::choose_victim`] until it is not.
//!
//! Policies ([`Policy`]):
//! - Redis's sampled approximations, with its names and meanings ([`sampled`]):
//!   `allkeys-lru`, `volatile-lru`, `allkeys-lfu`, `volatile-lfu`, `allkeys-random`,
//!   `volatile-random`, `volatile-ttl`, `allkeys-lrm`, `volatile-lrm` (`maxmemory-samples`
//!   keys per eviction into a 16-entry pool; LFU through [`crate::lfu`]).
//! - S3-FIFO ([`s3fifo`], SOSP'23), SIEVE ([`sieve`], NSDI'24) and W-TinyLFU ([`tinylfu`],
//!   Caffeine's, with the count-min sketch and doorkeeper of [`sketch`] and an adaptive window).
//!
//! # Hook points for the keyspace
//! The keyspace drives a policy through five calls, with a key id that is stable while the
//! key exists (for example a hash of the database and key name, or a slot in its table):
//! - [`on_insert`](EvictionPolicy::on_insert) when a key is created (SET of a new key, a
//!   collection created by its first element, RESTORE, a key renamed *to*), with its size
//!   in bytes and its expiry time, if any;
//! - [`on_access`](EvictionPolicy::on_access) on every read hit, unless the command is
//!   NO-TOUCH (OBJECT, TYPE, ... in Redis's terms) or the client set CLIENT NO-TOUCH;
//! - [`on_update`](EvictionPolicy::on_update) when an existing key's value, size or expiry
//!   changes (overwrites, APPEND, HSET on an existing hash, EXPIRE, PERSIST): the size is the
//!   new one and `expire_at_ms` the new expiry;
//! - [`on_remove`](EvictionPolicy::on_remove) when a key goes for any other reason than this
//!   policy's eviction: DEL, UNLINK, expiry (lazy or active), FLUSHDB, a key renamed *from*,
//!   moved to another shard;
//! - [`choose_victim`](EvictionPolicy::choose_victim) while used memory is over the shard's
//!   limit, before running a command that may grow memory; the returned key is already
//!   forgotten by the policy, the keyspace deletes it (counting `evicted_keys`, notifying
//!   `evicted` keyspace events) and must not call `on_remove` for it. `None` means nothing
//!   can be evicted (a `volatile-` policy with no key that has a TTL): reply with the OOM
//!   error, as Redis does.
//!
//! [`EvictionPolicy::set_capacity_bytes`] follows `CONFIG SET maxmemory` (the shard's share).
//!
//! ```
//! use ember_store::eviction::{Policy, PolicyConfig, SimulatedCache};
//!
//! let config = PolicyConfig { capacity_bytes: 300, ..PolicyConfig::default() };
//! let mut cache = SimulatedCache::new(Policy::Sieve.build(&config), 300);
//! for key in [1, 2, 3, 1, 4, 1] {
//!     cache.request(key, 100, None, 0);
//! }
//! // Key 1 was read, so SIEVE evicted 2 for 4 and kept 1.
//! assert_eq!((cache.stats().hits, cache.stats().misses), (2, 4));
//! assert!(cache.contains(1) && !cache.contains(2));
//! ```

pub mod climber;
mod list;
pub mod s3fifo;
pub mod sampled;
pub mod sieve;
pub mod sketch;
pub mod tinylfu;

use sampled::{Sampled, Scope, Score};

/// A key as a policy sees it: a number the owner keeps stable while the key exists.
pub type KeyId = u64;

/// Hash map of the policies' per-key state. A fixed hasher: simulations and tests replay
/// bit for bit; key ids come from the keyspace's own hashing, not from clients directly.
pub(crate) type KeyMap<V> = hashbrown::HashMap<KeyId, V, foldhash::fast::FixedState>;

/// What a policy is told about a key when it is written.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct KeyInfo {
    /// Bytes the key costs (name, value and overhead, as the keyspace accounts them).
    pub size_bytes: u64,
    /// Absolute expiry time in milliseconds, or `None` for a key without a TTL.
    pub expire_at_ms: Option<u64>,
}

/// Settings shared by every policy; each reads the ones it uses.
#[derive(Clone, Debug)]
pub struct PolicyConfig {
    /// The byte budget the owner evicts down to (S3-FIFO and W-TinyLFU size their queues
    /// by it; the sampled policies ignore it).
    pub capacity_bytes: u64,
    /// About how many keys fit, to size W-TinyLFU's sketch (it grows if more are held).
    pub expected_entries: u64,
    /// Redis's `maxmemory-samples`: keys sampled per eviction.
    pub samples: usize,
    /// Redis's `lfu-log-factor`.
    pub lfu_log_factor: u32,
    /// Redis's `lfu-decay-time`, in minutes.
    pub lfu_decay_time_minutes: u32,
    /// Seed of the policy's random choices (sampling, LFU increments, admission).
    pub seed: u64,
}

/// Redis's default `maxmemory-samples`: 5 samples approximate true LRU closely enough at
/// little CPU; 10 is closer still.
pub const SAMPLES_DEFAULT: usize = 5;

/// Redis's default `lfu-log-factor`: about a million hits saturate the counter.
pub const LFU_LOG_FACTOR_DEFAULT: u32 = 10;

/// Redis's default `lfu-decay-time`: the counter loses one point per idle minute.
pub const LFU_DECAY_TIME_MINUTES_DEFAULT: u32 = 1;

impl Default for PolicyConfig {
    fn default() -> Self {
        PolicyConfig {
            capacity_bytes: 64 << 20,
            expected_entries: 1 << 16,
            samples: SAMPLES_DEFAULT,
            lfu_log_factor: LFU_LOG_FACTOR_DEFAULT,
            lfu_decay_time_minutes: LFU_DECAY_TIME_MINUTES_DEFAULT,
            seed: 0x5eed,
        }
    }
}

/// A cache policy over abstract keys. The owner calls the hooks as described in the module
/// documentation; a policy only ever names keys it was told about and has not forgotten.
pub trait EvictionPolicy {
    /// The policy's name (Redis's `maxmemory-policy` spelling for Redis's policies).
    fn name(&self) -> &'static str;
    /// The owner's byte budget changed.
    fn set_capacity_bytes(&mut self, capacity_bytes: u64);
    /// Keys the policy tracks.
    fn len(&self) -> usize;
    /// Whether the policy tracks no key.
    fn is_empty(&self) -> bool {
        self.len() == 0
    }
    /// A key not tracked yet was created.
    fn on_insert(&mut self, key: KeyId, info: KeyInfo, now_ms: u64);
    /// A tracked key was read.
    fn on_access(&mut self, key: KeyId, now_ms: u64);
    /// A tracked key was written: new size and expiry.
    fn on_update(&mut self, key: KeyId, info: KeyInfo, now_ms: u64);
    /// A tracked key was deleted other than by this policy's eviction.
    fn on_remove(&mut self, key: KeyId);
    /// Picks the next key to evict and forgets it; `None` when no key may be evicted.
    fn choose_victim(&mut self, now_ms: u64) -> Option<KeyId>;
}

/// Every policy by name.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Policy {
    /// Redis `allkeys-lru`.
    AllKeysLru,
    /// Redis `volatile-lru`.
    VolatileLru,
    /// Redis `allkeys-lfu`.
    AllKeysLfu,
    /// Redis `volatile-lfu`.
    VolatileLfu,
    /// Redis `allkeys-random`.
    AllKeysRandom,
    /// Redis `volatile-random`.
    VolatileRandom,
    /// Redis `volatile-ttl`.
    VolatileTtl,
    /// Redis 8.6 `allkeys-lrm`.
    AllKeysLrm,
    /// Redis 8.6 `volatile-lrm`.
    VolatileLrm,
    /// S3-FIFO.
    S3Fifo,
    /// SIEVE.
    Sieve,
    /// W-TinyLFU.
    WTinyLfu,
}

impl Policy {
    /// Every policy, Redis's first.
    pub const ALL: [Policy; 12] = [
        Policy::AllKeysLru,
        Policy::VolatileLru,
        Policy::AllKeysLfu,
        Policy::VolatileLfu,
        Policy::AllKeysRandom,
        Policy::VolatileRandom,
        Policy::VolatileTtl,
        Policy::AllKeysLrm,
        Policy::VolatileLrm,
        Policy::S3Fifo,
        Policy::Sieve,
        Policy::WTinyLfu,
    ];

    /// The policy's name, as `maxmemory-policy` takes it.
    pub fn name(self) -> &'static str {
        match self {
            Policy::AllKeysLru => "allkeys-lru",
            Policy::VolatileLru => "volatile-lru",
            Policy::AllKeysLfu => "allkeys-lfu",
            Policy::VolatileLfu => "volatile-lfu",
            Policy::AllKeysRandom => "allkeys-random",
            Policy::VolatileRandom => "volatile-random",
            Policy::VolatileTtl => "volatile-ttl",
            Policy::AllKeysLrm => "allkeys-lrm",
            Policy::VolatileLrm => "volatile-lrm",
            Policy::S3Fifo => "s3fifo",
            Policy::Sieve => "sieve",
            Policy::WTinyLfu => "w-tinylfu",
        }
    }

    /// The policy named `name` (case-insensitive, as Redis's config is).
    pub fn from_name(name: &str) -> Option<Policy> {
        Policy::ALL
            .into_iter()
            .find(|policy| policy.name().eq_ignore_ascii_case(name))
    }

    /// Whether the policy only evicts keys with a TTL.
    pub fn is_volatile(self) -> bool {
        self.name().starts_with("volatile-")
    }

    /// A new, empty engine of this policy.
    pub fn build(self, config: &PolicyConfig) -> Box<dyn EvictionPolicy> {
        let sampled = |score, scope| -> Box<dyn EvictionPolicy> {
            Box::new(Sampled::new(score, scope, config))
        };
        match self {
            Policy::AllKeysLru => sampled(Score::Lru, Scope::AllKeys),
            Policy::VolatileLru => sampled(Score::Lru, Scope::Volatile),
            Policy::AllKeysLfu => sampled(Score::Lfu, Scope::AllKeys),
            Policy::VolatileLfu => sampled(Score::Lfu, Scope::Volatile),
            Policy::AllKeysRandom => sampled(Score::Random, Scope::AllKeys),
            Policy::VolatileRandom => sampled(Score::Random, Scope::Volatile),
            Policy::VolatileTtl => sampled(Score::Ttl, Scope::Volatile),
            Policy::AllKeysLrm => sampled(Score::Lrm, Scope::AllKeys),
            Policy::VolatileLrm => sampled(Score::Lrm, Scope::Volatile),
            Policy::S3Fifo => Box::new(s3fifo::S3Fifo::new(config.capacity_bytes)),
            Policy::Sieve => Box::new(sieve::Sieve::new()),
            Policy::WTinyLfu => Box::new(tinylfu::WTinyLfu::new(config)),
        }
    }
}

/// Counters of a [`SimulatedCache`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CacheStats {
    /// Requests that found their key.
    pub hits: u64,
    /// Requests that did not.
    pub misses: u64,
    /// Keys evicted by the policy.
    pub evictions: u64,
    /// Misses whose write was refused: bigger than the whole cache, or nothing evictable.
    pub rejected: u64,
}

impl CacheStats {
    /// Hits over requests, 0 with no request.
    pub fn hit_ratio(&self) -> f64 {
        let requests = self.hits + self.misses;
        if requests == 0 {
            0.0
        } else {
            self.hits as f64 / requests as f64
        }
    }
}

/// A look-aside cache of key ids and sizes driven by one policy, as a server is: a request
/// is a read; on a miss the key is written, and then keys are evicted until the bytes fit.
/// It checks the policy's contract as it goes (victims are keys it holds).
pub struct SimulatedCache {
    policy: Box<dyn EvictionPolicy>,
    sizes: KeyMap<u64>,
    used_bytes: u64,
    capacity_bytes: u64,
    stats: CacheStats,
}

impl SimulatedCache {
    /// An empty cache of `capacity_bytes` run by `policy`.
    pub fn new(policy: Box<dyn EvictionPolicy>, capacity_bytes: u64) -> Self {
        SimulatedCache {
            policy,
            sizes: KeyMap::default(),
            used_bytes: 0,
            capacity_bytes,
            stats: CacheStats::default(),
        }
    }

    /// One read of `key` (of `size_bytes`) at `now_ms`, written on a miss with `expire_at_ms`.
    /// Returns whether it hit.
    pub fn request(
        &mut self,
        key: KeyId,
        size_bytes: u64,
        expire_at_ms: Option<u64>,
        now_ms: u64,
    ) -> bool {
        if let Some(held_bytes) = self.sizes.get_mut(&key) {
            self.stats.hits += 1;
            self.policy.on_access(key, now_ms);
            if *held_bytes != size_bytes {
                // The trace says the object changed size: the owner rewrote it.
                self.used_bytes = self.used_bytes - *held_bytes + size_bytes;
                *held_bytes = size_bytes;
                let info = KeyInfo {
                    size_bytes,
                    expire_at_ms,
                };
                self.policy.on_update(key, info, now_ms);
                self.evict_to_fit(now_ms, None);
            }
            return true;
        }
        self.stats.misses += 1;
        if size_bytes > self.capacity_bytes {
            self.stats.rejected += 1;
            return false;
        }
        self.sizes.insert(key, size_bytes);
        self.used_bytes += size_bytes;
        let info = KeyInfo {
            size_bytes,
            expire_at_ms,
        };
        self.policy.on_insert(key, info, now_ms);
        self.evict_to_fit(now_ms, Some(key));
        false
    }

    /// Deletes `key` if held (a DEL, or an expiry), telling the policy.
    pub fn remove(&mut self, key: KeyId) -> bool {
        match self.sizes.remove(&key) {
            Some(size_bytes) => {
                self.used_bytes -= size_bytes;
                self.policy.on_remove(key);
                true
            }
            None => false,
        }
    }

    fn evict_to_fit(&mut self, now_ms: u64, written: Option<KeyId>) {
        while self.used_bytes > self.capacity_bytes {
            match self.policy.choose_victim(now_ms) {
                Some(victim) => {
                    let size_bytes = self.sizes.remove(&victim).unwrap_or_else(|| {
                        panic!("{} evicted {victim}, not held", self.policy.name())
                    });
                    self.used_bytes -= size_bytes;
                    self.stats.evictions += 1;
                }
                None => {
                    // Nothing evictable: the write is refused, as Redis's OOM error does.
                    if let Some(key) = written {
                        if self.remove(key) {
                            self.stats.rejected += 1;
                        }
                    }
                    break;
                }
            }
        }
        debug_assert_eq!(
            self.sizes.len(),
            self.policy.len(),
            "policy and cache agree"
        );
    }

    /// Whether `key` is held.
    pub fn contains(&self, key: KeyId) -> bool {
        self.sizes.contains_key(&key)
    }

    /// Bytes held.
    pub fn used_bytes(&self) -> u64 {
        self.used_bytes
    }

    /// Keys held.
    pub fn len(&self) -> usize {
        self.sizes.len()
    }

    /// Whether no key is held.
    pub fn is_empty(&self) -> bool {
        self.sizes.is_empty()
    }

    /// Counters so far.
    pub fn stats(&self) -> CacheStats {
        self.stats
    }

    /// The policy's name.
    pub fn policy_name(&self) -> &'static str {
        self.policy.name()
    }
}

#[cfg(test)]
mod tests;
