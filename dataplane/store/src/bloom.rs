//! Partitioned Bloom filter: the structure behind `BF.*`.
//!
//! The filter is split into `slice_count` slices of `2^slice_bits_log2` bits each; probe `i`
//! of an item sets or tests one bit of slice `i` only. That is the layout the FPGA
//! `bloom_probe` module uses (one block-RAM bank per slice, so all probes of one query run in
//! the same clock), and this file is the reference it is checked against bit for bit.
//!
//! Probe positions come from one 64-bit item hash by double hashing (Kirsch and Mitzenmacher,
//! "Less Hashing, Same Performance"): with `h1` the low and `h2` the high 32 bits of the hash,
//! probe `i` is bit `(h1 + i * h2) mod 2^slice_bits_log2` of slice `i`, computed in wrapping
//! 32-bit arithmetic. The item hash is MurmurHash64A, the hash RedisBloom uses.
//!
//! ```
//! use ember_store::bloom::BloomFilter;
//! let mut filter = BloomFilter::new(4, 12).unwrap();
//! assert!(filter.insert(b"alice"));      // newly added
//! assert!(!filter.insert(b"alice"));     // every bit was already set
//! assert!(filter.contains(b"alice"));
//! ```

use std::fmt;

/// Most slices (probes per item) a filter may have: 16 probes already give a false-positive
/// rate near 1e-5 at the optimum, and the hardware has one RAM bank per slice.
pub const SLICE_COUNT_MAX: u32 = 16;

/// Largest slice, as a power of two: 2^30 bits (128 MiB) per slice bounds a filter's memory.
pub const SLICE_BITS_LOG2_MAX: u32 = 30;

/// Smallest slice, as a power of two: one 64-bit word.
pub const SLICE_BITS_LOG2_MIN: u32 = 6;

/// Seed of MurmurHash64A as RedisBloom calls it.
const MURMUR_SEED: u64 = 0xc6a4_a793_5bd1_e995;

/// Why a filter could not be made.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BloomError {
    kind: BloomErrorKind,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum BloomErrorKind {
    SliceCount(u32),
    SliceBits(u32),
    Capacity(u64),
    ErrorRate,
}

impl fmt::Display for BloomError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.kind {
            BloomErrorKind::SliceCount(count) => {
                write!(f, "slice count {count} is outside 1..={SLICE_COUNT_MAX}")
            }
            BloomErrorKind::SliceBits(log2) => write!(
                f,
                "slice size 2^{log2} bits is outside 2^{SLICE_BITS_LOG2_MIN}..=2^{SLICE_BITS_LOG2_MAX}"
            ),
            BloomErrorKind::Capacity(capacity) => {
                write!(f, "capacity {capacity} needs more memory than a filter may have")
            }
            BloomErrorKind::ErrorRate => write!(f, "error rate must be in (0, 1)"),
        }
    }
}

impl std::error::Error for BloomError {}

/// A partitioned Bloom filter over 64-bit item hashes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BloomFilter {
    slice_count: u32,
    slice_bits_log2: u32,
    /// All slices one after the other, 64 bits a word, slice `i` starting at word
    /// `i << (slice_bits_log2 - 6)`.
    words: Vec<u64>,
}

impl BloomFilter {
    /// An empty filter of `slice_count` slices of `2^slice_bits_log2` bits.
    ///
    /// # Errors
    /// When `slice_count` is not in `1..=SLICE_COUNT_MAX` or `slice_bits_log2` is not in
    /// `SLICE_BITS_LOG2_MIN..=SLICE_BITS_LOG2_MAX`.
    pub fn new(slice_count: u32, slice_bits_log2: u32) -> Result<Self, BloomError> {
        if !(1..=SLICE_COUNT_MAX).contains(&slice_count) {
            return Err(BloomError {
                kind: BloomErrorKind::SliceCount(slice_count),
            });
        }
        if !(SLICE_BITS_LOG2_MIN..=SLICE_BITS_LOG2_MAX).contains(&slice_bits_log2) {
            return Err(BloomError {
                kind: BloomErrorKind::SliceBits(slice_bits_log2),
            });
        }
        let words_per_slice = 1usize << (slice_bits_log2 - 6);
        Ok(Self {
            slice_count,
            slice_bits_log2,
            words: vec![0; words_per_slice * slice_count as usize],
        })
    }

    /// A filter sized as `BF.RESERVE key error_rate capacity` asks: `ceil(log2(1/error_rate))`
    /// slices, each rounded up to a power of two of at least `capacity * 1.44` bits.
    ///
    /// # Errors
    /// When `error_rate` is not in (0, 1), or the filter would exceed the slice limits.
    pub fn with_capacity(capacity: u64, error_rate: f64) -> Result<Self, BloomError> {
        if !(error_rate > 0.0 && error_rate < 1.0) {
            return Err(BloomError {
                kind: BloomErrorKind::ErrorRate,
            });
        }
        let slice_count = (1.0 / error_rate).log2().ceil().max(1.0) as u32;
        // Optimal bits per slice: capacity / ln 2.
        let slice_bits = (capacity.max(1) as f64 / std::f64::consts::LN_2).ceil() as u64;
        // checked_next_power_of_two: a huge capacity has no power of two in u64; that is too big.
        let slice_bits_log2 = slice_bits
            .checked_next_power_of_two()
            .map_or(u32::MAX, |bits| {
                bits.trailing_zeros().max(SLICE_BITS_LOG2_MIN)
            });
        if slice_bits_log2 > SLICE_BITS_LOG2_MAX {
            return Err(BloomError {
                kind: BloomErrorKind::Capacity(capacity),
            });
        }
        Self::new(slice_count.min(SLICE_COUNT_MAX), slice_bits_log2)
    }

