//! A packed block of stream entries (Redis's listpack per radix-tree node): the IDs in order,
//! and each entry's fields and values back to back as length-prefixed bytes, field names left
//! out when they repeat the block's first entry's.
//!
//! An entry starts with its ID as a difference from the entry before it (the block's master ID
//! for the first): one byte holds two flags (the sequence repeats the previous entry's; the
//! field names repeat the master entry's) and the low five bits of the millisecond difference,
//! with the rest of the difference in a varint after it when it does not fit. An appended
//! stream (auto IDs, or explicit ones a millisecond apart) then spends one byte on an ID, where
//! a difference from the master ID and a whole sequence take two or three, and a stream of
//! 12-byte values fills a block of 100 entries in 1,400 bytes: jemalloc's 1,536-byte class,
//! not its 1,792 one.
//!
//! The block also keeps the size Redis's listpack would have for the same entries (its master
//! entry, each entry's flags, ID deltas, field names unless they repeat the master's, values
//! and back-count), because Redis starts a new node when that size would pass
//! `stream-node-max-bytes`, and approximate trimming removes whole nodes only.

use super::StreamId;
use crate::list::redis_size::{entry_bytes, integer_entry_bytes};
use crate::varint;

/// Listpack header (total bytes, element count) and end marker.
const LISTPACK_EMPTY_BYTES: usize = 7;
/// An entry's flags when its fields repeat the master entry's.
const FLAG_SAME_FIELDS: i64 = 2;

/// Bytes a listpack integer takes.
fn integer_bytes(value: i64) -> usize {
    integer_entry_bytes(value)
}

#[derive(Clone, Default)]
pub(super) struct Block {
    /// The block's key: the first ID it took (Redis's master ID). The first entry's ID is
    /// stored as a difference from it.
    master_id: StreamId,
    /// For each live entry: its ID's difference from the previous entry's, then its items as
    /// length and bytes (see [`read_entry`]).
    pub(super) data: Vec<u8>,
    /// The last ID appended, deleted or not: Redis reads a node's last ID from its listpack,
    /// where deleted entries stay, so approximate MINID trimming keeps a node whose deleted
    /// tail is at or above the limit.
    pub(super) last_appended: StreamId,
    /// The field names of the block's first entry (Redis's master entry).
    master_fields: Box<[Box<[u8]>]>,
    /// Live entries.
    count: u32,
    /// Entries deleted from this block since it was created; Redis counts them towards a
    /// node's fill (`stream-node-max-entries`), so the boundaries fall where Redis's do.
    deleted: u32,
    /// Redis's listpack bytes for the entries (deleted ones included), master entry aside:
    /// below `stream-node-max-bytes`'s ceiling of 1 GB (the tail takes an entry only while
    /// it stays below), so 32 bits hold it. The narrow counts keep a block at 88 bytes, so
    /// the B-tree's leaf of 11 blocks lands in jemalloc's 1,280-byte class.
    entries_bytes: u32,
}

/// Flag of an entry's first byte: its sequence is the previous entry's (not stored).
const SAME_SEQ: u8 = 1;
/// Flag of an entry's first byte: its field names are the master entry's (only values stored,
/// as Redis's SAMEFIELDS flag does).
const SAME_FIELDS: u8 = 2;
/// Bits of the millisecond difference in an entry's first byte, above the two flags.
const FIRST_BYTE_MS_BITS: u32 = 5;
/// Set in an entry's first byte when the rest of the millisecond difference follows.
const MS_CONTINUES: u8 = 0x80;

