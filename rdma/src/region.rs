//! The server side of the one-sided GET protocol: a shard's read region, kept in step with every
//! change of the shard's string keys.
//!
//! The shard calls [`ReadRegion::publish`] after every write of a string value,
//! [`ReadRegion::remove`] after every delete, expiry, eviction or type change, and
//! [`ReadRegion::clear`] on a flush. Each publish appends a new item (never rewrites a published
//! one) and then points the key's slot at it, so a client that READs concurrently sees either the
//! old item or the new one, or a torn mix that its version and checksum checks reject.
//!
//! Log space is reclaimed a segment at a time, by epoch (a segment's generation,
//! `position / segment_len`). When the writer enters a new segment it reclaims the oldest epoch
//! still in the log: items there that are still live are copied forward (up to half a segment;
//! the rest are unpublished, so clients fall back to a message GET), and `epoch_oldest` in the
//! header moves on. A reader that READs an item whose space was reused finds a different position
//! in the item's header than its slot promised, and retries from the bucket.

use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use crate::error::{Error, ErrorKind, Result};
use crate::layout::{
    self, key_hash, Layout, Slot, EPOCH_OLDEST_OFFSET, ITEM_HEADER_LEN, NEIGHBOURHOOD_BUCKETS,
    SLOTS_PER_BUCKET, SLOT_LEN,
};
use crate::shm::memory::SharedMemory;

/// A read region's configuration: one struct, named defaults.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RegionConfig {
    /// Buckets in the index (a power of two); 4 slots each, and a key may use its bucket and the
    /// next, so up to about 4 x bucket_count keys are published.
    pub bucket_count: u32,
    /// Bytes of the item log; live items are at most about (segment_count - 2) / segment_count
    /// of it.
    pub log_len: u64,
    /// Segments the log is reclaimed by.
    pub segment_count: u32,
    /// Longest key published; longer keys are served by message GETs.
    pub key_len_max: u32,
    /// Longest value published (the "configured value size").
    pub value_len_max: u32,
}

impl Default for RegionConfig {
    /// 64 Ki buckets (4 MiB index, room for ~250 000 keys), a 64 MiB log in 16 segments, keys up
    /// to 256 bytes and values up to 4 KiB: the sizes of a typical session or feature cache.
    fn default() -> Self {
        Self {
            bucket_count: 1 << 16,
            log_len: 64 << 20,
            segment_count: 16,
            key_len_max: 256,
            value_len_max: 4096,
        }
    }
}

impl RegionConfig {
    /// The layout this configuration gives.
    ///
    /// # Errors
    /// `Config` when a field is outside its bound (see [`Layout::validate`]).
    pub fn layout(&self) -> Result<Layout> {
        if self.segment_count == 0 || self.log_len % u64::from(self.segment_count) != 0 {
            return Err(Error::new(
                ErrorKind::Config,
                format!(
                    "log length {} is not a multiple of the segment count {}",
                    self.log_len, self.segment_count
                ),
            ));
        }
        let layout = Layout {
            bucket_count: self.bucket_count,
            log_len: self.log_len,
            segment_len: self.log_len / u64::from(self.segment_count),
            key_len_max: self.key_len_max,
            value_len_max: self.value_len_max,
        };
        layout.validate()?;
        Ok(layout)
    }
}

/// Why a value was not published (the key is then absent from the region, so clients ask by
/// message and never see an older value).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NotPublished {
    /// The key or value is longer than the configured limit.
    TooLarge,
    /// The key's neighbourhood (8 slots) is full of other keys.
    NeighbourhoodFull,
}

/// Counters a shard reports in INFO.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RegionStats {
    /// Items written by publish.
    pub published: u64,
    /// Publishes refused because the key or value was too large.
    pub refused_too_large: u64,
    /// Publishes refused because the neighbourhood was full.
    pub refused_neighbourhood_full: u64,
    /// Keys removed.
    pub removed: u64,
    /// Epochs reclaimed.
    pub epochs_reclaimed: u64,
    /// Live items copied forward during reclamation.
    pub items_copied_forward: u64,
    /// Live items unpublished during reclamation because the copy budget ran out.
    pub items_dropped: u64,
    /// Keys published now.
    pub keys: u64,
}

