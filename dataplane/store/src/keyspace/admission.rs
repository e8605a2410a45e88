//! `allkeys-tinylfu`: W-TinyLFU's admission window and frequency history on top of the sampled
//! eviction.
//!
//! Redis's LFU keeps each key's counter in the key itself, so a key that was evicted comes back
//! with the initial counter however often it was asked for while away, and every new key starts
//! above the keys read once. TinyLFU (Einziger, Friedman and Manes, 2017) keeps the history
//! apart from the keys instead: a count-min sketch of every read (hits and misses alike, so a
//! key counts while it is not cached) behind a doorkeeper, halved every `10 * C` reads so that
//! it follows what is popular now ([`crate::eviction::sketch`], the same sketch the in-process
//! W-TinyLFU uses).
//!
//! New keys enter a *window*: the keys created last, in creation order, which eviction does not
//! touch. A key pushed out of the window by newer ones becomes a *candidate* for the main space
//! (every other key): the next eviction compares it with the victim that sampling finds there
//! (fewest estimated reads, then least recently used) and evicts the candidate unless it was
//! read more often than the victim (ties keep the resident, as Caffeine's `admit` does, which
//! is what holds a fixed part of a loop longer than the cache). The server's eviction runs after
//! the writes that pushed memory over the limit, and a SET under an `allkeys-*` policy must
//! succeed (clients expect it), so a refused candidate is evicted one step after its write
//! instead of being turned away at the door.
//!
//! The window's size is a share of the keys held, moved by Caffeine's hill climber
//! ([`crate::eviction::climber`]) once per sketch sample by the change of the read hit ratio:
//! from 1% at start up to [`WINDOW_SHARE_MAX_PPM`]. Recency (keys read again soon after they
//! are written, and only then) grows it; a skewed, stable popularity shrinks it.
//!
//! Memory is bounded: the sketch is sized for at least the keys the keyspace holds, at most
//! [`SKETCH_ENTRIES_MAX`] (1.5 MiB with its doorkeeper), and grown (keeping its counts) to
//! twice the keys when the keyspace outgrows it; the window holds at most [`WINDOW_KEYS_MAX`]
//! keys as their 64-bit hashes (about 32 bytes a key with its membership count). Every read
//! and every new key costs O(1); an eviction O(samples).

use std::collections::VecDeque;

use crate::eviction::climber::HillClimber;
use crate::eviction::sketch::{FrequencySketch, COUNTER_MAX};
use crate::eviction::KeyMap;

/// Largest cache the sketch is sized for: 4 rows of 262,144 8-bit counters (1 MiB) and a
/// doorkeeper of 2^22 bits (512 KiB), the 1.5 MiB a shard may spend on its history. Past it the
/// sketch still works: more keys share each counter, and estimates grow by their collisions.
pub const SKETCH_ENTRIES_MAX: u64 = 1 << 16;

/// Smallest cache the sketch is sized for (the sketch has its own floors of width and sample).
const SKETCH_ENTRIES_MIN: u64 = 1 << 10;

/// Seed of the sketch's hashing (the keyspace's hash is already random per process).
const SKETCH_SEED: u64 = 0x7163_6c66_7521_0b5e;

/// The window's share of the keys is kept in millionths, so that the climber's steps (6.25% of
/// this, decaying by 2% a sample) stay exact for a thousand samples.
pub const WINDOW_SHARE_SCALE_PPM: u64 = 1_000_000;

/// The window's share at start, 1%, as Caffeine's.
pub const WINDOW_SHARE_START_PPM: u64 = WINDOW_SHARE_SCALE_PPM / 100;

/// Largest share of the keys the window may take: 80%. Caffeine lets the window take all but
/// the main space's probation; here the main space is where sampling finds victims, and a
/// window of 80% already makes the policy a FIFO with a frequency filter on its last fifth.
pub const WINDOW_SHARE_MAX_PPM: u64 = WINDOW_SHARE_SCALE_PPM * 8 / 10;

/// Most keys the window holds, whatever its share: 262,144 hashes in the queue and the
/// membership map, about 8 MiB a shard. A window this large already holds a quarter of a
/// million keys of recency.
pub const WINDOW_KEYS_MAX: usize = 1 << 18;

/// Keys past the window kept waiting for an eviction to judge them. The server evicts after
/// a batch of writes, so up to a batch of new keys passes the window between two evictions; a
/// burst of more new keys than this admits the oldest unjudged ones (the cache was not full,
/// or the burst was a scan that the frequency filter would have refused anyway).
pub const CANDIDATES_MAX: usize = 128;

/// What the admission window holds now (INFO's `tinylfu_window_*`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct AdmissionWindow {
    /// New keys the window protects from eviction now (entries whose key may have been
    /// deleted since included).
    pub keys: usize,
    /// Keys past the window that wait for an eviction to judge them.
    pub candidates: usize,
    /// The window's share of the keys held, in millionths (the climber moves it).
    pub share_ppm: u64,
}

/// The read history, the window and its climber.
pub(super) struct Admission {
    sketch: FrequencySketch,
    /// Keys the sketch is sized for.
    sized_for: u64,
    /// `(database, keyspace hash)` of the keys created last, oldest first: the window and,
    /// past its size, the candidates. Some may have gone since (deleted, expired).
    window: VecDeque<(usize, u64)>,
    /// How many entries of `window` each hash has (a key recreated while in the window is
    /// there twice): eviction's samples skip these keys.
    in_window: KeyMap<u32>,
    /// The window's share of the keys held, in millionths.
    window_share_ppm: u64,
    climber: HillClimber,
}

