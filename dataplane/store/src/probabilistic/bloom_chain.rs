//! A scalable Bloom filter as RedisBloom builds one (`BF.*`): a chain of sub-filters, each
//! sized for its capacity at its own error rate. When the newest is full, a new one of
//! `expansion` times its capacity and half its error rate is added, so the chain's overall
//! false-positive rate stays under the requested one however far it grows.

use std::fmt;

use super::murmur_hash64a;

/// Most bytes of bit arrays one chain may hold (every sub-filter together): 1 GiB, so a
/// tiny error rate or a huge capacity cannot make a shard allocate without limit. RedisBloom
/// fails such an allocation with "Insufficient memory"; here the bound says when.
pub const BLOOM_CHAIN_BYTES_MAX: u64 = 1 << 30;

/// Each new sub-filter's error rate, as a fraction of the one before (RedisBloom's
/// `ERROR_TIGHTENING_RATIO`): the rates sum to at most twice the first.
const ERROR_TIGHTENING_RATIO: f64 = 0.5;

/// ln(2)^2: bits per entry are `-ln(error) / ln(2)^2`.
const LN2_SQUARED: f64 = std::f64::consts::LN_2 * std::f64::consts::LN_2;

/// RedisBloom's first hash seed (MurmurHash64A's multiplier).
const HASH_SEED: u64 = 0xc6a4_a793_5bd1_e995;

/// Why a chain could not be made or grown.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BloomChainError {
    /// The bit arrays would pass [`BLOOM_CHAIN_BYTES_MAX`] (or the sizes overflow).
    TooLarge,
    /// A non-scaling chain is full.
    Full,
}

impl fmt::Display for BloomChainError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::TooLarge => write!(f, "filter would exceed {BLOOM_CHAIN_BYTES_MAX} bytes"),
            Self::Full => write!(f, "non scaling filter is full"),
        }
    }
}

impl std::error::Error for BloomChainError {}

/// One sub-filter: a plain Bloom filter for `capacity` items at `error_rate`.
#[derive(Debug, Clone, PartialEq)]
struct Link {
    words: Vec<u64>,
    /// Bits addressed (`words.len() * 64`).
    bit_count: u64,
    hash_count: u32,
    capacity: u64,
    error_rate: f64,
    /// Items added to this sub-filter.
    len: u64,
}

impl Link {
    /// Bytes a sub-filter of `capacity` at `error_rate` takes, as RedisBloom sizes it without
    /// rounding to a power of two: `capacity * bits_per_entry` bits, rounded up to 64.
    fn byte_len(capacity: u64, error_rate: f64) -> Option<u64> {
        let bits = (capacity as f64 * bits_per_entry(error_rate)).max(1.0);
        if !bits.is_finite() || bits > (BLOOM_CHAIN_BYTES_MAX * 8) as f64 {
            return None;
        }
        Some((bits as u64).div_ceil(64) * 8)
    }

    fn new(capacity: u64, error_rate: f64, byte_len: u64) -> Self {
        let bits_per_entry = bits_per_entry(error_rate);
        Self {
            words: vec![0; (byte_len / 8) as usize],
            bit_count: byte_len * 8,
            hash_count: (std::f64::consts::LN_2 * bits_per_entry).ceil() as u32,
            capacity,
            error_rate,
            len: 0,
        }
    }

    /// Bit positions of probe `i`: `(a + i * b) mod bits`, RedisBloom's double hashing.
    fn positions(&self, (a, b): (u64, u64)) -> impl Iterator<Item = u64> + '_ {
        (0..u64::from(self.hash_count))
            .map(move |index| a.wrapping_add(index.wrapping_mul(b)) % self.bit_count)
    }

    fn contains(&self, hash: (u64, u64)) -> bool {
        self.positions(hash)
            .all(|bit| self.words[(bit / 64) as usize] & (1 << (bit % 64)) != 0)
    }

    /// Sets the item's bits; true when one was clear.
    fn insert(&mut self, hash: (u64, u64)) -> bool {
        let mut any_clear = false;
        for index in 0..u64::from(self.hash_count) {
            let bit = hash.0.wrapping_add(index.wrapping_mul(hash.1)) % self.bit_count;
            let word = &mut self.words[(bit / 64) as usize];
            any_clear |= *word & (1 << (bit % 64)) == 0;
            *word |= 1 << (bit % 64);
        }
        any_clear
    }
}