/// A shard's read region: the writer side.
#[derive(Debug)]
pub struct ReadRegion {
    memory: Arc<SharedMemory>,
    layout: Layout,
    /// Key to its slot index (bucket * 4 + slot): the writer's private view of the index.
    index: HashMap<Box<[u8]>, u32>,
    /// Next absolute log position to write.
    head: u64,
    /// Next version to assign; versions start at 1 because 0 marks an empty slot.
    version_next: u64,
    scratch: Vec<u8>,
    stats: RegionStats,
}

impl ReadRegion {
    /// Creates a region in a fresh memfd (named `name`) and writes its header.
    ///
    /// # Errors
    /// `Config` when the configuration is out of bounds; `Io` when the memfd cannot be created.
    pub fn create(name: &str, config: RegionConfig) -> Result<Self> {
        let layout = config.layout()?;
        let memory = Arc::new(SharedMemory::create(name, layout.region_len() as usize)?);
        memory.write(0, &layout.encode_header());
        Ok(Self {
            memory,
            layout,
            index: HashMap::new(),
            head: 0,
            version_next: 1,
            scratch: Vec::with_capacity(layout.item_len_max()),
            stats: RegionStats::default(),
        })
    }

    /// The region's memory, to expose through a fabric.
    pub fn memory(&self) -> &Arc<SharedMemory> {
        &self.memory
    }

    /// The region's geometry.
    pub fn layout(&self) -> Layout {
        self.layout
    }

    /// Counters.
    pub fn stats(&self) -> RegionStats {
        RegionStats {
            keys: self.index.len() as u64,
            ..self.stats
        }
    }

    /// Whether `key` is published now.
    pub fn contains(&self, key: &[u8]) -> bool {
        self.index.contains_key(key)
    }

    /// Publishes `key = value`; on return every client READ that starts sees this value (or a
    /// later one). When the value cannot be published, any older item of the key is unpublished
    /// first, so no client can read a stale value one-sided.
    ///
    /// # Errors
    /// `NotPublished` says why the value is not in the region (clients then ask by message).
    pub fn publish(&mut self, key: &[u8], value: &[u8]) -> std::result::Result<(), NotPublished> {
        self.publish_expiring(key, value, None)
    }

    /// [`ReadRegion::publish`] for a value that expires at `expire_at_ms` (Unix milliseconds):
    /// the item carries the time, and a client treats the key as absent from then on, so an
    /// expired value is never read one-sided even before the server's expiry removes it.
    ///
    /// # Errors
    /// As [`ReadRegion::publish`].
    pub fn publish_expiring(
        &mut self,
        key: &[u8],
        value: &[u8],
        expire_at_ms: Option<u64>,
    ) -> std::result::Result<(), NotPublished> {
        if key.is_empty()
            || key.len() > self.layout.key_len_max as usize
            || value.len() > self.layout.value_len_max as usize
        {
            self.remove(key);
            self.stats.refused_too_large += 1;
            return Err(NotPublished::TooLarge);
        }
        if self.version_next > layout::VERSION_MAX {
            // Nine years of publishes at a million a second; start over with an empty region
            // rather than ever reuse a version.
            self.clear();
            self.version_next = 1;
        }
        // Refuse before taking log space: a reservation left unwritten would be a gap that ends
        // reclamation's scan of its segment, leaving the items after it unreclaimed.
        if !self.index.contains_key(key) && self.free_slot(key).is_none() {
            self.stats.refused_neighbourhood_full += 1;
            return Err(NotPublished::NeighbourhoodFull);
        }
        let item_len = layout::item_len(key.len(), value.len());
        let position = self.allocate(item_len);
        // Reclamation inside allocate may have moved or dropped this key's old item; look its
        // slot up only now. Reclamation frees slots and never takes one, so the key still has
        // its slot or a free one.
        let slot_index = match self.index.get(key) {
            Some(&slot_index) => slot_index,
            None => self
                .free_slot(key)
                .expect("a slot was free before allocate, which only frees slots"),
        };
        let version = self.version_next;
        self.version_next += 1;
        self.write_item(position, version, expire_at_ms.unwrap_or(0), key, value);
        let tag = key_hash(key, self.layout.bucket_count).tag;
        self.write_slot(
            slot_index,
            Slot {
                tag,
                position,
                item_len,
                version,
            },
        );
        if !self.index.contains_key(key) {
            self.index.insert(key.into(), slot_index);
        }
        self.stats.published += 1;
        Ok(())
    }

