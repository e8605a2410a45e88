//! HyperLogLog values (PFADD, PFCOUNT, PFMERGE), byte for byte as Redis 7 keeps them.
//!
//! Redis stores a HyperLogLog in an ordinary string, so a value read with GET from Redis and
//! written with SET into Ember (or the reverse) must mean the same thing. The layout:
//!
//! ```text
//! +------+---+-----+----------+------------------------------------------+
//! | HYLL | E | N/U | Cardin.  |  registers: sparse opcodes or 12288 bytes |
//! +------+---+-----+----------+------------------------------------------+
//!   4 B   1 B  3 B   8 B (LE)
//! ```
//!
//! `E` is 0 for dense (16384 registers of 6 bits, least significant bits first) and 1 for sparse
//! (run-length opcodes, see [`sparse`]). The cardinality is the last PFCOUNT's answer, little
//! endian; its top bit set means "stale, recompute". A new value starts sparse and turns dense
//! when a register needs a value above 32 or the string would grow past `hll-sparse-max-bytes`.
//! Every edit here follows Redis's algorithm step by step (including its partial merging of
//! sparse opcodes), so that the same commands give the same bytes, not just the same count.
//!
//! ```
//! use ember_store::hyperloglog::{HyperLogLog, SPARSE_BYTES_MAX_DEFAULT};
//!
//! let mut hll = HyperLogLog::new();
//! for element in [&b"a"[..], b"b", b"c", b"a"] {
//!     hll.add(element, SPARSE_BYTES_MAX_DEFAULT).unwrap();
//! }
//! assert_eq!(hll.count().unwrap(), 3);
//! assert_eq!(hll.encoding_name(), "sparse");
//! ```

mod dense;
mod estimate;
mod selftest;
pub mod sparse;
#[cfg(test)]
mod tests;

use std::fmt;

pub use selftest::self_test;

/// Bits of the hash that pick a register (Redis's `HLL_P`): 16384 registers, 0.81% error.
pub const INDEX_BITS: u32 = 14;
/// Registers in every HyperLogLog.
pub const REGISTER_COUNT: usize = 1 << INDEX_BITS;
/// Bits per dense register: enough for runs up to 63.
pub const REGISTER_BITS: usize = 6;
/// Hash bits left after the index (Redis's `HLL_Q`); a register holds at most this plus one.
pub const RUN_BITS: u32 = 64 - INDEX_BITS;
/// Bytes before the registers: magic, encoding, three unused, cached cardinality.
pub const HEADER_LEN: usize = 16;
/// Exact length of a dense value (Redis rejects a dense string of any other length).
pub const DENSE_LEN: usize = HEADER_LEN + (REGISTER_COUNT * REGISTER_BITS).div_ceil(8);
/// `hll-sparse-max-bytes`'s default: past this many bytes a sparse value turns dense, because
/// the sparse form's linear scans cost more than the dense form's 12 KB beyond it.
pub const SPARSE_BYTES_MAX_DEFAULT: usize = 3000;
/// The seed Redis hashes elements with.
pub const HASH_SEED: u64 = 0xadc8_3b19;

const MAGIC: &[u8; 4] = b"HYLL";
const ENCODING_OFFSET: usize = 4;
const ENCODING_DENSE: u8 = 0;
const ENCODING_SPARSE: u8 = 1;
const CARDINALITY_OFFSET: usize = 8;
/// Set in the cardinality's last byte when the cached value is stale.
const CACHE_STALE_BIT: u8 = 0x80;

/// Why a string cannot be used as a HyperLogLog; Display is Redis's reply.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HllError {
    /// Not a HyperLogLog at all: too short, wrong magic, unknown encoding, or a dense value of
    /// the wrong length (Redis checks exactly these before any command touches the value).
    NotHyperLogLog,
    /// A sparse value whose runs do not cover exactly 16384 registers.
    Corrupted,
}

impl fmt::Display for HllError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::NotHyperLogLog => "WRONGTYPE Key is not a valid HyperLogLog string value.",
            Self::Corrupted => "INVALIDOBJ Corrupted HLL object detected",
        })
    }
}

impl std::error::Error for HllError {}

/// The two representations Redis uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HllEncoding {
    /// Run-length opcodes: small for few elements.
    Sparse,
    /// 16384 six-bit registers.
    Dense,
}

