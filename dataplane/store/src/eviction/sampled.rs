//! Redis's sampled eviction, as `evict.c` does it: each eviction samples `maxmemory-samples`
//! keys (from every key, or only from keys with a TTL for the `volatile-` policies), scores
//! each by how idle it is, merges them into a 16-entry pool kept sorted by that score, and
//! evicts the best entry of the pool that still exists. The pool survives between evictions,
//! so good candidates found by earlier samples are kept, scores and all (a key read after it
//! entered the pool keeps its old score there, as in Redis).
//!
//! Scores: `lru` is the idle time from a 24-bit clock of seconds (Redis's `LRU_CLOCK`), `lrm`
//! the same clock stamped only by writes (Redis 8.6's least recently modified), `lfu` is
//! `255 - counter` with the counter of [`crate::lfu`], `ttl` is `u64::MAX - expire time`.
//! `random` skips the pool and evicts a uniformly chosen key.
//!
//! Redis samples with `dictGetSomeKeys`, which walks adjacent buckets; this engine keeps its
//! keys in a dense vector and samples distinct positions uniformly, the distribution Redis's
//! walk approximates.

use super::{KeyId, KeyInfo, KeyMap, PolicyConfig};
use crate::lfu;
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};

/// Entries of the eviction pool, as Redis's `EVPOOL_SIZE`.
pub const POOL_SIZE: usize = 16;

/// Milliseconds per tick of the LRU clock, as Redis's `LRU_CLOCK_RESOLUTION`.
pub const LRU_CLOCK_RESOLUTION_MS: u64 = 1000;

/// Largest value of the 24-bit LRU clock (Redis's `LRU_CLOCK_MAX`); it wraps after ~194 days.
pub const LRU_CLOCK_MAX: u32 = (1 << 24) - 1;

/// How a sampled policy scores keys.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Score {
    /// Least recently used: reads and writes stamp the clock.
    Lru,
    /// Least frequently used: Redis's logarithmic counter with decay.
    Lfu,
    /// Least recently modified: only writes stamp the clock.
    Lrm,
    /// Soonest to expire.
    Ttl,
    /// No score: a uniformly random key.
    Random,
}

/// Which keys a policy may evict.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Scope {
    /// Every key (`allkeys-`).
    AllKeys,
    /// Only keys with a TTL (`volatile-`); with none, nothing can be evicted.
    Volatile,
}

#[derive(Clone, Copy, Debug)]
struct KeyState {
    /// LRU/LRM clock in seconds, or the packed LFU word.
    access: u32,
    expire_at_ms: Option<u64>,
    /// Position in `all`.
    all_position: u32,
    /// Position in `volatile`, or `u32::MAX` when the key has no TTL.
    volatile_position: u32,
}

const NOT_VOLATILE: u32 = u32::MAX;

#[derive(Clone, Copy, Debug)]
struct PoolEntry {
    key: KeyId,
    idle: u64,
}

/// One of Redis's sampled policies.
pub struct Sampled {
    score: Score,
    scope: Scope,
    samples: usize,
    log_factor: u32,
    decay_time_minutes: u32,
    keys: KeyMap<KeyState>,
    all: Vec<KeyId>,
    volatile: Vec<KeyId>,
    /// Sorted by `idle`, ascending, filled from the left; the best candidate is rightmost.
    pool: [Option<PoolEntry>; POOL_SIZE],
    rng: SmallRng,
}

/// Redis's `LRU_CLOCK()` at `now_ms`.
pub fn lru_clock(now_ms: u64) -> u32 {
    ((now_ms / LRU_CLOCK_RESOLUTION_MS) & u64::from(LRU_CLOCK_MAX)) as u32
}

/// Redis's `estimateObjectIdleTime`: milliseconds since `stamp` on the wrapping clock.
pub fn idle_ms(stamp: u32, now_ms: u64) -> u64 {
    let clock = lru_clock(now_ms);
    let ticks = if clock >= stamp {
        clock - stamp
    } else {
        clock + (LRU_CLOCK_MAX - stamp)
    };
    u64::from(ticks) * LRU_CLOCK_RESOLUTION_MS
}

impl Sampled {
    /// A policy of `score` over `scope`, with `maxmemory-samples`, `lfu-log-factor` and
    /// `lfu-decay-time` from `config`.
    pub fn new(score: Score, scope: Scope, config: &PolicyConfig) -> Self {
        assert!(config.samples > 0, "maxmemory-samples is at least 1");
        Sampled {
            score,
            scope,
            samples: config.samples,
            log_factor: config.lfu_log_factor,
            decay_time_minutes: config.lfu_decay_time_minutes,
            keys: KeyMap::default(),
            all: Vec::new(),
            volatile: Vec::new(),
            pool: [None; POOL_SIZE],
            rng: SmallRng::seed_from_u64(config.seed),
        }
    }

