//! `maxmemory`: the memory gauge every shard reads, the eviction loop each shard runs, and the
//! OOM check the executor makes before a command that may grow memory.
//!
//! `used_memory` is jemalloc's `stats.allocated`, as Redis reports it, for the whole process.
//! Reading it means advancing jemalloc's statistics epoch (a few microseconds, process-wide), so
//! it is not read per command: each shard's [`evict_loop`] refreshes the [`MemoryGauge`] every
//! [`GAUGE_PERIOD`] while `maxmemory` is set, and the executor reads the gauge's atomic.
//!
//! When used memory passes `maxmemory`, each shard evicts its share of the excess (in proportion
//! to the keys it holds, [`eviction_share`]) from its own keyspace under `maxmemory-policy`, in slices
//! of [`EVICT_SLICE_BUDGET`] with a yield between them, so a CONFIG SET that shrinks the limit
//! evicts down to it without stalling requests.
//!
//! Between two readings of the gauge a shard's writes are paid for at once, as Redis's
//! `performEvictions` before every command: [`make_room`] runs before each `denyoom` command
//! and evicts what the shard's thread allocated since its last reading beyond the limit
//! (jemalloc's per-thread counters, two loads). Left to the loop alone, a connection that
//! writes faster than the 1 ms period put hundreds of kilobytes over the limit: at 0.1% of a
//! 100 MB working set (a 100 KB budget) the keys held varied 8x with the speed of the writes.
//! Before each reading the shard thread's allocation cache (jemalloc's tcache) is flushed:
//! `stats.allocated` counts the freed blocks a thread caches as allocated, tens of kilobytes
//! that come and go with the cache's own collection, not with the data. Under `noeviction`, or when nothing may be
//! evicted (a volatile policy and no key with a TTL), commands flagged `denyoom` get Redis's OOM
//! error while reads and deletes are served.
//!
//! `--maxmemory` without a policy keeps Redis's default, `noeviction`: Ember also serves job
//! queues (Sidekiq, BullMQ, Celery), which must never lose a key silently, and Sidekiq checks
//! for exactly that policy; and a client moving from Redis expects the OOM error it knows. A
//! pure cache sets `maxmemory-policy allkeys-tinylfu` (Ember's W-TinyLFU: a TinyLFU read
//! history and an admission window sized by a hill climber, over the sampled eviction; see
//! `ember_store`'s `keyspace/admission.rs`), or Redis's `allkeys-lru` / `allkeys-lfu`.

use std::cell::{Cell, RefCell};
use std::rc::Rc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use ember_store::{EvictionPolicy, EvictionPool};

use crate::runtime;
use crate::shard::Shard;
use crate::stats::unix_time_ms;

/// How often a shard refreshes the gauge while `maxmemory` is set.
pub const GAUGE_PERIOD: Duration = Duration::from_millis(1);
/// How often a shard looks at the configuration while `maxmemory` is 0.
const IDLE_PERIOD: Duration = Duration::from_millis(50);
/// Longest a shard evicts before it lets requests run.
pub const EVICT_SLICE_BUDGET: Duration = Duration::from_micros(500);
/// Keys evicted between two looks at the clock.
const KEYS_PER_CLOCK_CHECK: usize = 16;
/// Most keys [`make_room`] evicts before one command: a command that allocated more than
/// that many keys' worth between two readings (a large value over small keys) leaves the
/// rest to the loop, which evicts in time slices, so that no command waits long.
const MAKE_ROOM_KEYS_MAX: usize = 64;

/// Redis's reply to a `denyoom` command over the limit.
pub const OOM_ERROR: &str = "OOM command not allowed when used memory > 'maxmemory'.";

/// The process's gauge: the allocator is process-wide, so its figures are too.
pub static GAUGE: MemoryGauge = MemoryGauge::new();

/// What every shard knows about the process's memory.
#[derive(Debug, Default)]
pub struct MemoryGauge {
    /// `used_memory` at the last refresh (bytes).
    used_bytes: AtomicU64,
    /// The most `used_memory` has been (bytes).
    peak_bytes: AtomicU64,
    /// `used_memory` once the shards were built, before any key (Redis's startup.allocated).
    startup_bytes: AtomicU64,
    /// How many shards are over the limit and found nothing they may evict. Writes are refused
    /// only when every shard is: while one shard can still evict, the excess goes down.
    stuck_shards: AtomicUsize,
    /// Readings so far: a shard whose last reading is older counts its thread's growth from
    /// the newest one ([`ShardMemory`]).
    readings: AtomicU64,
}