/// True when `bytes` pass Redis's HyperLogLog check (the one behind PFADD/PFCOUNT/PFMERGE's
/// WRONGTYPE reply): long enough for the header, "HYLL", a known encoding, and the exact
/// length when dense. A sparse value's opcodes are checked only when read ([`HllError::Corrupted`]).
pub fn is_hyperloglog(bytes: &[u8]) -> bool {
    bytes.len() >= HEADER_LEN
        && &bytes[..4] == MAGIC
        && match bytes[ENCODING_OFFSET] {
            ENCODING_DENSE => bytes.len() == DENSE_LEN,
            ENCODING_SPARSE => true,
            _ => false,
        }
}

/// MurmurHash64A as Redis's `hyperloglog.c` computes it (little-endian words).
pub fn murmur_hash64a(bytes: &[u8], seed: u64) -> u64 {
    const MULTIPLIER: u64 = 0xc6a4_a793_5bd1_e995;
    const SHIFT: u32 = 47;
    let mut hash = seed ^ (bytes.len() as u64).wrapping_mul(MULTIPLIER);
    let mut chunks = bytes.chunks_exact(8);
    for chunk in &mut chunks {
        let mut word = u64::from_le_bytes(chunk.try_into().expect("chunks of 8"));
        word = word.wrapping_mul(MULTIPLIER);
        word ^= word >> SHIFT;
        word = word.wrapping_mul(MULTIPLIER);
        hash ^= word;
        hash = hash.wrapping_mul(MULTIPLIER);
    }
    let tail = chunks.remainder();
    if !tail.is_empty() {
        for (at, &byte) in tail.iter().enumerate() {
            hash ^= u64::from(byte) << (8 * at);
        }
        hash = hash.wrapping_mul(MULTIPLIER);
    }
    hash ^= hash >> SHIFT;
    hash = hash.wrapping_mul(MULTIPLIER);
    hash ^ (hash >> SHIFT)
}

/// The register `element` maps to and the run it proposes there: one more than the count of
/// trailing zero bits in the hash above the index bits (Redis's `hllPatLen`), 1..=51.
pub fn register_and_run(element: &[u8]) -> (usize, u8) {
    let hash = murmur_hash64a(element, HASH_SEED);
    let index = (hash & (REGISTER_COUNT as u64 - 1)) as usize;
    // The sentinel bit bounds the run at RUN_BITS + 1 when every remaining bit is zero.
    let rest = (hash >> INDEX_BITS) | (1 << RUN_BITS);
    (index, rest.trailing_zeros() as u8 + 1)
}

/// One register per byte: the form PFCOUNT of many keys and PFMERGE gather maxima in (Redis's
/// internal `HLL_RAW`).
pub type Registers = [u8; REGISTER_COUNT];

/// A HyperLogLog string value.
#[derive(Clone, PartialEq, Eq)]
pub struct HyperLogLog {
    bytes: Vec<u8>,
}

impl Default for HyperLogLog {
    fn default() -> Self {
        Self::new()
    }
}

impl HyperLogLog {
    /// The value PFADD creates for a missing key: sparse, every register zero, cached
    /// cardinality 0 marked stale (Redis's PFADD counts the creation as an update).
    pub fn new() -> Self {
        let mut bytes = vec![0u8; HEADER_LEN];
        bytes[..4].copy_from_slice(MAGIC);
        bytes[ENCODING_OFFSET] = ENCODING_SPARSE;
        sparse::push_zero_run(&mut bytes, REGISTER_COUNT);
        let mut hll = Self { bytes };
        hll.mark_stale();
        hll
    }

    /// Takes a string value as a HyperLogLog.
    ///
    /// # Errors
    /// [`HllError::NotHyperLogLog`] when [`is_hyperloglog`] refuses it.
    pub fn from_bytes(bytes: Vec<u8>) -> Result<Self, HllError> {
        if is_hyperloglog(&bytes) {
            Ok(Self { bytes })
        } else {
            Err(HllError::NotHyperLogLog)
        }
    }

