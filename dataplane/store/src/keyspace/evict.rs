//! Eviction from a keyspace under `maxmemory`: Redis's approximated policies, run on the
//! keyspace's own table.
//!
//! Redis (`evict.c`) samples `maxmemory-samples` keys per database, keeps the best candidates
//! in a 16-entry pool across calls, and evicts the best of the pool. This does the same over
//! the keyspace's segments: a sample is a random entry of a random segment (the segments are
//! small hash tables, so that is close to uniform), and volatile policies sample the expiry
//! wheel's handles, so they find keys with a TTL however few there are.
//!
//! The score is what Redis calls idle: larger evicts first. LRU: milliseconds since the last
//! access; LFU: 255 minus the decayed counter; TTL: how early the key expires; TinyLFU
//! (`allkeys-tinylfu`, Ember's own): the fewest reads in the keyspace's read history, the
//! least recently used of equals first, among the keys outside the admission window; the key
//! leaving the window is evicted instead unless it was read more often (`admission.rs` says
//! why).
//!
//! [`ember_store::eviction`](crate::eviction) holds the simulated policies (W-TinyLFU, S3-FIFO,
//! SIEVE) used by `ember-bench hitratio`; they work on abstract key ids.

use super::{is_expired, lru_idle_time_ms, Keyspace};
use crate::compact::CompactBytes;
use crate::lfu;
use crate::Entry;

/// Bytes an entry costs beyond its key and value: the table slot and the entry's fields.
pub const ENTRY_OVERHEAD_BYTES: usize =
    std::mem::size_of::<super::Slot>() + std::mem::size_of::<super::PackedBox<super::Slot>>() + 8;

/// Bits of a TinyLFU score below its frequency part, which hold the idle time.
const TINYLFU_FREQUENCY_SHIFT: u32 = 48;

/// Largest idle time a TinyLFU score tells apart (about 8,900 years).
const TINYLFU_IDLE_MS_MAX: u64 = (1 << TINYLFU_FREQUENCY_SHIFT) - 1;

/// Redis's `EVPOOL_SIZE`.
const POOL_SIZE: usize = 16;

/// Most neighbouring entries one draw of [`Keyspace::sample_run`] takes.
const RUN_LEN_MAX: usize = 16;

/// Under `allkeys-tinylfu`, reads by which a candidate leaving the window must outnumber the
/// main space's victim to take its place. The victim is the rarest of a pool of samples, so its
/// estimate is biased low; and the candidate was just read (that read is why it was written),
/// which sets its doorkeeper bit, while a main key not read since the sketch last aged has
/// none. On a loop longer than the cache every key is read equally often, and a margin of 0
/// let most candidates in. Measured through the server (`ember-bench hitratio`, 500,000
/// requests, one run, both margins side by side): `loop` at 30% of the working set 4.41% hits
/// with 0, 10.76% with 1 (Redis's allkeys-lfu 10.51%, Ember's 13.95%); the Zipf cells moved by
/// -0.6 to +0.5 points (0.1% and 1% caches, where runs differ by that much anyway).
const TINYLFU_ADMIT_MARGIN: u64 = 1;

/// Under `allkeys-tinylfu`, draws per wanted sample: keys in the admission window are drawn
/// and skipped, and the window may hold up to 80% of the keys, where five draws find a main
/// key about once. Bounded, so an eviction stays O(samples); the pool keeps its best
/// candidates between evictions, so a short sample now and then costs little.
const TINYLFU_DRAWS_PER_SAMPLE: usize = 5;

/// Which keys may go, and which go first: Redis's `maxmemory-policy` values, less
/// `noeviction` (which evicts nothing).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EvictionPolicy {
    /// allkeys-lru: the least recently used key.
    AllKeysLru,
    /// allkeys-lfu: the least frequently used key.
    AllKeysLfu,
    /// allkeys-random: any key.
    AllKeysRandom,
    /// allkeys-lrm (Redis 8.6): the least recently modified key.
    AllKeysLrm,
    /// volatile-lrm (Redis 8.6): the least recently modified key with a TTL.
    VolatileLrm,
    /// volatile-lru: the least recently used key with a TTL.
    VolatileLru,
    /// volatile-lfu: the least frequently used key with a TTL.
    VolatileLfu,
    /// volatile-random: any key with a TTL.
    VolatileRandom,
    /// volatile-ttl: the key with a TTL that expires first.
    VolatileTtl,
    /// allkeys-tinylfu (Ember's): W-TinyLFU over the keyspace's read history
    /// ([`Keyspace::set_read_history`] must be on): the key read least often outside the
    /// admission window, or the key leaving the window if it was read no more often.
    AllKeysTinyLfu,
}

impl EvictionPolicy {
    /// The policy of a `maxmemory-policy` name; `None` for `noeviction` or an unknown name.
    pub fn from_name(name: &str) -> Option<Self> {
        Some(match name {
            "allkeys-lru" => Self::AllKeysLru,
            "allkeys-lfu" => Self::AllKeysLfu,
            "allkeys-random" => Self::AllKeysRandom,
            "allkeys-lrm" => Self::AllKeysLrm,
            "volatile-lrm" => Self::VolatileLrm,
            "volatile-lru" => Self::VolatileLru,
            "volatile-lfu" => Self::VolatileLfu,
            "volatile-random" => Self::VolatileRandom,
            "volatile-ttl" => Self::VolatileTtl,
            "allkeys-tinylfu" => Self::AllKeysTinyLfu,
            _ => return None,
        })
    }

    fn volatile_only(self) -> bool {
        matches!(
            self,
            Self::VolatileLru
                | Self::VolatileLfu
                | Self::VolatileLrm
                | Self::VolatileRandom
                | Self::VolatileTtl
        )
    }
}

