//! The GPU embedding cache's host-side bookkeeping: which embedding rows are resident in a GPU table, in which
//! slot, which row to evict (least recently used), and which rows a write invalidates.
//!
//! The cache holds up to `capacity_rows` rows of `row_bytes` each in one device table (slot `s` at byte
//! `s * row_bytes`). A RECOMMEND resolves its row keys to slots ([`RowCache::resolve`]): a hit names the slot
//! the embedding-bag kernel reads; a miss reserves a slot (a free one, or the least recently used row's) that the
//! caller fills with the row read from the keyspace before the kernel runs, so only missing rows cross PCIe.
//! Every write or removal of a key drops its row ([`CacheInvalidator`], a [`KeyObserver`]), so a training
//! pipeline's SET is seen by the next request, which reads the new value from the keyspace.
//!
//! Everything here is plain bookkeeping on the shard's thread (no device calls), so it is tested without a GPU;
//! the device table and its uploads belong to the backend.
//! [`super::device_rows`] joins this bookkeeping to the device table and is what RECOMMEND calls.

use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::Rc;

use ember_store::{ExpireAtMs, KeyObserver, Value};

/// The slot index meaning "none" in the LRU links.
const NO_SLOT: u32 = u32::MAX;
/// Most rows one cache holds: slots are u32 and one is reserved for [`NO_SLOT`]; far above any GPU's memory for
/// 256-byte rows anyway (2^32 x 256 B = 1 TiB).
pub const CAPACITY_ROWS_MAX: usize = (u32::MAX - 1) as usize;

/// Counters for INFO, AI.INFO and /metrics.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RowCacheStats {
    /// Row lookups that found the row resident.
    pub hits: u64,
    /// Row lookups that did not (each one is a row copied to the device).
    pub misses: u64,
    /// Resident rows dropped to make room.
    pub evictions: u64,
    /// Resident rows dropped because their key was written or removed.
    pub invalidations: u64,
    /// Rows resident now.
    pub resident_rows: u64,
    /// Bytes of device memory those rows fill.
    pub resident_bytes: u64,
    /// Bytes of device memory the table holds (capacity x row size).
    pub capacity_bytes: u64,
    /// RECOMMEND chunks scored from slots of the table (the engine's `score_slots`: rows stay on the device).
    pub slot_calls: u64,
    /// Candidates those chunks scored.
    pub slot_samples: u64,
    /// Chunks meant for the slot path that took the pooled path (a row the cache does not keep, or a device
    /// error); their replies are the pooled path's.
    pub slot_fallbacks: u64,
}

impl RowCacheStats {
    /// hits / (hits + misses), 0 before any lookup.
    pub fn hit_ratio(&self) -> f64 {
        let lookups = self.hits + self.misses;
        if lookups == 0 {
            0.0
        } else {
            self.hits as f64 / lookups as f64
        }
    }

    /// The counters as INFO lines (`gpu_cache_hits:12`), in a fixed order.
    pub fn info_lines(&self) -> Vec<(&'static str, String)> {
        vec![
            ("gpu_cache_hits", self.hits.to_string()),
            ("gpu_cache_misses", self.misses.to_string()),
            ("gpu_cache_hit_ratio", format!("{:.4}", self.hit_ratio())),
            ("gpu_cache_evictions", self.evictions.to_string()),
            ("gpu_cache_invalidations", self.invalidations.to_string()),
            ("gpu_cache_resident_rows", self.resident_rows.to_string()),
            ("gpu_cache_resident_bytes", self.resident_bytes.to_string()),
            ("gpu_cache_capacity_bytes", self.capacity_bytes.to_string()),
            ("gpu_slot_calls", self.slot_calls.to_string()),
            ("gpu_slot_samples", self.slot_samples.to_string()),
            ("gpu_slot_fallbacks", self.slot_fallbacks.to_string()),
        ]
    }

