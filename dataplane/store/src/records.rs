//! The large size class of hashes and sets: records packed back to back in one arena, found by
//! a hash table of 4-byte positions, instead of a vector of separately owned strings.
//!
//! A record is a LEB128 key length, the key, and (for a table of pairs, `VALUED`) a LEB128
//! value length and the value: a 13-byte hash field with a 12-byte value takes 27 bytes, where a
//! vector of two [`crate::CompactBytes`] and an expiry took 56. Three structures hold the table:
//!
//! - `arena`: the records, in no order; bytes of removed or rewritten records stay there, dead,
//!   until they pass a quarter of the arena ([`DEAD_SHARE_DIVISOR`]), when the live records are
//!   copied into a new, exactly sized arena.
//! - `offsets`: for each position 0..len, where its record starts in the arena. Positions are
//!   dense, so a uniform random record is one draw (HRANDFIELD, SRANDMEMBER, SPOP); removal
//!   moves the last position into the hole, as `Vec::swap_remove` does.
//! - `index`: each position, hashed by its record's key, so that a key is found in O(1).
//!   Compaction moves records but not positions, so it never touches the index.
//!
//! The hasher is fixed for the table's life: HSCAN's cursor is a position in the order of
//! these hashes.

use std::hash::BuildHasher;
use std::ops::Range;

use hashbrown::HashTable;

use crate::varint;

/// Compaction runs once dead bytes pass 1/this of the arena: at most a third of the live bytes
/// again is wasted, and each compaction, which copies the live bytes, follows at least a third
/// of them in new dead bytes, so its cost per written byte stays constant.
const DEAD_SHARE_DIVISOR: usize = 4;
/// Dead bytes below this are never worth a compaction (a handful of rewritten small records).
const DEAD_LEN_MIN: usize = 256;
/// The arena grows by at least 1/this of its length: jemalloc's large size classes are four to
/// a doubling, so a quarter fills them, where doubling would leave up to half of a large
/// arena unused. Growth stays geometric, so appends stay amortized O(1).
const ARENA_GROWTH_DIVISOR: usize = 4;

/// Where each position's record starts: four bytes each until the arena passes 4 GiB (a single
/// key that large is possible, since Redis allows it; it then costs eight).
#[derive(Clone)]
enum Offsets {
    Narrow(Vec<u32>),
    Wide(Vec<u64>),
}

impl Offsets {
    fn len(&self) -> usize {
        match self {
            Self::Narrow(offsets) => offsets.len(),
            Self::Wide(offsets) => offsets.len(),
        }
    }

    fn get(&self, at: usize) -> usize {
        match self {
            Self::Narrow(offsets) => offsets[at] as usize,
            Self::Wide(offsets) => {
                usize::try_from(offsets[at]).expect("an arena offset fits in memory")
            }
        }
    }

    /// Switches to eight-byte offsets before one that four bytes cannot hold is stored.
    fn widen_for(&mut self, offset: usize) {
        if let Self::Narrow(narrow) = self {
            if u32::try_from(offset).is_err() {
                *self = Self::Wide(narrow.iter().map(|&o| u64::from(o)).collect());
            }
        }
    }

    fn set(&mut self, at: usize, offset: usize) {
        self.widen_for(offset);
        match self {
            Self::Narrow(offsets) => offsets[at] = u32::try_from(offset).expect("widened"),
            Self::Wide(offsets) => offsets[at] = offset as u64,
        }
    }

    fn push(&mut self, offset: usize) {
        self.widen_for(offset);
        match self {
            Self::Narrow(offsets) => {
                grow_by_a_quarter(offsets);
                offsets.push(u32::try_from(offset).expect("widened"));
            }
            Self::Wide(offsets) => {
                grow_by_a_quarter(offsets);
                offsets.push(offset as u64);
            }
        }
    }

    /// Moves the last offset to `at` and drops the last position.
    fn swap_remove(&mut self, at: usize) {
        match self {
            Self::Narrow(offsets) => {
                offsets.swap_remove(at);
            }
            Self::Wide(offsets) => {
                offsets.swap_remove(at);
            }
        }
    }

