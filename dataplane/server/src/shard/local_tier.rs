//! The local tier: read-only copies of hot string keys on every shard, so that a GET of a hot
//! key on a connection whose shard does not own it is answered there, without a hop to the
//! owner. One hot key's GET throughput then grows with the shards instead of being capped by
//! its owner (the "JD 618" hot-key problem, without moving keys by hand).
//!
//! # How a key gets copies
//! The owner counts the GETs it runs per key in windows of [`WINDOW_MS`]; a key read more than
//! `hotkey-local-tier-rate` times a second (scaled to the window) is *published*: the owner
//! takes its value, the version of its stripe (below) and a lease deadline ([`LEASE`]) in one
//! step, remembers the key as published until the deadline, and sends the copy to every other
//! shard ([`LocalTierRequest::Install`]). While the key stays hot the owner renews the lease.
//!
//! # Why a copy is never older than an acknowledged write
//! Every shard has [`STRIPES_PER_SHARD`] version counters in [`Versions`], shared by all
//! shards (atomics: the one thing here that is not a message). A copy records its owner's
//! stripe version when its value was taken. Any change to a published key (a write, a delete,
//! an expiry, an eviction, a flush) bumps the stripe before the writer's reply leaves: the
//! store logs every changed key (the log client tracking reads), and the owner turns the log
//! into bumps right after each command ([`LocalTier::changed`], called from tracking's
//! collect), in the same step as the write. A reader checks the stripe before it serves a copy,
//! so after a write is acknowledged no reader anywhere serves the value it replaced. The check
//! does not depend on message order, so an install that arrives after a later write is simply
//! dead on arrival. Writers never wait for the other shards.
//!
//! A copy also stops serving at its lease deadline (the owner forgets a published key only
//! after it, so a write after that needs no bump), at the key's own expiry time, and when
//! anything else from the same stripe changed (a false invalidation costs one hop, never a
//! stale read).
//!
//! # Bounds
//! Copies per shard ([`COPIES_MAX`]) and their bytes ([`COPY_BYTES_MAX`]), the largest value
//! copied ([`VALUE_BYTES_MAX`]), keys counted per window ([`COUNTED_KEYS_MAX`]) and keys
//! published per owner ([`PUBLISHED_MAX`]).
//!
//! # The default rate
//! `hotkey-local-tier-rate` defaults to 2000 reads a second: a shard answers a few hundred
//! thousand GETs a second, so a key at 2000/s is far from hot enough to hurt its owner, yet a
//! cache's hot set at that rate is small (a few hundred keys at most are read that often), so
//! copies stay few and writes to them rare. 0 turns the tier off.

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Poll, Waker};
use std::time::{Duration, Instant};

use ember_resp::ReplySink;
use ember_store::{Keyspace, Value};

use super::{Shard, ShardReply, ShardRequest};
use crate::client::Client;
use crate::runtime;
use std::rc::Rc;

/// Maps by key, hashed with foldhash (std's SipHash was 2% of a shard serving another's GETs:
/// every remote GET is counted, and every GET of a remote key looks for a copy).
type KeyMap<V> = HashMap<Vec<u8>, V, foldhash::fast::RandomState>;

/// Version counters per shard: more stripes mean fewer copies lost to a write of another key.
pub const STRIPES_PER_SHARD: usize = 256;
/// The read-counting window: a key crossing the rate is published within this long.
pub const WINDOW_MS: u64 = 100;
/// How long a copy serves without renewal: short, so a tier that stops being renewed (the key
/// cooled, the rate was set to 0) empties itself quickly.
pub const LEASE: Duration = Duration::from_secs(2);
/// Copies one shard holds.
pub const COPIES_MAX: usize = 1024;
/// Bytes of copied values one shard holds (16 MiB).
pub const COPY_BYTES_MAX: usize = 16 << 20;
/// Largest value copied: larger values would cost every shard their size.
pub const VALUE_BYTES_MAX: usize = 64 << 10;
/// Distinct keys counted per window; others wait for the next window.
pub const COUNTED_KEYS_MAX: usize = 4096;
/// Counters of [`LocalTier::sketch`] (16 KiB): a window's reads of a shard under a few hundred
/// thousand random reads a second leave each counter far below an admission.
const SKETCH_LEN: usize = 8192;
/// The sketch's hash: fixed, as the counters live for one window of one shard.
const SKETCH_HASHER: foldhash::fast::FixedState = foldhash::fast::FixedState::with_seed(0x5eed);

