//! A packed block of stream entries (Redis's listpack per radix-tree node): the IDs in order,
//! and each entry's fields and values back to back as length-prefixed bytes.

use super::StreamId;

#[derive(Clone, Default)]
pub(super) struct Block {
    /// IDs of the live entries, ascending.
    pub(super) ids: Vec<StreamId>,
    /// For each live entry: a field count, then each field and value as length and bytes.
    pub(super) data: Vec<u8>,
    /// Entries deleted from this block since it was created; Redis counts them towards a
    /// node's fill (`stream-node-max-entries`), so the boundaries fall where Redis's do.
    pub(super) deleted: usize,
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
    /// Appends an entry (its ID above every ID in the block).
    pub(super) fn push(&mut self, id: StreamId, fields: &[&[u8]]) {
        debug_assert!(self.ids.last().is_none_or(|&last| last < id));
        self.ids.push(id);
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