    fn touch(&mut self, key: KeyId, now_ms: u64, is_write: bool) {
        let random = self.rng.gen::<f64>();
        let (score, log_factor, decay) = (self.score, self.log_factor, self.decay_time_minutes);
        let state = self.keys.get_mut(&key).expect("touched key is tracked");
        match score {
            Score::Lfu => {
                state.access = lfu::touch(
                    state.access,
                    lfu::minutes(now_ms),
                    log_factor,
                    decay,
                    random,
                );
            }
            Score::Lrm if !is_write => {}
            _ => state.access = lru_clock(now_ms),
        }
    }

    fn set_expiry(&mut self, key: KeyId, expire_at_ms: Option<u64>) {
        let state = *self.keys.get(&key).expect("key is tracked");
        match (state.volatile_position, expire_at_ms) {
            (NOT_VOLATILE, Some(_)) => {
                let position = self.volatile.len() as u32;
                self.volatile.push(key);
                self.keys.get_mut(&key).expect("tracked").volatile_position = position;
            }
            (position, None) if position != NOT_VOLATILE => {
                self.remove_volatile(position);
                self.keys.get_mut(&key).expect("tracked").volatile_position = NOT_VOLATILE;
            }
            _ => {}
        }
        self.keys.get_mut(&key).expect("tracked").expire_at_ms = expire_at_ms;
    }

    fn remove_volatile(&mut self, position: u32) {
        self.volatile.swap_remove(position as usize);
        if let Some(&moved) = self.volatile.get(position as usize) {
            self.keys
                .get_mut(&moved)
                .expect("tracked")
                .volatile_position = position;
        }
    }

    fn forget(&mut self, key: KeyId) {
        let state = self.keys.remove(&key).expect("removed key is tracked");
        self.all.swap_remove(state.all_position as usize);
        if let Some(&moved) = self.all.get(state.all_position as usize) {
            self.keys.get_mut(&moved).expect("tracked").all_position = state.all_position;
        }
        if state.volatile_position != NOT_VOLATILE {
            self.remove_volatile(state.volatile_position);
        }
    }

    fn candidates(&self) -> &[KeyId] {
        match self.scope {
            Scope::AllKeys => &self.all,
            Scope::Volatile => &self.volatile,
        }
    }

    fn idle(&self, key: KeyId, now_ms: u64) -> u64 {
        let state = &self.keys[&key];
        match self.score {
            Score::Lru | Score::Lrm => idle_ms(state.access, now_ms),
            Score::Lfu => {
                let counter = lfu::decayed_counter(
                    state.access,
                    lfu::minutes(now_ms),
                    self.decay_time_minutes,
                );
                u64::from(lfu::COUNTER_MAX - counter)
            }
            Score::Ttl => u64::MAX - state.expire_at_ms.expect("volatile keys have a TTL"),
            Score::Random => 0,
        }
    }

    /// Redis's `evictionPoolPopulate`: sample, score, merge into the sorted pool.
    fn populate_pool(&mut self, now_ms: u64) {
        let candidate_count = self.candidates().len();
        let count = self.samples.min(candidate_count);
        let positions = rand::seq::index::sample(&mut self.rng, candidate_count, count);
        for position in positions.iter() {
            let key = self.candidates()[position];
            let idle = self.idle(key, now_ms);
            self.pool_insert(PoolEntry { key, idle });
        }
    }

    fn pool_insert(&mut self, entry: PoolEntry) {
        let pool = &mut self.pool;
        let mut slot = 0;
        while slot < POOL_SIZE && pool[slot].is_some_and(|held| held.idle < entry.idle) {
            slot += 1;
        }
        if slot == 0 && pool[POOL_SIZE - 1].is_some() {
            // Worse than everything in a full pool.
            return;
        }
        if slot < POOL_SIZE && pool[slot].is_none() {
            // An empty slot at the insertion point: nothing to shift.
        } else if pool[POOL_SIZE - 1].is_none() {
            // Free space on the right: shift the better entries right by one.
            pool.copy_within(slot..POOL_SIZE - 1, slot + 1);
        } else {
            // Full: drop the worst (leftmost) entry and shift left.
            slot -= 1;
            pool.copy_within(1..=slot, 0);
        }
        pool[slot] = Some(entry);
    }