/// A key that was evicted: where it was and about how many bytes it freed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Evicted {
    /// Its database.
    pub db: usize,
    /// Its name.
    pub key: CompactBytes,
    /// Key, value and entry overhead, as [`crate::Value::heap_len`] estimates them.
    pub bytes: usize,
}

/// The candidates kept between evictions (Redis's eviction pool), best last.
#[derive(Debug, Default)]
pub struct EvictionPool {
    candidates: Vec<Candidate>,
    random_state: u64,
}

#[derive(Debug, Clone)]
struct Candidate {
    idle: u64,
    db: usize,
    key: CompactBytes,
}

impl EvictionPool {
    /// An empty pool whose sampling starts from `seed` (any value; 0 is replaced).
    pub fn new(seed: u64) -> Self {
        Self {
            candidates: Vec::with_capacity(POOL_SIZE),
            random_state: seed.max(1),
        }
    }

    fn next_random(&mut self) -> u64 {
        let state = &mut self.random_state;
        *state ^= *state << 13;
        *state ^= *state >> 7;
        *state ^= *state << 17;
        *state
    }

    fn below(&mut self, bound: usize) -> usize {
        (self.next_random() % bound.max(1) as u64) as usize
    }

    /// Inserts a candidate in idle order, keeping the best [`POOL_SIZE`] (evict.c's
    /// `evictionPoolPopulate`): a key already in the pool is not added twice. The key is
    /// copied only when the pool takes it: most samples of a full pool are worse than all it
    /// keeps.
    fn offer(&mut self, idle: u64, db: usize, key: &CompactBytes) {
        let at = self
            .candidates
            .partition_point(|existing| existing.idle <= idle);
        let full = self.candidates.len() == POOL_SIZE;
        if full && at == 0 {
            return; // Worse than everything kept.
        }
        if self
            .candidates
            .iter()
            .any(|c| c.db == db && c.key.as_bytes() == key.as_bytes())
        {
            return;
        }
        let candidate = Candidate {
            idle,
            db,
            key: key.clone(),
        };
        if full {
            self.candidates.remove(0);
            self.candidates.insert(at - 1, candidate);
        } else {
            self.candidates.insert(at, candidate);
        }
    }
}

impl Keyspace {
    /// Evicts one key under `policy`, sampling `samples` keys per database into `pool` first;
    /// `None` when no key may be evicted (an empty keyspace, or no key with a TTL under a
    /// volatile policy): Redis then refuses writes with OOM.
    pub fn evict_one(
        &mut self,
        pool: &mut EvictionPool,
        policy: EvictionPolicy,
        samples: usize,
        now_ms: u64,
    ) -> Option<Evicted> {
        let (db, key) = match policy {
            EvictionPolicy::AllKeysRandom | EvictionPolicy::VolatileRandom => {
                self.random_victim(pool, policy.volatile_only(), now_ms)?
            }
            _ => self.pooled_victim(pool, policy, samples.max(1), now_ms)?,
        };
        let entry = self.remove_entry(db, &key)?;
        let bytes = key.len() + entry.value.heap_len() + ENTRY_OVERHEAD_BYTES;
        Some(Evicted { db, key, bytes })
    }

    /// Ends a round of evictions (memory is under the limit again, or this round's time is
    /// up): under `allkeys-tinylfu`, the keys that left the admission window and were not
    /// judged are admitted to the main space, as Caffeine moves its whole window excess to
    /// probation and judges only while over capacity. Left waiting, they would pile up while
    /// the cache fills (nothing is evicted then) and stay protected for good: a cache of 30
    /// keys held 23 candidates and nothing else, a FIFO.
    pub fn end_eviction_round(&mut self) {
        let keys = self.key_count();
        if let Some(admission) = self.admission.as_mut() {
            admission.admit_waiting(keys);
        }
    }

    /// True when `db` holds a key that `policy` may evict (any key, or one with a TTL under a
    /// volatile policy), expired ones included.
    pub fn has_eviction_candidates(&self, db: usize, policy: EvictionPolicy) -> bool {
        let database = &self.databases[db];
        if policy.volatile_only() {
            database.expiry.volatile() > 0
        } else {
            database.len > 0
        }
    }

    /// Estimated bytes of `key`'s entry (MEMORY USAGE): key, value and entry overhead.
    pub fn entry_bytes(&self, db: usize, key: &[u8], now_ms: u64) -> Option<usize> {
        self.peek(db, key, now_ms)
            .map(|entry| key.len() + entry.value.heap_len() + ENTRY_OVERHEAD_BYTES)
    }

    fn random_victim(
        &mut self,
        pool: &mut EvictionPool,
        volatile: bool,
        now_ms: u64,
    ) -> Option<(usize, CompactBytes)> {
        let start = pool.below(self.databases.len());
        for offset in 0..self.databases.len() {
            let db = (start + offset) % self.databases.len();
            let found = if volatile {
                self.sample_volatile(db, pool)
            } else {
                let mut random = |bound: usize| pool.below(bound);
                self.random_key(db, &mut random, now_ms)
                    .or_else(|| self.any_key(db))
            };
            if let Some(key) = found {
                return Some((db, key));
            }
        }
        None
    }

    /// Any key of `db`, expired or not (an expired key is as good a victim as any).
    fn any_key(&self, db: usize) -> Option<CompactBytes> {
        self.databases[db]
            .segments
            .iter()
            .find_map(|table| table.iter().next().map(|slot| slot.key.clone()))
    }

