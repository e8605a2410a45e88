//! A scalable Bloom filter as RedisBloom builds one (`BF.*`): a chain of sub-filters, each
//! sized for its capacity at its own error rate. When the newest is full, a new one of
//! `expansion` times its capacity and half its error rate is added, so the chain's overall
//! false-positive rate stays under the requested one however far it grows.

use std::fmt;

use super::{murmur_hash64a, ModuleField};

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
    /// Bits per item as the sub-filter was made (or as a loaded header said): kept, not
    /// recomputed from `error_rate`, so that a loaded filter saves the header it was read from.
    bits_per_entry: f64,
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
            bits_per_entry,
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

    /// BF.INFO's `Size` as RedisBloom computes it (`BFMemUsage`): its chain header (32
    /// bytes) and one link record (64 bytes) per sub-filter, plus the bit arrays.
    pub fn info_size(&self) -> u64 {
        32 + 64 * self.links.len() as u64 + self.bytes
    }

    /// Bytes used: bit arrays plus bookkeeping (MEMORY USAGE, eviction).
    pub fn memory_bytes(&self) -> usize {
        std::mem::size_of::<Self>()
            + self.links.len() * std::mem::size_of::<Link>()
            + self.bytes as usize
    }
}

/// RedisBloom's option bits in a dump header (`BLOOM_OPT_*`): sub-filters sized without
/// rounding to a power of two, 64-bit hashes, no growth.
const OPT_NOROUND: u32 = 1;
const OPT_FORCE64: u32 = 4;
const OPT_NO_SCALING: u32 = 8;
/// Option bits a header may carry (RedisBloom also accepts `ENTS_IS_BITS`, 2, but never
/// writes it for a chain; its power-of-two sizing is not Ember's).
const OPT_KNOWN: u32 = OPT_NOROUND | OPT_FORCE64 | OPT_NO_SCALING;
/// RedisBloom's `dumpedChainHeader` (packed): items u64, filters u32, options u32, growth u32.
const DUMP_HEADER_LEN: usize = 20;
/// RedisBloom's `dumpedChainLink` (packed): bytes, bits, items u64; error, bits per entry
/// f64; hashes u32; capacity u64; n2 u8.
const DUMP_LINK_LEN: usize = 53;
/// RedisBloom's `LN2` constant, with which it checks a header's hash count: truncated on
/// purpose, so that a header RedisBloom accepts is accepted here.
#[allow(clippy::approx_constant)]
const LN2_REDISBLOOM: f64 = 0.693_147_180_559_945;

/// Why BF.LOADCHUNK refused a chunk; each is RedisBloom's reply text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BloomLoadError {
    /// "ERR received bad data": a header that does not describe a valid chain, or a chunk
    /// whose iterator is smaller than its length.
    BadData,
    /// "ERR invalid offset - no link found": the chunk starts past the last sub-filter.
    NoLink,
    /// "ERR invalid chunk - Too big for current filter".
    TooBig,
}

impl BloomLoadError {
    /// The error reply RedisBloom sends.
    pub fn message(self) -> &'static str {
        match self {
            Self::BadData => "ERR received bad data",
            Self::NoLink => "ERR invalid offset - no link found",
            Self::TooBig => "ERR invalid chunk - Too big for current filter",
        }
    }
}

/// Reads a little-endian field of `N` bytes at `*at`, moving `*at` past it.
fn take<const N: usize>(buf: &[u8], at: &mut usize) -> [u8; N] {
    let field = buf[*at..*at + N]
        .try_into()
        .expect("length checked by the caller");
    *at += N;
    field
}

impl BloomChain {
    /// The header BF.SCANDUMP answers first, in RedisBloom's layout (`dumpedChainHeader` and
    /// one `dumpedChainLink` per sub-filter, little-endian, packed), so a dump taken here
    /// describes the same chain to RedisBloom and back.
    pub fn dump_header(&self) -> Vec<u8> {
        let mut options = OPT_NOROUND | OPT_FORCE64;
        if !self.scaling {
            options |= OPT_NO_SCALING;
        }
        let mut out = Vec::with_capacity(DUMP_HEADER_LEN + self.links.len() * DUMP_LINK_LEN);
        out.extend_from_slice(&self.len.to_le_bytes());
        out.extend_from_slice(&(self.links.len() as u32).to_le_bytes());
        out.extend_from_slice(&options.to_le_bytes());
        out.extend_from_slice(&self.expansion.to_le_bytes());
        for link in &self.links {
            out.extend_from_slice(&(link.words.len() as u64 * 8).to_le_bytes());
            out.extend_from_slice(&link.bit_count.to_le_bytes());
            out.extend_from_slice(&link.len.to_le_bytes());
            out.extend_from_slice(&link.error_rate.to_le_bytes());
            out.extend_from_slice(&link.bits_per_entry.to_le_bytes());
            out.extend_from_slice(&link.hash_count.to_le_bytes());
            out.extend_from_slice(&link.capacity.to_le_bytes());
            out.push(0);
        }
        out
    }

