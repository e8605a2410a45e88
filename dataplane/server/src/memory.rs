//! `maxmemory`: the memory gauge every shard reads, the eviction each shard does, and the OOM
//! check the executor makes before a command that may grow memory.
//!
//! `used_memory` is jemalloc's `stats.allocated` less the blocks its thread caches hold
//! ([`allocated_bytes`]), for the whole process: what Redis's zmalloc counts. Reading it means
//! advancing jemalloc's statistics epoch (a few microseconds, process-wide), so it is not read
//! at every command as Redis reads its counter: each shard's [`evict_loop`] refreshes the
//! [`MemoryGauge`] every [`GAUGE_PERIOD`] while `maxmemory` is set, the executor reads the
//! gauge's atomic, and a command whose allocations may have taken memory past the limit (a
//! count jemalloc keeps per thread, read through a pointer: [`after_command`]) has the next
//! command of any connection read the gauge and evict first ([`before_command`]), as Redis
//! evicts before each command.
//!
//! When used memory passes `maxmemory`, each shard evicts its share of the excess (in proportion
//! to the keys it holds, [`eviction_share`]) from its own keyspace under `maxmemory-policy`, in slices
//! of [`EVICT_SLICE_BUDGET`] with a yield between them, so a CONFIG SET that shrinks the limit
//! evicts down to it without stalling requests. Under `noeviction`, or when nothing may be
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
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use ember_store::{EvictionPolicy, EvictionPool};

use crate::runtime;
use crate::shard::{Shard, ShardReply, ShardRequest};
use crate::stats::unix_time_ms;

/// How often a shard refreshes the gauge while `maxmemory` is set.
pub const GAUGE_PERIOD: Duration = Duration::from_millis(1);
/// How often a shard looks at the configuration while `maxmemory` is 0.
const IDLE_PERIOD: Duration = Duration::from_millis(50);
/// Longest a shard evicts before it lets requests run.
pub const EVICT_SLICE_BUDGET: Duration = Duration::from_micros(500);
/// Keys evicted between two looks at the clock.
const KEYS_PER_CLOCK_CHECK: usize = 16;

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
    /// A command may have taken memory past the limit since the gauge was read
    /// ([`after_command`]): the next command reads it first ([`before_command`]).
    recheck: AtomicBool,
}

impl MemoryGauge {
    /// A gauge that has read nothing yet.
    pub const fn new() -> Self {
        Self {
            used_bytes: AtomicU64::new(0),
            peak_bytes: AtomicU64::new(0),
            startup_bytes: AtomicU64::new(0),
            stuck_shards: AtomicUsize::new(0),
            recheck: AtomicBool::new(false),
        }
    }