    /// Unpublishes `key` (delete, expiry, eviction, type change); returns whether it was there.
    pub fn remove(&mut self, key: &[u8]) -> bool {
        match self.index.remove(key) {
            Some(slot_index) => {
                self.clear_slot(slot_index);
                self.stats.removed += 1;
                true
            }
            None => false,
        }
    }

    /// Unpublishes every key (FLUSHALL/FLUSHDB). Positions and versions keep counting up, so
    /// nothing a client READ before can ever validate again.
    pub fn clear(&mut self) {
        let slots: Vec<u32> = self.index.values().copied().collect();
        for slot_index in slots {
            self.clear_slot(slot_index);
        }
        self.stats.removed += self.index.len() as u64;
        self.index.clear();
    }

    fn slot_offset(&self, slot_index: u32) -> usize {
        self.layout.bucket_offset(0) as usize + slot_index as usize * SLOT_LEN
    }

    fn write_slot(&self, slot_index: u32, slot: Slot) {
        let offset = self.slot_offset(slot_index);
        let [word0, word1] = slot.encode();
        // Release: the item's bytes, stored before, are visible to any reader that sees either
        // word. A reader that sees one new and one old word gets a (position, version) pair that
        // no item carries, and retries.
        self.memory.store_u64(offset, word0, Ordering::Release);
        self.memory.store_u64(offset + 8, word1, Ordering::Release);
    }

    fn clear_slot(&self, slot_index: u32) {
        let offset = self.slot_offset(slot_index);
        // Version first: a slot with version 0 is empty whatever its other word says.
        self.memory.store_u64(offset + 8, 0, Ordering::Release);
        self.memory.store_u64(offset, 0, Ordering::Release);
    }

    fn read_slot(&self, slot_index: u32) -> Slot {
        let offset = self.slot_offset(slot_index);
        Slot::decode([
            self.memory.load_u64(offset, Ordering::Relaxed),
            self.memory.load_u64(offset + 8, Ordering::Relaxed),
        ])
    }

    /// A free slot in `key`'s neighbourhood, if any.
    fn free_slot(&self, key: &[u8]) -> Option<u32> {
        let first = key_hash(key, self.layout.bucket_count).bucket * SLOTS_PER_BUCKET as u32;
        (first..first + (NEIGHBOURHOOD_BUCKETS * SLOTS_PER_BUCKET) as u32)
            .find(|&slot_index| self.read_slot(slot_index).version == 0)
    }

    fn write_item(
        &mut self,
        position: u64,
        version: u64,
        expire_at_ms: u64,
        key: &[u8],
        value: &[u8],
    ) {
        let mut item = std::mem::take(&mut self.scratch);
        layout::encode_item(position, version, expire_at_ms, key, value, &mut item);
        let offset = self.log_physical(position);
        self.memory.write(offset, &item);
        self.scratch = item;
    }

    fn log_physical(&self, position: u64) -> usize {
        (self.layout.log_offset() + position % self.layout.log_len) as usize
    }

    /// Reserves `item_len` bytes at the log head, entering (and reclaiming for) a new segment
    /// when the current one cannot hold the item.
    fn allocate(&mut self, item_len: usize) -> u64 {
        let segment_len = self.layout.segment_len;
        let used = self.head % segment_len;
        if self.head > 0 && used + item_len as u64 > segment_len {
            self.head += segment_len - used;
        }
        if self.head % segment_len == 0 {
            self.enter_segment();
        }
        assert!(
            self.head % segment_len + item_len as u64 <= segment_len,
            "item fits its segment"
        );
        let position = self.head;
        self.head += item_len as u64;
        position
    }