    /// Takes the best pool entry that still names an evictable key, best first.
    fn pop_pool(&mut self) -> Option<KeyId> {
        for slot in (0..POOL_SIZE).rev() {
            let Some(entry) = self.pool[slot].take() else {
                continue;
            };
            // A key deleted since it was sampled is a ghost: skip it, as Redis does.
            let evictable = self.keys.get(&entry.key).is_some_and(|state| {
                self.scope == Scope::AllKeys || state.volatile_position != NOT_VOLATILE
            });
            if evictable {
                return Some(entry.key);
            }
        }
        None
    }
}

impl super::EvictionPolicy for Sampled {
    fn name(&self) -> &'static str {
        match (self.scope, self.score) {
            (Scope::AllKeys, Score::Lru) => "allkeys-lru",
            (Scope::AllKeys, Score::Lfu) => "allkeys-lfu",
            (Scope::AllKeys, Score::Lrm) => "allkeys-lrm",
            (Scope::AllKeys, Score::Random) => "allkeys-random",
            (Scope::AllKeys, Score::Ttl) => "allkeys-ttl",
            (Scope::Volatile, Score::Lru) => "volatile-lru",
            (Scope::Volatile, Score::Lfu) => "volatile-lfu",
            (Scope::Volatile, Score::Lrm) => "volatile-lrm",
            (Scope::Volatile, Score::Random) => "volatile-random",
            (Scope::Volatile, Score::Ttl) => "volatile-ttl",
        }
    }

    fn set_capacity_bytes(&mut self, _capacity_bytes: u64) {
        // Sampling needs no capacity: the caller evicts while it is over its limit.
    }

    fn len(&self) -> usize {
        self.all.len()
    }

    fn on_insert(&mut self, key: KeyId, info: KeyInfo, now_ms: u64) {
        let access = match self.score {
            Score::Lfu => lfu::new_access(lfu::minutes(now_ms)),
            _ => lru_clock(now_ms),
        };
        let state = KeyState {
            access,
            expire_at_ms: None,
            all_position: self.all.len() as u32,
            volatile_position: NOT_VOLATILE,
        };
        let previous = self.keys.insert(key, state);
        assert!(previous.is_none(), "key {key} inserted twice");
        self.all.push(key);
        self.set_expiry(key, info.expire_at_ms);
    }

    fn on_access(&mut self, key: KeyId, now_ms: u64) {
        self.touch(key, now_ms, false);
    }

    fn on_update(&mut self, key: KeyId, info: KeyInfo, now_ms: u64) {
        self.touch(key, now_ms, true);
        self.set_expiry(key, info.expire_at_ms);
    }

    fn on_remove(&mut self, key: KeyId) {
        self.forget(key);
    }

    fn choose_victim(&mut self, now_ms: u64) -> Option<KeyId> {
        if self.candidates().is_empty() {
            return None;
        }
        let victim = if self.score == Score::Random {
            let position = self.rng.gen_range(0..self.candidates().len());
            self.candidates()[position]
        } else {
            loop {
                self.populate_pool(now_ms);
                if let Some(key) = self.pop_pool() {
                    break key;
                }
            }
        };
        self.forget(victim);
        Some(victim)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn idle_time_wraps_as_redis() {
        let cases: &[(u32, u64, u64)] = &[
            // (stamp, now ms, idle ms)
            (10, 10_000, 0),
            (10, 15_500, 5_000),
            (LRU_CLOCK_MAX - 1, 3_000, 4_000), // wrapped: 3 + (MAX - (MAX - 1)) ticks
        ];
        for &(stamp, now_ms, expected) in cases {
            assert_eq!(
                idle_ms(stamp, now_ms),
                expected,
                "stamp {stamp} now {now_ms}"
            );
        }
    }

    #[test]
    fn pool_stays_sorted_and_keeps_the_sixteen_best() {
        let config = PolicyConfig::default();
        let mut policy = Sampled::new(Score::Lru, Scope::AllKeys, &config);
        // Idle scores in a scrambled order, 40 of them: the pool keeps the 16 largest.
        for index in 0..40u64 {
            let idle = (index * 17) % 40;
            policy.pool_insert(PoolEntry { key: index, idle });
        }
        let idles: Vec<u64> = policy
            .pool
            .iter()
            .map(|entry| entry.unwrap().idle)
            .collect();
        assert_eq!(idles, (24..40).collect::<Vec<u64>>());
    }
}
