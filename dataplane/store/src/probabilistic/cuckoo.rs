//! A cuckoo filter as RedisBloom builds one (`CF.*`): buckets of one-byte fingerprints, two
//! candidate buckets per item, evictions ("kicks") up to `max_iterations`, and, when a filter
//! is full, a new sub-filter `expansion` times larger (none when `expansion` is 0). Unlike a
//! Bloom filter it counts and deletes.

use super::{murmur_hash64a, ModuleField};

/// Most bytes of buckets one filter may hold (every sub-filter together): 1 GiB. A growth
/// past it answers [`CuckooInsert::MemoryLimit`], as RedisBloom answers a failed allocation.
pub const CUCKOO_BYTES_MAX: u64 = 1 << 30;

/// The empty slot (fingerprints are 1..=255).
const EMPTY: u8 = 0;

/// Multiplier of the alternate bucket (RedisBloom's): `h2 = h1 ^ (fingerprint * M)`.
const ALT_HASH_MULTIPLIER: u64 = 0x5bd1_e995;

/// What an insertion did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CuckooInsert {
    /// The fingerprint was stored.
    Inserted,
    /// (Unique insertion only) the item was already there.
    Exists,
    /// No room and no growth (expansion 0).
    NoSpace,
    /// Growing would pass [`CUCKOO_BYTES_MAX`].
    MemoryLimit,
}

#[derive(Debug, Clone, PartialEq)]
struct SubFilter {
    bucket_count: u64,
    slots: Vec<u8>,
}

/// An item's lookup: its fingerprint and its two bucket hashes.
#[derive(Debug, Clone, Copy)]
struct Lookup {
    fingerprint: u8,
    first: u64,
    second: u64,
}

impl Lookup {
    fn of(item: &[u8]) -> Self {
        let hash = murmur_hash64a(item, 0);
        let fingerprint = (hash % 255 + 1) as u8;
        Self {
            fingerprint,
            first: hash,
            second: alternate(fingerprint, hash),
        }
    }
}

/// The other bucket of `fingerprint` in bucket (hash) `index`. With a power-of-two bucket
/// count this is an involution modulo the count, so a kicked fingerprint finds its way back.
fn alternate(fingerprint: u8, index: u64) -> u64 {
    index ^ u64::from(fingerprint).wrapping_mul(ALT_HASH_MULTIPLIER)
}

impl SubFilter {
    fn bucket(&self, hash: u64, bucket_size: usize) -> std::ops::Range<usize> {
        let start = (hash % self.bucket_count) as usize * bucket_size;
        start..start + bucket_size
    }

    fn count(&self, lookup: &Lookup, bucket_size: usize) -> u64 {
        [lookup.first, lookup.second]
            .iter()
            .map(|&hash| {
                self.slots[self.bucket(hash, bucket_size)]
                    .iter()
                    .filter(|&&slot| slot == lookup.fingerprint)
                    .count() as u64
            })
            .sum()
    }

    fn contains(&self, lookup: &Lookup, bucket_size: usize) -> bool {
        [lookup.first, lookup.second]
            .iter()
            .any(|&hash| self.slots[self.bucket(hash, bucket_size)].contains(&lookup.fingerprint))
    }

    /// Stores the fingerprint in a free slot of either bucket.
    fn put(&mut self, lookup: &Lookup, bucket_size: usize) -> bool {
        for hash in [lookup.first, lookup.second] {
            let range = self.bucket(hash, bucket_size);
            if let Some(slot) = self.slots[range].iter_mut().find(|slot| **slot == EMPTY) {
                *slot = lookup.fingerprint;
                return true;
            }
        }
        false
    }

    fn remove(&mut self, lookup: &Lookup, bucket_size: usize) -> bool {
        for hash in [lookup.first, lookup.second] {
            let range = self.bucket(hash, bucket_size);
            if let Some(slot) = self.slots[range]
                .iter_mut()
                .find(|slot| **slot == lookup.fingerprint)
            {
                *slot = EMPTY;
                return true;
            }
        }
        false
    }