/// Reads after which the sketch admits a key to exact counting: half the publishing threshold,
/// none (every key counted exactly) for a threshold so low that the sketch saves nothing.
fn admission(threshold: u64) -> u64 {
    if threshold >= 8 {
        (threshold / 2).min(u64::from(u16::MAX))
    } else {
        0
    }
}
/// Keys one owner keeps published at once.
pub const PUBLISHED_MAX: usize = 1024;
/// Databases (Redis's 16).
const DATABASE_COUNT: usize = 16;

/// The version stripes of every shard.
#[derive(Debug)]
pub struct Versions {
    stripes: Box<[AtomicU64]>,
}

impl Versions {
    /// Stripes for `shard_count` shards.
    pub fn new(shard_count: usize) -> Self {
        Self {
            stripes: (0..shard_count * STRIPES_PER_SHARD)
                .map(|_| AtomicU64::new(0))
                .collect(),
        }
    }

    /// The stripe of `key` owned by shard `owner`.
    pub fn stripe(owner: usize, key: &[u8]) -> usize {
        // FNV-1a: cheap, and independent of the slot hash that chose the owner.
        let mut hash: u32 = 0x811c_9dc5;
        for &byte in key {
            hash = (hash ^ u32::from(byte)).wrapping_mul(0x0100_0193);
        }
        owner * STRIPES_PER_SHARD + hash as usize % STRIPES_PER_SHARD
    }

    fn load(&self, stripe: usize) -> u64 {
        self.stripes[stripe].load(Ordering::SeqCst)
    }

    fn bump(&self, stripe: usize) {
        self.stripes[stripe].fetch_add(1, Ordering::SeqCst);
    }
}

impl Default for Versions {
    fn default() -> Self {
        Self::new(1)
    }
}

/// A copy on its way to another shard.
#[derive(Debug, Clone)]
pub struct Install {
    db: usize,
    key: Vec<u8>,
    value: Vec<u8>,
    stripe: usize,
    version: u64,
    expire_at_ms: Option<u64>,
    deadline: Instant,
}

/// Local-tier messages between shards.
#[derive(Debug)]
pub enum LocalTierRequest {
    /// Keep this copy (no reply).
    Install(Box<Install>),
}

/// A copy held by a shard that does not own the key.
#[derive(Debug)]
struct HeldCopy {
    value: Vec<u8>,
    stripe: usize,
    version: u64,
    expire_at_ms: Option<u64>,
    deadline: Instant,
}

/// One shard's local tier: as an owner, its read counts, published keys and outgoing copies;
/// as a reader, the copies it holds.
#[derive(Debug)]
pub struct LocalTier {
    /// Reads per window past which a key is published (0: off); set by [`run`].
    threshold: Cell<u64>,
    window_start_ms: Cell<u64>,
    /// Reads per key in the current window, per database, of the keys the sketch admitted.
    counts: RefCell<Vec<KeyMap<u64>>>,
    /// Reads in the current window by two hashes of (database, key), the smaller of its two
    /// counters bounding a key's reads from above: a key is counted exactly (a map entry, its
    /// name copied) only once it may have been read [`admission`] times. Counting every key
    /// read from another shard in the map was about 4% of both shards under pipelined GETs of
    /// random keys (a copy, a map entry and key comparisons a read, none of them ever hot).
    sketch: RefCell<Box<[u16; SKETCH_LEN]>>,
    /// True when the sketch counted anything since its last reset.
    sketched: Cell<bool>,
    counted_keys: Cell<usize>,
    /// Keys published, with their lease deadlines.
    published: RefCell<KeyMap<Instant>>,
    outbox: RefCell<Vec<Install>>,
    /// The tier's task, while it waits: woken when the outbox gets a copy to send.
    sender: RefCell<Option<Waker>>,
    copies: RefCell<Vec<KeyMap<HeldCopy>>>,
    copy_count: Cell<usize>,
    copy_bytes: Cell<usize>,
    /// GETs answered from a copy.
    pub hits: Cell<u64>,
}