    fn pooled_victim(
        &mut self,
        pool: &mut EvictionPool,
        policy: EvictionPolicy,
        samples: usize,
        now_ms: u64,
    ) -> Option<(usize, CompactBytes)> {
        if policy == EvictionPolicy::AllKeysTinyLfu && self.admission.is_some() {
            return self.tinylfu_victim(pool, samples, now_ms);
        }
        for db in 0..self.databases.len() {
            if self.databases[db].len == 0 {
                continue;
            }
            if policy.volatile_only() {
                for _ in 0..samples {
                    let Some(key) = self.sample_volatile(db, pool) else {
                        break;
                    };
                    if let Some(idle) = self.idle_score(policy, db, &key, now_ms) {
                        pool.offer(idle, db, &key);
                    }
                }
                continue;
            }
            self.offer_samples(db, pool, policy, samples, samples, now_ms);
        }
        // Best first; a candidate whose key has gone since it was sampled is dropped (Redis's
        // "ghost" entries).
        while let Some(candidate) = pool.candidates.pop() {
            if self.stored_entry(candidate.db, &candidate.key).is_some() {
                return Some((candidate.db, candidate.key));
            }
        }
        None
    }

    /// W-TinyLFU's eviction (`admission.rs`): the main space's victim by sampling, the key
    /// leaving the window as the candidate; the one read less often goes, the candidate on a
    /// tie. With no candidate the victim goes; with no victim (every key in the window) the
    /// window's oldest key.
    fn tinylfu_victim(
        &mut self,
        pool: &mut EvictionPool,
        samples: usize,
        now_ms: u64,
    ) -> Option<(usize, CompactBytes)> {
        let policy = EvictionPolicy::AllKeysTinyLfu;
        for db in 0..self.databases.len() {
            if self.databases[db].len == 0 {
                continue;
            }
            let draws_max = samples * TINYLFU_DRAWS_PER_SAMPLE;
            self.offer_samples(db, pool, policy, samples, draws_max, now_ms);
        }
        self.rescore_pool(pool, now_ms);
        let candidate = self.window_candidate(now_ms);
        // The pool's best; it stays in the pool unless evicted.
        let victim = pool.candidates.last().cloned();
        let evict_victim = match (&candidate, &victim) {
            (Some(candidate), Some(victim)) => {
                // An expired key is the best victim there is (its score says so).
                let candidate_expired = candidate.idle == u64::MAX;
                let victim_expired = victim.idle == u64::MAX;
                let mut victim_reads = self.read_frequency(&victim.key).unwrap_or(0);
                let aged = self
                    .admission
                    .as_mut()
                    .is_some_and(|admission| admission.age_if_saturated(victim_reads));
                if aged {
                    victim_reads = self.read_frequency(&victim.key).unwrap_or(0);
                }
                let candidate_reads = self.read_frequency(&candidate.key).unwrap_or(0);
                victim_expired
                    || (!candidate_expired && candidate_reads > victim_reads + TINYLFU_ADMIT_MARGIN)
            }
            (None, Some(_)) => true,
            (_, None) => false,
        };
        if evict_victim {
            pool.candidates.pop();
            return victim.map(|victim| (victim.db, victim.key));
        }
        if let Some(candidate) = candidate {
            return Some((candidate.db, candidate.key));
        }
        // Every key is in the window: its oldest goes.
        loop {
            let (db, hash) = self.admission.as_mut()?.pop_oldest()?;
            if let Some(key) = self.key_of_hash(db, hash) {
                return Some((db, key));
            }
        }
    }

    /// Offers `pool` up to `samples` entries of `db` drawn in runs of neighbours
    /// ([`Keyspace::sample_run`]), at most `draws_max` drawn: under `allkeys-tinylfu` the keys
    /// in the admission window are drawn and skipped. Each is scored where it lies: no copy of
    /// its key, no second lookup.
    fn offer_samples(
        &self,
        db: usize,
        pool: &mut EvictionPool,
        policy: EvictionPolicy,
        samples: usize,
        draws_max: usize,
        now_ms: u64,
    ) {
        let skip_window = policy == EvictionPolicy::AllKeysTinyLfu;
        let (mut offered, mut drawn) = (0, 0);
        let mut run = [None; RUN_LEN_MAX];
        while offered < samples && drawn < draws_max {
            let len = self.sample_run(db, pool, samples - offered, &mut run);
            if len == 0 {
                break;
            }
            drawn += len;
            for slot in run[..len].iter().flatten() {
                if skip_window && self.in_admission_window(&slot.key) {
                    continue;
                }
                let idle = self.entry_score(policy, &slot.key, &slot.entry, now_ms);
                pool.offer(idle, db, &slot.key);
                offered += 1;
            }
        }
    }

    /// Scores the pool's keys again under `allkeys-tinylfu`, dropping those gone or back in the
    /// admission window. A key's reads go on after it was sampled: a victim kept at the top of
    /// the pool by the score it had then would be judged by its reads now, win every
    /// comparison, and shut the main space to every new key for as long as it stays popular
    /// (in a cache of 20-40 keys, the pool holds most of them). Redis keeps its pool's scores,
    /// but there the stale victim is evicted, not used as the bar; at most [`POOL_SIZE`] keys.
    fn rescore_pool(&self, pool: &mut EvictionPool, now_ms: u64) {
        let policy = EvictionPolicy::AllKeysTinyLfu;
        pool.candidates.retain_mut(|candidate| {
            if self.in_admission_window(&candidate.key) {
                return false;
            }
            match self.idle_score(policy, candidate.db, &candidate.key, now_ms) {
                Some(idle) => {
                    candidate.idle = idle;
                    true
                }
                None => false,
            }
        });
        pool.candidates.sort_by_key(|candidate| candidate.idle);
    }

