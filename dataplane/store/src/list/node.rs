//! One packed node: elements stored back to back, each as a LEB128 length and its bytes.
//!
//! A node stays small ([`NODE_BYTES_MAX`]), so the linear walks below cost at most a few
//! hundred steps, and an edit moves at most that many bytes (Redis's quicklist nodes make the
//! same trade).

use crate::compact::ClassBuf;

/// Bytes a node's buffer (header included: 2048 is a jemalloc size class, 2060 would take
/// 2560) grows to before a new node is started: small enough that an edit's memmove
/// and a walk to the last element stay cheap, big enough that the per-node overhead (the
/// node's own 16 bytes and its allocation) is a few percent.
pub(super) const NODE_BYTES_MAX: usize = 2048;

/// Header bytes of a node's buffer: its element count (4 bytes) and 8 bytes of the list's
/// own counters, used while the list is this one node (see `ListValue`).
const HEADER_BYTES: usize = 12;

/// One node: a [`ClassBuf`] whose header holds the element count and whose body the
/// elements. 16 bytes; its buffer the allocator's size class for what it holds.
#[derive(Clone, Default)]
pub(super) struct Node {
    buf: ClassBuf<HEADER_BYTES>,
}

/// The LEB128 length prefix of `len` on the stack (at most 10 bytes for a `usize`), and how
/// many bytes of it are used.
fn length_prefix_array(len: usize) -> ([u8; 10], usize) {
    let (mut prefix, mut used, mut rest) = ([0u8; 10], 0, len);
    loop {
        let low = (rest & 0x7f) as u8;
        rest >>= 7;
        if rest == 0 {
            prefix[used] = low;
            return (prefix, used + 1);
        }
        prefix[used] = low | 0x80;
        used += 1;
    }
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
            || ClassBuf::<HEADER_BYTES>::FRAME + self.data().len() + packed_len(element)
                <= NODE_BYTES_MAX
    }

    pub(super) fn iter(&self) -> NodeIter<'_> {
        NodeIter {
            data: self.data(),
            at: 0,
        }
    }

    /// Byte offset of element `index` (`count` for the end), walking only the elements before
    /// it: pushes and pops at the head touch the first element only.
    fn offset_of(&self, index: usize) -> usize {
        let data = self.data();
        if index >= self.count() {
            return data.len();
        }
        (0..index).fold(0, |at, _| decode(data, at).1)
    }

    pub(super) fn get(&self, index: usize) -> &[u8] {
        self.iter().nth(index).expect("index within the node")
    }

    pub(super) fn last(&self) -> &[u8] {
        // Lengths lead their elements, so the last one is found by walking the node (at most
        // NODE_BYTES_MAX bytes), without collecting the offsets.
        self.iter().last().expect("a node is never empty")
    }

    pub(super) fn insert(&mut self, index: usize, element: &[u8]) {
        // The buffer is the allocator's size class for what it holds (what an exactly sized
        // listpack takes too), so most inserts fit in it as it is: doubling would leave up to
        // half of every small list's buffer unused.
        // In place, without a temporary encoding: the prefix from the stack, then the element.
        let at = self.offset_of(index);
        let (prefix, prefix_len) = length_prefix_array(element.len());
        self.buf.insert_parts(at, &[&prefix[..prefix_len], element]);
        self.set_count(self.count() + 1);
    }

    pub(super) fn replace(&mut self, index: usize, element: &[u8]) {
        let start = self.offset_of(index);
        let end = decode(self.data(), start).1;
        self.buf.splice(start..end, &encode(element));
    }

    /// Removes elements `range` of this node.
    pub(super) fn remove_range(&mut self, range: std::ops::Range<usize>) {
        if range.is_empty() {
            return;
        }
        let start = self.offset_of(range.start);
        let end = range.clone().fold(start, |at, _| decode(self.data(), at).1);
        self.buf.splice(start..end, &[]);
        self.set_count(self.count() - range.len());
    }

    /// Splits off the elements from `index` on into a new node.
    pub(super) fn split_off(&mut self, index: usize) -> Node {
        let at = self.offset_of(index);
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