/// Appends an entry: `id` after `previous`, and its `item_count` items (names and values
/// alternating), of which only the values when `same_fields`.
fn write_entry<'a>(
    out: &mut Vec<u8>,
    (previous, id): (StreamId, StreamId),
    same_fields: bool,
    item_count: usize,
    items: impl Iterator<Item = &'a [u8]>,
) {
    debug_assert!(previous.ms <= id.ms, "IDs grow");
    let ms_delta = id.ms - previous.ms;
    let same_seq = id.seq == previous.seq;
    let low = (ms_delta & ((1 << FIRST_BYTE_MS_BITS) - 1)) as u8;
    let rest = ms_delta >> FIRST_BYTE_MS_BITS;
    let mut first = low << 2 | if same_seq { SAME_SEQ } else { 0 };
    first |= if same_fields { SAME_FIELDS } else { 0 };
    out.push(first | if rest != 0 { MS_CONTINUES } else { 0 });
    if rest != 0 {
        varint::push(out, rest);
    }
    if !same_seq {
        varint::push(out, id.seq);
    }
    if !same_fields {
        varint::push(out, item_count as u64);
    }
    for item in items {
        varint::push(out, item.len() as u64);
        out.extend_from_slice(item);
    }
}

/// Reads the entry at `at` (whose predecessor's ID is `*previous`), moving `at` past it and
/// `*previous` to its ID: its ID, its fields and values alternating, and whether its names
/// are the master's.
fn read_entry<'a>(
    data: &'a [u8],
    master_fields: &'a [Box<[u8]>],
    previous: &mut StreamId,
    at: &mut usize,
) -> (StreamId, Vec<&'a [u8]>, bool) {
    let first = data[*at];
    *at += 1;
    let mut ms_delta = u64::from(first >> 2 & ((1 << FIRST_BYTE_MS_BITS) - 1));
    if first & MS_CONTINUES != 0 {
        ms_delta |= varint::read(data, at) << FIRST_BYTE_MS_BITS;
    }
    let seq = if first & SAME_SEQ != 0 {
        previous.seq
    } else {
        varint::read(data, at)
    };
    let id = StreamId::new(previous.ms + ms_delta, seq);
    *previous = id;
    let same_fields = first & SAME_FIELDS != 0;
    let count = if same_fields {
        master_fields.len()
    } else {
        varint::read(data, at) as usize
    };
    let mut read_item = || {
        let len = varint::read(data, at) as usize;
        let item = &data[*at..*at + len];
        *at += len;
        item
    };
    let items = if same_fields {
        master_fields
            .iter()
            .flat_map(|name| [&name[..], read_item()])
            .collect()
    } else {
        (0..count).map(|_| read_item()).collect()
    };
    (id, items, same_fields)
}

impl Block {
    /// The size of Redis's listpack for this block.
    pub(super) fn listpack_bytes(&self) -> usize {
        LISTPACK_EMPTY_BYTES
            + integer_bytes(i64::from(self.count))
            + integer_bytes(i64::from(self.deleted))
            + integer_bytes(self.master_fields.len() as i64)
            + self
                .master_fields
                .iter()
                .map(|f| entry_bytes(f))
                .sum::<usize>()
            + integer_bytes(0)
            + self.entries_bytes as usize
    }

    /// Appends an entry (its ID above every ID in the block, `master_id` the block's key).
    pub(super) fn push(&mut self, id: StreamId, master_id: StreamId, fields: &[&[u8]]) {
        debug_assert!(self.last_appended < id || self.fill() == 0);
        // The field names are the even items; no vector of them is built for the comparison.
        let names = || fields.iter().step_by(2);
        let field_count = fields.len().div_ceil(2);
        let previous = if self.fill() == 0 {
            self.master_id = master_id;
            self.master_fields = names().map(|name| Box::<[u8]>::from(*name)).collect();
            master_id
        } else {
            self.last_live().unwrap_or(master_id)
        };
        let same_fields = field_count == self.master_fields.len()
            && names()
                .zip(self.master_fields.iter())
                .all(|(a, b)| *a == &b[..]);
        let field_count = field_count as i64;
        let mut bytes = integer_bytes(if same_fields { FLAG_SAME_FIELDS } else { 0 })
            + integer_bytes(id.ms.wrapping_sub(master_id.ms) as i64)
            + integer_bytes(id.seq.wrapping_sub(master_id.seq) as i64);
        let mut pieces = field_count + 3;
        if !same_fields {
            bytes += integer_bytes(field_count);
            pieces += field_count + 1;
        }
        for (at, item) in fields.iter().enumerate() {
            if at % 2 == 1 || !same_fields {
                bytes += entry_bytes(item);
            }
        }
        let bytes = u32::try_from(bytes + integer_bytes(pieces)).expect("an entry under 4 GB");
        self.entries_bytes = self
            .entries_bytes
            .checked_add(bytes)
            .expect("a block stays under stream-node-max-bytes' ceiling of 1 GB");
        self.count += 1;
        self.last_appended = id;
        let items = fields
            .iter()
            .enumerate()
            .filter(|(at, _)| at % 2 == 1 || !same_fields)
            .map(|(_, item)| *item);
        write_entry(
            &mut self.data,
            (previous, id),
            same_fields,
            fields.len(),
            items,
        );
    }