impl Default for LocalTier {
    fn default() -> Self {
        Self {
            threshold: Cell::new(0),
            window_start_ms: Cell::new(0),
            counts: RefCell::new((0..DATABASE_COUNT).map(|_| KeyMap::default()).collect()),
            sketch: RefCell::new(Box::new([0; SKETCH_LEN])),
            sketched: Cell::new(false),
            counted_keys: Cell::new(0),
            published: RefCell::default(),
            outbox: RefCell::default(),
            sender: RefCell::default(),
            copies: RefCell::new((0..DATABASE_COUNT).map(|_| KeyMap::default()).collect()),
            copy_count: Cell::new(0),
            copy_bytes: Cell::new(0),
            hits: Cell::new(0),
        }
    }
}

impl LocalTier {
    /// True while this owner counts reads (the tier is on and there is another shard).
    pub fn counting(&self) -> bool {
        self.threshold.get() > 0
    }

    /// True while keys of this owner are published (their changes must bump versions).
    pub fn publishing(&self) -> bool {
        !self.published.borrow().is_empty()
    }

    /// Owner side, after a GET of `key` ran here: counts it, and publishes it when it crossed
    /// the rate. Returns true when it published (the caller turns the store's change log on).
    pub fn note_read(
        &self,
        owner: usize,
        versions: &Versions,
        keyspace: &Keyspace,
        db: usize,
        key: &[u8],
        now_ms: u64,
    ) -> bool {
        let threshold = self.threshold.get();
        if threshold == 0 || db >= DATABASE_COUNT {
            return false;
        }
        if now_ms >= self.window_start_ms.get() + WINDOW_MS || now_ms < self.window_start_ms.get() {
            if self.counted_keys.get() > 0 {
                self.counts.borrow_mut().iter_mut().for_each(HashMap::clear);
                self.counted_keys.set(0);
            }
            if self.sketched.replace(false) {
                self.sketch.borrow_mut().fill(0);
            }
            self.window_start_ms.set(now_ms);
        }
        let admission = admission(threshold);
        if admission > 0 && !self.sketch_admits(db, key, admission) {
            return false;
        }
        let count = {
            let mut counts = self.counts.borrow_mut();
            // No allocation for a key already counted (the common case for a hot key).
            if let Some(count) = counts[db].get_mut(key) {
                *count += 1;
                *count
            } else if self.counted_keys.get() < COUNTED_KEYS_MAX {
                // Admitted by the sketch at its `admission`-th read at most: counted from
                // there, so a key is published at about its `threshold`-th read as before.
                let count = admission.max(1);
                counts[db].insert(key.to_vec(), count);
                self.counted_keys.set(self.counted_keys.get() + 1);
                count
            } else {
                return false;
            }
        };
        // Once a window per key: a key that stays hot is looked at again (and its lease
        // renewed) next window, and the reads past the threshold cost one counter each.
        if count != threshold {
            return false;
        }
        let now = Instant::now();
        if let Some(deadline) = self.published.borrow().get(key) {
            if deadline.saturating_duration_since(now) > LEASE / 2 {
                return false; // Published recently: renewed once less than half is left.
            }
        }
        // Changes logged but not yet turned into bumps could be this key's: publish later.
        if keyspace.has_modified() {
            return false;
        }
        let Some(entry) = keyspace.peek(db, key, now_ms) else {
            return false;
        };
        let value = match &entry.value {
            Value::Str(bytes) if bytes.len() <= VALUE_BYTES_MAX => bytes.as_bytes().to_vec(),
            Value::Int(int) => int.to_string().into_bytes(),
            _ => return false,
        };
        let mut published = self.published.borrow_mut();
        if published.len() >= PUBLISHED_MAX && !published.contains_key(key) {
            return false;
        }
        let deadline = now + LEASE;
        let stripe = Versions::stripe(owner, key);
        // Taken with the value, in the same step: a later change of the key bumps past it.
        let version = versions.load(stripe);
        published.insert(key.to_vec(), deadline);
        self.outbox.borrow_mut().push(Install {
            db,
            key: key.to_vec(),
            value,
            stripe,
            version,
            expire_at_ms: entry.expire_at_ms(),
            deadline,
        });
        if let Some(sender) = self.sender.borrow_mut().take() {
            sender.wake();
        }
        true
    }

