//! ember-store: one shard's keyspace. No I/O, no runtime, no RESP.
//!
//! A [`Keyspace`] holds sixteen databases of compact entries ([`CompactBytes`] keys and small
//! values inline, integers as integers; sets and sorted sets in [`set`] and [`zset`], RedisAI tensors in [`tensor`]), millisecond TTLs with lazy expiry on access and an
//! active expiry cycle that the server runs within a time budget, and a [`KeyObserver`] hook that
//! hears of every change. Reads and writes keep each key's access word as Redis does, an LRU
//! clock or an LFU counter as [`AccessPolicy`] says ([`lfu`] holds the counter's arithmetic).
//! [`slot`] is the Redis Cluster slot function shared with the router, the one-sided clients and
//! the FPGA module. [`eviction`] holds the cache policies (Redis's sampled LRU/LFU/LRM/TTL/random,
//! S3-FIFO, SIEVE, W-TinyLFU) as engines over abstract key ids that the keyspace drives.
//!
//! The rest of Redis's data model is here as store-side structures that the command layer wires
//! into [`Value`]: [`hash`] (with Redis 7.4 per-field expiry), [`list`], [`stream`] (with
//! consumer groups), and, over plain string values, [`hyperloglog`] (byte-compatible with
//! Redis), [`bitmap`] and [`geo`] (scores of geo sorted sets). Each is checked against vectors
//! recorded from a real redis-server (`tests/*_redis.rs`).
//!
//! ```
//! use ember_store::{Keyspace, Value};
//!
//! let mut keyspace = Keyspace::new();
//! keyspace.insert(0, b"greeting", Value::from_bytes(b"hello"), Some(1_000), 0);
//! assert_eq!(keyspace.get(0, b"greeting", 999).unwrap().value.to_vec(), b"hello");
//! assert!(keyspace.get(0, b"greeting", 1_000).is_none()); // expired
//! ```
#![deny(missing_docs)]

pub mod bitmap;
pub mod bloom;
pub mod compact;
pub mod dump;
pub mod eviction;
pub mod geo;
pub mod glob;
pub mod hash;
pub mod hyperloglog;
pub mod keyspace;
pub mod lfu;
pub mod list;
pub mod probabilistic;
pub mod rate_limit;
mod records;
pub mod set;
pub mod slot;
pub mod split;
pub mod stream;
pub mod tensor;
pub mod text_filter;
pub mod value;
mod varint;
pub mod zset;

pub use compact::CompactBytes;
pub use hash::{HashError, HashLimits, HashValue};
pub use hyperloglog::{HllError, HyperLogLog};
pub use keyspace::{
    AccessPolicy, AdmissionWindow, Change, DatabaseInfo, Evicted, EvictionPolicy, EvictionPool,
    Expiry, FlushedDatabase, KeyObserver, Keyspace, KeyspaceStats, ModifiedKey, ScanStep,
    DATABASE_COUNT, OBSERVERS_MAX, PREFETCH_BATCH_LEN, SEGMENT_COUNT, WINDOW_SHARE_SCALE_PPM,
};
pub use list::{ListLimits, ListValue};
pub use probabilistic::{BloomChain, CountMinSketch, CuckooFilter, TopK};
pub use set::SetValue;
pub use stream::{StreamError, StreamId, StreamValue};
pub use tensor::TensorValue;
pub use value::{
    parse_canonical_i64, Entry, ExpireAtMs, Value, EXPIRE_AT_MS_MAX, LAZYFREE_THRESHOLD,
};
pub use zset::SortedSet;
