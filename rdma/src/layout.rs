//! The byte layout of a read region, shared by the server that writes it and the clients that
//! READ it. Everything is little-endian and 8-byte aligned.
//!
//! ```text
//! header   64 bytes     magic, geometry, limits, oldest live epoch
//! buckets  (bucket_count + 1) x 64 bytes; a key's neighbourhood is its bucket and the next one
//!          (128 bytes, one READ), so the last bucket gets a spare neighbour instead of wrapping
//!          slot (16 bytes, 4 per bucket):
//!            word 0: tag (16 bits) << 48 | log position in 8-byte units (48 bits)
//!            word 1: item length in 8-byte units (16 bits) << 48 | version (48 bits; 0 = empty)
//! log      log_len bytes, segment_count segments; an item never crosses a segment
//!          item: position u64 (absolute), version u64, expire_at_ms u64 (Unix ms, 0 = never),
//!                key_len u32, value_len u32, crc32c u32 (over bytes 0..32, key and value), 0 u32,
//!                key, value, zero padding
//! ```
//!
//! Positions are absolute byte counts since the region was created; the physical offset is
//! `position % log_len` and the epoch is `position / segment_len`. Version numbers are never
//! reused, so a slot and an item agree on (position, version) only when the item is the one the
//! slot published.

use crate::error::{Error, ErrorKind, Result};

/// "EMBRRGN1" little-endian: a client refuses a region that does not start with it.
pub const REGION_MAGIC: u64 = u64::from_le_bytes(*b"EMBRRGN1");
/// Header bytes.
pub const HEADER_LEN: usize = 64;
/// Bucket bytes: one cache line.
pub const BUCKET_LEN: usize = 64;
/// Slots per bucket.
pub const SLOTS_PER_BUCKET: usize = 4;
/// Slot bytes.
pub const SLOT_LEN: usize = 16;
/// Buckets a key may live in (its own and the next): one READ of this many buckets finds it.
pub const NEIGHBOURHOOD_BUCKETS: usize = 2;
/// Bytes of one neighbourhood READ.
pub const NEIGHBOURHOOD_LEN: usize = NEIGHBOURHOOD_BUCKETS * BUCKET_LEN;
/// Item header bytes.
pub const ITEM_HEADER_LEN: usize = 40;
/// Header bytes the item's CRC covers (everything before the CRC field).
const ITEM_CRC_COVERS_LEN: usize = 32;
/// Offset of `epoch_oldest` in the header.
pub const EPOCH_OLDEST_OFFSET: usize = 48;

/// Bits of a slot's position and version fields.
pub const POSITION_BITS: u32 = 48;
/// Largest version: 2^48 - 1 publishes, about nine years at a million per second.
pub const VERSION_MAX: u64 = (1 << POSITION_BITS) - 1;
/// Largest item: the slot stores its length in 16 bits of 8-byte units.
pub const ITEM_LEN_MAX: usize = 0xFFFF * 8;
/// Most buckets: 2^24 (1 GiB of index), far above any shard's need.
pub const BUCKET_COUNT_MAX: u32 = 1 << 24;
/// Fewest segments: reclaiming one while one is being written needs slack of at least two more.
pub const SEGMENT_COUNT_MIN: u32 = 4;
/// Most segments: the reclaimer scans one at a time; more would only add bookkeeping.
pub const SEGMENT_COUNT_MAX: u32 = 4096;

/// A region's geometry, as the server configured it and the header records it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Layout {
    /// Buckets in the index (a power of two).
    pub bucket_count: u32,
    /// Bytes of the item log.
    pub log_len: u64,
    /// Bytes per segment (log_len / segment count).
    pub segment_len: u64,
    /// Longest key published.
    pub key_len_max: u32,
    /// Longest value published.
    pub value_len_max: u32,
}

impl Layout {
    /// Byte offset of the log.
    pub fn log_offset(&self) -> u64 {
        (HEADER_LEN + (self.bucket_count as usize + 1) * BUCKET_LEN) as u64
    }

    /// Total region bytes.
    pub fn region_len(&self) -> u64 {
        self.log_offset() + self.log_len
    }