    /// The oldest key past the admission window that is still stored, taken out of the
    /// window, scored as a victim would be (`u64::MAX` when expired).
    fn window_candidate(&mut self, now_ms: u64) -> Option<Candidate> {
        let keys = self.key_count();
        loop {
            let (db, hash) = self.admission.as_mut()?.next_candidate(keys)?;
            let Some(key) = self.key_of_hash(db, hash) else {
                continue; // Gone since (deleted or expired).
            };
            let policy = EvictionPolicy::AllKeysTinyLfu;
            let Some(idle) = self.idle_score(policy, db, &key, now_ms) else {
                continue;
            };
            return Some(Candidate { idle, db, key });
        }
    }

    /// True when `key` is in the admission window of `allkeys-tinylfu`.
    fn in_admission_window(&self, key: &[u8]) -> bool {
        let (hash, _) = self.locate(key);
        self.admission
            .as_ref()
            .is_some_and(|admission| admission.in_window(hash))
    }

    /// Up to `count` entries of `db` (at most [`RUN_LEN_MAX`]) that lie next to each other in
    /// one random non-empty segment, from a random slot of it on (wrapping), into `run`; how
    /// many. A few random segments are tried, then the segments from a random one on, in order,
    /// so a sparse database (a few keys left in many segments) still yields its keys.
    ///
    /// A segment is a small hash table whose keys are spread by their hash, so neighbours in it
    /// are as random a sample as keys drawn from five segments; Redis's `dictGetSomeKeys`
    /// takes neighbouring buckets too. What it saves is memory latency: a key drawn alone costs
    /// four dependent cache misses (the segment's header, its control bytes, the bucket, the
    /// slot), and at the limit every write evicts, so five of them per write were a quarter of
    /// a shard's time (perf, SETs of 1 KiB at a 24 MB limit). Neighbours share the first three,
    /// and their slots are prefetched together, so their misses overlap.
    fn sample_run<'a>(
        &'a self,
        db: usize,
        pool: &mut EvictionPool,
        count: usize,
        run: &mut [Option<&'a super::Slot>; RUN_LEN_MAX],
    ) -> usize {
        const RANDOM_TRIES: usize = 16;
        let database = &self.databases[db];
        if database.len == 0 || database.segments.is_empty() {
            return 0;
        }
        let segments = database.segments.len();
        let start = pool.below(segments);
        for attempt in 0..RANDOM_TRIES + segments {
            let at = match attempt.checked_sub(RANDOM_TRIES) {
                None => pool.below(segments),
                Some(offset) => (start + offset) % segments,
            };
            let table = &database.segments[at];
            if table.is_empty() {
                continue;
            }
            let len = count.min(RUN_LEN_MAX).min(table.len());
            let first = pool.below(table.len());
            let slots = table.iter().skip(first).chain(table.iter()).take(len);
            for (place, slot) in run.iter_mut().zip(slots) {
                let slot: &super::Slot = slot;
                super::prefetch_read(slot);
                *place = Some(slot);
            }
            return len;
        }
        0
    }

    /// A random key with a TTL of `db` (a random handle of its expiry wheel).
    fn sample_volatile(&self, db: usize, pool: &mut EvictionPool) -> Option<CompactBytes> {
        self.sample_volatile_key(db, || pool.next_random())
            .map(|(key, _)| key)
    }

    /// The eviction score of the stored `key` of `db` under `policy` (larger evicts first);
    /// `None` when it is gone.
    fn idle_score(
        &self,
        policy: EvictionPolicy,
        db: usize,
        key: &[u8],
        now_ms: u64,
    ) -> Option<u64> {
        let entry = self.stored_entry(db, key)?;
        Some(self.entry_score(policy, key, entry, now_ms))
    }