    /// Called when the head stands at the start of a segment: reclaims the epoch that will be
    /// overwritten next, keeping one segment of slack between the head and the oldest live data.
    fn enter_segment(&mut self) {
        let segment_len = self.layout.segment_len;
        let segment_count = self.layout.log_len / segment_len;
        let epoch = self.head / segment_len;
        // Epoch `epoch - segment_count` occupied this segment and was reclaimed when the head
        // entered the previous one. Reclaim the next one now, so that the segment after this one
        // is free by the time the head reaches it.
        if epoch + 1 >= segment_count {
            let victim = epoch + 1 - segment_count;
            self.reclaim(victim);
            self.memory
                .store_u64(EPOCH_OLDEST_OFFSET, victim + 1, Ordering::Release);
        }
    }

    /// Copies the live items of epoch `victim` forward to the head (up to half a segment) and
    /// unpublishes the rest.
    fn reclaim(&mut self, victim: u64) {
        let segment_len = self.layout.segment_len;
        let budget_end = self.head + segment_len / 2;
        let mut position = victim * segment_len;
        let end = position + segment_len;
        let mut item = vec![0u8; self.layout.item_len_max()];
        while position + ITEM_HEADER_LEN as u64 <= end {
            let offset = self.log_physical(position);
            self.memory
                .read(offset, &mut item[..ITEM_HEADER_LEN])
                .expect("log offsets are in bounds");
            let header = layout::decode_item_header(&item);
            if header.position != position || header.version == 0 {
                break; // end of what was written in this segment
            }
            let len = layout::item_len(header.key_len as usize, header.value_len as usize);
            self.memory
                .read(offset, &mut item[..len])
                .expect("log offsets are in bounds");
            let key = &item[ITEM_HEADER_LEN..ITEM_HEADER_LEN + header.key_len as usize];
            if let Some(&slot_index) = self.index.get(key) {
                let slot = self.read_slot(slot_index);
                if slot.position == position && slot.version == header.version {
                    if self.head + len as u64 <= budget_end {
                        let key = key.to_vec();
                        let value_start = ITEM_HEADER_LEN + key.len();
                        let value =
                            item[value_start..value_start + header.value_len as usize].to_vec();
                        let new_position = self.head;
                        self.head += len as u64;
                        let version = self.version_next;
                        self.version_next += 1;
                        self.write_item(new_position, version, header.expire_at_ms, &key, &value);
                        self.write_slot(
                            slot_index,
                            Slot {
                                version,
                                position: new_position,
                                ..slot
                            },
                        );
                        self.stats.items_copied_forward += 1;
                    } else {
                        let key = key.to_vec();
                        self.index.remove(key.as_slice());
                        self.clear_slot(slot_index);
                        self.stats.items_dropped += 1;
                    }
                }
            }
            position += len as u64;
        }
        self.stats.epochs_reclaimed += 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn small() -> RegionConfig {
        RegionConfig {
            bucket_count: 64,
            log_len: 64 * 1024,
            segment_count: 8,
            key_len_max: 64,
            value_len_max: 1024,
        }
    }

    #[test]
    fn publish_remove_clear_keep_the_index_in_step() {
        let mut region = ReadRegion::create("t", small()).unwrap();
        region.publish(b"a", b"1").unwrap();
        region.publish(b"a", b"2").unwrap();
        region.publish(b"b", b"3").unwrap();
        assert_eq!(region.stats().keys, 2);
        assert!(region.remove(b"a"));
        assert!(!region.remove(b"a"));
        region.clear();
        assert_eq!(region.stats().keys, 0);
    }

    #[test]
    fn oversized_values_unpublish_the_old_one() {
        let mut region = ReadRegion::create("t", small()).unwrap();
        region.publish(b"k", b"small").unwrap();
        assert_eq!(
            region.publish(b"k", &[0u8; 2000]),
            Err(NotPublished::TooLarge)
        );
        assert!(!region.contains(b"k"));
        assert_eq!(
            region.publish(&[b'k'; 65], b"v"),
            Err(NotPublished::TooLarge)
        );
        assert_eq!(region.publish(b"", b"v"), Err(NotPublished::TooLarge));
    }

    #[test]
    fn neighbourhood_full_is_reported_not_hidden() {
        let mut region = ReadRegion::create(
            "t",
            RegionConfig {
                bucket_count: 1,
                ..small()
            },
        )
        .unwrap();
        // One bucket plus its spare neighbour: eight slots in all.
        for i in 0..8 {
            region.publish(format!("k{i}").as_bytes(), b"v").unwrap();
        }
        assert_eq!(
            region.publish(b"k8", b"v"),
            Err(NotPublished::NeighbourhoodFull)
        );
        assert!(region.remove(b"k3"));
        region.publish(b"k8", b"v").unwrap();
    }

    /// READs from the region's own memory, as a client's READ would.
    struct LocalMemory<'a> {
        memory: &'a SharedMemory,
        buffer: Vec<u8>,
    }