    /// Byte offset of bucket `bucket`.
    pub fn bucket_offset(&self, bucket: u32) -> u64 {
        (HEADER_LEN + bucket as usize * BUCKET_LEN) as u64
    }

    /// Longest item the limits allow, padded.
    pub fn item_len_max(&self) -> usize {
        item_len(self.key_len_max as usize, self.value_len_max as usize)
    }

    /// Checks the geometry: every field within its bound and the pieces consistent.
    ///
    /// # Errors
    /// `Config` (or, for a header read from a peer, the caller maps it to `Protocol`) naming the
    /// field that is out of bounds.
    pub fn validate(&self) -> Result<()> {
        let fail = |what: String| Err(Error::new(ErrorKind::Config, what));
        if !self.bucket_count.is_power_of_two() || self.bucket_count > BUCKET_COUNT_MAX {
            return fail(format!(
                "bucket count {} is not a power of two up to {BUCKET_COUNT_MAX}",
                self.bucket_count
            ));
        }
        if self.segment_len == 0
            || self.segment_len % 8 != 0
            || self.log_len % self.segment_len != 0
        {
            return fail(format!(
                "segment length {} must be a non-zero multiple of 8 dividing the log length {}",
                self.segment_len, self.log_len
            ));
        }
        let segments = self.log_len / self.segment_len;
        if !(u64::from(SEGMENT_COUNT_MIN)..=u64::from(SEGMENT_COUNT_MAX)).contains(&segments) {
            return fail(format!(
                "{segments} segments outside {SEGMENT_COUNT_MIN}..={SEGMENT_COUNT_MAX}"
            ));
        }
        if self.key_len_max == 0 || self.item_len_max() > ITEM_LEN_MAX {
            return fail(format!(
                "item of key {} and value {} bytes exceeds {ITEM_LEN_MAX} bytes",
                self.key_len_max, self.value_len_max
            ));
        }
        // Copy-forward during reclamation may use half of a segment; the rest must always hold
        // the largest item, so that a publish can always make progress.
        if self.item_len_max() as u64 > self.segment_len / 2 {
            return fail(format!(
                "largest item ({} bytes) exceeds half a segment ({} bytes)",
                self.item_len_max(),
                self.segment_len
            ));
        }
        // Checked: a peer's header can name a log length that wraps the sum past 2^64.
        let region_len = self.log_offset().checked_add(self.log_len);
        if region_len.is_none_or(|len| len > crate::shm::memory::MAPPING_LEN_MAX as u64) {
            return fail(format!(
                "region of {} + {} bytes is too large",
                self.log_offset(),
                self.log_len
            ));
        }
        Ok(())
    }

    /// Encodes the header (without `epoch_oldest`, which the writer keeps current).
    pub fn encode_header(&self) -> [u8; HEADER_LEN] {
        let mut header = [0u8; HEADER_LEN];
        header[0..8].copy_from_slice(&REGION_MAGIC.to_le_bytes());
        header[8..16].copy_from_slice(&u64::from(self.bucket_count).to_le_bytes());
        header[16..24].copy_from_slice(&self.log_offset().to_le_bytes());
        header[24..32].copy_from_slice(&self.log_len.to_le_bytes());
        header[32..40].copy_from_slice(&self.segment_len.to_le_bytes());
        header[40..44].copy_from_slice(&self.key_len_max.to_le_bytes());
        header[44..48].copy_from_slice(&self.value_len_max.to_le_bytes());
        header
    }

    /// Decodes and validates a header READ from a server.
    ///
    /// # Errors
    /// `Protocol` when the magic is wrong or the geometry fails [`Layout::validate`].
    pub fn decode_header(header: &[u8]) -> Result<Self> {
        let word = |at: usize| u64::from_le_bytes(header[at..at + 8].try_into().expect("8"));
        if header.len() < HEADER_LEN || word(0) != REGION_MAGIC {
            return Err(Error::new(
                ErrorKind::Protocol,
                "not an Ember read region (bad magic)",
            ));
        }
        let bucket_count = u32::try_from(word(8))
            .map_err(|_| Error::new(ErrorKind::Protocol, "bucket count overflows"))?;
        let layout = Self {
            bucket_count,
            log_len: word(24),
            segment_len: word(32),
            key_len_max: u32::from_le_bytes(header[40..44].try_into().expect("4")),
            value_len_max: u32::from_le_bytes(header[44..48].try_into().expect("4")),
        };
        layout
            .validate()
            .map_err(|e| Error::new(ErrorKind::Protocol, format!("region header: {e}")))?;
        if word(16) != layout.log_offset() {
            return Err(Error::new(
                ErrorKind::Protocol,
                "region header: log offset disagrees",
            ));
        }
        Ok(layout)
    }
}