    /// Adds another shard's counters (every figure is a sum).
    pub fn add(&mut self, other: &RowCacheStats) {
        self.hits += other.hits;
        self.misses += other.misses;
        self.evictions += other.evictions;
        self.invalidations += other.invalidations;
        self.resident_rows += other.resident_rows;
        self.resident_bytes += other.resident_bytes;
        self.capacity_bytes += other.capacity_bytes;
        self.slot_calls += other.slot_calls;
        self.slot_samples += other.slot_samples;
        self.slot_fallbacks += other.slot_fallbacks;
    }
}

/// One slot: the row's key and its place in the recency list.
#[derive(Clone, Debug)]
struct Slot {
    db: usize,
    key: Box<[u8]>,
    /// Towards the most recently used end.
    newer: u32,
    /// Towards the least recently used end.
    older: u32,
    /// The [`RowCache::resolve`] call that last used it: such a slot is never evicted by the same call, whose
    /// kernel is about to read it.
    request: u64,
}

/// Where one key of a request reads its row.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RowSlot {
    /// Resident: the kernel reads slot `.0`.
    Hit(u32),
    /// Not resident: the caller copies the row into slot `.0` first.
    Miss(u32),
}

impl RowSlot {
    /// The slot, hit or miss.
    pub fn slot(self) -> u32 {
        match self {
            RowSlot::Hit(slot) | RowSlot::Miss(slot) => slot,
        }
    }
}

/// Why a request cannot be served from the cache (the caller then uses the CPU path).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ResolveError {
    /// The request needs more distinct rows than the cache holds.
    CapacityExceeded {
        /// The cache's capacity in rows.
        capacity_rows: usize,
    },
}

/// The bookkeeping of one shard's device row table. See the module docs.
#[derive(Debug)]
pub struct RowCache {
    capacity_rows: usize,
    row_bytes: usize,
    /// Per database, each resident key's slot. One map per database (not one keyed by `(db, key)`), so that a
    /// lookup borrows the key instead of allocating a copy: RECOMMEND looks up 26 rows a candidate, and the
    /// observer looks up every key the shard writes.
    slot_by_key: Vec<HashMap<Box<[u8]>, u32>>,
    slots: Vec<Slot>,
    free: Vec<u32>,
    newest: u32,
    oldest: u32,
    request: u64,
    stats: RowCacheStats,
}

impl RowCache {
    /// A cache of `capacity_rows` rows of `row_bytes` each (0 rows: every lookup misses and nothing is kept).
    ///
    /// # Panics
    /// When `capacity_rows` is over [`CAPACITY_ROWS_MAX`] (configuration checks it first).
    pub fn new(capacity_rows: usize, row_bytes: usize) -> RowCache {
        assert!(
            capacity_rows <= CAPACITY_ROWS_MAX,
            "capacity {capacity_rows} rows"
        );
        RowCache {
            capacity_rows,
            row_bytes,
            slot_by_key: Vec::new(),
            slots: Vec::new(),
            free: Vec::new(),
            newest: NO_SLOT,
            oldest: NO_SLOT,
            request: 0,
            stats: RowCacheStats {
                capacity_bytes: (capacity_rows * row_bytes) as u64,
                ..RowCacheStats::default()
            },
        }
    }

    /// The counters, with the resident figures as of now.
    pub fn stats(&self) -> RowCacheStats {
        let resident = self.resident_rows();
        RowCacheStats {
            resident_rows: resident as u64,
            resident_bytes: (resident * self.row_bytes) as u64,
            ..self.stats
        }
    }

    fn resident_rows(&self) -> usize {
        self.slot_by_key.iter().map(HashMap::len).sum()
    }

    /// The slot of `key` in `db` when it is resident.
    fn slot_of(&self, db: usize, key: &[u8]) -> Option<u32> {
        self.slot_by_key.get(db)?.get(key).copied()
    }