    /// Counts a read of `key` of `db` in the sketch; true when the key may have been read
    /// `admission` times this window (its smaller counter got there).
    fn sketch_admits(&self, db: usize, key: &[u8], admission: u64) -> bool {
        let hash = {
            use std::hash::{BuildHasher, Hasher};
            let mut hasher = SKETCH_HASHER.build_hasher();
            hasher.write_usize(db);
            hasher.write(key);
            hasher.finish()
        };
        let first = (hash as usize) % SKETCH_LEN;
        let second = ((hash >> 32) as usize) % SKETCH_LEN;
        let mut sketch = self.sketch.borrow_mut();
        sketch[first] = sketch[first].saturating_add(1);
        sketch[second] = sketch[second].saturating_add(1);
        self.sketched.set(true);
        u64::from(sketch[first].min(sketch[second])) >= admission
    }

    /// Owner side: `key` changed (written, removed, expired, evicted). A published key's
    /// stripe moves on, so no copy of its old value serves again; its read count starts over
    /// (from the sketch's admission), so a key that stays hot is published again (with its
    /// new value) within the window.
    pub fn changed(&self, owner: usize, versions: &Versions, key: &[u8]) {
        let mut published = self.published.borrow_mut();
        if published.is_empty() {
            return;
        }
        if published.remove(key).is_some() {
            versions.bump(Versions::stripe(owner, key));
            for counts in self.counts.borrow_mut().iter_mut() {
                if counts.remove(key).is_some() {
                    self.counted_keys.set(self.counted_keys.get() - 1);
                }
            }
        }
    }

    /// Owner side: every key may have changed (FLUSHDB, FLUSHALL, SWAPDB). Reader side: the
    /// copies are dropped too (their owners bump their own stripes).
    pub fn changed_all(&self, owner: usize, versions: &Versions) {
        let mut published = self.published.borrow_mut();
        if !published.is_empty() {
            for stripe in 0..STRIPES_PER_SHARD {
                versions.bump(owner * STRIPES_PER_SHARD + stripe);
            }
            published.clear();
        }
        self.outbox.borrow_mut().clear();
        drop(published);
        self.clear_copies();
    }

    fn clear_copies(&self) {
        for copies in self.copies.borrow_mut().iter_mut() {
            copies.clear();
        }
        self.copy_count.set(0);
        self.copy_bytes.set(0);
    }

    /// Reader side: the value of `key` in `db` when a live copy holds it, handed to `serve`.
    pub fn serve(
        &self,
        versions: &Versions,
        db: usize,
        key: &[u8],
        now_ms: u64,
        serve: impl FnOnce(&[u8]),
    ) -> bool {
        if self.copy_count.get() == 0 || db >= DATABASE_COUNT {
            return false;
        }
        let copies = self.copies.borrow();
        let Some(copy) = copies[db].get(key) else {
            return false;
        };
        if copy.expire_at_ms.is_some_and(|at| at <= now_ms)
            || Instant::now() >= copy.deadline
            || versions.load(copy.stripe) != copy.version
        {
            return false;
        }
        serve(&copy.value);
        self.hits.set(self.hits.get() + 1);
        true
    }