    /// The sub-filter holding byte `position` of the concatenated bit arrays (RedisBloom's
    /// `getLinkPos`: iterators count bytes from 1), and the offset inside it.
    fn link_at(&self, iter: i64) -> Option<(usize, usize)> {
        let mut position = usize::try_from(iter.checked_sub(1)?).ok()?;
        for (index, link) in self.links.iter().enumerate() {
            let bytes = link.words.len() * 8;
            if position < bytes {
                return Some((index, position));
            }
            position -= bytes;
        }
        None
    }

    /// BF.SCANDUMP's data step: the bytes from iterator `iter` (1 = the first byte), at most
    /// `max_len` of them and never across a sub-filter's end, with the next iterator; `None`
    /// when `iter` is past the end (RedisBloom then answers iterator 0).
    pub fn dump_chunk(&self, iter: i64, max_len: usize) -> Option<(i64, Vec<u8>)> {
        let (index, offset) = self.link_at(iter)?;
        let words = &self.links[index].words;
        let len = (words.len() * 8 - offset).min(max_len);
        let bytes: Vec<u8> = words[offset / 8..(offset + len).div_ceil(8)]
            .iter()
            .flat_map(|word| word.to_le_bytes())
            .skip(offset % 8)
            .take(len)
            .collect();
        Some((iter + len as i64, bytes))
    }

    /// A chain, every bit clear, from a header BF.SCANDUMP gave (BF.LOADCHUNK with
    /// iterator 1). The header is checked as RedisBloom checks it; sizes must also fit
    /// [`BLOOM_CHAIN_BYTES_MAX`] and be whole 64-bit words.
    ///
    /// # Errors
    /// [`BloomLoadError::BadData`] for a header that does not describe a valid chain.
    pub fn from_dump_header(buf: &[u8]) -> Result<Self, BloomLoadError> {
        let bad = BloomLoadError::BadData;
        if buf.len() < DUMP_HEADER_LEN {
            return Err(bad);
        }
        let mut at = 0;
        let len = u64::from_le_bytes(take(buf, &mut at));
        let filters = u32::from_le_bytes(take(buf, &mut at)) as usize;
        let options = u32::from_le_bytes(take(buf, &mut at));
        let expansion = u32::from_le_bytes(take(buf, &mut at));
        if filters == 0
            || options & !OPT_KNOWN != 0
            || Some(buf.len())
                != filters
                    .checked_mul(DUMP_LINK_LEN)
                    .map(|n| n + DUMP_HEADER_LEN)
        {
            return Err(bad);
        }
        let mut links = Vec::with_capacity(filters);
        let (mut bytes_total, mut items_total) = (0u64, 0u64);
        for _ in 0..filters {
            let bytes = u64::from_le_bytes(take(buf, &mut at));
            let bit_count = u64::from_le_bytes(take(buf, &mut at));
            let items = u64::from_le_bytes(take(buf, &mut at));
            let error_rate = f64::from_le_bytes(take(buf, &mut at));
            let bits_per_entry = f64::from_le_bytes(take(buf, &mut at));
            let hash_count = u32::from_le_bytes(take(buf, &mut at));
            let capacity = u64::from_le_bytes(take(buf, &mut at));
            let n2 = take::<1>(buf, &mut at)[0];
            let valid = error_rate > 0.0
                && error_rate < 1.0
                && n2 == 0
                && bytes > 0
                && bytes % 8 == 0
                && bytes.checked_mul(8) == Some(bit_count)
                && capacity >= 1
                && bits_per_entry.is_finite()
                && f64::from(hash_count) == (LN2_REDISBLOOM * bits_per_entry).ceil();
            bytes_total = bytes_total.saturating_add(bytes);
            items_total = items_total.checked_add(items).ok_or(bad)?;
            if !valid || bytes_total > BLOOM_CHAIN_BYTES_MAX {
                return Err(bad);
            }
            links.push(Link {
                words: vec![0; (bytes / 8) as usize],
                bit_count,
                hash_count,
                capacity,
                error_rate,
                bits_per_entry,
                len: items,
            });
        }
        if items_total != len {
            return Err(bad);
        }
        Ok(Self {
            links,
            expansion,
            scaling: options & OPT_NO_SCALING == 0 && expansion > 0,
            len,
            bytes: bytes_total,
        })
    }

