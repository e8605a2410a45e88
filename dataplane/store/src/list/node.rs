//! One packed node: an anchor, then elements stored back to back, each front coded against the
//! anchor.
//!
//! The body is the anchor (a LEB128 length and at most [`ANCHOR_BYTES_MAX`] bytes), then the
//! elements. An element is a LEB128 header `rest_len << 1 | shared_flag`; when the flag is set, a
//! LEB128 count of leading bytes the element shares with the anchor; then the rest of its bytes.
//! Elements named after one pattern (`member:000001`, `member:000002`...) then cost their
//! differing bytes and two bytes of lengths; an element that shares nothing costs what it cost
//! before front coding (one length and its bytes), except that one of 64 to 127 bytes needs a
//! second byte of length. An element reads as two slices of the buffer (a prefix of the anchor,
//! then the rest), so reads need no copy.
//!
//! The anchor is not the node's first element, as the packed hash's is: LPUSH adds at the front
//! all the time, and an anchor that moved with the first element would rewrite the node on every
//! push. A node that gets its second element takes as its anchor the prefix its two elements
//! share (a lone element has nothing to share with, so a node of one element has an empty
//! anchor); after that the anchor stays put, and once its elements are popped it still decodes
//! the others. A node split off another keeps the other's anchor, so its elements are copied as
//! they are.
//!
//! A node stays small ([`NODE_BYTES_MAX`] bytes, [`NODE_ELEMENTS_MAX`] elements), so the linear
//! walks below cost at most a few hundred steps, and an edit moves at most 2 KB (Redis's
//! quicklist nodes make the same trade).

use super::{redis_size, End};
use crate::compact::ClassBuf;
use crate::split::{shared_prefix, SplitBytes};
use crate::varint;

/// Bytes a node's buffer (header included: 2048 is a jemalloc size class, 2060 would take
/// 2560) grows to before a new node is started: small enough that an edit's memmove
/// and a walk to the last element stay cheap, big enough that the per-node overhead (the
/// node's own 16 bytes and its allocation) is a few percent.
pub(super) const NODE_BYTES_MAX: usize = 2048;

/// Elements a node holds at most. Lengths lead their elements, so RPOP, and LINDEX or LSET
/// near a node's end, walk the node from its front: this bounds the walk at 256 steps (about
/// half a microsecond). Without it a node of 2-byte elements (front-coded ones often are) held
/// 1,000, and RPOP took 5 µs. A full node of 13-byte names stored in 5 bytes each is still
/// 1.3 KB, so the per-node overhead stays a few percent.
pub(super) const NODE_ELEMENTS_MAX: usize = 256;

/// Longest anchor: the prefixes elements share in practice (key-like names, URLs, JSON
/// openings) are mostly shorter, and a node pays its anchor once, so at most 33 bytes of a
/// full node's 2048 (under 2%) go to it. Below 128, so a shared length is one byte.
pub(super) const ANCHOR_BYTES_MAX: usize = 32;

/// Header bytes of a node's buffer: its element count (4 bytes) and 8 bytes of the list's
/// own counters, used while the list is this one node (see `ListValue`).
const HEADER_BYTES: usize = 12;

/// One node: a [`ClassBuf`] whose header holds the element count and whose body the anchor and
/// the elements. 16 bytes; its buffer the allocator's size class for what it holds.
#[derive(Clone, Default)]
pub(super) struct Node {
    buf: ClassBuf<HEADER_BYTES>,
}

/// Bytes Redis's listpack takes for `element`.
pub(super) fn entry_bytes(element: SplitBytes<'_>) -> usize {
    let (head, tail) = element.parts();
    redis_size::entry_bytes_of_parts(head, tail)
}

/// How an element of some length is stored: the header varint, and how many of its leading
/// bytes the anchor supplies (0: stored whole, no shared length written).
#[derive(Debug, Clone, Copy)]
struct Form {
    header: u64,
    shared: usize,
}