    /// The eviction score of `key`'s `entry` under `policy`: larger evicts first.
    fn entry_score(&self, policy: EvictionPolicy, key: &[u8], entry: &Entry, now_ms: u64) -> u64 {
        if is_expired(entry, now_ms) {
            return u64::MAX; // Already dead: the best victim there is.
        }
        match policy {
            EvictionPolicy::AllKeysLru
            | EvictionPolicy::VolatileLru
            | EvictionPolicy::AllKeysLrm
            | EvictionPolicy::VolatileLrm => lru_idle_time_ms(entry.access, now_ms),
            EvictionPolicy::AllKeysLfu | EvictionPolicy::VolatileLfu => {
                let decay = match self.access_policy {
                    super::AccessPolicy::Lfu {
                        decay_time_minutes, ..
                    } => decay_time_minutes,
                    super::AccessPolicy::Lru | super::AccessPolicy::Lrm => 1,
                };
                let counter = lfu::decayed_counter(entry.access, lfu::minutes(now_ms), decay);
                u64::from(u8::MAX - counter)
            }
            EvictionPolicy::VolatileTtl => u64::MAX - entry.expire_at_ms().unwrap_or(u64::MAX),
            EvictionPolicy::AllKeysTinyLfu => {
                // Fewest reads first; among equals, the longest idle (Redis's LRU clock is
                // whole seconds, so the idle time fits well below the frequency's bits).
                let reads = self.read_frequency(key).unwrap_or(0);
                let rarity = (crate::eviction::sketch::COUNTER_MAX + 1).saturating_sub(reads);
                (rarity << TINYLFU_FREQUENCY_SHIFT)
                    | lru_idle_time_ms(entry.access, now_ms).min(TINYLFU_IDLE_MS_MAX)
            }
            EvictionPolicy::AllKeysRandom | EvictionPolicy::VolatileRandom => 0,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keyspace::AccessPolicy;
    use crate::Value;

    fn filled(keys: usize, ttl_every: usize) -> Keyspace {
        let mut keyspace = Keyspace::new();
        for i in 0..keys {
            let expire = (ttl_every > 0 && i % ttl_every == 0).then_some(1_000_000 + i as u64);
            keyspace.insert(
                0,
                format!("k{i}").as_bytes(),
                Value::from_bytes(b"v"),
                expire,
                0,
            );
        }
        keyspace
    }

    #[test]
    fn every_policy_evicts_until_empty() {
        let policies = [
            EvictionPolicy::AllKeysLru,
            EvictionPolicy::AllKeysLfu,
            EvictionPolicy::AllKeysRandom,
            EvictionPolicy::VolatileLru,
            EvictionPolicy::VolatileLfu,
            EvictionPolicy::VolatileRandom,
            EvictionPolicy::VolatileTtl,
            EvictionPolicy::AllKeysLrm,
            EvictionPolicy::VolatileLrm,
            EvictionPolicy::AllKeysTinyLfu,
        ];
        for policy in policies {
            let mut keyspace = filled(200, 4);
            keyspace.set_read_history(policy == EvictionPolicy::AllKeysTinyLfu);
            let mut pool = EvictionPool::new(7);
            let mut evicted = 0;
            while let Some(victim) = keyspace.evict_one(&mut pool, policy, 5, 10) {
                assert!(victim.bytes >= victim.key.len() + ENTRY_OVERHEAD_BYTES);
                evicted += 1;
                assert!(evicted <= 200, "{policy:?} evicts more keys than exist");
            }
            let expected = if policy.volatile_only() { 50 } else { 200 };
            assert_eq!(evicted, expected, "{policy:?}");
            assert_eq!(keyspace.len(0), 200 - expected, "{policy:?}");
        }
    }

    #[test]
    fn lru_keeps_recently_read_keys() {
        // Keys written at t=0, half of them read an hour later: evicting half under allkeys-lru
        // with 10 samples takes mostly unread keys. Random eviction would keep about 250 read
        // keys; sampling misses only near the end, when few unread keys are left to sample
        // (Redis's approximation does the same).
        let mut keyspace = filled(1000, 0);
        let hour_ms = 3_600_000;
        for i in (0..1000).step_by(2) {
            keyspace.get(0, format!("k{i}").as_bytes(), hour_ms);
        }
        let mut pool = EvictionPool::new(3);
        for _ in 0..500 {
            keyspace.evict_one(&mut pool, EvictionPolicy::AllKeysLru, 10, hour_ms);
        }
        let read_kept = (0..1000)
            .step_by(2)
            .filter(|i| {
                keyspace
                    .peek(0, format!("k{i}").as_bytes(), hour_ms)
                    .is_some()
            })
            .count();
        assert!(
            read_kept >= 400,
            "only {read_kept} of 500 recently read keys kept"
        );
    }

    #[test]
    fn lrm_keeps_recently_written_keys_not_read_ones() {
        // Under allkeys-lrm reads do not count: half the keys read an hour later, the other
        // half rewritten then; eviction takes the read-only ones.
        let mut keyspace = filled(1000, 0);
        keyspace.set_access_policy(AccessPolicy::Lrm);
        let hour_ms = 3_600_000;
        for i in 0..1000 {
            let key = format!("k{i}");
            if i % 2 == 0 {
                keyspace.get(0, key.as_bytes(), hour_ms);
            } else {
                keyspace.insert(0, key.as_bytes(), Value::from_bytes(b"w"), None, hour_ms);
            }
        }
        let mut pool = EvictionPool::new(11);
        for _ in 0..500 {
            keyspace.evict_one(&mut pool, EvictionPolicy::AllKeysLrm, 10, hour_ms);
        }
        let written_kept = (1..1000)
            .step_by(2)
            .filter(|i| {
                keyspace
                    .peek(0, format!("k{i}").as_bytes(), hour_ms)
                    .is_some()
            })
            .count();
        assert!(
            written_kept >= 400,
            "only {written_kept} of 500 rewritten keys kept"
        );
    }

    #[test]
    fn lfu_keeps_frequently_read_keys() {
        let mut keyspace = filled(1000, 0);
        keyspace.set_access_policy(AccessPolicy::Lfu {
            log_factor: 0,
            decay_time_minutes: 1,
        });
        for i in (0..1000).step_by(2) {
            for _ in 0..20 {
                keyspace.get(0, format!("k{i}").as_bytes(), 0);
            }
        }
        let mut pool = EvictionPool::new(5);
        for _ in 0..500 {
            keyspace.evict_one(&mut pool, EvictionPolicy::AllKeysLfu, 10, 0);
        }
        let hot_kept = (0..1000)
            .step_by(2)
            .filter(|i| keyspace.peek(0, format!("k{i}").as_bytes(), 0).is_some())
            .count();
        assert!(
            hot_kept >= 400,
            "only {hot_kept} of 500 frequently read keys kept"
        );
    }

    /// Writes `keys` keys `k0..` at 0 into `keyspace`, then reads key `ki` `reads(i)` times at
    /// `reads_at_ms`.
    fn fill_and_read(
        keyspace: &mut Keyspace,
        keys: usize,
        reads: impl Fn(usize) -> usize,
        reads_at_ms: u64,
    ) {
        for i in 0..keys {
            keyspace.insert(
                0,
                format!("k{i}").as_bytes(),
                Value::from_bytes(b"v"),
                None,
                0,
            );
        }
        for i in 0..keys {
            for _ in 0..reads(i) {
                keyspace.get(0, format!("k{i}").as_bytes(), reads_at_ms);
            }
        }
    }

    #[test]
    fn tinylfu_cases() {
        const HOUR_MS: u64 = 3_600_000;
        struct Case {
            name: &'static str,
            /// Reads of each `k{i}` of 1,000, at 0.
            reads: fn(usize) -> usize,
            /// Misses of `comeback` before it is written, and when they and the write happen
            /// (the reads of `k0..` happen an hour after 0).
            comeback_misses: usize,
            comeback_at_ms: u64,
            /// Keys evicted, an hour later.
            evictions: usize,
            /// Which of `k0..k999` must be kept, and how many of them at least.
            kept: fn(usize) -> bool,
            kept_min: usize,
            /// Whether `comeback` must still be there (`None`: either way).
            comeback_kept: Option<bool>,
        }
        let cases = [
            Case {
                // Every hot key has more reads than every cold one: sampling finds cold keys
                // until few are left (then a sample of five may hold none, as in Redis: 480
                // kept with this seed; random eviction would keep about 300).
                name: "frequently read keys stay",
                reads: |i| if i % 2 == 0 { 5 } else { 0 },
                comeback_misses: 0,
                comeback_at_ms: HOUR_MS,
                evictions: 400,
                kept: |i| i % 2 == 0,
                kept_min: 450,
                comeback_kept: None,
            },
            Case {
                // The history half: a key asked for while absent comes back with its reads
                // counted, where Redis's LFU would start it at LFU_INIT_VAL, below the keys read
                // since (and LRU would take it first: it is the least recently used).
                name: "a key read while absent keeps its place",
                reads: |_| 1,
                comeback_misses: 8,
                comeback_at_ms: 0,
                evictions: 500,
                kept: |_| false,
                kept_min: 0,
                comeback_kept: Some(true),
            },
        ];
        for case in cases {
            let name = case.name;
            let mut keyspace = Keyspace::new();
            keyspace.set_read_history(true);
            let comeback = |keyspace: &mut Keyspace| {
                for _ in 0..case.comeback_misses {
                    let missed = keyspace.get(0, b"comeback", case.comeback_at_ms).is_none();
                    assert!(missed, "{name}");
                }
                let value = Value::from_bytes(b"v");
                keyspace.insert(0, b"comeback", value, None, case.comeback_at_ms);
            };
            if case.comeback_at_ms == 0 {
                comeback(&mut keyspace);
            }
            fill_and_read(&mut keyspace, 1_000, case.reads, HOUR_MS);
            if case.comeback_at_ms != 0 {
                comeback(&mut keyspace);
            }
            let mut pool = EvictionPool::new(13);
            for _ in 0..case.evictions {
                let victim = keyspace
                    .evict_one(&mut pool, EvictionPolicy::AllKeysTinyLfu, 5, HOUR_MS)
                    .expect("a victim");
                assert!(victim.bytes >= victim.key.len() + ENTRY_OVERHEAD_BYTES);
            }
            assert_eq!(keyspace.len(0), 1_001 - case.evictions, "{name}");
            let kept = (0..1_000)
                .filter(|&i| (case.kept)(i))
                .filter(|i| {
                    keyspace
                        .peek(0, format!("k{i}").as_bytes(), HOUR_MS)
                        .is_some()
                })
                .count();
            assert!(kept >= case.kept_min, "{name}: {kept} kept");
            if let Some(comeback_kept) = case.comeback_kept {
                let kept = keyspace.peek(0, b"comeback", HOUR_MS).is_some();
                assert_eq!(kept, comeback_kept, "{name}");
            }
        }
    }

    #[test]
    fn tinylfu_admits_what_a_round_did_not_judge() {
        // A small cache fills (nothing is evicted, so every new key waits past its window of
        // 0 keys), then one round evicts one key. The 29 keys it did not judge are main keys
        // from then on: sampling may take them, and the next new key is judged alone. Left
        // waiting, they stayed protected for good and the cache was a FIFO of its new keys.
        let mut keyspace = Keyspace::new();
        keyspace.set_read_history(true);
        for i in 0..31 {
            keyspace.insert(
                0,
                format!("k{i}").as_bytes(),
                Value::from_bytes(b"v"),
                None,
                0,
            );
        }
        let waiting = |keyspace: &Keyspace| keyspace.admission_window().expect("on").candidates;
        assert_eq!(waiting(&keyspace), 31);
        let mut pool = EvictionPool::new(5);
        let evicted = keyspace
            .evict_one(&mut pool, EvictionPolicy::AllKeysTinyLfu, 5, 0)
            .expect("a victim");
        assert_eq!(
            evicted.key.as_bytes(),
            b"k0",
            "the oldest, judged against no main key"
        );
        assert_eq!(waiting(&keyspace), 30);
        keyspace.end_eviction_round();
        assert_eq!(waiting(&keyspace), 0);
        // A key read often is now the main space's to keep: a new key never read goes.
        for _ in 0..4 {
            keyspace.get(0, b"k7", 0);
        }
        keyspace.insert(0, b"new", Value::from_bytes(b"v"), None, 0);
        let evicted = keyspace
            .evict_one(&mut pool, EvictionPolicy::AllKeysTinyLfu, 5, 0)
            .expect("a victim");
        keyspace.end_eviction_round();
        assert_ne!(evicted.key.as_bytes(), b"k7");
        assert!(keyspace.peek(0, b"k7", 0).is_some());
    }

    #[test]
    fn tinylfu_halves_its_history_when_the_victims_reads_are_saturated() {
        // A keyspace that once held 100,000 keys counts 655,360 reads between two halvings;
        // in a cache of 30 keys read hundreds of times each, every estimate is saturated and
        // judgements are ties. The first judgement that finds its victim saturated halves the
        // sketch; one whose victim is not leaves it.
        let mut keyspace = Keyspace::new();
        keyspace.set_read_history(true);
        let insert = |keyspace: &mut Keyspace, range: std::ops::Range<u32>| {
            for i in range {
                let key = format!("k{i}");
                keyspace.insert(0, key.as_bytes(), Value::from_bytes(b"v"), None, 0);
            }
        };
        insert(&mut keyspace, 0..100_000);
        keyspace.flush_all();
        insert(&mut keyspace, 0..30);
        let mut pool = EvictionPool::new(5);
        keyspace.evict_one(&mut pool, EvictionPolicy::AllKeysTinyLfu, 5, 0);
        keyspace.end_eviction_round();
        for _ in 0..300 {
            for i in 0..30 {
                keyspace.get(0, format!("k{i}").as_bytes(), 0);
            }
        }
        let saturated = crate::eviction::sketch::COUNTER_MAX;
        assert!(keyspace.read_frequency(b"k1").unwrap() >= saturated);
        insert(&mut keyspace, 30..31);
        keyspace.evict_one(&mut pool, EvictionPolicy::AllKeysTinyLfu, 5, 0);
        keyspace.end_eviction_round();
        let halved = keyspace.read_frequency(b"k1").unwrap();
        assert!(halved <= saturated / 2 + 1, "{halved}");
        // Unsaturated victims leave the history as it is.
        insert(&mut keyspace, 31..32);
        keyspace.evict_one(&mut pool, EvictionPolicy::AllKeysTinyLfu, 5, 0);
        keyspace.end_eviction_round();
        assert_eq!(keyspace.read_frequency(b"k1").unwrap(), halved);
    }

    /// A full cache of 1,000 keys, each read 3 times, then `new_keys` keys written one at a
    /// time, each read `new_reads` times right after its write and followed by one eviction,
    /// as a server at its limit does. Returns (residents kept, new keys kept).
    fn tinylfu_window_run(new_keys: usize, new_reads: usize) -> (usize, usize) {
        let mut keyspace = Keyspace::new();
        fill_and_read(&mut keyspace, 1_000, |_| 0, 0);
        // The history starts after the fill, so the residents are main keys, not window keys.
        keyspace.set_read_history(true);
        for i in 0..1_000 {
            for _ in 0..3 {
                keyspace.get(0, format!("k{i}").as_bytes(), 0);
            }
        }
        let mut pool = EvictionPool::new(17);
        for i in 0..new_keys {
            let key = format!("n{i}");
            keyspace.insert(0, key.as_bytes(), Value::from_bytes(b"v"), None, 0);
            for _ in 0..new_reads {
                assert!(keyspace.get(0, key.as_bytes(), 0).is_some());
            }
            keyspace
                .evict_one(&mut pool, EvictionPolicy::AllKeysTinyLfu, 5, 0)
                .expect("a victim");
        }
        assert_eq!(keyspace.len(0), 1_000);
        let held = |prefix: &str, count: usize| {
            (0..count)
                .filter(|i| {
                    keyspace
                        .peek(0, format!("{prefix}{i}").as_bytes(), 0)
                        .is_some()
                })
                .count()
        };
        (held("k", 1_000), held("n", new_keys))
    }

    #[test]
    fn tinylfu_window_cases() {
        struct Case {
            name: &'static str,
            new_reads: usize,
            /// Residents and new keys kept (of 1,000 and 300), at least and at most.
            residents_kept: std::ops::RangeInclusive<usize>,
            new_kept: std::ops::RangeInclusive<usize>,
        }
        let cases = [
            Case {
                // The window (1% of 1,000 keys) holds the 10 newest; each key pushed out of it
                // is rarer than the main space's victim and goes. The first ten evictions, with
                // no candidate yet, took residents.
                name: "keys never read are refused when they leave the window",
                new_reads: 0,
                residents_kept: 990..=990,
                new_kept: 10..=10,
            },
            Case {
                // Ties keep the resident (Caffeine's `admit`): what holds part of a loop.
                name: "keys read as often as the residents are refused",
                new_reads: 3,
                residents_kept: 990..=990,
                new_kept: 10..=10,
            },
            Case {
                name: "keys read more often than the residents are admitted",
                new_reads: 5,
                residents_kept: 700..=700,
                new_kept: 300..=300,
            },
        ];
        for case in cases {
            let (residents, new) = tinylfu_window_run(300, case.new_reads);
            assert!(
                case.residents_kept.contains(&residents) && case.new_kept.contains(&new),
                "{}: {residents} residents and {new} new keys kept",
                case.name
            );
        }
    }

    /// Replays `requests` requests of `next_key` through a keyspace under `allkeys-tinylfu`
    /// held at 1,000 keys (GET, then SET on a miss, then evict down to the limit), and returns
    /// the admission window's share of the keys, in millionths, and the hit ratio.
    fn tinylfu_climb(requests: u64, mut next_key: impl FnMut(u64) -> u64) -> (u64, f64) {
        let mut keyspace = Keyspace::new();
        keyspace.set_read_history(true);
        let mut pool = EvictionPool::new(23);
        let mut hits = 0;
        for request in 0..requests {
            let key = next_key(request).to_string();
            let now_ms = request / 100;
            if keyspace.get(0, key.as_bytes(), now_ms).is_some() {
                hits += 1;
                continue;
            }
            keyspace.insert(0, key.as_bytes(), Value::from_bytes(b"v"), None, now_ms);
            while keyspace.len(0) > 1_000 {
                keyspace
                    .evict_one(&mut pool, EvictionPolicy::AllKeysTinyLfu, 5, now_ms)
                    .expect("a victim");
            }
        }
        let admission = keyspace.admission.as_ref().expect("history on");
        assert!(admission.window_len() <= admission.window_max_keys(1_000) + 128);
        (admission.window_share_ppm(), hits as f64 / requests as f64)
    }

    #[test]
    fn the_climber_grows_the_window_for_recency_and_shrinks_it_for_frequency() {
        // Recency: each key is read three times, 50 and 100 steps apart, then never again. A
        // window of 1% (10 keys) refuses every key before its second read; one of a hundred
        // keys or more catches both rereads. The climber steps once per sketch sample (65536
        // reads), so the trace is 1.2 million requests long.
        let (recency_share_ppm, recency_hit_ratio) = tinylfu_climb(1_200_000, |request| {
            let step = request / 3 + 100;
            step - 50 * (request % 3)
        });
        println!("recency: window {recency_share_ppm} ppm, hit ratio {recency_hit_ratio:.3}");
        assert!(
            recency_share_ppm >= 100_000,
            "window {recency_share_ppm} ppm of the keys after a recency trace"
        );
        // Frequency: half the requests read 990 hot keys in turn, the other half keys never
        // seen again. The main space must hold the 990 hot keys, so every key of window past
        // the first ten costs hot hits: the climber's first step shrinks the window and the
        // hit ratio says to keep it small. (On a static Zipf trace the hit ratio barely moves
        // with the window, and the climber wanders: measured, 0.4% to 15.5% of the keys by
        // the keyspace's random hash seed, for the same hit ratio within 0.1 point.)
        //
        // The keyspace's hash seed is random, and on this trace too the climber took the
        // window the wrong way on about one seed in seven (measured, 40 runs of this trace:
        // 6 ended at 10-27% of the keys, 34 at 0), so three keyspaces climb and the smallest
        // window is held to the bound: about three runs in a thousand fail it.
        let mut frequency_shares_ppm = Vec::new();
        for _seed in 0..3 {
            let (share_ppm, hit_ratio) = tinylfu_climb(1_200_000, |request| {
                if request % 2 == 0 {
                    (request / 2) % 990
                } else {
                    1_000_000 + request
                }
            });
            println!("frequency: window {share_ppm} ppm, hit ratio {hit_ratio:.3}");
            // At most 0.5 (the hot half); measured 0.405-0.439: hot keys evicted while the
            // sketch learned them, and ties between hot keys.
            assert!(
                hit_ratio > 0.4,
                "hit ratio {hit_ratio:.3} on a trace whose hot half fits"
            );
            frequency_shares_ppm.push(share_ppm);
        }
        let frequency_share_ppm = *frequency_shares_ppm.iter().min().expect("three climbs");
        assert!(
            frequency_share_ppm < recency_share_ppm / 2,
            "windows {frequency_shares_ppm:?} ppm after a frequency trace, {recency_share_ppm} \
             after a recency trace"
        );
    }

    #[test]
    fn read_history_is_bounded_and_follows_the_keyspace() {
        let mut keyspace = Keyspace::new();
        assert_eq!(keyspace.read_frequency(b"k"), None);
        keyspace.set_read_history(true);
        assert!(keyspace.has_read_history());
        let history = |keyspace: &Keyspace| keyspace.admission.as_ref().unwrap().sized_for();
        assert_eq!(history(&keyspace), 1 << 10, "the smallest sketch");
        for i in 0..5_000 {
            keyspace.insert(
                0,
                format!("k{i}").as_bytes(),
                Value::from_bytes(b"v"),
                None,
                0,
            );
        }
        // Outgrown at 1,025 keys and rebuilt for twice the keys (2,050), then at 2,051 (4,102)
        // and 4,103 (8,206): always sized for at least the keys held.
        assert_eq!(history(&keyspace), 8_206);
        assert!(history(&keyspace) >= keyspace.key_count() as u64);
        for _ in 0..3 {
            keyspace.get(0, b"k1", 0);
        }
        assert_eq!(keyspace.read_frequency(b"k1"), Some(3));
        assert_eq!(
            super::super::admission::Admission::new(usize::MAX).sized_for(),
            super::super::admission::SKETCH_ENTRIES_MAX
        );
        let sketch = crate::eviction::sketch::FrequencySketch::new(
            super::super::admission::SKETCH_ENTRIES_MAX,
            1,
        );
        // Four rows of 8-bit counters, and the doorkeeper's bits: 1.5 MiB at most.
        let counter_bytes = crate::eviction::sketch::DEPTH as u64 * sketch.width();
        let doorkeeper_bytes = (sketch.sample_size()
            * crate::eviction::sketch::DOORKEEPER_BITS_PER_SAMPLE)
            .next_power_of_two()
            / 8;
        assert!(counter_bytes + doorkeeper_bytes <= 3 << 19);
        keyspace.set_read_history(false);
        assert_eq!(keyspace.read_frequency(b"k1"), None);
    }

    #[test]
    fn volatile_ttl_evicts_the_earliest_expiry_first() {
        let mut keyspace = filled(100, 1);
        let mut pool = EvictionPool::new(9);
        let victim = keyspace
            .evict_one(&mut pool, EvictionPolicy::VolatileTtl, 64, 0)
            .unwrap();
        // 64 samples of 100 keys: the victim is among the earliest few.
        let index: usize = std::str::from_utf8(&victim.key[1..])
            .unwrap()
            .parse()
            .unwrap();
        assert!(index < 20, "evicted k{index}");
    }

    #[test]
    fn volatile_policies_leave_persistent_keys() {
        let mut keyspace = filled(10, 0);
        assert!(!keyspace.has_eviction_candidates(0, EvictionPolicy::VolatileLru));
        assert!(keyspace.has_eviction_candidates(0, EvictionPolicy::AllKeysLru));
        assert!(!keyspace.has_eviction_candidates(1, EvictionPolicy::AllKeysLru));
        let mut pool = EvictionPool::new(1);
        assert_eq!(
            keyspace.evict_one(&mut pool, EvictionPolicy::VolatileLru, 5, 0),
            None
        );
        assert_eq!(keyspace.len(0), 10);
    }

    #[test]
    fn policy_names() {
        assert_eq!(
            EvictionPolicy::from_name("allkeys-lru"),
            Some(EvictionPolicy::AllKeysLru)
        );
        assert_eq!(
            EvictionPolicy::from_name("allkeys-tinylfu"),
            Some(EvictionPolicy::AllKeysTinyLfu)
        );
        assert_eq!(EvictionPolicy::from_name("noeviction"), None);
    }
}