    /// The value as RedisBloom's `BFRdbSave` writes it (encoding version 4): items, sub-filters,
    /// options, growth, then per sub-filter capacity, error rate, hash count, bits per entry,
    /// bits, n2, the bit array and its item count.
    pub fn rdb_fields(&self) -> Vec<ModuleField> {
        let header = self.dump_header();
        let mut at = 0;
        let items = u64::from_le_bytes(take(&header, &mut at));
        at += 4; // filters, written from the links below
        let options = u32::from_le_bytes(take(&header, &mut at));
        let mut fields = vec![
            ModuleField::Unsigned(items),
            ModuleField::Unsigned(self.links.len() as u64),
            ModuleField::Unsigned(u64::from(options)),
            ModuleField::Unsigned(u64::from(self.expansion)),
        ];
        for link in &self.links {
            fields.extend([
                ModuleField::Unsigned(link.capacity),
                ModuleField::Double(link.error_rate),
                ModuleField::Unsigned(u64::from(link.hash_count)),
                ModuleField::Double(link.bits_per_entry),
                ModuleField::Unsigned(link.bit_count),
                ModuleField::Unsigned(0),
                ModuleField::Buffer(
                    link.words
                        .iter()
                        .flat_map(|word| word.to_le_bytes())
                        .collect(),
                ),
                ModuleField::Unsigned(link.len),
            ]);
        }
        fields
    }

    /// A chain from [`BloomChain::rdb_fields`]' stream, checked as BF.LOADCHUNK checks a
    /// header, and each bit array's length against its bit count.
    ///
    /// # Errors
    /// [`BloomLoadError::BadData`] for a stream that does not describe a valid chain.
    pub fn from_rdb_fields(fields: &[ModuleField]) -> Result<Self, BloomLoadError> {
        let bad = BloomLoadError::BadData;
        let unsigned = |index: usize| match fields.get(index) {
            Some(ModuleField::Unsigned(value)) => Ok(*value),
            _ => Err(bad),
        };
        let double = |index: usize| match fields.get(index) {
            Some(ModuleField::Double(value)) => Ok(*value),
            _ => Err(bad),
        };
        let filters = unsigned(1)?;
        if filters.checked_mul(8).and_then(|n| n.checked_add(4)) != Some(fields.len() as u64) {
            return Err(bad);
        }
        let filters_u32 = u32::try_from(filters).map_err(|_| bad)?;
        let options = u32::try_from(unsigned(2)?).map_err(|_| bad)?;
        let growth = u32::try_from(unsigned(3)?).map_err(|_| bad)?;
        let mut header = Vec::with_capacity(DUMP_HEADER_LEN + filters as usize * DUMP_LINK_LEN);
        header.extend_from_slice(&unsigned(0)?.to_le_bytes());
        header.extend_from_slice(&filters_u32.to_le_bytes());
        header.extend_from_slice(&options.to_le_bytes());
        header.extend_from_slice(&growth.to_le_bytes());
        let mut buffers = Vec::with_capacity(filters as usize);
        for link in 0..filters as usize {
            let at = 4 + link * 8;
            let Some(ModuleField::Buffer(bits)) = fields.get(at + 6) else {
                return Err(bad);
            };
            let hashes = u32::try_from(unsigned(at + 2)?).map_err(|_| bad)?;
            let n2 = u8::try_from(unsigned(at + 5)?).map_err(|_| bad)?;
            header.extend_from_slice(&(bits.len() as u64).to_le_bytes());
            header.extend_from_slice(&unsigned(at + 4)?.to_le_bytes());
            header.extend_from_slice(&unsigned(at + 7)?.to_le_bytes());
            header.extend_from_slice(&double(at + 1)?.to_le_bytes());
            header.extend_from_slice(&double(at + 3)?.to_le_bytes());
            header.extend_from_slice(&hashes.to_le_bytes());
            header.extend_from_slice(&unsigned(at)?.to_le_bytes());
            header.push(n2);
            buffers.push(bits);
        }
        let mut chain = Self::from_dump_header(&header)?;
        let mut iter = 1i64;
        for bits in buffers {
            iter += bits.len() as i64;
            chain.load_chunk(iter, bits)?;
        }
        Ok(chain)
    }