impl Form {
    /// The cheaper form for an element of `len` bytes whose first `shared` match the anchor;
    /// whole on a tie, since a whole element reads without a copy.
    #[inline]
    fn of(shared: usize, len: usize) -> Self {
        let whole = Self {
            header: (len as u64) << 1,
            shared: 0,
        };
        if shared == 0 {
            return whole;
        }
        let fronted = Self {
            header: ((len - shared) as u64) << 1 | 1,
            shared,
        };
        if fronted.stored_len(len) < whole.stored_len(len) {
            fronted
        } else {
            whole
        }
    }

    /// The form of `element` against `anchor`.
    #[inline]
    fn against(anchor: &[u8], element: &[u8]) -> Self {
        Self::of(shared_prefix(anchor, element), element.len())
    }

    /// Bytes the element takes in this form.
    #[inline]
    fn stored_len(self, len: usize) -> usize {
        let shared_len_bytes = if self.shared > 0 {
            varint::len(self.shared as u64)
        } else {
            0
        };
        varint::len(self.header) + shared_len_bytes + len - self.shared
    }

    /// The header and shared length as written, on the stack.
    #[inline]
    fn lengths(self) -> ([u8; 20], usize) {
        let mut out = [0u8; 20];
        let mut used = varint::write(&mut out, 0, self.header);
        if self.shared > 0 {
            used = varint::write(&mut out, used, self.shared as u64);
        }
        (out, used)
    }
}

/// The element whose encoding starts at byte `at` of `data`, read against `anchor`, and the
/// byte just past it.
#[inline]
fn decode<'a>(data: &'a [u8], anchor: &'a [u8], mut at: usize) -> (SplitBytes<'a>, usize) {
    let header = varint::read(data, &mut at) as usize;
    let shared = if header & 1 == 1 {
        varint::read(data, &mut at) as usize
    } else {
        0
    };
    let rest = header >> 1;
    let element = SplitBytes::new(&anchor[..shared], &data[at..at + rest]);
    (element, at + rest)
}

/// The byte just past the element whose encoding starts at byte `at` of `data` (its bytes
/// unread).
#[inline]
fn skip(data: &[u8], mut at: usize) -> usize {
    let header = varint::read(data, &mut at) as usize;
    if header & 1 == 1 {
        varint::read(data, &mut at);
    }
    at + (header >> 1)
}

impl Node {
    pub(super) fn with(element: &[u8]) -> Self {
        let mut node = Self::default();
        node.start(element);
        node
    }

    /// Makes this empty node hold `element` alone, after an empty anchor.
    fn start(&mut self, element: &[u8]) {
        debug_assert_eq!(self.count(), 0);
        let (header, header_len) = Form::of(0, element.len()).lengths();
        self.buf.splice_parts(
            0..self.data().len(),
            &[&[0], &header[..header_len], element],
        );
        self.set_count(1);
    }

    fn data(&self) -> &[u8] {
        self.buf.body()
    }

    /// The anchor and the byte where the elements start (an empty node has neither).
    #[inline]
    fn anchor(&self) -> (&[u8], usize) {
        let data = self.data();
        if data.is_empty() {
            return (&[], 0);
        }
        let mut at = 0;
        let len = varint::read(data, &mut at) as usize;
        debug_assert!(len <= ANCHOR_BYTES_MAX);
        (&data[at..at + len], at + len)
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

    /// Drops every element and the anchor, keeping the header's list counters.
    pub(super) fn clear(&mut self) {
        self.buf.set_body(&[]);
        self.set_count(0);
    }

    /// Bytes the node's buffer takes.
    pub(super) fn heap_len(&self) -> usize {
        self.buf.heap_len()
    }

    /// The anchor an insert of `element` is stored against: the node's, or for a node of one
    /// element the prefix that element and `element` share (the node takes it as its anchor
    /// before the insert).
    fn anchor_for<'e>(&'e self, element: &'e [u8]) -> &'e [u8] {
        if self.count() != 1 {
            return self.anchor().0;
        }
        let shared = self.get(0).shared_prefix(element).min(ANCHOR_BYTES_MAX);
        &element[..shared]
    }

    /// True when `element` fits without passing the node limit (an empty node takes anything).
    fn has_room_for(&self, element: &[u8]) -> bool {
        if self.count() == 0 {
            return true;
        }
        let anchor = self.anchor_for(element);
        let body_len = if self.count() == 1 {
            // The node as it is once it has taken the anchor.
            let first_len = self.get(0).len();
            varint::len(anchor.len() as u64)
                + anchor.len()
                + Form::of(anchor.len(), first_len).stored_len(first_len)
        } else {
            self.data().len()
        };
        let element_len = Form::against(anchor, element).stored_len(element.len());
        ClassBuf::<HEADER_BYTES>::FRAME + body_len + element_len <= NODE_BYTES_MAX
    }

    pub(super) fn iter(&self) -> NodeIter<'_> {
        let (anchor, at) = self.anchor();
        NodeIter {
            data: self.data(),
            anchor,
            at,
        }
    }