    /// Cuckoo insertion: kick a resident fingerprint to its other bucket, up to
    /// `max_iterations` times; on failure every kick is undone, so nothing is lost.
    fn kick_insert(&mut self, lookup: &Lookup, bucket_size: usize, max_iterations: u16) -> bool {
        let mut fingerprint = lookup.fingerprint;
        let mut index = lookup.first % self.bucket_count;
        let mut victim = 0;
        for _ in 0..max_iterations {
            let slot = index as usize * bucket_size + victim;
            std::mem::swap(&mut self.slots[slot], &mut fingerprint);
            index = alternate(fingerprint, index) % self.bucket_count;
            let range = self.bucket(index, bucket_size);
            if let Some(slot) = self.slots[range].iter_mut().find(|slot| **slot == EMPTY) {
                *slot = fingerprint;
                return true;
            }
            victim = (victim + 1) % bucket_size;
        }
        // Walk the same path back, swapping each fingerprint home.
        for _ in 0..max_iterations {
            victim = (victim + bucket_size - 1) % bucket_size;
            index = alternate(fingerprint, index) % self.bucket_count;
            let slot = index as usize * bucket_size + victim;
            std::mem::swap(&mut self.slots[slot], &mut fingerprint);
        }
        false
    }
}

/// A scalable cuckoo filter.
#[derive(Debug, Clone, PartialEq)]
pub struct CuckooFilter {
    filters: Vec<SubFilter>,
    /// Buckets of the first sub-filter (a power of two).
    bucket_count: u64,
    bucket_size: u8,
    max_iterations: u16,
    /// Growth factor, rounded up to a power of two (0: never grows).
    expansion: u64,
    items: u64,
    deletes: u64,
    bytes: u64,
}

impl CuckooFilter {
    /// A filter for `capacity` items in buckets of `bucket_size` fingerprints; `None` when
    /// the first sub-filter would pass [`CUCKOO_BYTES_MAX`].
    pub fn new(
        capacity: u64,
        bucket_size: u8,
        max_iterations: u16,
        expansion: u16,
    ) -> Option<Self> {
        assert!(
            bucket_size >= 1 && max_iterations >= 1,
            "checked where they enter"
        );
        let bucket_count = (capacity / u64::from(bucket_size))
            .max(1)
            .checked_next_power_of_two()?;
        let expansion = match expansion {
            0 => 0,
            expansion => u64::from(expansion).next_power_of_two(),
        };
        let mut filter = Self {
            filters: Vec::new(),
            bucket_count,
            bucket_size,
            max_iterations,
            expansion,
            items: 0,
            deletes: 0,
            bytes: 0,
        };
        filter.grow().then_some(filter)
    }

    /// Adds a sub-filter of `bucket_count * expansion^filters` buckets, within the bound.
    fn grow(&mut self) -> bool {
        let growth = u32::try_from(self.filters.len())
            .ok()
            .and_then(|power| self.expansion.max(1).checked_pow(power));
        let Some(bucket_count) = growth.and_then(|growth| growth.checked_mul(self.bucket_count))
        else {
            return false;
        };
        let Some(bytes) = bucket_count.checked_mul(u64::from(self.bucket_size)) else {
            return false;
        };
        if self.bytes + bytes > CUCKOO_BYTES_MAX {
            return false;
        }
        self.filters.push(SubFilter {
            bucket_count,
            slots: vec![EMPTY; bytes as usize],
        });
        self.bytes += bytes;
        true
    }

    /// Adds `item` (again, if it is there: a cuckoo filter counts).
    pub fn insert(&mut self, item: &[u8]) -> CuckooInsert {
        self.insert_lookup(&Lookup::of(item))
    }

    /// Adds `item` unless it may already be there.
    pub fn insert_unique(&mut self, item: &[u8]) -> CuckooInsert {
        let lookup = Lookup::of(item);
        if self.contains_lookup(&lookup) {
            return CuckooInsert::Exists;
        }
        self.insert_lookup(&lookup)
    }

    fn insert_lookup(&mut self, lookup: &Lookup) -> CuckooInsert {
        let bucket_size = usize::from(self.bucket_size);
        loop {
            if self
                .filters
                .iter_mut()
                .rev()
                .any(|filter| filter.put(lookup, bucket_size))
            {
                self.items += 1;
                return CuckooInsert::Inserted;
            }
            let newest = self.filters.last_mut().expect("a filter has a sub-filter");
            if newest.kick_insert(lookup, bucket_size, self.max_iterations) {
                self.items += 1;
                return CuckooInsert::Inserted;
            }
            if self.expansion == 0 {
                return CuckooInsert::NoSpace;
            }
            if !self.grow() {
                return CuckooInsert::MemoryLimit;
            }
        }
    }

    fn contains_lookup(&self, lookup: &Lookup) -> bool {
        let bucket_size = usize::from(self.bucket_size);
        self.filters
            .iter()
            .any(|filter| filter.contains(lookup, bucket_size))
    }

    /// Whether `item` may be there.
    pub fn contains(&self, item: &[u8]) -> bool {
        self.contains_lookup(&Lookup::of(item))
    }

