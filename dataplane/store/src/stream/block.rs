//! A packed block of stream entries (Redis's listpack per radix-tree node): the IDs in order,
//! and each entry's fields and values back to back as length-prefixed bytes, field names left
//! out when they repeat the block's first entry's.
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
    /// The block's key: the first ID it took (Redis's master ID). Entry IDs are stored as
    /// differences from it.
    master_id: StreamId,
    /// Live entries.
    count: usize,
    /// For each live entry: its ID's millisecond difference from the master ID and its
    /// sequence, then a header, then its items as length and bytes (see [`read_entry`]).
    pub(super) data: Vec<u8>,
    /// Entries deleted from this block since it was created; Redis counts them towards a
    /// node's fill (`stream-node-max-entries`), so the boundaries fall where Redis's do.
    pub(super) deleted: usize,
    /// The last ID appended, deleted or not: Redis reads a node's last ID from its listpack,
    /// where deleted entries stay, so approximate MINID trimming keeps a node whose deleted
    /// tail is at or above the limit.
    pub(super) last_appended: StreamId,
    /// The field names of the block's first entry (Redis's master entry).
    master_fields: Vec<Vec<u8>>,
    /// Redis's listpack bytes for the entries (deleted ones included), master entry aside.
    entries_bytes: usize,
}

/// Reads the entry at `at`, moving `at` past it: its ID and its fields and values,
/// alternating. An entry whose field names repeat the block's first entry's stores its values
/// only (as Redis's SAMEFIELDS flag does): its header is the field count shifted left once,
/// with the low bit set for that case.
fn read_entry<'a>(
    data: &'a [u8],
    master: (StreamId, &'a [Vec<u8>]),
    at: &mut usize,
) -> (StreamId, Vec<&'a [u8]>) {
    let (master_id, master_fields) = master;
    let ms = master_id.ms + varint::read(data, at);
    let id = StreamId::new(ms, varint::read(data, at));
    let header = varint::read(data, at) as usize;
    let (count, same_fields) = (header >> 1, header & 1 == 1);
    let mut read_item = || {
        let len = varint::read(data, at) as usize;
        let item = &data[*at..*at + len];
        *at += len;
        item
    };
    let items = if same_fields {
        master_fields
            .iter()
            .flat_map(|name| [name.as_slice(), read_item()])
            .collect()
    } else {
        (0..count).map(|_| read_item()).collect()
    };
    (id, items)
}

impl Block {
    /// The size of Redis's listpack for this block.
    pub(super) fn listpack_bytes(&self) -> usize {
        LISTPACK_EMPTY_BYTES
            + integer_bytes(self.count as i64)
            + integer_bytes(self.deleted as i64)
            + integer_bytes(self.master_fields.len() as i64)
            + self
                .master_fields
                .iter()
                .map(|f| entry_bytes(f))
                .sum::<usize>()
            + integer_bytes(0)
            + self.entries_bytes
    }

    /// Appends an entry (its ID above every ID in the block, `master_id` the block's key).
    pub(super) fn push(&mut self, id: StreamId, master_id: StreamId, fields: &[&[u8]]) {
        debug_assert!(self.last_appended < id || self.fill() == 0);
        // The field names are the even items; no vector of them is built for the comparison.
        let names = || fields.iter().step_by(2);
        let field_count = fields.len().div_ceil(2);
        if self.fill() == 0 {
            self.master_id = master_id;
            self.master_fields = names().map(|name| name.to_vec()).collect();
        }
        let same_fields = field_count == self.master_fields.len()
            && names()
                .zip(&self.master_fields)
                .all(|(a, b)| *a == b.as_slice());
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
        self.entries_bytes += bytes + integer_bytes(pieces);
        self.count += 1;
        self.last_appended = id;
        // Sequences are stored whole: a delta from the master's could be negative.
        varint::push(&mut self.data, id.ms - master_id.ms);
        varint::push(&mut self.data, id.seq);
        varint::push(
            &mut self.data,
            (fields.len() << 1 | usize::from(same_fields)) as u64,
        );
        for (at, item) in fields.iter().enumerate() {
            if at % 2 == 1 || !same_fields {
                varint::push(&mut self.data, item.len() as u64);
                self.data.extend_from_slice(item);
            }
        }
    }

    /// Gives back the spare capacity of a block that takes no more entries.
    pub(super) fn seal(&mut self) {
        self.data.shrink_to_fit();
    }

    /// Entries held and deleted, the count Redis compares with `stream-node-max-entries`.
    pub(super) fn fill(&self) -> usize {
        self.count + self.deleted
    }

    /// Live entries.
    pub(super) fn len(&self) -> usize {
        self.count
    }

    /// True when every entry was deleted.
    pub(super) fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// The live entries, in ID order.
    pub(super) fn entries(&self) -> impl Iterator<Item = (StreamId, Vec<&[u8]>)> + '_ {
        let mut at = 0;
        let master = (self.master_id, self.master_fields.as_slice());
        std::iter::from_fn(move || {
            (at < self.data.len()).then(|| read_entry(&self.data, master, &mut at))
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

    /// Removes the entries whose index `remove` picks; how many went.
    pub(super) fn remove_where(
        &mut self,
        mut remove: impl FnMut(usize, StreamId) -> bool,
    ) -> usize {
        let mut data = Vec::with_capacity(self.data.len());
        let master = (self.master_id, self.master_fields.as_slice());
        let (mut at, mut index, mut removed) = (0, 0, 0);
        while at < self.data.len() {
            let start = at;
            let (id, _) = read_entry(&self.data, master, &mut at);
            if remove(index, id) {
                removed += 1;
            } else {
                data.extend_from_slice(&self.data[start..at]);
            }
            index += 1;
        }
        self.count -= removed;
        self.deleted += removed;
        self.data = data;
        removed
    }
}