    /// Reader side: keeps a copy sent by its owner, unless it is already dead or would break
    /// the bounds (then older copies make room first).
    pub fn install(&self, versions: &Versions, install: Install) {
        if Instant::now() >= install.deadline
            || versions.load(install.stripe) != install.version
            || install.db >= DATABASE_COUNT
        {
            return;
        }
        let mut copies = self.copies.borrow_mut();
        if let Some(old) = copies[install.db].remove(&install.key) {
            self.forget(install.key.len(), &old);
        }
        let bytes = install.key.len() + install.value.len();
        if self.copy_count.get() >= COPIES_MAX || self.copy_bytes.get() + bytes > COPY_BYTES_MAX {
            drop(copies);
            self.prune(versions);
            copies = self.copies.borrow_mut();
        }
        while self.copy_count.get() >= COPIES_MAX || self.copy_bytes.get() + bytes > COPY_BYTES_MAX
        {
            // Still full of live copies: drop any one (the next publication brings it back).
            let Some((db, key)) = copies
                .iter()
                .enumerate()
                .find_map(|(db, map)| map.keys().next().map(|key| (db, key.clone())))
            else {
                return; // The one copy would not fit alone.
            };
            let old = copies[db].remove(&key).expect("just found");
            self.forget(key.len(), &old);
        }
        self.copy_count.set(self.copy_count.get() + 1);
        self.copy_bytes.set(self.copy_bytes.get() + bytes);
        copies[install.db].insert(
            install.key,
            HeldCopy {
                value: install.value,
                stripe: install.stripe,
                version: install.version,
                expire_at_ms: install.expire_at_ms,
                deadline: install.deadline,
            },
        );
    }

    /// Takes a removed copy (of a `key_len`-byte key) off the counts.
    fn forget(&self, key_len: usize, copy: &HeldCopy) {
        self.copy_count.set(self.copy_count.get() - 1);
        self.copy_bytes
            .set(self.copy_bytes.get() - key_len - copy.value.len());
    }

    /// Drops dead copies (past their lease, or invalidated), and forgets published keys whose
    /// lease ended. Returns true while keys stay published.
    pub fn prune(&self, versions: &Versions) -> bool {
        let now = Instant::now();
        let mut copies = self.copies.borrow_mut();
        for map in copies.iter_mut() {
            map.retain(|key, copy| {
                let live = now < copy.deadline && versions.load(copy.stripe) == copy.version;
                if !live {
                    self.forget(key.len(), copy);
                }
                live
            });
        }
        drop(copies);
        let mut published = self.published.borrow_mut();
        published.retain(|_, deadline| now < *deadline);
        !published.is_empty()
    }

    /// Copies held now.
    pub fn copy_count(&self) -> usize {
        self.copy_count.get()
    }

    /// Sets the reads per window past which a key is published, from reads a second.
    pub fn set_rate(&self, reads_per_second: u64, shard_count: usize) {
        let threshold = if shard_count < 2 || reads_per_second == 0 {
            0
        } else {
            (reads_per_second * WINDOW_MS / 1000).max(1)
        };
        self.threshold.set(threshold);
    }

    /// The copies waiting to be sent.
    pub fn take_outbox(&self) -> Vec<Install> {
        std::mem::take(&mut *self.outbox.borrow_mut())
    }
}

/// How often the tier's task looks at the configuration and drops dead copies. Copies to send
/// wake it at once (a GET that publishes a key wakes it), so an idle shard wakes for the tier
/// ten times a second, as Redis's `hz` wakes it, not 200 times as it did with a 5 ms poll for
/// the outbox.
const PRUNE_PERIOD: Duration = Duration::from_millis(WINDOW_MS);

/// The shard's local-tier task: sends the copies its GETs published to every other shard,
/// follows `hotkey-local-tier-rate`, and drops dead copies and expired publications.
pub async fn run(shard: Rc<Shard>) {
    let tier = &shard.local_tier;
    let mut prune_due = runtime::next_tick(PRUNE_PERIOD);
    loop {
        for install in tier.take_outbox() {
            for target in (0..shard.count()).filter(|&target| target != shard.index) {
                let request = LocalTierRequest::Install(Box::new(install.clone()));
                shard.notify(target, ShardRequest::LocalTier(request)).await;
            }
        }
        if Instant::now() >= prune_due {
            prune_due = runtime::next_tick(PRUNE_PERIOD);
            let rate = shard.config.borrow().integer("hotkey-local-tier-rate");
            tier.set_rate(rate.max(0) as u64, shard.count());
            if !tier.prune(&shard.shared.tier_versions) {
                let mut keyspace = shard.keyspace.borrow_mut();
                shard.tracking.log_for_local_tier(&mut keyspace, false);
            }
        }
        let mut timer = std::pin::pin!(runtime::sleep(
            prune_due.saturating_duration_since(Instant::now())
        ));
        std::future::poll_fn(|cx| {
            if !tier.outbox.borrow().is_empty() {
                return Poll::Ready(());
            }
            *tier.sender.borrow_mut() = Some(cx.waker().clone());
            timer.as_mut().poll(cx)
        })
        .await;
    }
}

