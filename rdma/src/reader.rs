//! The client side of the one-sided GET protocol: READ the key's neighbourhood of buckets, READ
//! the item a matching slot names, and believe it only when position, version, lengths, key and
//! CRC-32C all agree. Anything else is a torn or reclaimed read, and the lookup starts again from
//! the bucket, up to [`ATTEMPTS_MAX`] times.
//!
//! The logic is written against [`RemoteMemory`], one synchronous READ, so that the tests can put
//! a fault-injecting memory under it.

use crate::error::Result;
use crate::layout::{
    self, key_hash, Layout, Slot, ITEM_HEADER_LEN, NEIGHBOURHOOD_BUCKETS, NEIGHBOURHOOD_LEN,
    SLOTS_PER_BUCKET, SLOT_LEN,
};

/// Lookups start over this many times before giving up (the caller then asks by message). A
/// torn read needs the writer to rewrite the same key during the microsecond between two READs,
/// so even a key rewritten in a tight loop rarely needs more than two attempts.
pub const ATTEMPTS_MAX: u32 = 32;

/// One-sided READs, completed before `read` returns.
pub trait RemoteMemory {
    /// READs `len` bytes at `offset` of remote region `region` and lends them.
    ///
    /// # Errors
    /// Whatever the transport reports: `Timeout` for a lost completion, `Disconnected`, `Protocol`
    /// for a range outside the region.
    fn read(&mut self, region: u32, offset: u64, len: usize) -> Result<&[u8]>;
}

/// What a one-sided lookup found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Lookup {
    /// The value (now in the caller's buffer) was verified.
    Hit,
    /// The key is not published (absent, or not a publishable value): ask by message.
    Miss,
    /// Every attempt was torn or reclaimed: ask by message.
    GaveUp,
}

/// What the reader saw; every counter is a kind of fault the protocol detected and survived.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ReaderStats {
    /// One-sided READs posted.
    pub reads: u64,
    /// Verified hits.
    pub hits: u64,
    /// Keys not published.
    pub misses: u64,
    /// Verified items whose expiry time had passed (treated as misses).
    pub expired: u64,
    /// Items whose header disagreed with the slot (version or lengths): torn reads.
    pub torn: u64,
    /// Items whose header agreed but whose CRC-32C did not.
    pub checksum_failures: u64,
    /// Items whose space a later epoch had reused (position disagreed).
    pub reclaimed: u64,
    /// Slots whose tag matched another key.
    pub tag_collisions: u64,
    /// Lookups that gave up after [`ATTEMPTS_MAX`] attempts.
    pub gave_up: u64,
}

enum Verdict {
    /// Verified; carries the item's expiry time (0 = never).
    Hit(u64),
    OtherKey,
    Retry,
}

/// Looks `key` up one-sided in `region` (geometry `layout`); on a hit the value is in `value`.
/// `now_ms` is the reader's Unix time in milliseconds: an item that expired by then is a miss.
///
/// # Errors
/// Transport errors from `memory` (the caller falls back to a message GET).
pub fn lookup(
    memory: &mut dyn RemoteMemory,
    region: u32,
    layout: &Layout,
    key: &[u8],
    now_ms: u64,
    value: &mut Vec<u8>,
    stats: &mut ReaderStats,
) -> Result<Lookup> {
    let hash = key_hash(key, layout.bucket_count);
    if key.is_empty() || key.len() > layout.key_len_max as usize {
        stats.misses += 1;
        return Ok(Lookup::Miss);
    }
    for _ in 0..ATTEMPTS_MAX {
        stats.reads += 1;
        let bytes = memory.read(region, layout.bucket_offset(hash.bucket), NEIGHBOURHOOD_LEN)?;
        let mut candidates = [Slot::decode([0, 0]); NEIGHBOURHOOD_BUCKETS * SLOTS_PER_BUCKET];
        let mut candidate_count = 0;
        for chunk in bytes.chunks_exact(SLOT_LEN) {
            let word = |at: usize| u64::from_le_bytes(chunk[at..at + 8].try_into().expect("8"));
            let slot = Slot::decode([word(0), word(8)]);
            if slot.version != 0 && slot.tag == hash.tag {
                candidates[candidate_count] = slot;
                candidate_count += 1;
            }
        }
        let mut retry = false;
        for slot in &candidates[..candidate_count] {
            match check_item(memory, region, layout, key, slot, value, stats)? {
                Verdict::Hit(expire_at_ms) => {
                    if expire_at_ms != 0 && now_ms >= expire_at_ms {
                        // Expired: the server's GET will say so (and remove it); never return it.
                        value.clear();
                        stats.expired += 1;
                        stats.misses += 1;
                        return Ok(Lookup::Miss);
                    }
                    stats.hits += 1;
                    return Ok(Lookup::Hit);
                }
                Verdict::OtherKey => stats.tag_collisions += 1,
                Verdict::Retry => retry = true,
            }
        }
        if !retry {
            stats.misses += 1;
            return Ok(Lookup::Miss);
        }
    }
    stats.gave_up += 1;
    Ok(Lookup::GaveUp)
}

fn check_item(
    memory: &mut dyn RemoteMemory,
    region: u32,
    layout: &Layout,
    key: &[u8],
    slot: &Slot,
    value: &mut Vec<u8>,
    stats: &mut ReaderStats,
) -> Result<Verdict> {
    let physical = slot.position % layout.log_len;
    // A torn slot can name any length: refuse what the layout cannot hold before READing it.
    if slot.item_len < ITEM_HEADER_LEN
        || slot.item_len > layout.item_len_max()
        || physical + slot.item_len as u64 > layout.log_len
    {
        stats.torn += 1;
        return Ok(Verdict::Retry);
    }
    stats.reads += 1;
    let item = memory.read(region, layout.log_offset() + physical, slot.item_len)?;
    let header = layout::decode_item_header(item);
    let lengths_fit = header.key_len as usize <= layout.key_len_max as usize
        && header.value_len as usize <= layout.value_len_max as usize
        && layout::item_len(header.key_len as usize, header.value_len as usize) == slot.item_len;
    if !lengths_fit {
        stats.torn += 1;
        return Ok(Verdict::Retry);
    }
    let crc_ok =
        layout::item_crc(item, header.key_len as usize, header.value_len as usize) == header.crc;
    if header.position != slot.position {
        // The slot's epoch was reclaimed and its space rewritten (a valid CRC says the bytes are a
        // later item, not a tear); either way the slot is out of date: read it again.
        if crc_ok {
            stats.reclaimed += 1;
        } else {
            stats.torn += 1;
        }
        return Ok(Verdict::Retry);
    }
    if header.version != slot.version {
        stats.torn += 1;
        return Ok(Verdict::Retry);
    }
    if !crc_ok {
        stats.checksum_failures += 1;
        return Ok(Verdict::Retry);
    }
    let key_end = ITEM_HEADER_LEN + header.key_len as usize;
    if &item[ITEM_HEADER_LEN..key_end] != key {
        return Ok(Verdict::OtherKey);
    }
    value.clear();
    value.extend_from_slice(&item[key_end..key_end + header.value_len as usize]);
    Ok(Verdict::Hit(header.expire_at_ms))
}
