//! W-TinyLFU as Caffeine runs it (Einziger, Friedman and Manes, 2017; Caffeine's
//! `BoundedLocalCache`): new keys enter a small LRU *window*; keys pushed out of the window
//! become *candidates* for the main space, a segmented LRU of *probation* and *protected*
//! (80% of the main space). A candidate is admitted only if the frequency sketch
//! ([`super::sketch`]) says it is used more often than the victim it would replace (probation's
//! LRU end); otherwise the candidate itself is evicted. A hit in probation promotes the key to
//! protected, whose overflow is demoted back to probation. A hill climber resizes the window
//! every sample: if the hit ratio improved it keeps stepping the same way, otherwise it turns
//! round, with steps that decay unless the hit ratio jumps (a new workload).
//!
//! Eviction yields one key per call. Candidates are the keys that left the window since the
//! last hook that was not an eviction, so a burst of evictions after one write judges that
//! write's candidates, as one Caffeine maintenance pass does; candidates left unjudged when the
//! next write or read comes have been admitted.

use super::list::{Arena, List, Weighted};
use super::sketch::{self, FrequencySketch};
use super::{KeyId, KeyInfo, KeyMap, PolicyConfig};
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use std::collections::VecDeque;

/// Window share at start, in percent of the capacity (Caffeine's `1 - PERCENT_MAIN`).
pub const WINDOW_SHARE_PERCENT: u64 = 1;

/// Protected share of the main space, in percent (Caffeine's `PERCENT_MAIN_PROTECTED`).
pub const PROTECTED_SHARE_PERCENT: u64 = 80;

/// A candidate this frequent or more is admitted at random 1 time in 128 even when it loses,
/// so an attacker cannot pin a victim by colliding hashes (Caffeine's `ADMIT_HASHDOS_THRESHOLD`).
pub const ADMIT_HASHDOS_THRESHOLD: u64 = 6;

/// One in `ADMIT_RANDOM_ODDS` candidates at or above the threshold is admitted anyway.
const ADMIT_RANDOM_ODDS: u32 = 128;

/// First step of the hill climber, as a fraction of the capacity (Caffeine's 6.25%).
pub const CLIMBER_STEP_FRACTION: f64 = 0.0625;

/// Each step is this fraction of the previous one while the hit ratio moves little.
pub const CLIMBER_STEP_DECAY: f64 = 0.98;

/// A change of the hit ratio this large restarts the climber with a full step.
pub const CLIMBER_RESTART_THRESHOLD: f64 = 0.05;

/// Fewest requests in one climber sample. Caffeine samples `10 * entries` requests, which in a
/// cache of a hundred keys is a thousand: the hit ratio of so few requests moves by a point or
/// two by chance alone (binomial noise up to 0.5 / sqrt(n)), and the climber then walks the
/// window at random in steps of 6.25%. Measured on Zipf traces at 0.1% of the working set, that
/// cost W-TinyLFU 4 points of hit ratio against a fixed window; from 10000 requests the noise
/// is under half a point. Caches of 1000 keys and more sample as Caffeine does.
pub const CLIMBER_SAMPLE_MIN: u64 = 10_000;

/// Most keys moved between segments by one window resize, bounding the work of one hook
/// (Caffeine's `QUEUE_TRANSFER_THRESHOLD`); the rest of the quota is retried later.
pub const RESIZE_TRANSFER_MAX: usize = 1000;

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Segment {
    Window,
    Probation,
    Protected,
}

#[derive(Clone, Copy)]
struct Node {
    key: KeyId,
    size_bytes: u64,
    segment: Segment,
}

impl Weighted for Node {
    fn size_bytes(&self) -> u64 {
        self.size_bytes
    }
}

/// The hill climber's state (Caffeine's `determineAdjustment`).
struct Climber {
    hits: u64,
    misses: u64,
    previous_hit_ratio: f64,
    step_bytes: f64,
    /// Bytes still to move into (positive) or out of (negative) the window.
    adjustment_bytes: i64,
}

/// The W-TinyLFU policy.
pub struct WTinyLfu {
    arena: Arena<Node>,
    window: List,
    probation: List,
    protected: List,
    index: KeyMap<u32>,
    candidates: VecDeque<KeyId>,
    sketch: FrequencySketch,
    capacity_bytes: u64,
    window_max_bytes: u64,
    protected_max_bytes: u64,
    climber: Climber,
    rng: SmallRng,
    seed: u64,
}