fn bits_per_entry(error_rate: f64) -> f64 {
    (-error_rate.ln() / LN2_SQUARED).abs()
}

/// RedisBloom's item hash pair: MurmurHash64A with its seed, then seeded with the first.
fn item_hashes(item: &[u8]) -> (u64, u64) {
    let a = murmur_hash64a(item, HASH_SEED);
    (a, murmur_hash64a(item, a))
}

/// A scalable Bloom filter.
#[derive(Debug, Clone, PartialEq)]
pub struct BloomChain {
    links: Vec<Link>,
    /// Growth factor of each new sub-filter's capacity (kept even when not scaling, for INFO).
    expansion: u32,
    scaling: bool,
    /// Items added over all sub-filters (BF.CARD).
    len: u64,
    bytes: u64,
}

impl BloomChain {
    /// A chain whose first sub-filter holds `capacity` items. A scaling chain's first
    /// sub-filter gets half of `error_rate`, so that the whole chain stays under it.
    ///
    /// # Errors
    /// [`BloomChainError::TooLarge`] when the first sub-filter would pass
    /// [`BLOOM_CHAIN_BYTES_MAX`].
    pub fn new(
        capacity: u64,
        error_rate: f64,
        expansion: u32,
        non_scaling: bool,
    ) -> Result<Self, BloomChainError> {
        assert!(capacity >= 1, "capacity is checked where it enters");
        assert!(
            error_rate > 0.0 && error_rate < 1.0,
            "error rate is checked where it enters"
        );
        let scaling = !non_scaling && expansion > 0;
        let first_error = if scaling {
            error_rate * ERROR_TIGHTENING_RATIO
        } else {
            error_rate
        };
        let bytes = Link::byte_len(capacity, first_error).ok_or(BloomChainError::TooLarge)?;
        Ok(Self {
            links: vec![Link::new(capacity, first_error, bytes)],
            expansion,
            scaling,
            len: 0,
            bytes,
        })
    }

    /// Adds `item`: true when it was not there before (it may have been a false positive).
    ///
    /// # Errors
    /// [`BloomChainError::Full`] when a non-scaling chain is full, [`BloomChainError::TooLarge`]
    /// when the next sub-filter would pass [`BLOOM_CHAIN_BYTES_MAX`].
    pub fn add(&mut self, item: &[u8]) -> Result<bool, BloomChainError> {
        let hash = item_hashes(item);
        if self.links.iter().rev().any(|link| link.contains(hash)) {
            return Ok(false);
        }
        let newest = self.links.last().expect("a chain has a sub-filter");
        if newest.len >= newest.capacity {
            if !self.scaling {
                return Err(BloomChainError::Full);
            }
            self.grow()?;
        }
        let newest = self.links.last_mut().expect("a chain has a sub-filter");
        let added = newest.insert(hash);
        if added {
            newest.len += 1;
            self.len += 1;
        }
        Ok(added)
    }

    fn grow(&mut self) -> Result<(), BloomChainError> {
        let newest = self.links.last().expect("a chain has a sub-filter");
        let capacity = newest
            .capacity
            .checked_mul(u64::from(self.expansion))
            .ok_or(BloomChainError::TooLarge)?;
        let error_rate = newest.error_rate * ERROR_TIGHTENING_RATIO;
        let bytes = Link::byte_len(capacity, error_rate).ok_or(BloomChainError::TooLarge)?;
        if error_rate <= 0.0 || self.bytes + bytes > BLOOM_CHAIN_BYTES_MAX {
            return Err(BloomChainError::TooLarge);
        }
        self.links.push(Link::new(capacity, error_rate, bytes));
        self.bytes += bytes;
        Ok(())
    }