impl Admission {
    /// A history sized for a keyspace of `keys` keys.
    pub(super) fn new(keys: usize) -> Self {
        let sized_for = sketch_entries(keys);
        Self {
            sketch: FrequencySketch::new(sized_for, SKETCH_SEED),
            sized_for,
            window: VecDeque::new(),
            in_window: KeyMap::default(),
            window_share_ppm: WINDOW_SHARE_START_PPM,
            climber: HillClimber::new(WINDOW_SHARE_SCALE_PPM),
        }
    }

    /// Records a read of the key whose keyspace hash is `hash`, which `hit` or missed; at the
    /// end of each sketch sample, the climber moves the window by the change of the hit ratio.
    pub(super) fn record_read(&mut self, hash: u64, hit: bool) {
        self.sketch.increment(hash);
        self.climber.record(hit);
        if let Some(adjustment_ppm) = self.climber.adjustment(self.sketch.sample_size()) {
            self.window_share_ppm = self
                .window_share_ppm
                .saturating_add_signed(adjustment_ppm)
                .min(WINDOW_SHARE_MAX_PPM);
        }
    }

    /// The estimated reads of the key whose keyspace hash is `hash` in the current sample.
    pub(super) fn frequency(&self, hash: u64) -> u64 {
        self.sketch.frequency(hash)
    }

    /// Ends the sketch's sample now when `victim_reads`, the estimate of the main space's
    /// victim, is saturated: the counters can no longer rank the keys the cache decides
    /// between, so every judgement is a tie (the resident stays, whatever the candidate's
    /// reads). The sample is `10 * C` for the most keys the keyspace held, and a server that
    /// held 100,000 keys before its limit was set, or before a FLUSHALL, counts 655,360 reads
    /// between two halvings: in a cache of 30 keys the few hundred most read keys all read
    /// 255. Halving early only there keeps the long history that large caches and flat
    /// popularity need (10 * C for the keys held now, the other cure, lost up to 8 points at
    /// 10% of the working set). True when the sketch was halved.
    pub(super) fn age_if_saturated(&mut self, victim_reads: u64) -> bool {
        let saturated = victim_reads >= COUNTER_MAX;
        if saturated {
            self.sketch.age();
        }
        saturated
    }

    /// Records that the key of `db` whose keyspace hash is `hash` was just created, in a
    /// keyspace now holding `keys` keys: it enters the window.
    pub(super) fn record_created(&mut self, db: usize, hash: u64, keys: usize) {
        self.window.push_back((db, hash));
        *self.in_window.entry(hash).or_insert(0) += 1;
        let waiting_max = self.window_max_keys(keys) + CANDIDATES_MAX;
        while self.window.len() > waiting_max {
            // Not judged in time: admitted.
            self.pop_oldest();
        }
        if keys as u64 > self.sized_for && self.sized_for < SKETCH_ENTRIES_MAX {
            // A sketch too narrow for the keys would make every estimate a collision count,
            // and its sample (10 reads a key it is sized for) too short to rank keys read a
            // few times each. Grown to twice the keys, as a vector grows: at least the keys
            // held, as Caffeine sizes its sketch for the cache's maximum, and O(1) a new key
            // over time. The wider one keeps what this one counted.
            self.sized_for = sketch_entries(keys.saturating_mul(2));
            self.sketch.grow_to(self.sized_for);
        }
    }

    /// Keys the window holds in a keyspace of `keys` keys.
    pub(super) fn window_max_keys(&self, keys: usize) -> usize {
        let share = (keys as u128 * u128::from(self.window_share_ppm)
            / u128::from(WINDOW_SHARE_SCALE_PPM)) as usize;
        share.min(WINDOW_KEYS_MAX)
    }

    /// The oldest key past the window in a keyspace of `keys` keys, taken out of it (it is a
    /// main key from now on, unless the caller evicts it); `None` when the window is within
    /// its size.
    pub(super) fn next_candidate(&mut self, keys: usize) -> Option<(usize, u64)> {
        if self.window.len() > self.window_max_keys(keys) {
            self.pop_oldest()
        } else {
            None
        }
    }

    /// Admits every key waiting past the window in a keyspace of `keys` keys (the eviction that
    /// could have judged them is over: memory is under the limit again).
    pub(super) fn admit_waiting(&mut self, keys: usize) {
        let window_max = self.window_max_keys(keys);
        while self.window.len() > window_max {
            self.pop_oldest();
        }
    }

    /// The oldest key of the window, taken out of it, whatever the window's size.
    pub(super) fn pop_oldest(&mut self) -> Option<(usize, u64)> {
        let (db, hash) = self.window.pop_front()?;
        let count = self
            .in_window
            .get_mut(&hash)
            .expect("every window entry is counted");
        *count -= 1;
        if *count == 0 {
            self.in_window.remove(&hash);
        }
        Some((db, hash))
    }

    /// True when the key whose keyspace hash is `hash` is in the window (or waiting past it).
    pub(super) fn in_window(&self, hash: u64) -> bool {
        self.in_window.contains_key(&hash)
    }

    /// Entries in the window and past it (some of their keys may have gone).
    pub(super) fn window_len(&self) -> usize {
        self.window.len()
    }

    /// The window's share of the keys held, in millionths (the climber moves it).
    pub(super) fn window_share_ppm(&self) -> u64 {
        self.window_share_ppm
    }

    /// Keys the sketch is sized for.
    #[cfg(test)]
    pub(super) fn sized_for(&self) -> u64 {
        self.sized_for
    }
}

fn sketch_entries(keys: usize) -> u64 {
    (keys as u64).clamp(SKETCH_ENTRIES_MIN, SKETCH_ENTRIES_MAX)
}