impl WTinyLfu {
    /// An empty cache of `config.capacity_bytes`, its sketch sized for
    /// `config.expected_entries` keys (it grows when more are held).
    pub fn new(config: &PolicyConfig) -> Self {
        let mut policy = WTinyLfu {
            arena: Arena::new(),
            window: List::default(),
            probation: List::default(),
            protected: List::default(),
            index: KeyMap::default(),
            candidates: VecDeque::new(),
            sketch: FrequencySketch::new(config.expected_entries, config.seed),
            capacity_bytes: 0,
            window_max_bytes: 0,
            protected_max_bytes: 0,
            climber: Climber {
                hits: 0,
                misses: 0,
                previous_hit_ratio: 0.0,
                step_bytes: 0.0,
                adjustment_bytes: 0,
            },
            rng: SmallRng::seed_from_u64(config.seed),
            seed: config.seed,
        };
        policy.set_segment_sizes(config.capacity_bytes);
        policy
    }

    fn set_segment_sizes(&mut self, capacity_bytes: u64) {
        self.capacity_bytes = capacity_bytes;
        self.window_max_bytes = (capacity_bytes * WINDOW_SHARE_PERCENT / 100).max(1);
        let main_bytes = capacity_bytes.saturating_sub(self.window_max_bytes);
        self.protected_max_bytes = main_bytes * PROTECTED_SHARE_PERCENT / 100;
        self.climber.step_bytes = -CLIMBER_STEP_FRACTION * capacity_bytes as f64;
    }

    /// Current window size limit (the hill climber moves it).
    pub fn window_max_bytes(&self) -> u64 {
        self.window_max_bytes
    }

    fn list(&mut self, segment: Segment) -> &mut List {
        match segment {
            Segment::Window => &mut self.window,
            Segment::Probation => &mut self.probation,
            Segment::Protected => &mut self.protected,
        }
    }

    fn unlink(&mut self, slot: u32) {
        let segment = self.arena.get(slot).segment;
        let mut list = *self.list(segment);
        list.unlink(&mut self.arena, slot);
        *self.list(segment) = list;
    }

    fn link(&mut self, slot: u32, segment: Segment) {
        self.arena.get_mut(slot).segment = segment;
        let mut list = *self.list(segment);
        list.push_newest(&mut self.arena, slot);
        *self.list(segment) = list;
    }

    fn relink(&mut self, slot: u32, segment: Segment) {
        self.unlink(slot);
        self.link(slot, segment);
    }

    /// Moves window overflow to probation's newest end; each moved key is a candidate.
    fn drain_window(&mut self) {
        while self.window.bytes() > self.window_max_bytes {
            let Some(slot) = self.window.oldest() else {
                break;
            };
            self.relink(slot, Segment::Probation);
            self.candidates.push_back(self.arena.get(slot).key);
        }
    }

    fn demote_protected(&mut self) {
        while self.protected.bytes() > self.protected_max_bytes {
            let Some(slot) = self.protected.oldest() else {
                break;
            };
            self.relink(slot, Segment::Probation);
        }
    }

    /// Starts a new operation: candidates not judged by now were admitted.
    fn begin(&mut self) {
        self.candidates.clear();
    }

    fn record_access(&mut self, slot: u32) {
        match self.arena.get(slot).segment {
            Segment::Window => self.window.move_to_newest(&mut self.arena, slot),
            Segment::Protected => self.protected.move_to_newest(&mut self.arena, slot),
            Segment::Probation => {
                self.relink(slot, Segment::Protected);
                self.demote_protected();
            }
        }
    }

    /// Caffeine's `admit`: the candidate replaces the victim if it is used more often.
    fn admit(&mut self, candidate: KeyId, victim: KeyId) -> bool {
        let candidate_frequency = self.sketch.frequency(candidate);
        let victim_frequency = self.sketch.frequency(victim);
        if candidate_frequency > victim_frequency {
            true
        } else if candidate_frequency >= ADMIT_HASHDOS_THRESHOLD {
            self.rng.gen_range(0..ADMIT_RANDOM_ODDS) == 0
        } else {
            false
        }
    }

    fn evict_slot(&mut self, slot: u32) -> KeyId {
        self.unlink(slot);
        let node = self.arena.release(slot);
        self.index.remove(&node.key);
        node.key
    }