impl MemoryGauge {
    /// A gauge that has read nothing yet.
    pub const fn new() -> Self {
        Self {
            used_bytes: AtomicU64::new(0),
            peak_bytes: AtomicU64::new(0),
            startup_bytes: AtomicU64::new(0),
            stuck_shards: AtomicUsize::new(0),
            readings: AtomicU64::new(0),
        }
    }

    /// Reads jemalloc's figure now and records it.
    pub fn refresh(&self) -> u64 {
        let used = allocated_bytes();
        self.used_bytes.store(used, Ordering::Release);
        self.peak_bytes.fetch_max(used, Ordering::AcqRel);
        self.readings.fetch_add(1, Ordering::AcqRel);
        used
    }

    /// Records the start-up figure (once the shards exist).
    pub fn record_startup(&self) {
        let used = self.refresh();
        self.startup_bytes.store(used, Ordering::Release);
    }

    /// `used_memory` at the last refresh.
    pub fn used_bytes(&self) -> u64 {
        self.used_bytes.load(Ordering::Acquire)
    }

    /// The peak `used_memory` seen.
    pub fn peak_bytes(&self) -> u64 {
        self.peak_bytes.load(Ordering::Acquire)
    }

    /// `used_memory` at start-up.
    pub fn startup_bytes(&self) -> u64 {
        self.startup_bytes.load(Ordering::Acquire)
    }
}

/// jemalloc's `stats.allocated`, after advancing its epoch: Redis's `used_memory`.
pub fn allocated_bytes() -> u64 {
    let _ = tikv_jemalloc_ctl::epoch::advance();
    tikv_jemalloc_ctl::stats::allocated::read().unwrap_or(0) as u64
}

/// Net bytes the calling thread has allocated in its life (jemalloc's `thread.allocatedp` less
/// `thread.deallocatedp`, wrapping): exact at every call, unlike `stats.allocated`.
fn thread_net_bytes() -> u64 {
    thread_local! {
        static COUNTERS: Option<(
            tikv_jemalloc_ctl::thread::ThreadLocal<u64>,
            tikv_jemalloc_ctl::thread::ThreadLocal<u64>,
        )> = tikv_jemalloc_ctl::thread::allocatedp::read()
            .ok()
            .zip(tikv_jemalloc_ctl::thread::deallocatedp::read().ok());
    }
    COUNTERS.with(|counters| {
        counters
            .as_ref()
            .map_or(0, |(allocated, deallocated)| {
                allocated.get().wrapping_sub(deallocated.get())
            })
    })
}

/// Returns the calling thread's cached free blocks to the allocator, so that the next
/// `stats.allocated` counts this thread's data and not its cache.
fn flush_thread_cache() {
    // SAFETY: `thread.tcache.flush` takes and returns nothing: every pointer is null and the
    // length 0, as jemalloc requires of it; the name is a NUL-terminated literal. An error
    // (no tcache on this thread) leaves the cache as it was, which only costs precision.
    unsafe {
        tikv_jemalloc_sys::mallctl(
            c"thread.tcache.flush".as_ptr(),
            std::ptr::null_mut(),
            std::ptr::null_mut(),
            std::ptr::null_mut(),
            0,
        );
    }
}

/// A shard's side of the gauge: its eviction pool and its thread's allocation counter at the
/// last reading, so that a command can tell how far the shard's own writes have moved used
/// memory since then.
pub struct ShardMemory {
    /// The sampling pool of every eviction on this shard (the loop's and [`make_room`]'s).
    pool: RefCell<EvictionPool>,
    /// [`thread_net_bytes`] when the shard last took the gauge's reading.
    thread_net_at_reading: Cell<u64>,
    /// The gauge's reading count then.
    reading: Cell<u64>,
}

impl ShardMemory {
    /// The state of shard `index`, which has read nothing yet.
    pub fn new(index: usize) -> Self {
        Self {
            pool: RefCell::new(EvictionPool::new(0x9E37_79B9_7F4A_7C15 ^ index as u64)),
            thread_net_at_reading: Cell::new(0),
            reading: Cell::new(u64::MAX),
        }
    }