    /// The last live entry's ID: what the next entry's ID is stored against (the last
    /// appended one may be deleted).
    fn last_live(&self) -> Option<StreamId> {
        // With nothing deleted, the last appended entry is live and no walk is needed; XDEL in
        // the tail block makes the next appends walk it (at most `stream-node-max-entries`).
        if self.deleted == 0 {
            return Some(self.last_appended);
        }
        self.entries().last().map(|(id, _)| id)
    }

    /// Gives back the spare capacity of a block that takes no more entries.
    pub(super) fn seal(&mut self) {
        self.data.shrink_to_fit();
    }

    /// Entries held and deleted, the count Redis compares with `stream-node-max-entries`.
    pub(super) fn fill(&self) -> usize {
        (self.count + self.deleted) as usize
    }

    /// Live entries.
    pub(super) fn len(&self) -> usize {
        self.count as usize
    }

    /// True when every entry was deleted.
    pub(super) fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// The live entries, in ID order.
    pub(super) fn entries(&self) -> impl Iterator<Item = (StreamId, Vec<&[u8]>)> + '_ {
        let mut at = 0;
        let mut previous = self.master_id;
        std::iter::from_fn(move || {
            (at < self.data.len()).then(|| {
                let (id, items, _) =
                    read_entry(&self.data, &self.master_fields, &mut previous, &mut at);
                (id, items)
            })
        })
    }

    /// The first live entry's ID.
    pub(super) fn first_id(&self) -> Option<StreamId> {
        self.entries().next().map(|(id, _)| id)
    }

    /// The position of the entry with this ID.
    pub(super) fn index_of(&self, id: StreamId) -> Option<usize> {
        self.entries()
            .take_while(|&(found, _)| found <= id)
            .position(|(found, _)| found == id)
    }

    /// Removes the entries whose index `remove` picks; how many went. The survivors are
    /// written again: each ID is stored against the entry before it, which may be gone.
    pub(super) fn remove_where(
        &mut self,
        mut remove: impl FnMut(usize, StreamId) -> bool,
    ) -> usize {
        let mut data = Vec::with_capacity(self.data.len());
        let (mut at, mut index, mut removed) = (0, 0, 0);
        let (mut previous_read, mut previous_written) = (self.master_id, self.master_id);
        while at < self.data.len() {
            let (id, items, same_fields) =
                read_entry(&self.data, &self.master_fields, &mut previous_read, &mut at);
            if remove(index, id) {
                removed += 1;
            } else {
                // Only the values when the names are the master's.
                let skip = usize::from(same_fields);
                let kept = items.iter().copied().skip(skip).step_by(1 + skip);
                write_entry(
                    &mut data,
                    (previous_written, id),
                    same_fields,
                    items.len(),
                    kept,
                );
                previous_written = id;
            }
            index += 1;
        }
        self.count -= removed;
        self.deleted += removed;
        self.data = data;
        removed as usize
    }
}
