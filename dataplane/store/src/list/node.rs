//! One packed node: elements stored back to back, each as a LEB128 length and its bytes.
//!
//! A node stays small ([`NODE_BYTES_MAX`]), so the linear walks below cost at most a few
//! hundred steps, and an edit moves at most that many bytes (Redis's quicklist nodes make the
//! same trade).

use crate::compact::PackedBuf;

/// Bytes a node's buffer (header included: 2048 is a jemalloc size class, 2060 would take
/// 2560) grows to before a new node is started: small enough that an edit's memmove
/// and a walk to the last element stay cheap, big enough that the per-node overhead (the
/// node's own 16 bytes and its allocation) is a few percent.
pub(super) const NODE_BYTES_MAX: usize = 2048;

/// Header bytes of a node's buffer: its element count (4 bytes) and 8 bytes of the list's
/// own counters, used while the list is this one node (see `ListValue`).
const HEADER_BYTES: usize = 12;

/// One node: a [`PackedBuf`] whose header holds the element count and whose body the
/// elements. 16 bytes; its buffer exactly sized.
#[derive(Clone, Default)]
pub(super) struct Node {
    buf: PackedBuf<HEADER_BYTES>,
}

fn length_prefix(len: usize, out: &mut Vec<u8>) {
    let mut rest = len;
    loop {
        let low = (rest & 0x7f) as u8;
        rest >>= 7;
        if rest == 0 {
            out.push(low);
            return;
        }
        out.push(low | 0x80);
    }
}

/// Bytes an element takes packed.
pub(super) fn packed_len(element: &[u8]) -> usize {
    let mut prefix = 1;
    let mut rest = element.len() >> 7;
    while rest > 0 {
        prefix += 1;
        rest >>= 7;
    }
    prefix + element.len()
}

fn encode(element: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(packed_len(element));
    length_prefix(element.len(), &mut out);
    out.extend_from_slice(element);
    out
}

/// The element at byte `at` and the byte just past it.
fn decode(data: &[u8], at: usize) -> (&[u8], usize) {
    let (mut len, mut shift, mut cursor) = (0usize, 0, at);
    loop {
        let byte = data[cursor];
        cursor += 1;
        len |= usize::from(byte & 0x7f) << shift;
        if byte & 0x80 == 0 {
            break;
        }
        shift += 7;
    }
    (&data[cursor..cursor + len], cursor + len)
}

impl Node {
    pub(super) fn with(element: &[u8]) -> Self {
        let mut node = Self::default();
        node.buf.set_body(&encode(element));
        node.set_count(1);
        node
    }

    fn data(&self) -> &[u8] {
        self.buf.body()
    }

    /// Elements in the node.
    pub(super) fn count(&self) -> usize {
        let header = self.buf.header();
        u32::from_le_bytes(header[..4].try_into().expect("4 bytes")) as usize
    }

    fn set_count(&mut self, count: usize) {
        let mut header = self.buf.header();
        let count = u32::try_from(count).expect("a node holds fewer than 2^32 elements");
        header[..4].copy_from_slice(&count.to_le_bytes());
        self.buf.set_header(header);
    }

    /// The list's counters kept in this node's header (meaningful while it is the list's only
    /// node).
    pub(super) fn list_word(&self) -> u64 {
        let header = self.buf.header();
        u64::from_le_bytes(header[4..].try_into().expect("8 bytes"))
    }

    pub(super) fn set_list_word(&mut self, word: u64) {
        let mut header = self.buf.header();
        header[4..].copy_from_slice(&word.to_le_bytes());
        self.buf.set_header(header);
    }

    /// Drops every element, keeping the header's list counters.
    pub(super) fn clear(&mut self) {
        self.buf.set_body(&[]);
        self.set_count(0);
    }

    /// Bytes the node's buffer takes.
    pub(super) fn heap_len(&self) -> usize {
        self.buf.heap_len()
    }

    /// True when `element` fits without passing the node limit (an empty node takes anything).
    pub(super) fn has_room_for(&self, element: &[u8]) -> bool {
        self.count() == 0
            || HEADER_BYTES + self.data().len() + packed_len(element) <= NODE_BYTES_MAX
    }

    pub(super) fn iter(&self) -> NodeIter<'_> {
        NodeIter {
            data: self.data(),
            at: 0,
        }
    }

    /// Byte offset of each element, and the end.
    fn offsets(&self) -> Vec<usize> {
        let data = self.data();
        let mut offsets = Vec::with_capacity(self.count() + 1);
        let mut at = 0;
        while at < data.len() {
            offsets.push(at);
            at = decode(data, at).1;
        }
        offsets.push(at);
        offsets
    }

    pub(super) fn get(&self, index: usize) -> &[u8] {
        self.iter().nth(index).expect("index within the node")
    }

    pub(super) fn last(&self) -> &[u8] {
        let offsets = self.offsets();
        decode(self.data(), offsets[offsets.len() - 2]).0
    }

    pub(super) fn insert(&mut self, index: usize, element: &[u8]) {
        // The buffer grows to exactly what is needed, as a listpack does: doubling would leave
        // up to half of every small list's buffer unused. The allocator's size classes (about
        // 25% apart) keep most of these growths in place.
        let at = if index == self.count() {
            self.data().len()
        } else {
            self.offsets()[index]
        };
        self.buf.splice(at..at, &encode(element));
        self.set_count(self.count() + 1);
    }

    pub(super) fn replace(&mut self, index: usize, element: &[u8]) {
        let offsets = self.offsets();
        self.buf
            .splice(offsets[index]..offsets[index + 1], &encode(element));
    }

    /// Removes elements `range` of this node.
    pub(super) fn remove_range(&mut self, range: std::ops::Range<usize>) {
        if range.is_empty() {
            return;
        }
        let offsets = self.offsets();
        self.buf
            .splice(offsets[range.start]..offsets[range.end], &[]);
        self.set_count(self.count() - range.len());
    }

    /// Splits off the elements from `index` on into a new node.
    pub(super) fn split_off(&mut self, index: usize) -> Node {
        let at = self.offsets()[index];
        let mut tail = Node::default();
        tail.buf.set_body(&self.data()[at..]);
        tail.set_count(self.count() - index);
        let end = self.data().len();
        self.buf.splice(at..end, &[]);
        self.set_count(index);
        tail
    }

    /// Keeps the elements for which `keep` says true; how many went.
    pub(super) fn retain(&mut self, mut keep: impl FnMut(usize, &[u8]) -> bool) -> usize {
        let mut kept = Vec::with_capacity(self.data().len());
        let mut removed = 0;
        for (index, element) in self.iter().enumerate() {
            if keep(index, element) {
                length_prefix(element.len(), &mut kept);
                kept.extend_from_slice(element);
            } else {
                removed += 1;
            }
        }
        if removed > 0 {
            self.buf.set_body(&kept);
            self.set_count(self.count() - removed);
        }
        removed
    }
}

/// The elements of a node, front to back.
pub(super) struct NodeIter<'a> {
    data: &'a [u8],
    at: usize,
}

impl<'a> Iterator for NodeIter<'a> {
    type Item = &'a [u8];
    fn next(&mut self) -> Option<&'a [u8]> {
        if self.at >= self.data.len() {
            return None;
        }
        let (element, next) = decode(self.data, self.at);
        self.at = next;
        Some(element)
    }
}
