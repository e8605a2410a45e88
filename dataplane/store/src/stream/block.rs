//! A packed block of stream entries (Redis's listpack per radix-tree node): the IDs in order,
//! and each entry's fields and values back to back as length-prefixed bytes.
//!
//! The block also keeps the size Redis's listpack would have for the same entries (its master
//! entry, each entry's flags, ID deltas, field names unless they repeat the master's, values
//! and back-count), because Redis starts a new node when that size would pass
//! `stream-node-max-bytes`, and approximate trimming removes whole nodes only.

use super::StreamId;
use crate::list::redis_size::entry_bytes;

/// Listpack header (total bytes, element count) and end marker.
const LISTPACK_EMPTY_BYTES: usize = 7;
/// An entry's flags when its fields repeat the master entry's.
const FLAG_SAME_FIELDS: i64 = 2;

/// Bytes a listpack integer takes.
fn integer_bytes(value: i64) -> usize {
    entry_bytes(value.to_string().as_bytes())
}

#[derive(Clone, Default)]
pub(super) struct Block {
    /// IDs of the live entries, ascending.
    pub(super) ids: Vec<StreamId>,
    /// For each live entry: a field count, then each field and value as length and bytes.
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

fn push_varint(out: &mut Vec<u8>, mut value: usize) {
    loop {
        let low = (value & 0x7f) as u8;
        value >>= 7;
        if value == 0 {
            out.push(low);
            return;
        }
        out.push(low | 0x80);
    }
}

fn read_varint(data: &[u8], at: &mut usize) -> usize {
    let (mut value, mut shift) = (0usize, 0);
    loop {
        let byte = data[*at];
        *at += 1;
        value |= usize::from(byte & 0x7f) << shift;
        if byte & 0x80 == 0 {
            return value;
        }
        shift += 7;
    }
}

/// Reads the entry at `at`, moving `at` past it; its fields and values, alternating.
fn read_entry<'a>(data: &'a [u8], at: &mut usize) -> Vec<&'a [u8]> {
    let count = read_varint(data, at);
    (0..count)
        .map(|_| {
            let len = read_varint(data, at);
            let item = &data[*at..*at + len];
            *at += len;
            item
        })
        .collect()
}

impl Block {
    /// The size of Redis's listpack for this block.
    pub(super) fn listpack_bytes(&self) -> usize {
        LISTPACK_EMPTY_BYTES
            + integer_bytes(self.ids.len() as i64)
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
        debug_assert!(self.ids.last().is_none_or(|&last| last < id));
        let names: Vec<&[u8]> = fields.iter().step_by(2).copied().collect();
        if self.ids.is_empty() && self.deleted == 0 && self.master_fields.is_empty() {
            self.master_fields = names.iter().map(|name| name.to_vec()).collect();
        }
        let same_fields = names.len() == self.master_fields.len()
            && names
                .iter()
                .zip(&self.master_fields)
                .all(|(a, b)| *a == b.as_slice());
        let field_count = names.len() as i64;
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
        self.ids.push(id);
        self.last_appended = id;
        push_varint(&mut self.data, fields.len());
        for item in fields {
            push_varint(&mut self.data, item.len());
            self.data.extend_from_slice(item);
        }
    }

    /// Entries held and deleted, the count Redis compares with `stream-node-max-entries`.
    pub(super) fn fill(&self) -> usize {
        self.ids.len() + self.deleted
    }

    /// The live entries, in ID order.
    pub(super) fn entries(&self) -> impl Iterator<Item = (StreamId, Vec<&[u8]>)> + '_ {
        let mut at = 0;
        self.ids
            .iter()
            .map(move |&id| (id, read_entry(&self.data, &mut at)))
    }

    /// Removes the entries whose index `remove` picks; how many went.
    pub(super) fn remove_where(
        &mut self,
        mut remove: impl FnMut(usize, StreamId) -> bool,
    ) -> usize {
        let mut ids = Vec::with_capacity(self.ids.len());
        let mut data = Vec::with_capacity(self.data.len());
        let mut at = 0;
        for (index, &id) in self.ids.iter().enumerate() {
            let start = at;
            read_entry(&self.data, &mut at);
            if !remove(index, id) {
                ids.push(id);
                data.extend_from_slice(&self.data[start..at]);
            }
        }
        let removed = self.ids.len() - ids.len();
        self.deleted += removed;
        self.ids = ids;
        self.data = data;
        removed
    }
}