    /// How many times `item`'s fingerprint is stored in its buckets (CF.COUNT).
    pub fn count(&self, item: &[u8]) -> u64 {
        let lookup = Lookup::of(item);
        let bucket_size = usize::from(self.bucket_size);
        self.filters
            .iter()
            .map(|filter| filter.count(&lookup, bucket_size))
            .sum()
    }

    /// Removes one copy of `item`'s fingerprint, newest sub-filter first; false when absent.
    pub fn delete(&mut self, item: &[u8]) -> bool {
        let lookup = Lookup::of(item);
        let bucket_size = usize::from(self.bucket_size);
        let removed = self
            .filters
            .iter_mut()
            .rev()
            .any(|filter| filter.remove(&lookup, bucket_size));
        if removed {
            self.items -= 1;
            self.deletes += 1;
        }
        removed
    }

    /// Sub-filters (CF.INFO "Number of filters").
    pub fn filter_count(&self) -> usize {
        self.filters.len()
    }

    /// Buckets of the first sub-filter (CF.INFO "Number of buckets").
    pub fn bucket_count(&self) -> u64 {
        self.bucket_count
    }

    /// Fingerprints per bucket.
    pub fn bucket_size(&self) -> u8 {
        self.bucket_size
    }

    /// Kicks before giving up on a sub-filter.
    pub fn max_iterations(&self) -> u16 {
        self.max_iterations
    }

    /// Growth factor (a power of two, or 0).
    pub fn expansion(&self) -> u64 {
        self.expansion
    }

    /// Items stored.
    pub fn items(&self) -> u64 {
        self.items
    }

    /// Items deleted.
    pub fn deletes(&self) -> u64 {
        self.deletes
    }

    /// CF.INFO's `Size` as RedisBloom computes it (`CFMemUsage`): its filter header (40
    /// bytes) and one sub-filter record (16 bytes) per sub-filter, plus the buckets.
    pub fn info_size(&self) -> u64 {
        40 + 16 * self.filters.len() as u64 + self.bytes
    }

    /// Bytes used (MEMORY USAGE, eviction).
    pub fn memory_bytes(&self) -> usize {
        std::mem::size_of::<Self>()
            + self.filters.len() * std::mem::size_of::<SubFilter>()
            + self.bytes as usize
    }
}

/// RedisBloom's `CFHeader` (packed, little-endian): items, buckets, deletes, filters (u64
/// each), bucket size, max iterations, expansion (u16 each).
pub const CUCKOO_DUMP_HEADER_LEN: usize = 38;

/// Most sub-filters a loaded header may name (RedisBloom's `cf-max-expansions` maximum), so
/// a forged header cannot make the load allocate millions of tiny sub-filters.
const DUMP_FILTERS_MAX: u64 = 65535;

impl CuckooFilter {
    /// The header CF.SCANDUMP answers first, in RedisBloom's `CFHeader` layout.
    pub fn dump_header(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(CUCKOO_DUMP_HEADER_LEN);
        out.extend_from_slice(&self.items.to_le_bytes());
        out.extend_from_slice(&self.bucket_count.to_le_bytes());
        out.extend_from_slice(&self.deletes.to_le_bytes());
        out.extend_from_slice(&(self.filters.len() as u64).to_le_bytes());
        out.extend_from_slice(&u16::from(self.bucket_size).to_le_bytes());
        out.extend_from_slice(&self.max_iterations.to_le_bytes());
        let expansion = u16::try_from(self.expansion).unwrap_or(u16::MAX);
        out.extend_from_slice(&expansion.to_le_bytes());
        out
    }

    /// The sub-filter holding byte `offset` of the concatenated buckets, and the offset in it.
    fn filter_at(&self, mut offset: u64) -> Option<(usize, usize)> {
        for (index, filter) in self.filters.iter().enumerate() {
            let bytes = filter.slots.len() as u64;
            if offset < bytes {
                return Some((index, offset as usize));
            }
            offset -= bytes;
        }
        None
    }

    /// CF.SCANDUMP's data step: the bucket bytes from position `pos` (1 = the first byte),
    /// at most `max_len`, never across a sub-filter's end, with the next position; `None`
    /// past the end.
    pub fn dump_chunk(&self, pos: i64, max_len: usize) -> Option<(i64, Vec<u8>)> {
        let offset = u64::try_from(pos.checked_sub(1)?).ok()?;
        let (index, offset) = self.filter_at(offset)?;
        let slots = &self.filters[index].slots;
        let len = (slots.len() - offset).min(max_len);
        Some((pos + len as i64, slots[offset..offset + len].to_vec()))
    }