    /// `db`'s map, created on first use.
    fn database_mut(&mut self, db: usize) -> &mut HashMap<Box<[u8]>, u32> {
        if self.slot_by_key.len() <= db {
            self.slot_by_key.resize_with(db + 1, HashMap::new);
        }
        &mut self.slot_by_key[db]
    }

    /// The slot of `key` in `db` when it is resident, without counting or touching it.
    pub fn peek(&self, db: usize, key: &[u8]) -> Option<u32> {
        self.slot_of(db, key)
    }

    /// The slot each of `keys` (in `db`) reads from, in order; a key repeated in `keys` reads the same slot, and
    /// only its first occurrence can be a miss. Every key used becomes the most recently used.
    ///
    /// # Errors
    /// [`ResolveError::CapacityExceeded`] when the keys need more distinct rows than the cache holds; the cache
    /// then keeps what it held: hits before the error stay, as recently used, and the slots reserved for this
    /// call's misses are freed again (their rows were never copied, so no later call may read them).
    pub fn resolve<'a>(
        &mut self,
        db: usize,
        keys: impl IntoIterator<Item = &'a [u8]>,
    ) -> Result<Vec<RowSlot>, ResolveError> {
        self.request += 1;
        let mut slots = Vec::new();
        for key in keys {
            match self.resolve_one(db, key) {
                Ok(slot) => slots.push(slot),
                Err(error) => {
                    for slot in slots {
                        if let RowSlot::Miss(slot) = slot {
                            self.release(slot);
                        }
                    }
                    return Err(error);
                }
            }
        }
        Ok(slots)
    }

    /// Frees `slot`, reserved by a [`RowSlot::Miss`] whose row the caller could not copy (the key holds no row
    /// the cache keeps, or the copy failed), so that no later call reads it as a hit. Not counted as an eviction
    /// or an invalidation. A slot already free is left alone (a key repeated in one call has one slot).
    pub fn release(&mut self, slot: u32) {
        let resident = self
            .slots
            .get(slot as usize)
            .is_some_and(|entry| self.slot_of(entry.db, &entry.key) == Some(slot));
        if resident {
            self.drop_slot(slot);
        }
    }

    fn resolve_one(&mut self, db: usize, key: &[u8]) -> Result<RowSlot, ResolveError> {
        if let Some(slot) = self.slot_of(db, key) {
            let repeated = self.slots[slot as usize].request == self.request;
            self.touch(slot);
            if !repeated {
                self.stats.hits += 1;
            }
            return Ok(RowSlot::Hit(slot));
        }
        let slot = self.take_slot()?;
        self.stats.misses += 1;
        let entry = &mut self.slots[slot as usize];
        entry.db = db;
        entry.key = Box::from(key);
        self.database_mut(db).insert(Box::from(key), slot);
        self.link_newest(slot);
        Ok(RowSlot::Miss(slot))
    }

    /// A free slot, a never-used one, or the least recently used row's (unless this request uses it).
    fn take_slot(&mut self) -> Result<u32, ResolveError> {
        let exceeded = ResolveError::CapacityExceeded {
            capacity_rows: self.capacity_rows,
        };
        if let Some(slot) = self.free.pop() {
            return Ok(slot);
        }
        if self.slots.len() < self.capacity_rows {
            self.slots.push(Slot {
                db: 0,
                key: Box::from(&b""[..]),
                newer: NO_SLOT,
                older: NO_SLOT,
                request: 0,
            });
            return Ok((self.slots.len() - 1) as u32);
        }
        let victim = self.oldest;
        if victim == NO_SLOT || self.slots[victim as usize].request == self.request {
            // Everything resident is used by this request (the oldest is, so all newer ones are).
            return Err(exceeded);
        }
        self.drop_slot(victim);
        self.stats.evictions += 1;
        Ok(self.free.pop().expect("the victim's slot was just freed"))
    }

    /// Drops `key`'s row in `db` because the key changed; true when it was resident.
    pub fn invalidate(&mut self, db: usize, key: &[u8]) -> bool {
        match self.slot_of(db, key) {
            Some(slot) => {
                self.drop_slot(slot);
                self.stats.invalidations += 1;
                true
            }
            None => false,
        }
    }

    /// Drops every row of `db` (FLUSHDB, FLUSHALL, SWAPDB).
    pub fn invalidate_database(&mut self, db: usize) {
        let slots: Vec<u32> = self
            .slot_by_key
            .get(db)
            .map(|keys| keys.values().copied().collect())
            .unwrap_or_default();
        for slot in slots {
            self.drop_slot(slot);
            self.stats.invalidations += 1;
        }
    }

    fn drop_slot(&mut self, slot: u32) {
        self.unlink(slot);
        let entry = &mut self.slots[slot as usize];
        let (db, key) = (entry.db, std::mem::take(&mut entry.key));
        entry.request = 0;
        let removed = self
            .slot_by_key
            .get_mut(db)
            .and_then(|keys| keys.remove(&key));
        assert_eq!(removed, Some(slot), "the map and the slot agree on the key");
        self.free.push(slot);
    }

    fn touch(&mut self, slot: u32) {
        self.slots[slot as usize].request = self.request;
        if self.newest != slot {
            self.unlink(slot);
            self.link_newest(slot);
        }
    }

    fn link_newest(&mut self, slot: u32) {
        let old_newest = self.newest;
        let entry = &mut self.slots[slot as usize];
        entry.older = old_newest;
        entry.newer = NO_SLOT;
        entry.request = self.request;
        if old_newest != NO_SLOT {
            self.slots[old_newest as usize].newer = slot;
        } else {
            self.oldest = slot;
        }
        self.newest = slot;
    }

    fn unlink(&mut self, slot: u32) {
        let (newer, older) = {
            let entry = &self.slots[slot as usize];
            (entry.newer, entry.older)
        };
        if newer != NO_SLOT {
            self.slots[newer as usize].older = older;
        } else {
            assert_eq!(self.newest, slot, "only the newest has no newer");
            self.newest = older;
        }
        if older != NO_SLOT {
            self.slots[older as usize].newer = newer;
        } else {
            assert_eq!(self.oldest, slot, "only the oldest has no older");
            self.oldest = newer;
        }
        let entry = &mut self.slots[slot as usize];
        entry.newer = NO_SLOT;
        entry.older = NO_SLOT;
    }

    /// The resident keys from most to least recently used (for tests and debugging).
    pub fn recency(&self) -> Vec<(usize, Vec<u8>)> {
        let mut keys = Vec::with_capacity(self.resident_rows());
        let mut slot = self.newest;
        while slot != NO_SLOT {
            let entry = &self.slots[slot as usize];
            keys.push((entry.db, entry.key.to_vec()));
            slot = entry.older;
        }
        keys
    }
}