    /// Whether `item` may have been added (false positives at about the error rate).
    pub fn contains(&self, item: &[u8]) -> bool {
        let hash = item_hashes(item);
        self.links.iter().rev().any(|link| link.contains(hash))
    }

    /// Items added (BF.CARD, BF.INFO ITEMS).
    pub fn len(&self) -> u64 {
        self.len
    }

    /// True when nothing was added.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Items the sub-filters hold together before the next growth (BF.INFO CAPACITY).
    pub fn capacity(&self) -> u64 {
        self.links.iter().map(|link| link.capacity).sum()
    }

    /// Number of sub-filters (BF.INFO FILTERS).
    pub fn filter_count(&self) -> usize {
        self.links.len()
    }

    /// The growth factor, `None` for a non-scaling chain (BF.INFO EXPANSION).
    pub fn expansion(&self) -> Option<u32> {
        self.scaling.then_some(self.expansion)
    }

    /// Bytes used: bit arrays plus bookkeeping (BF.INFO SIZE, MEMORY USAGE).
    pub fn memory_bytes(&self) -> usize {
        std::mem::size_of::<Self>()
            + self.links.len() * std::mem::size_of::<Link>()
            + self.bytes as usize
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_follow_redisbloom() {
        // 100 items at 0.005 (half of 0.01): 11.03 bits each, 1102 bits, rounded up to 18 words.
        let chain = BloomChain::new(100, 0.01, 2, false).unwrap();
        let link = &chain.links[0];
        assert_eq!(link.bit_count, 1152);
        assert_eq!(link.hash_count, 8);
        assert_eq!((chain.capacity(), chain.filter_count()), (100, 1));
        let fixed = BloomChain::new(100, 0.01, 2, true).unwrap();
        assert_eq!((fixed.links[0].hash_count, fixed.expansion()), (7, None));
    }

    #[test]
    fn scaling_adds_tighter_sub_filters() {
        let mut chain = BloomChain::new(10, 0.01, 2, false).unwrap();
        let mut added = 0;
        for index in 0..100u32 {
            added += u64::from(chain.add(&index.to_le_bytes()).unwrap());
        }
        assert_eq!(chain.len(), added);
        // 10 + 20 + 40 + 80: four sub-filters hold the (about) 100 items.
        assert_eq!((chain.filter_count(), chain.capacity()), (4, 150));
        assert!(chain
            .links
            .windows(2)
            .all(|pair| pair[1].error_rate == pair[0].error_rate / 2.0));
        for index in 0..100u32 {
            assert!(chain.contains(&index.to_le_bytes()));
        }
    }

    #[test]
    fn non_scaling_chain_fills_up() {
        let mut chain = BloomChain::new(3, 0.01, 2, true).unwrap();
        for item in [b"a", b"b", b"c"] {
            assert_eq!(chain.add(item), Ok(true));
        }
        assert_eq!(chain.add(b"a"), Ok(false));
        assert_eq!(chain.add(b"d"), Err(BloomChainError::Full));
    }

    #[test]
    fn memory_is_bounded() {
        assert_eq!(
            BloomChain::new(1 << 30, 1e-300, 2, false),
            Err(BloomChainError::TooLarge)
        );
        let mut chain = BloomChain::new(1, 0.01, 32768, false).unwrap();
        // 1 -> 32768 -> 2^30 items: the third sub-filter needs more than 1 GiB.
        assert_eq!(chain.grow(), Ok(()));
        assert_eq!(chain.grow(), Err(BloomChainError::TooLarge));
        let grown = chain.filter_count() - 1;
        assert!(grown == 1 && chain.bytes <= BLOOM_CHAIN_BYTES_MAX);
    }
}