    /// The string value's bytes (what GET returns).
    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes
    }

    /// The string value's bytes, owned.
    pub fn into_bytes(self) -> Vec<u8> {
        self.bytes
    }

    /// The current representation.
    pub fn encoding(&self) -> HllEncoding {
        if self.bytes[ENCODING_OFFSET] == ENCODING_DENSE {
            HllEncoding::Dense
        } else {
            HllEncoding::Sparse
        }
    }

    /// "sparse" or "dense", as PFDEBUG ENCODING names them.
    pub fn encoding_name(&self) -> &'static str {
        match self.encoding() {
            HllEncoding::Sparse => "sparse",
            HllEncoding::Dense => "dense",
        }
    }

    /// Heap bytes the value owns.
    pub fn heap_len(&self) -> usize {
        self.bytes.capacity()
    }

    /// The cached cardinality when it is current.
    pub fn cached_count(&self) -> Option<u64> {
        if self.bytes[HEADER_LEN - 1] & CACHE_STALE_BIT != 0 {
            return None;
        }
        let cached = &self.bytes[CARDINALITY_OFFSET..HEADER_LEN];
        Some(u64::from_le_bytes(cached.try_into().expect("8 bytes")))
    }

    fn mark_stale(&mut self) {
        self.bytes[HEADER_LEN - 1] |= CACHE_STALE_BIT;
    }

    /// PFADD of one element with `sparse_bytes_max` as `hll-sparse-max-bytes`: true when a
    /// register grew (PFADD then replies 1 and the cached count goes stale).
    ///
    /// # Errors
    /// [`HllError::Corrupted`] when a sparse value's opcodes are malformed; as in Redis,
    /// elements added before the failing one stay added.
    pub fn add(&mut self, element: &[u8], sparse_bytes_max: usize) -> Result<bool, HllError> {
        let (index, run) = register_and_run(element);
        self.set_at_least(index, run, sparse_bytes_max)
    }

    /// PFADD of several elements in order: true when a register grew. The bytes come out as
    /// those of [`HyperLogLog::add`] called for each element, as Redis's do; while the value is
    /// sparse, an index of its opcodes kept through the call spares each element a scan from
    /// the start.
    ///
    /// # Errors
    /// As [`HyperLogLog::add`]; the elements before the failing one stay added.
    pub fn add_all<'a>(
        &mut self,
        elements: impl IntoIterator<Item = &'a [u8]>,
        sparse_bytes_max: usize,
    ) -> Result<bool, HllError> {
        let mut grew = false;
        let mut index: Option<sparse::OpcodeIndex> = None;
        for element in elements {
            let (register, run) = register_and_run(element);
            if self.encoding() == HllEncoding::Dense {
                grew |= self.set_at_least(register, run, sparse_bytes_max)?;
                continue;
            }
            let opcodes = index.get_or_insert_with(|| sparse::OpcodeIndex::new(&self.bytes));
            grew |= match opcodes.raise(&mut self.bytes, register, run, sparse_bytes_max)? {
                sparse::Raise::Unchanged => false,
                sparse::Raise::Changed => {
                    self.mark_stale();
                    true
                }
                sparse::Raise::NeedsDense => {
                    index = None;
                    self.set_at_least(register, run, sparse_bytes_max)?
                }
            };
        }
        Ok(grew)
    }

    /// Raises register `index` to `run` if it is lower; true when it changed.
    fn set_at_least(
        &mut self,
        index: usize,
        run: u8,
        sparse_bytes_max: usize,
    ) -> Result<bool, HllError> {
        assert!(index < REGISTER_COUNT && run as u32 <= RUN_BITS + 1);
        let changed = match self.encoding() {
            HllEncoding::Dense => dense::raise(&mut self.bytes[HEADER_LEN..], index, run),
            HllEncoding::Sparse => {
                match sparse::raise(&mut self.bytes, index, run, sparse_bytes_max)? {
                    sparse::Raise::Unchanged => false,
                    sparse::Raise::Changed => true,
                    sparse::Raise::NeedsDense => {
                        self.to_dense()?;
                        let raised = dense::raise(&mut self.bytes[HEADER_LEN..], index, run);
                        assert!(raised, "a register that needed promotion must grow");
                        true
                    }
                }
            }
        };
        if changed {
            self.mark_stale();
        }
        Ok(changed)
    }

    /// Converts to the dense representation (keeping the header and its cached count).
    ///
    /// # Errors
    /// [`HllError::Corrupted`] when the sparse opcodes are malformed.
    pub fn to_dense(&mut self) -> Result<(), HllError> {
        if self.encoding() == HllEncoding::Dense {
            return Ok(());
        }
        let mut dense_bytes = vec![0u8; DENSE_LEN];
        dense_bytes[..HEADER_LEN].copy_from_slice(&self.bytes[..HEADER_LEN]);
        dense_bytes[ENCODING_OFFSET] = ENCODING_DENSE;
        sparse::write_dense(&self.bytes[HEADER_LEN..], &mut dense_bytes[HEADER_LEN..])?;
        self.bytes = dense_bytes;
        Ok(())
    }

    /// PFCOUNT of this one key: the cached cardinality when current, otherwise a fresh
    /// estimate, which is then cached (so PFCOUNT writes the value, as in Redis; check
    /// [`HyperLogLog::cached_count`] first to know whether it will).
    ///
    /// # Errors
    /// [`HllError::Corrupted`] when a sparse value's opcodes are malformed.
    pub fn count(&mut self) -> Result<u64, HllError> {
        if let Some(cached) = self.cached_count() {
            return Ok(cached);
        }
        let count = estimate::estimate(&self.histogram()?);
        self.bytes[CARDINALITY_OFFSET..HEADER_LEN].copy_from_slice(&count.to_le_bytes());
        Ok(count)
    }

    /// How many registers hold each value.
    fn histogram(&self) -> Result<estimate::Histogram, HllError> {
        let mut histogram = [0u32; estimate::HISTOGRAM_LEN];
        match self.encoding() {
            HllEncoding::Dense => dense::histogram(&self.bytes[HEADER_LEN..], &mut histogram),
            HllEncoding::Sparse => sparse::histogram(&self.bytes[HEADER_LEN..], &mut histogram)?,
        }
        Ok(histogram)
    }

    /// Raises each of `registers` to this value's register where that is higher (Redis's
    /// `hllMerge`).
    ///
    /// # Errors
    /// [`HllError::Corrupted`] when a sparse value's opcodes are malformed.
    pub fn merge_into(&self, registers: &mut Registers) -> Result<(), HllError> {
        match self.encoding() {
            HllEncoding::Dense => {
                dense::merge_into(&self.bytes[HEADER_LEN..], registers);
                Ok(())
            }
            HllEncoding::Sparse => sparse::merge_into(&self.bytes[HEADER_LEN..], registers),
        }
    }

    /// PFCOUNT of several keys: the estimate for their union (missing keys left out by the
    /// caller). Nothing is cached.
    ///
    /// # Errors
    /// [`HllError::Corrupted`] when any sparse value is malformed.
    pub fn count_union(hlls: &[&HyperLogLog]) -> Result<u64, HllError> {
        let mut registers = [0u8; REGISTER_COUNT];
        for hll in hlls {
            hll.merge_into(&mut registers)?;
        }
        Ok(Self::estimate_registers(&registers))
    }

    /// The estimate for registers merged with [`HyperLogLog::merge_into`]: PFCOUNT of several
    /// keys when the caller merged them one at a time (so that no copy of each is kept).
    pub fn estimate_registers(registers: &Registers) -> u64 {
        estimate::estimate(&estimate::histogram_of(registers))
    }

    /// PFMERGE with `self` as the destination (the existing value, or [`HyperLogLog::new`] for a
    /// missing key) and `sources` the other keys that exist: every register becomes the largest
    /// of the destination's and the sources'. As in Redis, the destination turns dense first
    /// when it or any source is dense, and otherwise grows register by register (turning dense
    /// past `sparse_bytes_max`); its cached count goes stale.
    ///
    /// # Errors
    /// [`HllError::Corrupted`] when any sparse value is malformed; the destination is then
    /// unchanged unless the failure came from its own conversion.
    pub fn merge(
        &mut self,
        sources: &[&HyperLogLog],
        sparse_bytes_max: usize,
    ) -> Result<(), HllError> {
        let mut registers = [0u8; REGISTER_COUNT];
        self.merge_into(&mut registers)?;
        let mut any_source_dense = false;
        for source in sources {
            source.merge_into(&mut registers)?;
            any_source_dense |= source.encoding() == HllEncoding::Dense;
        }
        self.merge_registers(&registers, any_source_dense, sparse_bytes_max)
    }

    /// [`HyperLogLog::merge`] from the sources' registers, merged by the caller one source at a
    /// time with [`HyperLogLog::merge_into`] (PFMERGE keeps no copy of each source, so that a
    /// source named many times costs no memory); `any_source_dense` says whether one was dense.
    ///
    /// # Errors
    /// [`HllError::Corrupted`] when the destination is a malformed sparse value.
    pub fn merge_registers(
        &mut self,
        registers: &Registers,
        any_source_dense: bool,
        sparse_bytes_max: usize,
    ) -> Result<(), HllError> {
        if any_source_dense {
            self.to_dense()?;
        }
        for (index, &run) in registers.iter().enumerate() {
            if run != 0 {
                self.set_at_least(index, run, sparse_bytes_max)?;
            }
        }
        self.mark_stale();
        Ok(())
    }

    /// Every register, one per byte.
    ///
    /// # Errors
    /// [`HllError::Corrupted`] when a sparse value's opcodes are malformed.
    pub fn registers(&self) -> Result<Box<Registers>, HllError> {
        let mut registers = Box::new([0u8; REGISTER_COUNT]);
        self.merge_into(&mut registers)?;
        Ok(registers)
    }
}

impl fmt::Debug for HyperLogLog {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HyperLogLog")
            .field("encoding", &self.encoding())
            .field("len", &self.bytes.len())
            .field("cached_count", &self.cached_count())
            .finish()
    }
}