/// The store's mutation hook for one shard's cache: every write or removal of a key drops its resident row.
///
/// The keyspace takes one observer; where the shard also publishes keys for one-sided reads (the RDMA
/// region), both observers are called from a fan-out (see the notes of issue 17 for the hook the server needs).
pub struct CacheInvalidator {
    cache: Rc<RefCell<RowCache>>,
}

impl CacheInvalidator {
    /// An observer that invalidates `cache`.
    pub fn new(cache: Rc<RefCell<RowCache>>) -> CacheInvalidator {
        CacheInvalidator { cache }
    }
}

impl KeyObserver for CacheInvalidator {
    fn key_written(&mut self, db: usize, key: &[u8], _value: &Value, _expire_at_ms: ExpireAtMs) {
        // A new value (or only a new TTL: the row is still right, but a write is rare next to reads and a
        // re-copy costs one row) is read from the keyspace by the next request.
        self.cache.borrow_mut().invalidate(db, key);
    }

    fn key_removed(&mut self, db: usize, key: &[u8]) {
        self.cache.borrow_mut().invalidate(db, key);
    }

    fn database_flushed(&mut self, db: usize) {
        self.cache.borrow_mut().invalidate_database(db);
    }

    fn databases_swapped(&mut self, first: usize, second: usize) {
        let mut cache = self.cache.borrow_mut();
        cache.invalidate_database(first);
        cache.invalidate_database(second);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ROW_BYTES: usize = 256;

    fn keys(names: &[&'static str]) -> Vec<&'static [u8]> {
        names.iter().map(|name| name.as_bytes()).collect()
    }

    fn recency(cache: &RowCache) -> Vec<String> {
        cache
            .recency()
            .into_iter()
            .map(|(db, key)| format!("{db}:{}", String::from_utf8(key).unwrap()))
            .collect()
    }

    /// A table row of the resolve tests: a name, the keys requested, what `resolve` returns, and
    /// the keys resident afterwards (in the order the test reads them).
    type ResolveCase = (
        &'static str,
        Vec<&'static str>,
        Result<Vec<RowSlot>, ResolveError>,
        Vec<&'static str>,
    );

    #[test]
    fn requests_hit_miss_and_evict_the_least_recently_used() {
        // (name, request, each key's outcome as H(slot)/M(slot), recency after)
        use RowSlot::{Hit as H, Miss as M};
        let cases: Vec<ResolveCase> = vec![
            (
                "cold misses fill slots",
                vec!["a", "b"],
                Ok(vec![M(0), M(1)]),
                vec!["0:b", "0:a"],
            ),
            (
                "a hit becomes newest",
                vec!["a"],
                Ok(vec![H(0)]),
                vec!["0:a", "0:b"],
            ),
            (
                "the third row fills the last slot",
                vec!["c"],
                Ok(vec![M(2)]),
                vec!["0:c", "0:a", "0:b"],
            ),
            (
                "a full cache evicts the oldest (b)",
                vec!["d"],
                Ok(vec![M(1)]),
                vec!["0:d", "0:c", "0:a"],
            ),
            (
                "a repeated key reads one slot and counts one lookup",
                vec!["a", "a", "e"],
                Ok(vec![H(0), H(0), M(2)]),
                vec!["0:e", "0:a", "0:d"],
            ),
            (
                "rows this request uses are never its victims",
                vec!["a", "e", "d", "f"],
                Err(ResolveError::CapacityExceeded { capacity_rows: 3 }),
                vec!["0:d", "0:e", "0:a"],
            ),
        ];
        let mut cache = RowCache::new(3, ROW_BYTES);
        for (name, request, want, after) in cases {
            let got = cache.resolve(0, keys(&request));
            assert_eq!(got, want, "{name}");
            assert_eq!(recency(&cache), after, "{name}");
        }
        let stats = cache.stats();
        // Hits: a; a; a, e, d. Misses: a, b, c, d, e. Evictions: b (for d), c (for e).
        assert_eq!((stats.hits, stats.misses, stats.evictions), (5, 5, 2));
        assert_eq!(
            (stats.resident_rows, stats.resident_bytes),
            (3, 3 * ROW_BYTES as u64)
        );
        assert_eq!(stats.capacity_bytes, 3 * ROW_BYTES as u64);
        assert!((stats.hit_ratio() - 0.5).abs() < 1e-12);
    }

    #[test]
    fn writes_invalidate_through_the_store_hook() {
        let cache = Rc::new(RefCell::new(RowCache::new(4, ROW_BYTES)));
        let mut hook = CacheInvalidator::new(Rc::clone(&cache));
        cache
            .borrow_mut()
            .resolve(0, keys(&["emb:0:1", "emb:0:2", "emb:0:3"]))
            .unwrap();
        cache.borrow_mut().resolve(1, keys(&["emb:0:1"])).unwrap();
        let value = Value::from_vec(vec![0; ROW_BYTES]);
        // (name, the hook's call, the resident keys after)
        type Call = Box<dyn Fn(&mut CacheInvalidator)>;
        let cases: Vec<(&str, Call, Vec<&str>)> = vec![
            (
                "a SET drops that row only, in its database",
                Box::new(move |hook| hook.key_written(0, b"emb:0:2", &value, None)),
                vec!["1:emb:0:1", "0:emb:0:3", "0:emb:0:1"],
            ),
            (
                "a key nobody cached changes nothing",
                Box::new(|hook| hook.key_removed(0, b"other")),
                vec!["1:emb:0:1", "0:emb:0:3", "0:emb:0:1"],
            ),
            (
                "a DEL drops the row",
                Box::new(|hook| hook.key_removed(0, b"emb:0:1")),
                vec!["1:emb:0:1", "0:emb:0:3"],
            ),
            (
                "FLUSHDB drops its database's rows",
                Box::new(|hook| hook.database_flushed(1)),
                vec!["0:emb:0:3"],
            ),
            (
                "SWAPDB drops both databases' rows",
                Box::new(|hook| hook.databases_swapped(0, 5)),
                vec![],
            ),
        ];
        for (name, call, after) in cases {
            call(&mut hook);
            assert_eq!(recency(&cache.borrow()), after, "{name}");
        }
        let mut cache = cache.borrow_mut();
        assert_eq!(cache.stats().invalidations, 4);
        // The next request reads the written row again (a miss), into a freed slot.
        let again = cache.resolve(0, keys(&["emb:0:2"])).unwrap();
        assert!(
            matches!(again[0], RowSlot::Miss(slot) if slot < 4),
            "{again:?}"
        );
    }

    /// A call that cannot be served frees the slots it reserved for misses (their rows were never copied), and
    /// a slot released because its row could not be copied is not a hit for the next call.
    #[test]
    fn unserved_misses_are_given_back() {
        let mut cache = RowCache::new(2, ROW_BYTES);
        cache.resolve(0, keys(&["a"])).unwrap();
        // (name, request, result, resident after)
        use RowSlot::{Hit as H, Miss as M};
        let cases: Vec<ResolveCase> = vec![
            (
                "b's reserved slot is freed when c does not fit",
                vec!["a", "b", "c"],
                Err(ResolveError::CapacityExceeded { capacity_rows: 2 }),
                vec!["0:a"],
            ),
            (
                "b is a miss again, into the freed slot",
                vec!["b", "b"],
                Ok(vec![M(1), H(1)]),
                vec!["0:b", "0:a"],
            ),
        ];
        for (name, request, want, after) in cases {
            assert_eq!(cache.resolve(0, keys(&request)), want, "{name}");
            assert_eq!(recency(&cache), after, "{name}");
        }
        // b's row could not be copied: released (twice, as a repeated key reads one slot), then a miss again.
        cache.release(1);
        cache.release(1);
        assert_eq!(recency(&cache), ["0:a"]);
        assert_eq!(cache.resolve(0, keys(&["b"])), Ok(vec![M(1)]));
        let stats = cache.stats();
        assert_eq!((stats.evictions, stats.invalidations), (0, 0));
        assert_eq!(stats.resident_rows, 2);
    }

    #[test]
    fn a_cache_of_no_rows_keeps_nothing() {
        let mut cache = RowCache::new(0, ROW_BYTES);
        assert_eq!(
            cache.resolve(0, keys(&["a"])),
            Err(ResolveError::CapacityExceeded { capacity_rows: 0 })
        );
        assert_eq!(cache.stats().resident_rows, 0);
    }

    #[test]
    fn info_lines_name_every_counter() {
        let stats = RowCacheStats {
            hits: 3,
            misses: 1,
            evictions: 0,
            invalidations: 2,
            resident_rows: 1,
            resident_bytes: 256,
            capacity_bytes: 1024,
            slot_calls: 2,
            slot_samples: 2048,
            slot_fallbacks: 1,
        };
        let lines: Vec<String> = stats
            .info_lines()
            .into_iter()
            .map(|(name, value)| format!("{name}:{value}"))
            .collect();
        assert_eq!(
            lines,
            [
                "gpu_cache_hits:3",
                "gpu_cache_misses:1",
                "gpu_cache_hit_ratio:0.7500",
                "gpu_cache_evictions:0",
                "gpu_cache_invalidations:2",
                "gpu_cache_resident_rows:1",
                "gpu_cache_resident_bytes:256",
                "gpu_cache_capacity_bytes:1024",
                "gpu_slot_calls:2",
                "gpu_slot_samples:2048",
                "gpu_slot_fallbacks:1",
            ]
        );
        let mut total = stats;
        total.add(&stats);
        assert_eq!((total.hits, total.capacity_bytes), (6, 2048));
        assert_eq!(
            (total.slot_calls, total.slot_samples, total.slot_fallbacks),
            (4, 4096, 2)
        );
    }

    /// SplitMix64, seeded, so a failure replays.
    struct Rng(u64);

    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
            let mut z = self.0;
            z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
            z ^ (z >> 31)
        }

        fn below(&mut self, limit: u64) -> u64 {
            self.next() % limit
        }
    }

    /// Random requests and writes against a plain model (a list, newest first): the same residents in the same
    /// order, the same hits and misses, and no two resident keys sharing a slot.
    #[test]
    fn random_requests_match_a_plain_lru_model() {
        let seed = std::env::var("EMBER_TEST_SEED")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or(0x6770_755f_6361_6368_u64);
        eprintln!("seed {seed} (EMBER_TEST_SEED replays it)");
        let mut rng = Rng(seed);
        let capacity = 8;
        let mut cache = RowCache::new(capacity, ROW_BYTES);
        let mut model: Vec<Vec<u8>> = Vec::new();
        let (mut hits, mut misses) = (0u64, 0u64);
        for round in 0..2000 {
            if rng.below(5) == 0 {
                let key = format!("k{}", rng.below(16)).into_bytes();
                let was = model.iter().position(|k| *k == key);
                assert_eq!(
                    cache.invalidate(0, &key),
                    was.is_some(),
                    "seed {seed} round {round}"
                );
                if let Some(index) = was {
                    model.remove(index);
                }
                continue;
            }
            let request: Vec<Vec<u8>> = (0..1 + rng.below(6))
                .map(|_| format!("k{}", rng.below(16)).into_bytes())
                .collect();
            let mut distinct: Vec<&Vec<u8>> = Vec::new();
            for key in &request {
                if !distinct.contains(&key) {
                    distinct.push(key);
                }
            }
            let got = cache.resolve(0, request.iter().map(Vec::as_slice));
            assert!(got.is_ok(), "seed {seed} round {round}: {got:?}");
            for key in &request {
                if let Some(index) = model.iter().position(|k| k == key) {
                    let key = model.remove(index);
                    model.insert(0, key);
                    if distinct.contains(&&model[0]) {
                        distinct.retain(|k| **k != model[0]);
                        hits += 1;
                    }
                } else {
                    misses += 1;
                    distinct.retain(|k| *k != key);
                    model.insert(0, key.clone());
                    model.truncate(capacity);
                }
            }
            let resident: Vec<Vec<u8>> = cache.recency().into_iter().map(|(_, key)| key).collect();
            assert_eq!(resident, model, "seed {seed} round {round}");
            let stats = cache.stats();
            assert_eq!(
                (stats.hits, stats.misses),
                (hits, misses),
                "seed {seed} round {round}"
            );
            let mut slots: Vec<u32> = model
                .iter()
                .map(|key| cache.peek(0, key).unwrap())
                .collect();
            slots.sort_unstable();
            slots.dedup();
            assert_eq!(
                slots.len(),
                model.len(),
                "seed {seed} round {round}: two keys share a slot"
            );
        }
    }
}