    /// Gives back capacity past a quarter more than the length.
    fn shrink(&mut self) {
        match self {
            Self::Narrow(offsets) => offsets.shrink_to(offsets.len() + offsets.len() / 4),
            Self::Wide(offsets) => offsets.shrink_to(offsets.len() + offsets.len() / 4),
        }
    }

    fn heap_len(&self) -> usize {
        match self {
            Self::Narrow(offsets) => offsets.capacity() * std::mem::size_of::<u32>(),
            Self::Wide(offsets) => offsets.capacity() * std::mem::size_of::<u64>(),
        }
    }
}

/// Makes room for one more element of a full vector by a quarter of its length, at least four (see
/// [`ARENA_GROWTH_DIVISOR`]) rather than by doubling.
fn grow_by_a_quarter<T>(vector: &mut Vec<T>) {
    if vector.len() == vector.capacity() {
        vector.reserve_exact((vector.len() / ARENA_GROWTH_DIVISOR).max(4));
    }
}

/// A position as the index stores it: a table never holds 2^32 records (as Redis's hashes and
/// sets never do; [`RecordTable::push`] asserts it).
type Position = u32;

/// Records of a key (and a value when `VALUED`), unique by key. See the module's docs.
#[derive(Clone)]
pub(crate) struct RecordTable<const VALUED: bool> {
    arena: Vec<u8>,
    offsets: Offsets,
    index: HashTable<Position>,
    /// Hashes keys for `index` and orders HSCAN, so it never changes while the table lives.
    hasher: foldhash::fast::RandomState,
    /// Bytes of the arena that no position points to.
    dead_len: usize,
}

/// Where a record's parts lie in the arena.
struct Span {
    key: Range<usize>,
    /// Where the value's length starts (the record's end when not `VALUED`).
    value_header: usize,
    value: Range<usize>,
}

impl<const VALUED: bool> RecordTable<VALUED> {
    /// An empty table with room for `records` records of `record_len` bytes each.
    pub(crate) fn with_capacity(records: usize, record_len: usize) -> Self {
        Self {
            arena: Vec::with_capacity(records * record_len),
            offsets: Offsets::Narrow(Vec::with_capacity(records)),
            index: HashTable::with_capacity(records),
            hasher: foldhash::fast::RandomState::default(),
            dead_len: 0,
        }
    }

    /// Records stored.
    pub(crate) fn len(&self) -> usize {
        self.offsets.len()
    }

    /// The hash that orders HSCAN (fixed while the table lives).
    pub(crate) fn hash_key(&self, key: &[u8]) -> u64 {
        self.hasher.hash_one(key)
    }

    fn span(arena: &[u8], start: usize) -> Span {
        let mut at = start;
        let key_len = varint::read(arena, &mut at) as usize;
        let key = at..at + key_len;
        let value_header = key.end;
        if !VALUED {
            return Span {
                key,
                value_header,
                value: value_header..value_header,
            };
        }
        let mut at = value_header;
        let value_len = varint::read(arena, &mut at) as usize;
        Span {
            key,
            value_header,
            value: at..at + value_len,
        }
    }

