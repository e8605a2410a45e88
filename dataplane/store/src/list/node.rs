//! One packed node: elements stored back to back, each as a LEB128 length and its bytes.
//!
//! A node stays small ([`NODE_BYTES_MAX`]), so the linear walks below cost at most a few
//! hundred steps, and an edit moves at most that many bytes (Redis's quicklist nodes make the
//! same trade).

/// Bytes a node grows to before a new node is started: small enough that an edit's memmove
/// and a walk to the last element stay cheap, big enough that the per-node overhead (the
/// node's own 32 bytes and its allocation) is a few percent.
pub(super) const NODE_BYTES_MAX: usize = 2048;

#[derive(Clone, Default)]
pub(super) struct Node {
    pub(super) data: Vec<u8>,
    pub(super) count: usize,
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

/// The smallest of jemalloc's size classes that holds `bytes`: 8, multiples of 16 up to 128,
/// then four classes per doubling (160, 192, 224, 256, 320...).
fn size_class_bytes(bytes: usize) -> usize {
    if bytes <= 8 {
        return 8;
    }
    if bytes <= 128 {
        return bytes.next_multiple_of(16);
    }
    let step = 1 << ((bytes - 1).ilog2() - 2);
    bytes.next_multiple_of(step)
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
        Self {
            data: encode(element),
            count: 1,
        }
    }

    /// True when `element` fits without passing the node limit (an empty node takes anything).
    pub(super) fn has_room_for(&self, element: &[u8]) -> bool {
        self.count == 0 || self.data.len() + packed_len(element) <= NODE_BYTES_MAX
    }

    pub(super) fn iter(&self) -> NodeIter<'_> {
        NodeIter {
            data: &self.data,
            at: 0,
        }
    }

    /// Byte offset of element `index` (`count` for the end), walking only the elements before
    /// it: pushes and pops at the head touch the first element only.
    fn offset_of(&self, index: usize) -> usize {
        debug_assert!(index <= self.count);
        if index == self.count {
            return self.data.len();
        }
        (0..index).fold(0, |at, _| decode(&self.data, at).1)
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
        // Grow to the allocator's size class of what is needed, not by doubling: doubling
        // would leave up to half of every small list's buffer unused, while the size class is
        // what the allocator hands out for the exact size anyway, and asking for it at once
        // saves a reallocation on most pushes.
        let needed = self.data.len() + packed_len(element);
        if needed > self.data.capacity() {
            self.data
                .reserve_exact(size_class_bytes(needed) - self.data.len());
        }
        if index == self.count {
            length_prefix(element.len(), &mut self.data);
            self.data.extend_from_slice(element);
        } else {
            // In place: one memmove of the bytes after `at`, no temporary encoding.
            let at = self.offset_of(index);
            let (prefix, prefix_len) = length_prefix_array(element.len());
            let prefix = &prefix[..prefix_len];
            let (old_len, added) = (self.data.len(), prefix.len() + element.len());
            self.data.resize(old_len + added, 0);
            self.data.copy_within(at..old_len, at + added);
            self.data[at..at + prefix.len()].copy_from_slice(prefix);
            self.data[at + prefix.len()..at + added].copy_from_slice(element);
        }
        self.count += 1;
    }

    pub(super) fn replace(&mut self, index: usize, element: &[u8]) {
        let start = self.offset_of(index);
        let end = decode(&self.data, start).1;
        self.data.splice(start..end, encode(element));
    }

    /// Removes elements `range` of this node.
    pub(super) fn remove_range(&mut self, range: std::ops::Range<usize>) {
        if range.is_empty() {
            return;
        }
        let start = self.offset_of(range.start);
        let end = (range.start..range.end).fold(start, |at, _| decode(&self.data, at).1);
        self.data.drain(start..end);
        self.count -= range.len();
    }

    /// Splits off the elements from `index` on into a new node.
    pub(super) fn split_off(&mut self, index: usize) -> Node {
        let at = self.offset_of(index);
        let tail = self.data.split_off(at);
        let moved = self.count - index;
        self.count = index;
        Node {
            data: tail,
            count: moved,
        }
    }

    /// Keeps the elements for which `keep` says true; how many went.
    pub(super) fn retain(&mut self, mut keep: impl FnMut(usize, &[u8]) -> bool) -> usize {
        let mut kept = Vec::with_capacity(self.data.len());
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
            self.data = kept;
            self.count -= removed;
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

#[cfg(test)]
mod tests {
    use super::size_class_bytes;

    #[test]
    fn size_classes_are_jemallocs() {
        let cases = [
            (1, 8),
            (8, 8),
            (9, 16),
            (17, 32),
            (33, 48),
            (128, 128),
            (129, 160),
            (160, 160),
            (161, 192),
            (256, 256),
            (257, 320),
            (1025, 1280),
            (2047, 2048),
            (2048, 2048),
            (2049, 2560),
        ];
        for (bytes, class) in cases {
            assert_eq!(size_class_bytes(bytes), class, "{bytes} bytes");
        }
    }
}