    /// The first candidate still waiting in probation.
    fn next_candidate(&mut self) -> Option<u32> {
        while let Some(&key) = self.candidates.front() {
            match self.index.get(&key) {
                Some(&slot) if self.arena.get(slot).segment == Segment::Probation => {
                    return Some(slot)
                }
                _ => {
                    self.candidates.pop_front();
                }
            }
        }
        None
    }

    fn ensure_sketch_capacity(&mut self) {
        let entries = self.index.len() as u64;
        if entries * sketch::WIDTH_PER_ENTRY > self.sketch.width() {
            // As Caffeine's `ensureCapacity`: a bigger table, counts start again.
            self.sketch = FrequencySketch::new(entries * 2, self.seed);
        }
    }

    /// Caffeine's `climb`: at the end of each sample, step the window size.
    fn climb(&mut self) {
        let requests = self.climber.hits + self.climber.misses;
        if requests >= self.sketch.sample_size().max(CLIMBER_SAMPLE_MIN) {
            let hit_ratio = self.climber.hits as f64 / requests as f64;
            let change = hit_ratio - self.climber.previous_hit_ratio;
            let amount = if change >= 0.0 {
                self.climber.step_bytes
            } else {
                -self.climber.step_bytes
            };
            self.climber.step_bytes = if change.abs() >= CLIMBER_RESTART_THRESHOLD {
                CLIMBER_STEP_FRACTION * self.capacity_bytes as f64 * amount.signum()
            } else {
                CLIMBER_STEP_DECAY * amount
            };
            self.climber.previous_hit_ratio = hit_ratio;
            self.climber.adjustment_bytes = amount as i64;
            self.climber.hits = 0;
            self.climber.misses = 0;
        }
        self.demote_protected();
        match self.climber.adjustment_bytes {
            0 => {}
            adjustment if adjustment > 0 => self.grow_window(adjustment as u64),
            adjustment => self.shrink_window(adjustment.unsigned_abs()),
        }
    }

    fn grow_window(&mut self, wanted_bytes: u64) {
        if self.protected_max_bytes == 0 {
            return;
        }
        let mut quota = wanted_bytes.min(self.protected_max_bytes);
        self.protected_max_bytes -= quota;
        self.window_max_bytes += quota;
        self.demote_protected();
        for _ in 0..RESIZE_TRANSFER_MAX {
            let Some(slot) = self.probation.oldest().or_else(|| self.protected.oldest()) else {
                break;
            };
            let size_bytes = self.arena.get(slot).size_bytes;
            if quota < size_bytes {
                break;
            }
            quota -= size_bytes;
            self.relink(slot, Segment::Window);
        }
        // Give back what could not be moved; it is tried again at the next hook.
        self.protected_max_bytes += quota;
        self.window_max_bytes -= quota;
        self.climber.adjustment_bytes = quota as i64;
    }

    fn shrink_window(&mut self, wanted_bytes: u64) {
        if self.window_max_bytes <= 1 {
            return;
        }
        let mut quota = wanted_bytes.min(self.window_max_bytes - 1);
        self.protected_max_bytes += quota;
        self.window_max_bytes -= quota;
        for _ in 0..RESIZE_TRANSFER_MAX {
            let Some(slot) = self.window.oldest() else {
                break;
            };
            let size_bytes = self.arena.get(slot).size_bytes;
            if quota < size_bytes {
                break;
            }
            quota -= size_bytes;
            self.relink(slot, Segment::Probation);
        }
        self.protected_max_bytes -= quota;
        self.window_max_bytes += quota;
        self.climber.adjustment_bytes = -(quota as i64);
    }
}