    /// Number of slices, which is also the number of probes per item.
    pub fn slice_count(&self) -> u32 {
        self.slice_count
    }

    /// Bits per slice, as a power of two.
    pub fn slice_bits_log2(&self) -> u32 {
        self.slice_bits_log2
    }

    /// Bit index within slice `slice` that `hash` probes.
    pub fn probe_index(&self, hash: u64, slice: u32) -> u32 {
        let h1 = hash as u32;
        let h2 = (hash >> 32) as u32;
        let mask = ((1u64 << self.slice_bits_log2) - 1) as u32;
        h1.wrapping_add(slice.wrapping_mul(h2)) & mask
    }

    fn bit_position(&self, hash: u64, slice: u32) -> (usize, u64) {
        let bit =
            ((slice as usize) << self.slice_bits_log2) | self.probe_index(hash, slice) as usize;
        (bit >> 6, 1u64 << (bit & 63))
    }

    /// Sets the item's bits; returns whether any was clear (BF.ADD's reply: 1 when newly added).
    pub fn insert_hash(&mut self, hash: u64) -> bool {
        let mut newly_added = false;
        for slice in 0..self.slice_count {
            let (word, mask) = self.bit_position(hash, slice);
            newly_added |= self.words[word] & mask == 0;
            self.words[word] |= mask;
        }
        newly_added
    }

    /// Whether every bit of the item is set (BF.EXISTS: may be a false positive, never a false
    /// negative).
    pub fn contains_hash(&self, hash: u64) -> bool {
        (0..self.slice_count).all(|slice| {
            let (word, mask) = self.bit_position(hash, slice);
            self.words[word] & mask != 0
        })
    }

    /// [`insert_hash`](Self::insert_hash) of the item's MurmurHash64A.
    pub fn insert(&mut self, item: &[u8]) -> bool {
        self.insert_hash(item_hash(item))
    }

    /// [`contains_hash`](Self::contains_hash) of the item's MurmurHash64A.
    pub fn contains(&self, item: &[u8]) -> bool {
        self.contains_hash(item_hash(item))
    }

    /// Clears every bit.
    pub fn clear(&mut self) {
        self.words.fill(0);
    }

    /// Number of set bits (BF.INFO-style statistics and tests).
    pub fn bits_set(&self) -> u64 {
        self.words
            .iter()
            .map(|word| u64::from(word.count_ones()))
            .sum()
    }

    /// Memory the bit array takes, in bytes.
    pub fn memory_bytes(&self) -> usize {
        self.words.len() * 8
    }
}

/// MurmurHash64A of `item` with RedisBloom's seed: the 64-bit hash a filter probes with.
pub fn item_hash(item: &[u8]) -> u64 {
    crate::hyperloglog::murmur_hash64a(item, MURMUR_SEED)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_are_checked() {
        assert!(BloomFilter::new(0, 12).is_err());
        assert!(BloomFilter::new(SLICE_COUNT_MAX + 1, 12).is_err());
        assert!(BloomFilter::new(4, SLICE_BITS_LOG2_MIN - 1).is_err());
        assert!(BloomFilter::new(4, SLICE_BITS_LOG2_MAX + 1).is_err());
        assert!(BloomFilter::with_capacity(1000, 0.0).is_err());
        assert!(BloomFilter::with_capacity(1000, 1.0).is_err());
        assert!(BloomFilter::with_capacity(u64::MAX, 0.01).is_err());
        let err = BloomFilter::new(0, 12).unwrap_err();
        assert_eq!(err.to_string(), "slice count 0 is outside 1..=16");
    }

    #[test]
    fn capacity_sizing() {
        let filter = BloomFilter::with_capacity(1000, 0.01).unwrap();
        assert_eq!(filter.slice_count(), 7);
        assert_eq!(filter.slice_bits_log2(), 11); // 1443 bits rounded up
    }

    #[test]
    fn add_then_exists() {
        let mut filter = BloomFilter::new(4, 10).unwrap();
        assert!(!filter.contains(b"a"));
        assert!(filter.insert(b"a"));
        assert!(!filter.insert(b"a"));
        assert!(filter.contains(b"a"));
        assert_eq!(filter.bits_set(), 4);
        filter.clear();
        assert!(!filter.contains(b"a"));
        assert_eq!(filter.bits_set(), 0);
    }

    #[test]
    fn probe_index_is_double_hashing() {
        let filter = BloomFilter::new(3, 8).unwrap();
        let hash = (7u64 << 32) | 250;
        assert_eq!(filter.probe_index(hash, 0), 250);
        assert_eq!(filter.probe_index(hash, 1), (250 + 7) & 255);
        assert_eq!(filter.probe_index(hash, 2), (250 + 14) & 255);
    }

    #[test]
    fn murmur_separates_lengths_and_tails() {
        assert_ne!(item_hash(b"a"), item_hash(b"b"));
        assert_ne!(item_hash(b"12345678"), item_hash(b"123456789"));
    }

    #[test]
    fn false_positive_rate_is_near_design() {
        let mut filter = BloomFilter::with_capacity(10_000, 0.01).unwrap();
        for index in 0u32..10_000 {
            filter.insert(&index.to_le_bytes());
        }
        for index in 0u32..10_000 {
            assert!(
                filter.contains(&index.to_le_bytes()),
                "false negative for {index}"
            );
        }
        let false_positives = (10_000u32..110_000)
            .filter(|index| filter.contains(&index.to_le_bytes()))
            .count();
        // Design rate 1%; power-of-two rounding only lowers it.
        assert!(
            false_positives < 1_500,
            "{false_positives} false positives in 100000"
        );
    }
}