    /// Bytes this shard's thread allocated, net, since the gauge's newest reading: taken
    /// from the reading the shard last saw, or from now when another thread has read since
    /// (its figure holds this thread's growth until then). Negative when it freed more.
    fn growth_bytes(&self) -> i64 {
        let now = thread_net_bytes();
        let newest = GAUGE.readings.load(Ordering::Acquire);
        if self.reading.get() != newest {
            self.reading.set(newest);
            self.thread_net_at_reading.set(now);
        }
        now.wrapping_sub(self.thread_net_at_reading.get()) as i64
    }

    /// Takes a reading now: flushes this thread's cache, refreshes the gauge, and counts this
    /// thread's growth from here. Call it on the shard's own thread.
    pub fn read_gauge(&self) -> u64 {
        flush_thread_cache();
        let used = GAUGE.refresh();
        self.reading.set(GAUGE.readings.load(Ordering::Acquire));
        self.thread_net_at_reading.set(thread_net_bytes());
        used
    }
}

/// Before a `denyoom` command: evicts this shard's part of what its own writes put over
/// `maxmemory` since the gauge's reading (Redis evicts before every command; the loop alone
/// let a fast writer run far over a small limit until its next period). Only the growth since
/// the reading is paid here, at most [`MAKE_ROOM_KEYS_MAX`] keys: a larger excess (a limit
/// just lowered) is the loop's, in time slices.
pub fn make_room(shard: &Shard) {
    let (maxmemory, policy, samples) = {
        let config = shard.config.borrow();
        if config.maxmemory == 0 {
            return;
        }
        (
            config.maxmemory,
            EvictionPolicy::from_name(&config.maxmemory_policy),
            config.integer("maxmemory-samples").max(1) as usize,
        )
    };
    let Some(policy) = policy else {
        return; // noeviction: refuses_growth answers.
    };
    let memory = &shard.memory;
    let growth = memory.growth_bytes();
    if growth <= 0 {
        return;
    }
    let used = GAUGE.used_bytes().saturating_add(growth as u64);
    let over = used.saturating_sub(maxmemory).min(growth as u64);
    if over == 0 || shard.gate.blocks(None) {
        return;
    }
    let keys_all = shard
        .shared
        .shard_keys
        .iter()
        .map(|keys| keys.load(Ordering::Acquire))
        .sum();
    let keys_here = shard.shared.shard_keys[shard.index].load(Ordering::Acquire);
    let share = eviction_share(over, keys_here, keys_all, shard.shared.shard_count);
    if share == 0 {
        return;
    }
    let start = memory.growth_bytes();
    let now_ms = unix_time_ms();
    let mut pool = memory.pool.borrow_mut();
    for _ in 0..MAKE_ROOM_KEYS_MAX {
        let freed = start.saturating_sub(memory.growth_bytes());
        if freed >= share as i64 {
            break;
        }
        let evicted = shard.keyspace.borrow_mut().evict_one(&mut pool, policy, samples, now_ms);
        let Some(evicted) = evicted else {
            break; // Nothing to evict: refuses_growth decides once the loop says so.
        };
        count_eviction(shard, evicted, now_ms);
    }
}

/// True when a `denyoom` command must be refused now: used memory is over `maxmemory` and
/// either the policy is `noeviction` or no shard can evict anything more.
pub fn refuses_growth(shard: &Shard) -> bool {
    let config = shard.config.borrow();
    if config.maxmemory == 0 {
        return false;
    }
    let gauge = &GAUGE;
    if gauge.used_bytes() <= config.maxmemory {
        return false;
    }
    EvictionPolicy::from_name(&config.maxmemory_policy).is_none()
        || gauge.stuck_shards.load(Ordering::Acquire) >= shard.shared.shard_count
}

/// Requests that ask for at least this many bytes at once are charged against `maxmemory`
/// before anything is allocated ([`refuses_request`]). Smaller writes are checked as Redis
/// checks them, against used memory before the command, so near the limit Ember answers
/// exactly as Redis does.
pub const LARGE_REQUEST_BYTES: u64 = 1 << 20;

/// The bytes one request may make the server allocate now: unbounded without `maxmemory`;
/// under `noeviction` what is left below the limit; under an eviction policy the limit less
/// what the server held at start-up, since eviction can make room for anything smaller (keys
/// are evicted after the write) and never for anything larger.
pub fn request_room(config: &crate::config::Config) -> u64 {
    if config.maxmemory == 0 {
        return u64::MAX;
    }
    match EvictionPolicy::from_name(&config.maxmemory_policy) {
        None => config.maxmemory.saturating_sub(GAUGE.used_bytes()),
        Some(_) => config.maxmemory.saturating_sub(GAUGE.startup_bytes()),
    }
}