    /// Byte offset of element `index` (`count` for the end), walking only the elements before
    /// it: pushes and pops at the head touch the first element only.
    #[inline]
    fn offset_of(&self, index: usize) -> usize {
        let data = self.data();
        let start = self.anchor().1;
        if index == 0 {
            return start;
        }
        if index >= self.count() {
            return data.len();
        }
        (0..index).fold(start, |at, _| skip(data, at))
    }

    pub(super) fn get(&self, index: usize) -> SplitBytes<'_> {
        let (anchor, start) = self.anchor();
        let data = self.data();
        let at = (0..index).fold(start, |at, _| skip(data, at));
        decode(data, anchor, at).0
    }

    /// Removes the element at `end`, first showing it to `seen` (the anchor goes with the last
    /// element).
    pub(super) fn pop(&mut self, end: End, seen: impl FnOnce(SplitBytes<'_>)) {
        let count = self.count();
        assert!(count > 0, "a node is never empty");
        let (anchor, start) = self.anchor();
        let data = self.data();
        let at = match end {
            End::Front => start,
            // Lengths lead their elements, so the last one is found by walking the node (at
            // most NODE_ELEMENTS_MAX steps), once: its offset is also where the cut starts.
            End::Back => (1..count).fold(start, |at, _| skip(data, at)),
        };
        let (element, next) = decode(data, anchor, at);
        seen(element);
        if count == 1 {
            self.clear();
            return;
        }
        self.buf.splice(at..next, &[]);
        self.set_count(count - 1);
    }

    /// Rewrites a node of one element around `anchor` (a prefix of that element).
    fn take_anchor(&mut self, anchor: &[u8]) {
        debug_assert_eq!(self.count(), 1);
        debug_assert!(anchor.len() <= ANCHOR_BYTES_MAX);
        let first = self.get(0).to_vec();
        debug_assert!(first.starts_with(anchor));
        let form = Form::of(anchor.len(), first.len());
        let mut anchor_len = [0u8; 10];
        let anchor_len_bytes = varint::write(&mut anchor_len, 0, anchor.len() as u64);
        let (lengths, lengths_len) = form.lengths();
        self.buf.splice_parts(
            0..self.data().len(),
            &[
                &anchor_len[..anchor_len_bytes],
                anchor,
                &lengths[..lengths_len],
                &first[form.shared..],
            ],
        );
    }

    /// Inserts `element` so that it becomes element `index`, if it fits without passing the
    /// node limit (an empty node takes anything); false, and the node unchanged, when not.
    /// One call both checks and inserts, so a push reads the anchor and compares it once.
    pub(super) fn insert_if_room(&mut self, index: usize, element: &[u8]) -> bool {
        match self.count() {
            0 => {
                self.start(element);
                return true;
            }
            count if count >= NODE_ELEMENTS_MAX => return false,
            1 => {
                if !self.has_room_for(element) {
                    return false;
                }
                // Rewriting a node of one element (at most NODE_BYTES_MAX bytes: a larger one
                // has no room for a second) costs a copy, once per node in the common case.
                let anchor = self.anchor_for(element);
                if anchor != self.anchor().0 {
                    let anchor = anchor.to_vec();
                    self.take_anchor(&anchor);
                }
            }
            _ => {}
        }
        let (anchor, start) = self.anchor();
        let form = Form::against(anchor, element);
        let body_len = self.data().len();
        if ClassBuf::<HEADER_BYTES>::FRAME + body_len + form.stored_len(element.len())
            > NODE_BYTES_MAX
        {
            return false;
        }
        let at = match index {
            0 => start,
            _ => self.offset_of(index),
        };
        // The buffer is the allocator's size class for what it holds (what an exactly sized
        // listpack takes too), so most inserts fit in it as it is: doubling would leave up to
        // half of every small list's buffer unused.
        // In place, without a temporary encoding: the lengths from the stack, then the rest.
        let (lengths, lengths_len) = form.lengths();
        self.buf
            .insert_parts(at, &[&lengths[..lengths_len], &element[form.shared..]]);
        self.set_count(self.count() + 1);
        true
    }

    /// Replaces element `index` with `element` if the node stays within the node limit (a node
    /// of one element takes anything, as an empty one does); false, and the node unchanged,
    /// when not.
    pub(super) fn replace_if_room(&mut self, index: usize, element: &[u8]) -> bool {
        let form = Form::against(self.anchor().0, element);
        let start = self.offset_of(index);
        let end = skip(self.data(), start);
        let body_len = self.data().len() - (end - start) + form.stored_len(element.len());
        if self.count() > 1 && ClassBuf::<HEADER_BYTES>::FRAME + body_len > NODE_BYTES_MAX {
            return false;
        }
        let (lengths, lengths_len) = form.lengths();
        self.buf.splice_parts(
            start..end,
            &[&lengths[..lengths_len], &element[form.shared..]],
        );
        true
    }

    /// Removes elements `range` of this node (the anchor too with the last of them).
    pub(super) fn remove_range(&mut self, range: std::ops::Range<usize>) {
        if range.is_empty() {
            return;
        }
        if range.len() == self.count() {
            self.clear();
            return;
        }
        let start = self.offset_of(range.start);
        let end = range.clone().fold(start, |at, _| skip(self.data(), at));
        self.buf.splice(start..end, &[]);
        self.set_count(self.count() - range.len());
    }

    /// Splits off the elements from `index` on into a new node, which keeps this node's anchor
    /// (its elements are copied as stored).
    pub(super) fn split_off(&mut self, index: usize) -> Node {
        assert!(
            0 < index && index < self.count(),
            "both halves keep elements"
        );
        let at = self.offset_of(index);
        let anchor_end = self.anchor().1;
        let mut tail = Node::default();
        let data = self.data();
        tail.buf
            .splice_parts(0..0, &[&data[..anchor_end], &data[at..]]);
        tail.set_count(self.count() - index);
        let end = data.len();
        self.buf.splice(at..end, &[]);
        self.set_count(index);
        tail
    }

    /// Keeps the elements for which `keep` says true (copied as stored, against the same
    /// anchor); how many went.
    pub(super) fn retain(&mut self, mut keep: impl FnMut(usize, SplitBytes<'_>) -> bool) -> usize {
        let (anchor, start) = self.anchor();
        let data = self.data();
        let mut kept = Vec::with_capacity(data.len());
        kept.extend_from_slice(&data[..start]);
        let (mut removed, mut at) = (0, start);
        for index in 0..self.count() {
            let (element, next) = decode(data, anchor, at);
            if keep(index, element) {
                kept.extend_from_slice(&data[at..next]);
            } else {
                removed += 1;
            }
            at = next;
        }
        if removed == self.count() {
            self.clear();
        } else if removed > 0 {
            self.buf.set_body(&kept);
            self.set_count(self.count() - removed);
        }
        removed
    }
}

/// The elements of a node, front to back.
pub(super) struct NodeIter<'a> {
    data: &'a [u8],
    anchor: &'a [u8],
    at: usize,
}

impl<'a> Iterator for NodeIter<'a> {
    type Item = SplitBytes<'a>;
    fn next(&mut self) -> Option<SplitBytes<'a>> {
        if self.at >= self.data.len() {
            return None;
        }
        let (element, next) = decode(self.data, self.anchor, self.at);
        self.at = next;
        Some(element)
    }
}

#[cfg(test)]
impl Node {
    /// The anchor's bytes.
    pub(super) fn anchor_bytes(&self) -> &[u8] {
        self.anchor().0
    }

    /// The body's bytes (anchor and elements).
    pub(super) fn body_len(&self) -> usize {
        self.data().len()
    }
}