    /// The key of position `at`, read from `arena` through `offsets` (a free function of the
    /// parts, so that the index's rehash closure can call it while the index is borrowed).
    fn key_at<'a>(arena: &'a [u8], offsets: &Offsets, at: usize) -> &'a [u8] {
        let span = Self::span(arena, offsets.get(at));
        &arena[span.key]
    }

    /// The key and value at position `at` (the value is empty when not `VALUED`).
    pub(crate) fn get(&self, at: usize) -> (&[u8], &[u8]) {
        let span = Self::span(&self.arena, self.offsets.get(at));
        (&self.arena[span.key], &self.arena[span.value])
    }

    /// The key at position `at`.
    pub(crate) fn key(&self, at: usize) -> &[u8] {
        Self::key_at(&self.arena, &self.offsets, at)
    }

    /// Every record, in position order.
    pub(crate) fn iter(&self) -> impl ExactSizeIterator<Item = (&[u8], &[u8])> + '_ {
        (0..self.len()).map(|at| self.get(at))
    }

    /// The position of `key`.
    pub(crate) fn position(&self, key: &[u8]) -> Option<usize> {
        let hash = self.hasher.hash_one(key);
        self.index
            .find(hash, |&at| {
                Self::key_at(&self.arena, &self.offsets, at as usize) == key
            })
            .map(|&at| at as usize)
    }

    /// The first of two steps that warm the cache for looking `key` up: finds the index's
    /// first candidate for `key` (its own position unless two keys share the hash's seven tag
    /// bits) and asks the CPU to fetch that position's offset. The caller runs this for a batch
    /// of keys, then [`RecordTable::prefetch_record`] for each position, so that the misses of
    /// every key overlap at each step. Changes nothing.
    pub(crate) fn prefetch_position(&self, key: &[u8]) -> Option<u32> {
        let hash = self.hasher.hash_one(key);
        let at = *self.index.iter_hash(hash).next()?;
        match &self.offsets {
            Offsets::Narrow(offsets) => crate::keyspace::prefetch_read(&offsets[at as usize]),
            Offsets::Wide(offsets) => crate::keyspace::prefetch_read(&offsets[at as usize]),
        }
        Some(at)
    }

    /// The second step: asks the CPU to fetch the record at position `at` (from
    /// [`RecordTable::prefetch_position`]; a position past the last is ignored).
    pub(crate) fn prefetch_record(&self, at: u32) {
        let at = at as usize;
        if at < self.len() {
            if let Some(byte) = self.arena.get(self.offsets.get(at)) {
                crate::keyspace::prefetch_read(byte);
            }
        }
    }

    /// Makes room for `additional` more arena bytes, growing by at least a quarter.
    fn reserve_arena(&mut self, additional: usize) {
        if self.arena.capacity() - self.arena.len() < additional {
            let growth = additional.max(self.arena.len() / ARENA_GROWTH_DIVISOR);
            self.arena.reserve_exact(growth);
        }
    }

    /// Appends a record of `key` and `value` to the arena; where it starts.
    fn append(&mut self, key: &[u8], value: &[u8]) -> usize {
        let value_len = if VALUED {
            varint::len(value.len() as u64) + value.len()
        } else {
            debug_assert!(value.is_empty(), "a table of keys only stores no value");
            0
        };
        self.reserve_arena(varint::len(key.len() as u64) + key.len() + value_len);
        let start = self.arena.len();
        varint::push(&mut self.arena, key.len() as u64);
        self.arena.extend_from_slice(key);
        if VALUED {
            varint::push(&mut self.arena, value.len() as u64);
            self.arena.extend_from_slice(value);
        }
        start
    }

    /// Adds a record for `key`, which must be absent; its position (the last one).
    pub(crate) fn push(&mut self, key: &[u8], value: &[u8]) -> usize {
        debug_assert!(self.position(key).is_none(), "keys are unique");
        self.push_hashed(self.hasher.hash_one(key), key, value)
    }

    fn push_hashed(&mut self, hash: u64, key: &[u8], value: &[u8]) -> usize {
        let at = self.len();
        let position = Position::try_from(at).expect("a table holds fewer than 2^32 records");
        let start = self.append(key, value);
        self.offsets.push(start);
        let Self {
            arena,
            offsets,
            index,
            hasher,
            ..
        } = self;
        index.insert_unique(hash, position, |&at| {
            hasher.hash_one(Self::key_at(arena, offsets, at as usize))
        });
        at
    }

    /// Adds `key` unless it is there; true when it was added (the key hashed once, not twice).
    pub(crate) fn insert(&mut self, key: &[u8], value: &[u8]) -> bool {
        let hash = self.hasher.hash_one(key);
        let found = self
            .index
            .find(hash, |&at| {
                Self::key_at(&self.arena, &self.offsets, at as usize) == key
            })
            .is_some();
        if !found {
            self.push_hashed(hash, key, value);
        }
        !found
    }

    /// Replaces the value at position `at`: in place when the new one takes as many bytes,
    /// else the record is written again at the arena's end (in place there when it already is
    /// the last record) and the old bytes become dead.
    pub(crate) fn set_value(&mut self, at: usize, value: &[u8]) {
        assert!(VALUED, "a table of keys only has no values");
        let start = self.offsets.get(at);
        let span = Self::span(&self.arena, start);
        let old_len = span.value.end - span.value_header;
        let new_len = varint::len(value.len() as u64) + value.len();
        if new_len == old_len {
            let mut encoded = Vec::with_capacity(new_len);
            varint::push(&mut encoded, value.len() as u64);
            encoded.extend_from_slice(value);
            self.arena[span.value_header..span.value.end].copy_from_slice(&encoded);
            return;
        }
        if span.value.end == self.arena.len() {
            self.arena.truncate(span.value_header);
            self.reserve_arena(new_len);
            varint::push(&mut self.arena, value.len() as u64);
            self.arena.extend_from_slice(value);
            return;
        }
        self.reserve_arena(span.value_header - start + new_len);
        let moved = self.arena.len();
        self.arena.extend_from_within(start..span.value_header);
        varint::push(&mut self.arena, value.len() as u64);
        self.arena.extend_from_slice(value);
        self.offsets.set(at, moved);
        self.dead_len += span.value.end - start;
        self.compact_if_worth_it();
    }

    /// Removes the record at position `at`; the last position moves into its place.
    pub(crate) fn swap_remove(&mut self, at: usize) {
        let start = self.offsets.get(at);
        let span = Self::span(&self.arena, start);
        let hash = self.hasher.hash_one(&self.arena[span.key.clone()]);
        let position = at as Position;
        self.index
            .find_entry(hash, |&i| i == position)
            .expect("every record is indexed")
            .remove();
        let last = self.len() - 1;
        if at != last {
            let hash = self
                .hasher
                .hash_one(Self::key_at(&self.arena, &self.offsets, last));
            *self
                .index
                .find_mut(hash, |&i| i as usize == last)
                .expect("every record is indexed") = position;
        }
        self.offsets.swap_remove(at);
        if self.offsets.len() == 0 {
            self.arena = Vec::new();
            self.dead_len = 0;
        } else if span.value.end == self.arena.len() {
            // The last record in the arena: its bytes are simply given back.
            self.arena.truncate(start);
        } else {
            self.dead_len += span.value.end - start;
            self.compact_if_worth_it();
        }
    }

    /// Copies the live records into an exactly sized arena once dead bytes pass their share.
    fn compact_if_worth_it(&mut self) {
        if self.dead_len < DEAD_LEN_MIN || self.dead_len * DEAD_SHARE_DIVISOR < self.arena.len() {
            return;
        }
        let mut arena = Vec::with_capacity(self.arena.len() - self.dead_len);
        for at in 0..self.len() {
            let start = self.offsets.get(at);
            let end = Self::span(&self.arena, start).value.end;
            self.offsets.set(at, arena.len());
            arena.extend_from_slice(&self.arena[start..end]);
        }
        assert_eq!(
            arena.len(),
            self.arena.len() - self.dead_len,
            "dead bytes are counted exactly"
        );
        self.arena = arena;
        self.dead_len = 0;
        self.offsets.shrink();
        if self.index.capacity() > 4 * self.len() {
            let Self {
                arena,
                offsets,
                index,
                hasher,
                ..
            } = self;
            index.shrink_to(offsets.len(), |&at| {
                hasher.hash_one(Self::key_at(arena, offsets, at as usize))
            });
        }
    }

    /// Heap bytes: the arena's, the offsets' and the index's capacity (a position and a
    /// control byte per bucket).
    pub(crate) fn heap_len(&self) -> usize {
        self.arena.capacity()
            + self.offsets.heap_len()
            + self.index.capacity() * (std::mem::size_of::<Position>() + 1)
    }

    /// Bytes of the arena no record uses (for tests of compaction).
    #[cfg(test)]
    pub(crate) fn dead_len(&self) -> usize {
        self.dead_len
    }

    /// Bytes of the arena (for tests of compaction).
    #[cfg(test)]
    pub(crate) fn arena_len(&self) -> usize {
        self.arena.len()
    }
}

#[cfg(test)]
mod tests;
