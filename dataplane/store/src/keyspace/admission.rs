//! `allkeys-tinylfu`: TinyLFU's frequency history on top of the sampled eviction.
//!
//! Redis's LFU keeps each key's counter in the key itself, so a key that was evicted comes back
//! with the initial counter however often it was asked for while away, and every new key starts
//! above the keys read once. TinyLFU (Einziger, Friedman and Manes, 2017) keeps the history
//! apart from the keys instead: a count-min sketch of every read (hits and misses alike, so a
//! key counts while it is not cached) behind a doorkeeper, halved every `10 * C` reads so that
//! it follows what is popular now ([`crate::eviction::sketch`], the same sketch the in-process
//! W-TinyLFU uses).
//!
//! The server's eviction runs after the writes that pushed memory over the limit, not inside
//! them, and a SET under an `allkeys-*` policy must succeed (clients expect it), so admission
//! cannot refuse a key at the door as Caffeine does. It refuses it one step later: each eviction
//! scores its sampled keys, and also the keys created most recently ([`RECENT_LEN`] of them),
//! by their estimated frequency (least first, the least recently used of equals first), and
//! evicts the lowest. A new key that is rarer than every key it would displace is then itself
//! the victim, which is TinyLFU's admission decision, taken just after the write.
//!
//! Memory is bounded: the sketch is sized for the keys the keyspace holds, at most
//! [`SKETCH_ENTRIES_MAX`] (1 MiB with its doorkeeper), and grown (keeping its counts) when the
//! keyspace outgrows it twice over.

use std::collections::VecDeque;

use crate::compact::CompactBytes;
use crate::eviction::sketch::FrequencySketch;

/// Keys created most recently that every eviction scores beside its samples: TinyLFU's
/// candidates. A burst of new keys larger than this is sampled like any other keys.
pub const RECENT_LEN: usize = 16;

/// Largest cache the sketch is sized for: 4 rows of 262,144 4-bit counters (512 KiB) and a
/// doorkeeper of 2^22 bits (512 KiB), the 1 MiB a shard may spend on its history. Past it the
/// sketch still works: more keys share each counter, and estimates grow by their collisions.
pub const SKETCH_ENTRIES_MAX: u64 = 1 << 16;

/// Smallest cache the sketch is sized for (the sketch has its own floors of width and sample).
const SKETCH_ENTRIES_MIN: u64 = 1 << 10;

/// Seed of the sketch's hashing (the keyspace's hash is already random per process).
const SKETCH_SEED: u64 = 0x7163_6c66_7521_0b5e;

/// The read history and the newest keys.
pub(super) struct Admission {
    sketch: FrequencySketch,
    /// Keys the sketch is sized for.
    sized_for: u64,
    /// `(database, key)` of the keys created last, oldest first.
    recent: VecDeque<(usize, CompactBytes)>,
}

impl Admission {
    /// A history sized for a keyspace of `keys` keys.
    pub(super) fn new(keys: usize) -> Self {
        let sized_for = sketch_entries(keys);
        Self {
            sketch: FrequencySketch::new(sized_for, SKETCH_SEED),
            sized_for,
            recent: VecDeque::with_capacity(RECENT_LEN),
        }
    }

    /// Records a read of the key whose keyspace hash is `hash` (found or not).
    pub(super) fn record_read(&mut self, hash: u64) {
        self.sketch.increment(hash);
    }

    /// The estimated reads of the key whose keyspace hash is `hash` in the current sample.
    pub(super) fn frequency(&self, hash: u64) -> u64 {
        self.sketch.frequency(hash)
    }

    /// Records that `key` of `db` was just created in a keyspace now holding `keys` keys.
    pub(super) fn record_created(&mut self, db: usize, key: &[u8], keys: usize) {
        if self.recent.len() == RECENT_LEN {
            self.recent.pop_front();
        }
        self.recent.push_back((db, CompactBytes::new(key)));
        if keys as u64 > 2 * self.sized_for && self.sized_for < SKETCH_ENTRIES_MAX {
            // A sketch too narrow for the keys would make every estimate a collision count;
            // the wider one keeps what this one counted.
            self.sized_for = sketch_entries(keys);
            self.sketch.grow_to(self.sized_for);
        }
    }

    /// The newest keys, for scoring (some may have gone since).
    pub(super) fn recent(&self) -> impl Iterator<Item = &(usize, CompactBytes)> {
        self.recent.iter()
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