    /// Reads jemalloc's figure now and records it.
    pub fn refresh(&self) -> u64 {
        let used = allocated_bytes();
        self.used_bytes.store(used, Ordering::Release);
        self.peak_bytes.fetch_max(used, Ordering::AcqRel);
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

/// Redis's `used_memory`: the bytes the program holds, jemalloc's `stats.allocated` (after
/// advancing its epoch) less what the threads' caches hold.
///
/// jemalloc counts a block as allocated from when a thread's cache takes it from the arena
/// until the cache gives it back, so a block the program freed stays in `stats.allocated`
/// while it waits in the cache for the next allocation of its size: tens to hundreds of KB
/// per shard after a burst (a cache bin keeps up to 64 blocks of 1 KiB, for example). Redis
/// counts each allocation and free itself (zmalloc), so its `used_memory` drops at the free;
/// without the correction Ember's gauge stayed that far over a small `maxmemory` after the
/// keys had gone, and the eviction loop emptied the keyspace and then answered OOM.
pub fn allocated_bytes() -> u64 {
    let _ = tikv_jemalloc_ctl::epoch::advance();
    let allocated = tikv_jemalloc_ctl::stats::allocated::read().unwrap_or(0) as u64;
    allocated.saturating_sub(cached_bytes())
}

/// The bytes held by every thread's cache, summed over arenas (`MALLCTL_ARENAS_ALL`, 4096):
/// the caches' bins and the blocks stashed for their checks.
fn cached_bytes() -> u64 {
    const NAMES: [&[u8]; 2] = [
        b"stats.arenas.4096.tcache_bytes\0",
        b"stats.arenas.4096.tcache_stashed_bytes\0",
    ];
    NAMES
        .iter()
        // SAFETY: both names are NUL-terminated and read a `size_t` statistic.
        .map(|name| unsafe { tikv_jemalloc_ctl::raw::read::<usize>(name) }.unwrap_or(0) as u64)
        .sum()
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

/// One shard's part in keeping memory under `maxmemory`: its eviction pool, whether it found
/// nothing it may evict, and how much its thread had allocated when it last read the gauge.
pub struct ShardMemory {
    pool: RefCell<EvictionPool>,
    /// This shard's part in [`MemoryGauge::stuck_shards`].
    stuck: Cell<bool>,
    /// jemalloc's running count of the bytes this thread allocated, read through a pointer
    /// (found on first use, on the shard's own thread).
    allocated: Cell<Option<tikv_jemalloc_ctl::thread::ThreadLocal<u64>>>,
    /// That count when this shard last read the gauge.
    mark: Cell<u64>,
}

impl ShardMemory {
    /// A shard's part, with an eviction pool seeded by its index.
    pub fn new(index: usize) -> Self {
        Self {
            pool: RefCell::new(EvictionPool::new(0x9E37_79B9_7F4A_7C15 ^ index as u64)),
            stuck: Cell::new(false),
            allocated: Cell::new(None),
            mark: Cell::new(0),
        }
    }

    fn set_stuck(&self, stuck: bool) {
        if self.stuck.replace(stuck) != stuck {
            if stuck {
                GAUGE.stuck_shards.fetch_add(1, Ordering::AcqRel);
            } else {
                GAUGE.stuck_shards.fetch_sub(1, Ordering::AcqRel);
            }
        }
    }

    /// The bytes this thread has allocated since it started (never decreases).
    fn thread_allocated(&self) -> u64 {
        let pointer = match self.allocated.get() {
            Some(pointer) => pointer,
            None => match tikv_jemalloc_ctl::thread::allocatedp::read() {
                Ok(pointer) => {
                    self.allocated.set(Some(pointer));
                    pointer
                }
                Err(_) => return 0,
            },
        };
        pointer.get()
    }

    /// Reads the gauge now, and marks what this thread had allocated by then.
    fn refresh(&self) -> u64 {
        self.mark.set(self.thread_allocated());
        GAUGE.refresh()
    }
}

/// After this shard served a request (a connection's command, or another shard's request):
/// when it may have taken memory past `maxmemory` (this thread allocated more, since this
/// shard last read the gauge, than the room the gauge left, and at least [`growth_step`]), the
/// next command of any connection first reads the gauge and evicts ([`before_command`]).
/// Redis evicts before every command; reading jemalloc's figures costs microseconds, so Ember
/// reads them only when a command's allocations (a pointer's read) say they may have moved that
/// far. The count is of bytes allocated, frees left out (a free may happen on another thread),
/// so it can only ask for a read too often, never miss one; a request it is not called after
/// is counted at the next one.
pub fn after_command(shard: &Shard) {
    let maxmemory = shard.config.borrow().maxmemory;
    if maxmemory == 0 {
        return;
    }
    let memory = &shard.memory;
    let allocated = memory.thread_allocated();
    let grown = allocated.saturating_sub(memory.mark.get());
    let room = maxmemory.saturating_sub(GAUGE.used_bytes());
    if grown > room.max(growth_step(maxmemory)) {
        memory.mark.set(allocated);
        GAUGE.recheck.store(true, Ordering::Release);
    }
}

/// The least growth that asks for a read of the gauge before the next command: 1/256 of the
/// limit, from 4 KiB to 64 KiB. At the limit (no room left) a shard under a flood of writes
/// asks once per that many bytes, not at every write (a read merges every arena's statistics);
/// so memory may pass the limit by about that much until the next command, a small part of
/// any limit.
fn growth_step(maxmemory: u64) -> u64 {
    (maxmemory / 256).clamp(4 << 10, 64 << 10)
}

/// Before a command, when a command may have taken memory past the limit since the gauge was
/// read ([`after_command`]): reads it, and when over the limit under an eviction policy, has
/// every shard evict its share before the command runs, with the invalidations of tracked keys
/// and the `evicted` events delivered first, as Redis does before each command. A shard whose
/// share is nothing (it holds fewer keys than the average) may be the only one with keys the
/// policy may evict (a volatile policy): when a round leaves memory over the limit with shards
/// stuck, a second round has the others evict. True when shards evicted.
pub async fn before_command(shard: &Rc<Shard>) -> bool {
    if !GAUGE.recheck.load(Ordering::Acquire) || !GAUGE.recheck.swap(false, Ordering::AcqRel) {
        return false;
    }
    let (maxmemory, policy) = {
        let config = shard.config.borrow();
        (
            config.maxmemory,
            EvictionPolicy::from_name(&config.maxmemory_policy),
        )
    };
    if maxmemory == 0 || shard.memory.refresh() <= maxmemory || policy.is_none() {
        return false;
    }
    // Every shard looks again, stuck or not: keys may have come since it found none it may
    // evict (its flag is refreshed only by its own steps).
    for round in 0..2 {
        let mut pending = Vec::with_capacity(shard.count());
        for index in (0..shard.count()).filter(|&index| index != shard.index) {
            pending.push(shard.send(index, ShardRequest::Evict).await);
        }
        // The first round's step here uses the figure just read.
        let mut steps = vec![evict_step(shard, round > 0).await];
        for reply in pending {
            steps.push(match reply.await {
                ShardReply::Evicted(step) => step,
                other => unreachable!("an Evict request answered {other:?}"),
            });
        }
        let stuck_now = steps.contains(&Step::Evicted(Slice::NothingLeft));
        let skipped = steps.contains(&Step::BelowAverage);
        if !(stuck_now && skipped) || GAUGE.used_bytes() <= maxmemory {
            return true;
        }
    }
    true
}

/// What one shard's step of eviction did (the reply to [`ShardRequest::Evict`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    /// `maxmemory` is 0.
    NoLimit,
    /// Memory is under the limit, or the policy evicts nothing.
    Under,
    /// Over the limit, and this shard holds fewer keys than the average: the others evict.
    BelowAverage,
    /// This shard evicted (or found nothing to).
    Evicted(Slice),
}

/// Reads the gauge (unless the caller just did: `read_gauge` false) and, when the process is
/// over the limit, evicts this shard's share of the excess ([`eviction_share`]), then delivers
/// the `evicted` events and the invalidations of tracked keys it raised.
pub async fn evict_step(shard: &Rc<Shard>, read_gauge: bool) -> Step {
    let (maxmemory, policy, samples) = {
        let config = shard.config.borrow();
        (
            config.maxmemory,
            EvictionPolicy::from_name(&config.maxmemory_policy),
            config.integer("maxmemory-samples").max(1) as usize,
        )
    };
    let memory = &shard.memory;
    if maxmemory == 0 {
        memory.set_stuck(false);
        return Step::NoLimit;
    }
    let used = if read_gauge {
        memory.refresh()
    } else {
        GAUGE.used_bytes()
    };
    let over = used.saturating_sub(maxmemory);
    let keys_here = (0..ember_store::DATABASE_COUNT)
        .map(|db| shard.keyspace.borrow().len(db))
        .sum();
    shard.shared.shard_keys[shard.index].store(keys_here, Ordering::Release);
    let Some(policy) = policy.filter(|_| over > 0) else {
        memory.set_stuck(false);
        return Step::Under;
    };
    let keys_all = shard
        .shared
        .shard_keys
        .iter()
        .map(|keys| keys.load(Ordering::Acquire))
        .sum();
    let mut share = eviction_share(over, keys_here, keys_all, shard.count());
    let stuck_others = GAUGE
        .stuck_shards
        .load(Ordering::Acquire)
        .saturating_sub(usize::from(memory.stuck.get()));
    if share == 0 && stuck_others > 0 {
        // The fuller shards have nothing they may evict (a volatile policy and no key with a
        // TTL there): the others pay the excess between them.
        share = over.div_ceil((shard.count() - stuck_others) as u64);
    }
    if share == 0 {
        // Below the average: the fuller shards evict. This one is stuck only if it has
        // nothing it could evict either, so that writes are refused (OOM) when no shard can
        // make room.
        let has_candidates = {
            let keyspace = shard.keyspace.borrow();
            (0..ember_store::DATABASE_COUNT).any(|db| keyspace.has_eviction_candidates(db, policy))
        };
        memory.set_stuck(!has_candidates);
        return Step::BelowAverage;
    }
    let slice = evict_share(shard, &mut memory.pool.borrow_mut(), policy, samples, share);
    memory.set_stuck(slice == Slice::NothingLeft);
    if shard.pubsub.has_forwards() {
        // `evicted` keyspace events, to the other shards' subscribers.
        crate::commands::pubsub::forward_events(shard).await;
    }
    crate::commands::tracking::collect(shard);
    if shard.tracking.has_pending() {
        crate::commands::tracking::flush(shard).await;
    }
    Step::Evicted(slice)
}

/// Keeps this shard's share of memory under `maxmemory`: reads the gauge every
/// [`GAUGE_PERIOD`] and, when the process is over the limit, evicts this shard's share of the
/// excess.
pub async fn evict_loop(shard: Rc<Shard>) {
    loop {
        match evict_step(&shard, true).await {
            Step::NoLimit => runtime::sleep(IDLE_PERIOD).await,
            // Let requests run, then go on at once: the share is not paid yet.
            Step::Evicted(Slice::OutOfTime) => runtime::yield_now().await,
            // Paid, nothing left to evict, or under: the next look is a period away. Looking
            // again at once spun on the allocator's statistics (each refresh merges every
            // arena's, under jemalloc's lock) whenever memory no key owns (a connection's
            // buffers, the command statistics) kept the gauge over a small limit: measured, a
            // shard served a few hundred commands a second.
            _ => runtime::sleep(GAUGE_PERIOD).await,
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

/// How a slice of eviction ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Slice {
    /// About `share` bytes were freed (or a transaction holds the shard: evict after it).
    Paid,
    /// The slice's time was up first.
    OutOfTime,
    /// The keyspace had nothing (more) it may evict.
    NothingLeft,
}

/// Evicts keys of this shard until about `share` bytes are freed or the slice's time is up.
fn evict_share(
    shard: &Shard,
    pool: &mut EvictionPool,
    policy: EvictionPolicy,
    samples: usize,
    share: u64,
) -> Slice {
    if shard.gate.blocks(None) {
        return Slice::Paid;
    }
    let mut keyspace = shard.keyspace.borrow_mut();
    let slice = evict_from(shard, &mut keyspace, pool, policy, samples, share);
    keyspace.end_eviction_round();
    slice
}

fn evict_from(
    shard: &Shard,
    keyspace: &mut ember_store::Keyspace,
    pool: &mut EvictionPool,
    policy: EvictionPolicy,
    samples: usize,
    share: u64,
) -> Slice {
    let started = Instant::now();
    let mut freed = 0u64;
    let now_ms = unix_time_ms();
    while freed < share {
        for _ in 0..KEYS_PER_CLOCK_CHECK {
            let Some(evicted) = keyspace.evict_one(pool, policy, samples, now_ms) else {
                return Slice::NothingLeft;
            };
            freed += evicted.bytes as u64;
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
            if freed >= share {
                break;
            }
        }
        if freed < share && started.elapsed() >= EVICT_SLICE_BUDGET {
            return Slice::OutOfTime;
        }
    }
    Slice::Paid
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