/// Bytes an item of these lengths occupies in the log.
pub fn item_len(key_len: usize, value_len: usize) -> usize {
    (ITEM_HEADER_LEN + key_len + value_len).next_multiple_of(8)
}

/// Where a key lives in the index: its first bucket and its tag.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct KeyHash {
    /// First bucket of the neighbourhood.
    pub bucket: u32,
    /// 16 bits that filter slots before a key is compared.
    pub tag: u16,
}

/// Hashes a key for a region of `bucket_count` buckets: CRC-32C (hardware on x86-64 and
/// AArch64) spread over 64 bits by Fibonacci multiplication, bucket from the top bits, tag from
/// the bits below.
pub fn key_hash(key: &[u8], bucket_count: u32) -> KeyHash {
    let spread = u64::from(crate::checksum::crc32c(key)).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    let bucket = (spread >> 32) as u32 & (bucket_count - 1);
    KeyHash {
        bucket,
        tag: (spread >> 16) as u16,
    }
}

/// A decoded slot.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Slot {
    /// Tag of the key.
    pub tag: u16,
    /// Absolute log position of the item.
    pub position: u64,
    /// Item bytes.
    pub item_len: usize,
    /// Version of the item; 0 means the slot is empty.
    pub version: u64,
}

impl Slot {
    /// Encodes into the slot's two words. The position must be 8-aligned and below 2^51, the
    /// length at most [`ITEM_LEN_MAX`]: the writer guarantees both (asserted).
    pub fn encode(&self) -> [u64; 2] {
        assert!(self.position % 8 == 0 && self.position >> 3 < 1 << POSITION_BITS);
        assert!(self.item_len % 8 == 0 && self.item_len <= ITEM_LEN_MAX);
        assert!(self.version <= VERSION_MAX);
        [
            (u64::from(self.tag) << POSITION_BITS) | (self.position >> 3),
            (((self.item_len >> 3) as u64) << POSITION_BITS) | self.version,
        ]
    }

    /// Decodes a slot's two words (any bit pattern decodes; the reader validates what it reads).
    pub fn decode(words: [u64; 2]) -> Self {
        let mask = (1u64 << POSITION_BITS) - 1;
        Self {
            tag: (words[0] >> POSITION_BITS) as u16,
            position: (words[0] & mask) << 3,
            item_len: ((words[1] >> POSITION_BITS) as usize) << 3,
            version: words[1] & mask,
        }
    }
}

/// An item's header fields.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ItemHeader {
    /// Absolute log position the item was written at.
    pub position: u64,
    /// Its version.
    pub version: u64,
    /// Unix time in milliseconds at which the value expires; 0 when it does not.
    pub expire_at_ms: u64,
    /// Key bytes.
    pub key_len: u32,
    /// Value bytes.
    pub value_len: u32,
    /// CRC-32C over header bytes 0..32, key and value.
    pub crc: u32,
}

/// Writes a complete item (header, key, value, zero padding) into `out`; `expire_at_ms` 0 means
/// the value does not expire.
pub fn encode_item(
    position: u64,
    version: u64,
    expire_at_ms: u64,
    key: &[u8],
    value: &[u8],
    out: &mut Vec<u8>,
) {
    out.clear();
    out.extend_from_slice(&position.to_le_bytes());
    out.extend_from_slice(&version.to_le_bytes());
    out.extend_from_slice(&expire_at_ms.to_le_bytes());
    out.extend_from_slice(&(key.len() as u32).to_le_bytes());
    out.extend_from_slice(&(value.len() as u32).to_le_bytes());
    let crc = crate::checksum::crc32c_append(
        crate::checksum::crc32c_append(crate::checksum::crc32c(&out[0..ITEM_CRC_COVERS_LEN]), key),
        value,
    );
    out.extend_from_slice(&crc.to_le_bytes());
    out.extend_from_slice(&0u32.to_le_bytes());
    out.extend_from_slice(key);
    out.extend_from_slice(value);
    out.resize(item_len(key.len(), value.len()), 0);
}