impl super::EvictionPolicy for WTinyLfu {
    fn name(&self) -> &'static str {
        "w-tinylfu"
    }

    fn set_capacity_bytes(&mut self, capacity_bytes: u64) {
        self.set_segment_sizes(capacity_bytes);
        self.demote_protected();
        self.drain_window();
    }

    fn len(&self) -> usize {
        self.index.len()
    }

    fn on_insert(&mut self, key: KeyId, info: KeyInfo, _now_ms: u64) {
        self.begin();
        self.sketch.increment(key);
        // A key is written after a miss in a cache; the climber counts it so.
        self.climber.misses += 1;
        let slot = self.arena.allocate(Node {
            key,
            size_bytes: info.size_bytes,
            segment: Segment::Window,
        });
        assert!(
            self.index.insert(key, slot).is_none(),
            "key {key} inserted twice"
        );
        self.link(slot, Segment::Window);
        self.ensure_sketch_capacity();
        self.climb();
        self.drain_window();
    }

    fn on_access(&mut self, key: KeyId, _now_ms: u64) {
        self.begin();
        self.sketch.increment(key);
        self.climber.hits += 1;
        let slot = self.index[&key];
        self.record_access(slot);
        self.climb();
        self.drain_window();
    }

    fn on_update(&mut self, key: KeyId, info: KeyInfo, _now_ms: u64) {
        self.begin();
        self.sketch.increment(key);
        let slot = self.index[&key];
        let node = self.arena.get_mut(slot);
        let (old_size_bytes, segment) = (node.size_bytes, node.segment);
        node.size_bytes = info.size_bytes;
        self.list(segment).resize(old_size_bytes, info.size_bytes);
        self.record_access(slot);
        self.drain_window();
    }

    fn on_remove(&mut self, key: KeyId) {
        let slot = self.index[&key];
        self.evict_slot(slot);
    }

    fn choose_victim(&mut self, _now_ms: u64) -> Option<KeyId> {
        // Window overflow left by a capacity change becomes candidates too.
        self.drain_window();
        let victim_slot = self.probation.oldest();
        let slot = match (self.next_candidate(), victim_slot) {
            (Some(candidate), Some(victim)) if candidate != victim => {
                let candidate_key = self.arena.get(candidate).key;
                let victim_key = self.arena.get(victim).key;
                // Either way the next eviction judges the next candidate, as Caffeine's
                // cursor moves on after each comparison.
                if self.admit(candidate_key, victim_key) {
                    self.candidates.pop_front();
                    victim
                } else {
                    self.candidates.pop_front();
                    candidate
                }
            }
            (Some(candidate), _) => {
                self.candidates.pop_front();
                candidate
            }
            (None, Some(victim)) => victim,
            (None, None) => self.protected.oldest().or_else(|| self.window.oldest())?,
        };
        Some(self.evict_slot(slot))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::eviction::{EvictionPolicy, SimulatedCache};

    /// Each key is read three times, 50 and 100 steps apart, then never again: a recency
    /// workload where the 1% window rejects every key before its second read, and a window of
    /// a hundred keys or more catches both rereads.
    fn recency_hit_ratio(policy: Box<dyn EvictionPolicy>) -> f64 {
        let mut cache = SimulatedCache::new(policy, 1_000);
        for step in 100..70_000u64 {
            for key in [step, step - 50, step - 100] {
                cache.request(key, 1, None, step);
            }
        }
        cache.stats().hit_ratio()
    }

    #[test]
    fn the_climber_grows_the_window_for_recency() {
        let config = PolicyConfig {
            capacity_bytes: 1_000,
            expected_entries: 1_000,
            ..PolicyConfig::default()
        };
        let mut policy = WTinyLfu::new(&config);
        assert_eq!(policy.window_max_bytes(), 10, "starts at 1%");
        // Driven by hand (not through SimulatedCache) to read the window afterwards; ten
        // times its first size is what the workload needs to catch the first reread.
        let mut cache_policy = Box::new(WTinyLfu::new(&config));
        for step in 100..70_000u64 {
            for key in [step, step - 50, step - 100] {
                if cache_policy.index.contains_key(&key) {
                    cache_policy.on_access(key, step);
                } else {
                    cache_policy.on_insert(
                        key,
                        KeyInfo {
                            size_bytes: 1,
                            expire_at_ms: None,
                        },
                        step,
                    );
                    while cache_policy.index.len() > 1_000 {
                        cache_policy.choose_victim(step);
                    }
                }
            }
        }
        assert!(
            cache_policy.window_max_bytes() >= 100,
            "window {} bytes after a recency workload",
            cache_policy.window_max_bytes()
        );
        // Two of every three requests are rereads: the adapted cache hits most of them.
        let ratio = recency_hit_ratio(Box::new(WTinyLfu::new(&config)));
        assert!(ratio > 0.5, "hit ratio {ratio:.3}");
        policy.set_capacity_bytes(2_000);
        assert_eq!(
            policy.window_max_bytes(),
            20,
            "a new capacity resets the shares"
        );
    }
}
