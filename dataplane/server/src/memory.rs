//! `maxmemory`: the memory gauge every shard reads, the eviction each shard does, and the OOM
//! check the executor makes before a command that may grow memory.
//!
//! `used_memory` is jemalloc's `stats.allocated` less the blocks its thread caches hold
//! ([`allocated_bytes`]), for the whole process: what Redis's zmalloc counts. Reading it means
//! advancing jemalloc's statistics epoch (about 12 microseconds, merging every arena under its
//! lock), so commands do not read it: each shard's [`evict_loop`] refreshes the
//! [`MemoryGauge`] every [`REFRESH_PERIOD`] while `maxmemory` is set, and between refreshes
//! the gauge is carried forward exactly by the counts jemalloc keeps per thread of the bytes
//! it allocated and freed (two pointers' reads): after each command a shard publishes its
//! thread's count, and the estimate is the last refresh plus what every shard's count moved
//! since ([`ShardMemory::estimate`]). A command that takes memory past the limit has the next
//! command of any connection evict first ([`after_command`], [`before_command`]), as Redis
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
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use ember_store::{EvictionPolicy, EvictionPool};

use crate::runtime;
use crate::shard::{Shard, ShardReply, ShardRequest};
use crate::stats::unix_time_ms;

/// How often a shard looks at the estimate (and evicts if over) while `maxmemory` is set.
pub const GAUGE_PERIOD: Duration = Duration::from_millis(1);
/// How often a shard reads jemalloc's figure itself while `maxmemory` is set: what the
/// per-thread counts miss reaches the estimate here. They drift during a flood of writes (the
/// estimate ran about 1.4% of the bytes written below jemalloc's figure; not traced yet), so
/// the period bounds how far over the limit memory goes: 5,000 SETs of 1 KiB in one pipeline
/// over a 150 KB budget ended 69 KB over with 10 ms, 21 KB with 1 ms
/// (`bench/scripts/maxmemory/flood-probe.py`), paid back at the loop's next look.
pub const REFRESH_PERIOD: Duration = Duration::from_millis(1);
/// How often a shard looks at the configuration while `maxmemory` is 0: on the ticks of the
/// other 100 ms tasks, so an idle shard wakes once for all of them.
const IDLE_PERIOD: Duration = Duration::from_millis(100);
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
    /// A command took memory past the limit ([`after_command`]): the next command evicts
    /// first ([`before_command`]).
    recheck: AtomicBool,
    /// `used_memory` at the last refresh less the shards' published counts then: the estimate
    /// is this plus their counts now ([`ShardMemory::estimate`]).
    estimate_base: AtomicI64,
    /// Whether `estimate_base` was set by a refresh yet.
    based: AtomicBool,
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
            estimate_base: AtomicI64::new(0),
            based: AtomicBool::new(false),
        }
    }

    /// Reads jemalloc's figure now and records it.
    pub fn refresh(&self) -> u64 {
        let used = allocated_bytes();
        self.record(used);
        used
    }

    /// Records `used` as `used_memory` (and the peak).
    fn record(&self, used: u64) {
        self.used_bytes.store(used, Ordering::Release);
        self.peak_bytes.fetch_max(used, Ordering::AcqRel);
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
///
/// The figure last recorded may be a moment old: under an eviction policy, where the shards
/// are stuck, memory is measured again before a write is refused. A batch of replies can take
/// memory over the limit while they wait to be written, the shards evict all they can and are
/// stuck; the next batch's writes came after those replies had gone, and were refused by the
/// figure recorded while they waited (a pipeline of 64 GETs of 1 KiB values under a 43 KB limit,
/// then SETs of the misses: OOM with memory under the limit and no key left).
pub fn refuses_growth(shard: &Shard) -> bool {
    let config = shard.config.borrow();
    if config.maxmemory == 0 {
        return false;
    }
    let gauge = &GAUGE;
    if gauge.used_bytes() <= config.maxmemory {
        return false;
    }
    if EvictionPolicy::from_name(&config.maxmemory_policy).is_none() {
        return true;
    }
    gauge.stuck_shards.load(Ordering::Acquire) >= shard.shared.shard_count
        && shard.memory.current(shard) > config.maxmemory
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
/// nothing it may evict, and its thread's counts of bytes allocated and freed.
pub struct ShardMemory {
    pool: RefCell<EvictionPool>,
    /// This shard's part in [`MemoryGauge::stuck_shards`].
    stuck: Cell<bool>,
    /// jemalloc's running counts of the bytes this thread allocated and freed, read through
    /// pointers (found on first use, on the shard's own thread).
    counts: Cell<Option<ThreadCounts>>,
    /// When this shard last read jemalloc's figure itself.
    refreshed_at: Cell<Option<Instant>>,
    /// This thread's count when [`after_command`] last summed the estimate, and the room
    /// below the limit then, per shard: until the count has grown by that much, the sum
    /// cannot have passed the limit by this shard's doing.
    checked_net: Cell<i64>,
    checked_room: Cell<u64>,
    /// The limit that room was below: a new limit makes it meaningless.
    checked_limit: Cell<u64>,
}

/// A shard's published count, alone on its cache line: each shard writes its own after every
/// command, and neighbours would make those writes bounce between cores.
#[repr(align(64))]
#[derive(Debug, Default)]
pub struct PublishedCount(pub AtomicI64);

/// Pointers to jemalloc's per-thread counts.
#[derive(Clone, Copy)]
struct ThreadCounts {
    allocated: tikv_jemalloc_ctl::thread::ThreadLocal<u64>,
    deallocated: tikv_jemalloc_ctl::thread::ThreadLocal<u64>,
}

impl ShardMemory {
    /// A shard's part, with an eviction pool seeded by its index.
    pub fn new(index: usize) -> Self {
        Self {
            pool: RefCell::new(EvictionPool::new(0x9E37_79B9_7F4A_7C15 ^ index as u64)),
            stuck: Cell::new(false),
            counts: Cell::new(None),
            refreshed_at: Cell::new(None),
            checked_net: Cell::new(0),
            checked_room: Cell::new(0),
            checked_limit: Cell::new(0),
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

    /// The bytes this thread has allocated less those it freed, since it started (negative
    /// when it freed more than it allocated: blocks other threads allocated).
    fn thread_net(&self) -> i64 {
        let counts = match self.counts.get() {
            Some(counts) => counts,
            None => {
                let (Ok(allocated), Ok(deallocated)) = (
                    tikv_jemalloc_ctl::thread::allocatedp::read(),
                    tikv_jemalloc_ctl::thread::deallocatedp::read(),
                ) else {
                    return 0;
                };
                let counts = ThreadCounts {
                    allocated,
                    deallocated,
                };
                self.counts.set(Some(counts));
                counts
            }
        };
        counts
            .allocated
            .get()
            .wrapping_sub(counts.deallocated.get()) as i64
    }

    /// Publishes this thread's count for the other shards' estimates; returns it.
    fn publish(&self, shard: &Shard) -> i64 {
        let net = self.thread_net();
        shard.shared.shard_net_bytes[shard.index]
            .0
            .store(net, Ordering::Release);
        net
    }

    /// The sum of every shard's published count.
    fn published_sum(shard: &Shard) -> i64 {
        shard
            .shared
            .shard_net_bytes
            .iter()
            .map(|net| net.0.load(Ordering::Acquire))
            .fold(0i64, i64::wrapping_add)
    }

    /// `used_memory` now, carried forward from the last refresh by every shard's published
    /// count (this one's published first): exact for what the shards allocate and free,
    /// whichever thread frees a block, and a read of a few atomics.
    fn estimate(&self, shard: &Shard) -> u64 {
        if !GAUGE.based.load(Ordering::Acquire) {
            return self.refresh(shard);
        }
        self.publish(shard);
        GAUGE
            .estimate_base
            .load(Ordering::Acquire)
            .wrapping_add(Self::published_sum(shard))
            .max(0) as u64
    }

    /// Reads jemalloc's figure now, and bases the estimate on it.
    fn refresh(&self, shard: &Shard) -> u64 {
        self.publish(shard);
        let used = GAUGE.refresh();
        let nets = Self::published_sum(shard);
        GAUGE
            .estimate_base
            .store((used as i64).wrapping_sub(nets), Ordering::Release);
        GAUGE.based.store(true, Ordering::Release);
        self.refreshed_at.set(Some(Instant::now()));
        used
    }

    /// The estimate, recorded as `used_memory`, or a refresh when the last is
    /// [`REFRESH_PERIOD`] old (or there was none).
    fn current(&self, shard: &Shard) -> u64 {
        match self.refreshed_at.get() {
            Some(at) if at.elapsed() < REFRESH_PERIOD => {
                let used = self.estimate(shard);
                GAUGE.record(used);
                used
            }
            _ => self.refresh(shard),
        }
    }
}

/// After this shard served a request (a connection's command, or another shard's request):
/// publishes its thread's count (always, so that a limit set later starts from true counts)
/// and, when the estimate is over `maxmemory`, has the next command of any connection evict
/// first ([`before_command`]), as Redis evicts before every command. The estimate (a sum over
/// the shards' cache lines) is taken only once this thread's count has grown by its share of
/// the room left at the last sum. A request it is not called after is counted at the next one.
pub fn after_command(shard: &Shard) {
    let memory = &shard.memory;
    let net = memory.publish(shard);
    let maxmemory = shard.config.borrow().maxmemory;
    if maxmemory == 0 {
        // The next limit, even one equal to the last, is measured again.
        memory.checked_limit.set(0);
        return;
    }
    let grown = net.wrapping_sub(memory.checked_net.get());
    let used = if memory.checked_limit.get() != maxmemory {
        // A new limit (or the first): the room is measured again, from jemalloc's own figure
        // when the last is old (the shards' loops do not read it while there is no limit).
        memory.checked_limit.set(maxmemory);
        memory.current(shard)
    } else if grown <= 0 || (grown as u64) <= memory.checked_room.get() {
        return;
    } else {
        memory.estimate(shard)
    };
    memory.checked_net.set(net);
    memory
        .checked_room
        .set(maxmemory.saturating_sub(used) / shard.count() as u64);
    if used > maxmemory {
        GAUGE.recheck.store(true, Ordering::Release);
    }
}

/// The excess a shard pays alone, without asking the others, when it holds at least the
/// average shard's keys: 1/256 of the limit, from 4 KiB to 64 KiB. A round of every shard
/// costs a message to each; at the limit a flood of writes goes over at every write, so small
/// excesses are paid where they were seen, and the shards' loops even out their shares.
fn local_step(maxmemory: u64) -> u64 {
    (maxmemory / 256).clamp(4 << 10, 64 << 10)
}

/// True when a command took memory past the limit since [`before_command`] last looked: the
/// executor calls that (an async function) only then.
#[inline]
pub fn recheck_pending() -> bool {
    GAUGE.recheck.load(Ordering::Acquire)
}

/// Before a command, when a command took memory past the limit ([`after_command`]): when the
/// estimate is still over the limit under an eviction policy, evicts before the command runs,
/// with the invalidations of tracked keys and the `evicted` events delivered first, as Redis
/// does before each command. An excess under [`local_step`] is paid by this shard alone when
/// it holds at least the average shard's keys; a larger one has every shard evict its share.
/// A shard whose share is nothing (it holds fewer keys than the average) may be the only one
/// with keys the policy may evict (a volatile policy): when a round leaves memory over the
/// limit with shards stuck, a second round has the others evict. True when shards evicted.
pub async fn before_command(shard: &Rc<Shard>) -> bool {
    if !recheck_pending() || !GAUGE.recheck.swap(false, Ordering::AcqRel) {
        return false;
    }
    let (maxmemory, policy) = {
        let config = shard.config.borrow();
        (
            config.maxmemory,
            EvictionPolicy::from_name(&config.maxmemory_policy),
        )
    };
    if maxmemory == 0 {
        return false;
    }
    let used = shard.memory.current(shard);
    if used <= maxmemory || policy.is_none() {
        return false;
    }
    if used - maxmemory < local_step(maxmemory) || shard.count() == 1 {
        if let Step::Evicted(Slice::Paid) = evict_step(shard, Gauge::Alone).await {
            return true;
        }
    }
    // Every shard looks again, stuck or not: keys may have come since it found none it may
    // evict (its flag is refreshed only by its own steps).
    for _round in 0..2 {
        let mut pending = Vec::with_capacity(shard.count());
        for index in (0..shard.count()).filter(|&index| index != shard.index) {
            pending.push(shard.send(index, ShardRequest::Evict).await);
        }
        let mut steps = vec![evict_step(shard, Gauge::Estimate).await];
        for reply in pending {
            steps.push(match reply.await {
                ShardReply::Evicted(step) => step,
                other => unreachable!("an Evict request answered {other:?}"),
            });
        }
        let stuck_now = steps.contains(&Step::Evicted(Slice::NothingLeft));
        let skipped = steps.contains(&Step::BelowAverage);
        if !(stuck_now && skipped) || shard.memory.estimate(shard) <= maxmemory {
            return true;
        }
    }
    true
}

/// Which figure a step of eviction works from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Gauge {
    /// jemalloc's, read now when the last read is [`REFRESH_PERIOD`] old, else the estimate
    /// (the eviction loop).
    Current,
    /// The estimate (a command's eviction, another shard's request).
    Estimate,
    /// The estimate, and this shard pays the whole excess (a small one, [`local_step`]).
    Alone,
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

/// Reads the gauge as `gauge` says and, when the process is over the limit, evicts this
/// shard's share of the excess ([`eviction_share`]), then delivers the `evicted` events and
/// the invalidations of tracked keys it raised.
pub async fn evict_step(shard: &Rc<Shard>, gauge: Gauge) -> Step {
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
    let used = match gauge {
        Gauge::Current => memory.current(shard),
        Gauge::Estimate | Gauge::Alone => memory.estimate(shard),
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
    if gauge == Gauge::Alone && share > 0 {
        // At least the average shard's keys: this shard pays the whole (small) excess.
        share = over;
    }
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
        match evict_step(&shard, Gauge::Current).await {
            Step::NoLimit => runtime::sleep_until_tick(IDLE_PERIOD).await,
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
            // The log's replay removes it where it went.
            crate::aof::append(evicted.db, &[b"DEL", evicted.key.as_bytes()]);
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

    /// The store sizes packed buffers to jemalloc's size classes without linking jemalloc
    /// (`ember_store::compact::size_class`); the server's allocator is jemalloc: they agree.
    #[test]
    fn store_size_classes_are_the_allocators() {
        for len in 1..70_000 {
            // SAFETY: nallocx only computes a size; flags 0 asks for no alignment.
            let allocated = unsafe { tikv_jemalloc_sys::nallocx(len, 0) };
            assert_eq!(
                ember_store::compact::size_class(len),
                allocated,
                "{len} bytes"
            );
        }
    }

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