    /// A filter, every bucket empty, from a header CF.SCANDUMP gave (CF.LOADCHUNK with
    /// position 1); `None` for a header that does not describe a filter this type can hold
    /// (bucket count a power of two, bucket size 1..=255, expansion 0 or a power of two,
    /// one sub-filter without expansion, within [`CUCKOO_BYTES_MAX`]).
    pub fn from_dump_header(buf: &[u8]) -> Option<Self> {
        let buf: &[u8; CUCKOO_DUMP_HEADER_LEN] = buf.try_into().ok()?;
        let u64_at = |at: usize| u64::from_le_bytes(buf[at..at + 8].try_into().expect("8 bytes"));
        let u16_at = |at: usize| u16::from_le_bytes(buf[at..at + 2].try_into().expect("2 bytes"));
        let (items, bucket_count, deletes, filters) =
            (u64_at(0), u64_at(8), u64_at(16), u64_at(24));
        let (bucket_size, max_iterations, expansion) = (u16_at(32), u16_at(34), u16_at(36));
        let bucket_size = u8::try_from(bucket_size).ok().filter(|size| *size >= 1)?;
        if !bucket_count.is_power_of_two()
            || max_iterations == 0
            || filters == 0
            || filters > DUMP_FILTERS_MAX
            || (expansion == 0 && filters > 1)
            || (expansion != 0 && !expansion.is_power_of_two())
        {
            return None;
        }
        let mut filter = Self {
            filters: Vec::new(),
            bucket_count,
            bucket_size,
            max_iterations,
            expansion: u64::from(expansion),
            items,
            deletes,
            bytes: 0,
        };
        for _ in 0..filters {
            if !filter.grow() {
                return None;
            }
        }
        Some(filter)
    }

    /// The value as RedisBloom's `CFRdbSave` writes it (encoding version 4): sub-filters,
    /// buckets, items, deletes, bucket size, max iterations, expansion, then per sub-filter its
    /// bucket count and buckets.
    pub fn rdb_fields(&self) -> Vec<ModuleField> {
        let mut fields = vec![
            ModuleField::Unsigned(self.filters.len() as u64),
            ModuleField::Unsigned(self.bucket_count),
            ModuleField::Unsigned(self.items),
            ModuleField::Unsigned(self.deletes),
            ModuleField::Unsigned(u64::from(self.bucket_size)),
            ModuleField::Unsigned(u64::from(self.max_iterations)),
            ModuleField::Unsigned(self.expansion),
        ];
        for filter in &self.filters {
            fields.push(ModuleField::Unsigned(filter.bucket_count));
            fields.push(ModuleField::Buffer(filter.slots.clone()));
        }
        fields
    }

    /// A filter from [`CuckooFilter::rdb_fields`]' stream; `None` when it does not describe
    /// one (checked as CF.LOADCHUNK checks a header, and each sub-filter's size).
    pub fn from_rdb_fields(fields: &[ModuleField]) -> Option<Self> {
        let unsigned = |index: usize| match fields.get(index) {
            Some(ModuleField::Unsigned(value)) => Some(*value),
            _ => None,
        };
        let filters = unsigned(0)?;
        if filters.checked_mul(2).and_then(|n| n.checked_add(7)) != Some(fields.len() as u64) {
            return None;
        }
        let mut header = Vec::with_capacity(CUCKOO_DUMP_HEADER_LEN);
        for index in [2, 1, 3, 0] {
            header.extend_from_slice(&unsigned(index)?.to_le_bytes());
        }
        for index in [4, 5, 6] {
            header.extend_from_slice(&u16::try_from(unsigned(index)?).ok()?.to_le_bytes());
        }
        let mut filter = Self::from_dump_header(&header)?;
        let mut pos = 1i64;
        for (index, sub) in (0..filters as usize).enumerate() {
            let Some(ModuleField::Buffer(slots)) = fields.get(8 + 2 * sub) else {
                return None;
            };
            let expected = &filter.filters[index];
            if unsigned(7 + 2 * sub)? != expected.bucket_count
                || slots.len() != expected.slots.len()
            {
                return None;
            }
            pos += slots.len() as i64;
            if !filter.load_chunk(pos, slots) {
                return None;
            }
        }
        Some(filter)
    }