    /// BF.LOADCHUNK's data step: `data` as BF.SCANDUMP gave it with iterator `iter` (the
    /// iterator *after* the chunk, so the chunk starts at `iter - data.len()`).
    ///
    /// # Errors
    /// RedisBloom's three refusals, see [`BloomLoadError`].
    pub fn load_chunk(&mut self, iter: i64, data: &[u8]) -> Result<(), BloomLoadError> {
        let len = i64::try_from(data.len()).map_err(|_| BloomLoadError::BadData)?;
        if iter <= 0 || iter < len {
            return Err(BloomLoadError::BadData);
        }
        let (index, offset) = self.link_at(iter - len).ok_or(BloomLoadError::NoLink)?;
        let words = &mut self.links[index].words;
        if data.len() > words.len() * 8 - offset {
            return Err(BloomLoadError::TooBig);
        }
        for (position, &byte) in (offset..).zip(data) {
            let shift = (position % 8) * 8;
            let word = &mut words[position / 8];
            *word = (*word & !(0xff << shift)) | (u64::from(byte) << shift);
        }
        Ok(())
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

    /// Every byte of every sub-filter, dumped in chunks of `max_len` and loaded back.
    fn round_trip(chain: &BloomChain, max_len: usize) -> BloomChain {
        let mut copy = BloomChain::from_dump_header(&chain.dump_header()).unwrap();
        let mut iter = 1;
        while let Some((next, data)) = chain.dump_chunk(iter, max_len) {
            assert!(data.len() <= max_len && next == iter + data.len() as i64);
            copy.load_chunk(next, &data).unwrap();
            iter = next;
        }
        copy
    }

    #[test]
    fn dump_and_load_give_the_same_chain() {
        let mut chain = BloomChain::new(50, 0.01, 2, false).unwrap();
        for index in 0..400u32 {
            chain.add(&index.to_le_bytes()).unwrap();
        }
        assert!(chain.filter_count() > 2);
        for max_len in [1, 7, 64, 1 << 24] {
            assert_eq!(round_trip(&chain, max_len), chain);
        }
        let fixed = BloomChain::new(10, 0.001, 4, true).unwrap();
        assert_eq!(round_trip(&fixed, 3), fixed);
        // RedisBloom's layout: 20 header bytes, 53 per sub-filter.
        assert_eq!(fixed.dump_header().len(), 20 + 53);
        assert_eq!(&fixed.dump_header()[12..16], &(1u32 | 4 | 8).to_le_bytes());
    }

    #[test]
    fn bad_headers_and_chunks_are_refused() {
        let chain = BloomChain::new(100, 0.01, 2, false).unwrap();
        let header = chain.dump_header();
        for bad in [&header[..19], &header[..header.len() - 1], &[0u8; 20][..]] {
            assert_eq!(
                BloomChain::from_dump_header(bad),
                Err(BloomLoadError::BadData)
            );
        }
        let mut wrong_hashes = header.clone();
        wrong_hashes[20 + 40] ^= 1;
        assert!(BloomChain::from_dump_header(&wrong_hashes).is_err());
        let mut copy = BloomChain::from_dump_header(&header).unwrap();
        let bytes = 1152 / 8; // see sizes_follow_redisbloom
        assert_eq!(copy.load_chunk(0, b""), Err(BloomLoadError::BadData));
        assert_eq!(copy.load_chunk(2, b"abc"), Err(BloomLoadError::BadData));
        assert_eq!(
            copy.load_chunk(bytes + 2, b"a"),
            Err(BloomLoadError::NoLink)
        );
        assert_eq!(
            copy.load_chunk(bytes, &vec![0; bytes as usize][..]),
            Err(BloomLoadError::NoLink)
        );
        assert_eq!(
            copy.load_chunk(bytes + 2, &vec![0; bytes as usize + 1][..]),
            Err(BloomLoadError::TooBig)
        );
        assert_eq!(
            copy.load_chunk(bytes + 1, &vec![0; bytes as usize][..]),
            Ok(())
        );
        assert_eq!(chain.dump_chunk(0, 10), None);
        assert_eq!(chain.dump_chunk(bytes + 1, 10), None);
    }

    #[test]
    fn rdb_fields_round_trip() {
        let mut chain = BloomChain::new(20, 0.01, 2, false).unwrap();
        for index in 0..100u32 {
            chain.add(&index.to_le_bytes()).unwrap();
        }
        let fields = chain.rdb_fields();
        assert_eq!(fields.len(), 4 + 8 * chain.filter_count());
        assert_eq!(BloomChain::from_rdb_fields(&fields), Ok(chain));
        let mut short = fields.clone();
        short.pop();
        assert!(BloomChain::from_rdb_fields(&short).is_err());
        let mut cut = fields.clone();
        if let ModuleField::Buffer(bits) = &mut cut[10] {
            bits.pop();
        }
        assert!(BloomChain::from_rdb_fields(&cut).is_err());
        // A sub-filter count whose field count overflows (found by the dump_payload fuzz target:
        // `4 + u64::MAX` panicked in debug builds) is bad data.
        let mut huge = fields.clone();
        huge[1] = ModuleField::Unsigned(u64::MAX);
        assert!(BloomChain::from_rdb_fields(&huge).is_err());
        huge[1] = ModuleField::Unsigned(u64::MAX / 8);
        assert!(BloomChain::from_rdb_fields(&huge).is_err());
    }
}