/// Answers another shard's local-tier message.
pub fn answer(shard: &Shard, request: LocalTierRequest) -> ShardReply {
    match request {
        LocalTierRequest::Install(install) => {
            shard
                .local_tier
                .install(&shard.shared.tier_versions, *install);
        }
    }
    ShardReply::Done
}

/// After a keyspace command ran on the shard that owns its keys: a GET is counted, and may
/// publish its key (the store's change log is then kept on, so the key's changes are seen).
pub fn after_command(shard: &Shard, db: usize, args: &[&[u8]], now_ms: u64) {
    let tier = &shard.local_tier;
    if !tier.counting() || args.len() != 2 || !args[0].eq_ignore_ascii_case(b"get") {
        return;
    }
    let mut keyspace = shard.keyspace.borrow_mut();
    let versions = &shard.shared.tier_versions;
    if tier.note_read(shard.index, versions, &keyspace, db, args[1], now_ms) {
        shard.tracking.log_for_local_tier(&mut keyspace, true);
    }
}

/// FLUSHDB, FLUSHALL or SWAPDB ran here: no copy of this shard's keys serves again.
pub fn flushed(shard: &Shard) {
    shard
        .local_tier
        .changed_all(shard.index, &shard.shared.tier_versions);
}

/// A GET on a connection of this shard for a key another shard owns: answered from a copy
/// when one is live and nothing else needs the owner (a transaction or script, client
/// tracking, which must remember the read there, or an earlier command of the batch still on
/// its way there, which may be a write of the key). True when it answered.
pub fn serve_get(
    shard: &Shard,
    client: &Client,
    args: &[&[u8]],
    now_ms: u64,
    idle_pipeline: bool,
    out: &mut ReplySink,
) -> bool {
    if shard.local_tier.copy_count.get() == 0
        || args.len() != 2
        || !idle_pipeline
        || client.hold.is_some()
        || client.script
        || !args[0].eq_ignore_ascii_case(b"get")
        || client.handle.tracking.borrow().is_some()
    {
        return false;
    }
    let served = shard.local_tier.serve(
        &shard.shared.tier_versions,
        client.db,
        args[1],
        now_ms,
        |value| out.bulk(value),
    );
    if served {
        shard.stats.count_lookup(true); // INFO's keyspace_hits counts it as the owner would.
    }
    served
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keyspace_with(key: &[u8], value: &[u8]) -> Keyspace {
        let mut keyspace = Keyspace::new();
        keyspace.insert(0, key, Value::from_bytes(value), None, 1000);
        keyspace
    }

    fn published_copy(tier: &LocalTier, versions: &Versions, keyspace: &Keyspace) -> Install {
        tier.set_rate(30, 2); // 3 reads a window
        for read in 1..=5 {
            let published = tier.note_read(0, versions, keyspace, 0, b"hot", 1000);
            assert_eq!(
                published,
                read == 3,
                "published at the third read, once a window"
            );
        }
        let mut outbox = tier.take_outbox();
        assert_eq!(outbox.len(), 1);
        outbox.pop().unwrap()
    }

    fn served(tier: &LocalTier, versions: &Versions, now_ms: u64) -> Option<Vec<u8>> {
        let mut value = None;
        tier.serve(versions, 0, b"hot", now_ms, |bytes| {
            value = Some(bytes.to_vec())
        });
        value
    }

    #[test]
    fn a_copy_serves_until_its_key_changes() {
        let versions = Versions::new(2);
        let owner = LocalTier::default();
        let reader = LocalTier::default();
        let keyspace = keyspace_with(b"hot", b"v1");
        let install = published_copy(&owner, &versions, &keyspace);
        assert!(owner.publishing());
        reader.install(&versions, install);
        assert_eq!(served(&reader, &versions, 1000), Some(b"v1".to_vec()));
        assert_eq!(reader.hits.get(), 1);
        owner.changed(0, &versions, b"cold");
        assert_eq!(
            served(&reader, &versions, 1000),
            Some(b"v1".to_vec()),
            "other keys"
        );
        owner.changed(0, &versions, b"hot");
        assert_eq!(
            served(&reader, &versions, 1000),
            None,
            "invalidated by the write"
        );
        assert!(!owner.publishing());
        let again = published_copy(&owner, &versions, &keyspace);
        reader.install(&versions, again);
        assert_eq!(
            served(&reader, &versions, 1000),
            Some(b"v1".to_vec()),
            "published again in the same window, at the new version"
        );
    }

    #[test]
    fn the_sketch_admits_hot_keys_only() {
        let versions = Versions::new(2);
        let tier = LocalTier::default();
        let keyspace = keyspace_with(b"hot", b"v1");
        tier.set_rate(2000, 2); // 200 reads a window, admitted to exact counts at 100
        for read in 1..=250u64 {
            for cold in 0..20u64 {
                let key = format!("cold:{read}:{cold}");
                assert!(!tier.note_read(0, &versions, &keyspace, 0, key.as_bytes(), 1000));
            }
            let published = tier.note_read(0, &versions, &keyspace, 0, b"hot", 1000);
            assert_eq!(published, read == 200, "read {read}");
        }
        assert_eq!(
            tier.counted_keys.get(),
            1,
            "5,000 cold keys read once, none counted"
        );
        assert_eq!(tier.take_outbox().len(), 1);
        // A new window starts the counts over.
        for read in 1..=200u64 {
            let published = tier.note_read(0, &versions, &keyspace, 0, b"hot", 1000 + WINDOW_MS);
            assert!(
                !published,
                "read {read}: published less than half a lease ago"
            );
        }
        assert_eq!(tier.counted_keys.get(), 1);
    }

    #[test]
    fn an_install_taken_before_a_write_is_dead_on_arrival() {
        let versions = Versions::new(2);
        let owner = LocalTier::default();
        let reader = LocalTier::default();
        let keyspace = keyspace_with(b"hot", b"v1");
        let install = published_copy(&owner, &versions, &keyspace);
        owner.changed(0, &versions, b"hot"); // The write lands before the copy does.
        reader.install(&versions, install);
        assert_eq!(reader.copy_count(), 0);
        assert_eq!(served(&reader, &versions, 1000), None);
    }

    #[test]
    fn a_copy_stops_at_the_key_expiry_and_after_a_flush() {
        let versions = Versions::new(2);
        let owner = LocalTier::default();
        let reader = LocalTier::default();
        let mut keyspace = Keyspace::new();
        keyspace.insert(0, b"hot", Value::from_bytes(b"v"), Some(5000), 1000);
        let install = published_copy(&owner, &versions, &keyspace);
        reader.install(&versions, install);
        assert!(served(&reader, &versions, 4999).is_some());
        assert!(served(&reader, &versions, 5000).is_none(), "expired");
        owner.changed_all(0, &versions);
        assert!(served(&reader, &versions, 1000).is_none(), "flushed");
    }

    #[test]
    fn off_with_one_shard_or_rate_zero_and_bounded_copies() {
        let versions = Versions::new(2);
        let tier = LocalTier::default();
        let keyspace = keyspace_with(b"hot", b"v");
        tier.set_rate(0, 2);
        assert!(!tier.note_read(0, &versions, &keyspace, 0, b"hot", 1000));
        tier.set_rate(10, 1);
        assert!(!tier.counting());
        let reader = LocalTier::default();
        for index in 0..COPIES_MAX + 10 {
            reader.install(
                &versions,
                Install {
                    db: 0,
                    key: format!("k{index}").into_bytes(),
                    value: vec![b'x'; 8],
                    stripe: 0,
                    version: 0,
                    expire_at_ms: None,
                    deadline: Instant::now() + LEASE,
                },
            );
        }
        assert_eq!(reader.copy_count(), COPIES_MAX);
        let held: usize = reader.copies.borrow().iter().map(HashMap::len).sum();
        assert_eq!(held, COPIES_MAX);
    }
}