/// True when a request that sizes an allocation by its arguments (AI.TENSORSET's shape,
/// SETRANGE's and SETBIT's offsets, a filter's capacity) must get the OOM error instead:
/// it asks for [`LARGE_REQUEST_BYTES`] or more and for more than [`request_room`]. This is
/// issue 16's "every allocation sized by a client's request ... counted against maxmemory":
/// without it, a 40-byte `AI.TENSORSET t FLOAT 100000000` allocates 400 MB under a 100 MB
/// limit, since the limit is only looked at before the command.
pub fn refuses_request(config: &crate::config::Config, bytes: u64) -> bool {
    bytes >= LARGE_REQUEST_BYTES && bytes > request_room(config)
}

/// One shard's part in [`MemoryGauge::stuck_shards`].
#[derive(Default)]
struct StuckFlag(bool);

impl StuckFlag {
    fn set(&mut self, stuck: bool) {
        if stuck != self.0 {
            self.0 = stuck;
            if stuck {
                GAUGE.stuck_shards.fetch_add(1, Ordering::AcqRel);
            } else {
                GAUGE.stuck_shards.fetch_sub(1, Ordering::AcqRel);
            }
        }
    }
}

/// Keeps this shard's share of memory under `maxmemory`: refreshes the gauge and, when the
/// process is over the limit, evicts this shard's share of the excess.
pub async fn evict_loop(shard: Rc<Shard>) {
    let mut stuck = StuckFlag::default();
    loop {
        let (maxmemory, policy, samples) = {
            let config = shard.config.borrow();
            (
                config.maxmemory,
                EvictionPolicy::from_name(&config.maxmemory_policy),
                config.integer("maxmemory-samples").max(1) as usize,
            )
        };
        if maxmemory == 0 {
            stuck.set(false);
            runtime::sleep(IDLE_PERIOD).await;
            continue;
        }
        let used = shard.memory.read_gauge();
        let over = used.saturating_sub(maxmemory);
        let keys_here = (0..ember_store::DATABASE_COUNT)
            .map(|db| shard.keyspace.borrow().len(db))
            .sum();
        shard.shared.shard_keys[shard.index].store(keys_here, Ordering::Release);
        match policy {
            Some(policy) if over > 0 => {
                let keys_all = shard
                    .shared
                    .shard_keys
                    .iter()
                    .map(|keys| keys.load(Ordering::Acquire))
                    .sum();
                let share = eviction_share(over, keys_here, keys_all, shard.shared.shard_count);
                if share == 0 {
                    // Below the average: the fuller shards evict. This one is stuck only if it
                    // has nothing it could evict either, so that writes are refused (OOM) when
                    // no shard can make room, as before.
                    let has_candidates = {
                        let keyspace = shard.keyspace.borrow();
                        (0..ember_store::DATABASE_COUNT)
                            .any(|db| keyspace.has_eviction_candidates(db, policy))
                    };
                    stuck.set(!has_candidates);
                    runtime::sleep(GAUGE_PERIOD).await;
                    continue;
                }
                let found = evict_share(&shard, policy, samples, share);
                stuck.set(!found);
                if shard.pubsub.has_forwards() {
                    // `evicted` keyspace events, to the other shards' subscribers.
                    crate::commands::pubsub::forward_events(&shard).await;
                }
                crate::commands::tracking::collect(&shard);
                if shard.tracking.has_pending() {
                    crate::commands::tracking::flush(&shard).await;
                }
                // Let requests run, then look again at once: the excess may not be paid yet.
                runtime::yield_now().await;
            }
            _ => {
                stuck.set(false);
                runtime::sleep(GAUGE_PERIOD).await;
            }
        }
    }
}