    /// CF.LOADCHUNK's data step: `data` as CF.SCANDUMP gave it with position `pos` (the
    /// position after the chunk). False, changing nothing, when it does not fit a sub-filter.
    pub fn load_chunk(&mut self, pos: i64, data: &[u8]) -> bool {
        let Ok(len) = u64::try_from(data.len()) else {
            return false;
        };
        let Some(end) = pos.checked_sub(1).and_then(|end| u64::try_from(end).ok()) else {
            return false;
        };
        if len == 0 || end < len {
            return false;
        }
        let Some((index, offset)) = self.filter_at(end - len) else {
            return false;
        };
        let slots = &mut self.filters[index].slots;
        if data.len() > slots.len() - offset {
            return false;
        }
        slots[offset..offset + data.len()].copy_from_slice(data);
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn insert_count_delete() {
        let mut filter = CuckooFilter::new(1000, 2, 20, 1).unwrap();
        assert_eq!((filter.bucket_count(), filter.filter_count()), (512, 1));
        assert_eq!(filter.insert(b"a"), CuckooInsert::Inserted);
        assert_eq!(filter.insert(b"a"), CuckooInsert::Inserted);
        assert_eq!(filter.insert_unique(b"a"), CuckooInsert::Exists);
        assert_eq!(filter.count(b"a"), 2);
        assert!(filter.delete(b"a"));
        assert_eq!(
            (filter.count(b"a"), filter.items(), filter.deletes()),
            (1, 1, 1)
        );
        assert!(filter.delete(b"a"));
        assert!(!filter.delete(b"a"));
        assert!(!filter.contains(b"a"));
    }

    #[test]
    fn grows_when_full_and_keeps_every_item() {
        let mut filter = CuckooFilter::new(8, 2, 20, 1).unwrap();
        for index in 0..200u32 {
            assert_eq!(filter.insert(&index.to_le_bytes()), CuckooInsert::Inserted);
        }
        assert!(filter.filter_count() > 1);
        for index in 0..200u32 {
            assert!(filter.contains(&index.to_le_bytes()), "{index}");
        }
    }

    #[test]
    fn without_expansion_it_fills() {
        let mut filter = CuckooFilter::new(4, 2, 5, 0).unwrap();
        let outcomes: Vec<_> = (0..50u32)
            .map(|index| filter.insert(&index.to_le_bytes()))
            .collect();
        assert!(outcomes.contains(&CuckooInsert::NoSpace));
        assert_eq!(filter.filter_count(), 1);
        assert!(filter.items() <= 4);
    }

    #[test]
    fn dump_and_load_give_the_same_filter() {
        let mut filter = CuckooFilter::new(16, 2, 20, 2).unwrap();
        for index in 0..100u32 {
            filter.insert(&index.to_le_bytes());
        }
        filter.delete(&7u32.to_le_bytes());
        assert!(filter.filter_count() > 1);
        let header = filter.dump_header();
        assert_eq!(header.len(), CUCKOO_DUMP_HEADER_LEN);
        for max_len in [1, 5, 1 << 24] {
            let mut copy = CuckooFilter::from_dump_header(&header).unwrap();
            let mut pos = 1;
            while let Some((next, data)) = filter.dump_chunk(pos, max_len) {
                assert!(copy.load_chunk(next, &data));
                pos = next;
            }
            assert_eq!(copy, filter);
        }
        let mut copy = CuckooFilter::from_dump_header(&header).unwrap();
        assert!(!copy.load_chunk(1, b"a"));
        assert!(!copy.load_chunk(2, b""));
        assert!(!copy.load_chunk(0, b"a"));
        assert!(!copy.load_chunk(1 << 40, b"a"));
        assert_eq!(filter.dump_chunk(0, 10), None);
        let mut bad = header.clone();
        bad[8] = 3; // 3 buckets: not a power of two
        assert_eq!(CuckooFilter::from_dump_header(&bad), None);
        assert_eq!(CuckooFilter::from_dump_header(&header[1..]), None);
    }

    #[test]
    fn rdb_fields_round_trip() {
        let mut filter = CuckooFilter::new(16, 2, 20, 2).unwrap();
        for index in 0..100u32 {
            filter.insert(&index.to_le_bytes());
        }
        let fields = filter.rdb_fields();
        assert_eq!(CuckooFilter::from_rdb_fields(&fields), Some(filter));
        let mut wrong = fields.clone();
        wrong[7] = ModuleField::Unsigned(3);
        assert_eq!(CuckooFilter::from_rdb_fields(&wrong), None);
        assert_eq!(
            CuckooFilter::from_rdb_fields(&fields[..fields.len() - 1]),
            None
        );
        // A sub-filter count whose field count overflows is bad data, not a panic.
        let mut huge = fields.clone();
        huge[0] = ModuleField::Unsigned(u64::MAX);
        assert_eq!(CuckooFilter::from_rdb_fields(&huge), None);
    }
}