/// Decodes an item header (the first [`ITEM_HEADER_LEN`] bytes of `item`, which must be there).
pub fn decode_item_header(item: &[u8]) -> ItemHeader {
    let word = |at: usize| u64::from_le_bytes(item[at..at + 8].try_into().expect("8"));
    let half = |at: usize| u32::from_le_bytes(item[at..at + 4].try_into().expect("4"));
    ItemHeader {
        position: word(0),
        version: word(8),
        expire_at_ms: word(16),
        key_len: half(24),
        value_len: half(28),
        crc: half(32),
    }
}

/// The CRC an item's bytes should carry, computed over what was read.
pub fn item_crc(item: &[u8], key_len: usize, value_len: usize) -> u32 {
    let body = &item[ITEM_HEADER_LEN..ITEM_HEADER_LEN + key_len + value_len];
    crate::checksum::crc32c_append(crate::checksum::crc32c(&item[0..ITEM_CRC_COVERS_LEN]), body)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slot_round_trips() {
        let slot = Slot {
            tag: 0xBEEF,
            position: 8 * 123_456_789,
            item_len: 4096,
            version: VERSION_MAX,
        };
        assert_eq!(Slot::decode(slot.encode()), slot);
    }

    #[test]
    fn item_round_trips_and_checksums() {
        let mut item = Vec::new();
        encode_item(4096, 7, 99, b"key", b"value!", &mut item);
        assert_eq!(item.len(), item_len(3, 6));
        let header = decode_item_header(&item);
        let fields = (header.position, header.version, header.expire_at_ms);
        assert_eq!(fields, (4096, 7, 99));
        assert_eq!((header.key_len, header.value_len), (3, 6));
        assert_eq!(header.crc, item_crc(&item, 3, 6));
        item[ITEM_HEADER_LEN + 4] ^= 1;
        assert_ne!(header.crc, item_crc(&item, 3, 6));
    }

    #[test]
    fn geometry_bounds_are_enforced() {
        let good = Layout {
            bucket_count: 1024,
            log_len: 1 << 20,
            segment_len: 1 << 16,
            key_len_max: 256,
            value_len_max: 4096,
        };
        good.validate().unwrap();
        assert_eq!(Layout::decode_header(&good.encode_header()).unwrap(), good);
        let cases = [
            Layout {
                bucket_count: 1000,
                ..good
            },
            Layout {
                segment_len: 1 << 19,
                ..good
            },
            Layout {
                segment_len: 1000,
                ..good
            },
            Layout {
                value_len_max: 40_000,
                ..good
            },
            Layout {
                key_len_max: 0,
                ..good
            },
        ];
        for (i, case) in cases.iter().enumerate() {
            assert_eq!(
                case.validate().unwrap_err().kind(),
                ErrorKind::Config,
                "case {i}"
            );
        }
        // A hostile header whose log length plus index wraps past 2^64 must be refused, not
        // wrapped to a small region (whose READs would then land anywhere).
        let mut header = good.encode_header();
        let bucket_count = 1u64;
        let segment_len = (1u64 << 61) - 8; // 8 segments: log of 2^64 - 64 bytes
        let log_offset = (HEADER_LEN as u64) + (bucket_count + 1) * BUCKET_LEN as u64;
        header[8..16].copy_from_slice(&bucket_count.to_le_bytes());
        header[16..24].copy_from_slice(&log_offset.to_le_bytes());
        header[24..32].copy_from_slice(&(segment_len * 8).to_le_bytes());
        header[32..40].copy_from_slice(&segment_len.to_le_bytes());
        assert_eq!(
            Layout::decode_header(&header).unwrap_err().kind(),
            ErrorKind::Protocol
        );
        let mut header = good.encode_header();
        header[0] ^= 1;
        assert_eq!(
            Layout::decode_header(&header).unwrap_err().kind(),
            ErrorKind::Protocol
        );
    }
}