/// This shard's part of `over` bytes of excess: nothing while it holds fewer keys than the
/// average shard (`keys_here` of `keys_all`), else a part in proportion to its keys, so the
/// shards stay even. An equal part each left it to the shard with spare time, the one not
/// serving the writes, which looks again sooner and evicts its part again and again: measured
/// with two shards under a flood of writes on one connection, that shard emptied itself (3
/// keys left of 8,190, the other kept 4,082) and its most read keys went with it; with parts
/// in proportion alone, the other shard did (164 left against 3,827). An equal part when no
/// shard has published its count yet.
pub fn eviction_share(over: u64, keys_here: usize, keys_all: usize, shard_count: usize) -> u64 {
    if keys_all == 0 {
        return over.div_ceil(shard_count as u64);
    }
    if (keys_here as u128) * (shard_count as u128) < keys_all as u128 {
        return 0;
    }
    // u128: `over` times a key count may pass u64 for a limit near 2^64.
    let share = u128::from(over) * keys_here as u128;
    share.div_ceil(keys_all as u128) as u64
}

/// Evicts keys of this shard until about `share` bytes are freed or the slice's time is up;
/// false when the keyspace had nothing it may evict.
fn evict_share(shard: &Shard, policy: EvictionPolicy, samples: usize, share: u64) -> bool {
    if shard.gate.blocks(None) {
        return true; // A transaction holds the shard: evict after it.
    }
    let started = Instant::now();
    let mut freed = 0u64;
    let mut pool = shard.memory.pool.borrow_mut();
    let now_ms = unix_time_ms();
    while freed < share {
        for _ in 0..KEYS_PER_CLOCK_CHECK {
            let evicted = shard
                .keyspace
                .borrow_mut()
                .evict_one(&mut pool, policy, samples, now_ms);
            let Some(evicted) = evicted else {
                return false;
            };
            freed += evicted.bytes as u64;
            count_eviction(shard, evicted, now_ms);
            if freed >= share {
                break;
            }
        }
        if started.elapsed() >= EVICT_SLICE_BUDGET {
            break;
        }
    }
    true
}

/// Counts an evicted key and raises its `evicted` keyspace event.
fn count_eviction(shard: &Shard, evicted: ember_store::Evicted, now_ms: u64) {
    shard
        .stats
        .evicted_keys
        .set(shard.stats.evicted_keys.get() + 1);
    let config = shard.config.borrow();
    let flags = config.notify_keyspace_events;
    if flags & crate::commands::notify::EVICTED != 0 {
        crate::commands::notify::publish_event(
            &shard.pubsub,
            &config,
            flags,
            evicted.db,
            "evicted",
            evicted.key.as_bytes(),
            now_ms,
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn eviction_shares_follow_the_keys_held() {
        let cases: &[(&str, u64, usize, usize, usize, u64)] = &[
            // (name, over, keys here, keys in all, shards, share)
            ("no counts yet: an equal part", 1000, 0, 0, 2, 500),
            ("even shards", 1000, 50, 100, 2, 500),
            ("a shard with most keys evicts most", 1000, 90, 100, 2, 900),
            (
                "a shard below the average evicts nothing",
                1000,
                49,
                100,
                2,
                0,
            ),
            ("an empty shard evicts nothing", 1000, 0, 100, 2, 0),
            ("rounded up", 10, 1, 3, 3, 4),
            ("no overflow", u64::MAX, usize::MAX, usize::MAX, 4, u64::MAX),
        ];
        for &(name, over, here, all, shards, share) in cases {
            assert_eq!(eviction_share(over, here, all, shards), share, "{name}");
        }
    }

    #[test]
    fn gauge_tracks_peak_and_startup() {
        // Other tests of this binary allocate and free tens of MiB at the same time, and the
        // gauge is process-wide: a 64 MiB block with 16 MiB of room either way, and up to eight
        // tries, one of which must see the block come and go.
        const BLOCK: u64 = 64 << 20;
        const SLACK: u64 = 16 << 20;
        let mut seen = Vec::new();
        for _ in 0..8 {
            let gauge = MemoryGauge::default();
            gauge.record_startup();
            let startup = gauge.startup_bytes();
            assert!(startup > 0, "jemalloc reports allocated bytes");
            let block = std::hint::black_box(vec![1u8; BLOCK as usize]);
            let grown = gauge.refresh();
            drop(block);
            let shrunk = gauge.refresh();
            assert!(gauge.peak_bytes() >= grown);
            if grown + SLACK >= startup + BLOCK && shrunk + BLOCK <= grown + SLACK {
                return;
            }
            seen.push((startup, grown, shrunk));
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        panic!("the gauge never saw a 64 MiB block come and go: (startup, grown, shrunk) {seen:?}");
    }
}
