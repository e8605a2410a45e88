//! RedisBloom's probabilistic types: a scalable Bloom filter ([`BloomChain`], `BF.*`), a
//! cuckoo filter ([`CuckooFilter`], `CF.*`), a count-min sketch ([`CountMinSketch`],
//! `CMS.*`) and a HeavyKeeper top-k ([`TopK`], `TOPK.*`).
//!
//! Each follows RedisBloom's algorithms and sizing rules (hashes, bits per entry, sub-filter
//! growth, fingerprints), so capacities, `*.INFO` figures and error rates match what users of
//! RedisBloom expect. Every structure has a memory bound (a named constant in its module)
//! checked when it is made or grows, so a command cannot make a shard allocate without limit.
//!
//! ```
//! use ember_store::probabilistic::BloomChain;
//! let mut filter = BloomChain::new(100, 0.01, 2, false).unwrap();
//! assert_eq!(filter.add(b"alice"), Ok(true));
//! assert_eq!(filter.add(b"alice"), Ok(false));
//! assert!(filter.contains(b"alice"));
//! ```

mod bloom_chain;
mod count_min;
mod cuckoo;
mod top_k;

pub use bloom_chain::{BloomChain, BloomChainError, BloomLoadError, BLOOM_CHAIN_BYTES_MAX};
pub use count_min::{CountMinError, CountMinSketch, COUNT_MIN_CELLS_MAX};
pub use cuckoo::{CuckooFilter, CuckooInsert, CUCKOO_BYTES_MAX, CUCKOO_DUMP_HEADER_LEN};
pub use top_k::{TopK, TOP_K_BYTES_MAX};

/// One field of a module value as RedisBloom's `rdb_save` writes it (`RedisModule_SaveUnsigned`,
/// `SaveDouble`, `SaveStringBuffer`): DUMP/RESTORE carry the types as that field stream.
#[derive(Debug, Clone, PartialEq)]
pub enum ModuleField {
    /// An unsigned integer.
    Unsigned(u64),
    /// A double.
    Double(f64),
    /// A byte buffer.
    Buffer(Vec<u8>),
}

/// MurmurHash64A, the Bloom filter's and the cuckoo filter's item hash: RedisBloom's
/// `MurmurHash64A_Bloom` is the same function as Redis's HyperLogLog hash.
pub use crate::hyperloglog::murmur_hash64a;

/// Austin Appleby's 32-bit MurmurHash2: the count-min sketch's and top-k's row hash (the row
/// number is the seed, as in RedisBloom).
pub fn murmur_hash2(item: &[u8], seed: u32) -> u32 {
    const M: u32 = 0x5bd1_e995;
    const R: u32 = 24;
    let mut h = seed ^ item.len() as u32;
    let mut chunks = item.chunks_exact(4);
    for chunk in &mut chunks {
        let mut k = u32::from_le_bytes(chunk.try_into().expect("chunks_exact yields 4 bytes"));
        k = k.wrapping_mul(M);
        k ^= k >> R;
        k = k.wrapping_mul(M);
        h = h.wrapping_mul(M);
        h ^= k;
    }
    let tail = chunks.remainder();
    if !tail.is_empty() {
        for (index, &byte) in tail.iter().enumerate() {
            h ^= u32::from(byte) << (8 * index);
        }
        h = h.wrapping_mul(M);
    }
    h ^= h >> 13;
    h = h.wrapping_mul(M);
    h ^= h >> 15;
    h
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hashes_match_the_reference_bloom_hash() {
        // The FPGA reference filter hashes with RedisBloom's seed; both must agree.
        for item in [&b""[..], b"a", b"alice", b"exactly8", b"nine bytes"] {
            assert_eq!(
                murmur_hash64a(item, 0xc6a4_a793_5bd1_e995),
                crate::bloom::item_hash(item)
            );
        }
    }

    #[test]
    fn murmur2_known_values() {
        // Published MurmurHash2 test vectors (seed 0): "" -> 0, and the seed alone mixes.
        assert_eq!(murmur_hash2(b"", 0), 0);
        assert_ne!(murmur_hash2(b"", 1), murmur_hash2(b"", 2));
        assert_ne!(murmur_hash2(b"abc", 0), murmur_hash2(b"abd", 0));
    }
}