    impl crate::reader::RemoteMemory for LocalMemory<'_> {
        fn read(&mut self, _region: u32, offset: u64, len: usize) -> Result<&[u8]> {
            self.buffer.resize(len, 0);
            self.memory.read(offset as usize, &mut self.buffer)?;
            Ok(&self.buffer)
        }
    }

    #[test]
    fn refused_publishes_leave_no_gap_that_hides_later_items_from_reclamation() {
        // Found by the rdma_reader fuzz target: a publish refused for a full neighbourhood had
        // already reserved log space and left it unwritten; reclamation's scan of that segment
        // stopped at the gap, so the items after it were neither copied forward nor unpublished,
        // and their slots went on naming space the log reused (every READ torn, for good).
        let mut region = ReadRegion::create(
            "t",
            RegionConfig {
                bucket_count: 1,
                log_len: 4096,
                segment_count: 4,
                key_len_max: 16,
                value_len_max: 64,
            },
        )
        .unwrap();
        // Eight slots in all: seven churning keys and one written once, right after a refusal.
        let mut last = std::collections::HashMap::new();
        for i in 0..7 {
            region.publish(format!("k{i}").as_bytes(), b"v").unwrap();
        }
        region.publish(b"stays", b"old").unwrap();
        let refused = region.publish(b"extra", b"v");
        assert_eq!(refused, Err(NotPublished::NeighbourhoodFull));
        region.publish(b"stays", b"new").unwrap();
        last.insert("stays".to_string(), b"new".to_vec());
        for round in 0..400u32 {
            let key = format!("k{}", round % 7);
            let value = round.to_le_bytes().repeat(1 + round as usize % 8);
            region.publish(key.as_bytes(), &value).unwrap();
            last.insert(key, value);
        }
        assert!(region.stats().epochs_reclaimed > 10);
        let layout = region.layout();
        let mut memory = LocalMemory {
            memory: region.memory(),
            buffer: Vec::new(),
        };
        let mut stats = crate::reader::ReaderStats::default();
        for (key, expected) in &last {
            if !region.contains(key.as_bytes()) {
                continue; // dropped under log pressure: clients ask by message
            }
            let mut value = Vec::new();
            let found = crate::reader::lookup(
                &mut memory,
                0,
                &layout,
                key.as_bytes(),
                0,
                &mut value,
                &mut stats,
            )
            .unwrap();
            assert_eq!(found, crate::reader::Lookup::Hit, "{key}: {stats:?}");
            assert_eq!(&value, expected, "{key}");
        }
    }

    #[test]
    fn log_wraps_and_reclaims_with_live_keys_copied_forward() {
        let mut region = ReadRegion::create("t", small()).unwrap();
        region.publish(b"stays", b"forever").unwrap();
        for round in 0..10_000u32 {
            let key = format!("churn{}", round % 16);
            region.publish(key.as_bytes(), &[round as u8; 200]).unwrap();
        }
        let stats = region.stats();
        assert!(stats.epochs_reclaimed > 20, "{stats:?}");
        assert!(stats.items_copied_forward > 0, "{stats:?}");
        assert!(region.contains(b"stays"), "{stats:?}");
    }
}
