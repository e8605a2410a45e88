//! Byte strings that keep short contents inline: keys and small values up to
//! [`INLINE_LEN_MAX`] bytes cost no heap allocation, and the type stays 24 bytes.

use std::borrow::Borrow;
use std::fmt;
use std::hash::{Hash, Hasher};
use std::ops::Deref;

/// Longest contents kept inline: 24 bytes of type, less one for the length.
pub const INLINE_LEN_MAX: usize = 22;

/// An immutable byte string, inline when short.
#[derive(Clone)]
pub struct CompactBytes(Repr);

#[derive(Clone)]
enum Repr {
    Inline { len: u8, data: [u8; INLINE_LEN_MAX] },
    Heap(Box<[u8]>),
}

impl CompactBytes {
    /// Copies `bytes`, inline when they fit.
    pub fn new(bytes: &[u8]) -> Self {
        if bytes.len() <= INLINE_LEN_MAX {
            let mut data = [0u8; INLINE_LEN_MAX];
            data[..bytes.len()].copy_from_slice(bytes);
            Self(Repr::Inline {
                len: bytes.len() as u8,
                data,
            })
        } else {
            Self(Repr::Heap(bytes.into()))
        }
    }

    /// Takes ownership of `bytes`, moving them inline when short.
    pub fn from_vec(bytes: Vec<u8>) -> Self {
        if bytes.len() <= INLINE_LEN_MAX {
            Self::new(&bytes)
        } else {
            Self(Repr::Heap(bytes.into_boxed_slice()))
        }
    }

    /// The contents as a vector, without a copy when they live on the heap (bit commands
    /// change a long string in place this way).
    pub fn into_vec(self) -> Vec<u8> {
        match self.0 {
            Repr::Inline { len, data } => data[..usize::from(len)].to_vec(),
            Repr::Heap(bytes) => bytes.into_vec(),
        }
    }

    /// The contents.
    pub fn as_bytes(&self) -> &[u8] {
        match &self.0 {
            Repr::Inline { len, data } => &data[..usize::from(*len)],
            Repr::Heap(bytes) => bytes,
        }
    }

    /// True when the contents live inline.
    pub fn is_inline(&self) -> bool {
        matches!(self.0, Repr::Inline { .. })
    }

    /// Heap bytes this value owns beyond its own 24 (for memory estimates).
    pub fn heap_len(&self) -> usize {
        match &self.0 {
            Repr::Inline { .. } => 0,
            Repr::Heap(bytes) => bytes.len(),
        }
    }
}

/// An exactly sized byte buffer in one allocation that carries its owner's small header: `H`
/// bytes at its start (counts, flags), then the body. 16 bytes (a boxed slice), so that a packed
/// collection needs no separate length, count or capacity fields and no slack: what a listpack
/// is to Redis. Until something is written it allocates nothing and its header reads as zeros.
///
/// Every edit reallocates to the exact new size (jemalloc keeps most of them in place, within
/// a size class), so this is for the small packed classes, not for large buffers.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct PackedBuf<const H: usize>(Box<[u8]>);

impl<const H: usize> PackedBuf<H> {
    /// The header (zeros before the first write).
    pub fn header(&self) -> [u8; H] {
        header_at(&self.0, 0)
    }

    /// Writes the header (allocating one of only the header when nothing was written yet).
    pub fn set_header(&mut self, header: [u8; H]) {
        if self.0.is_empty() {
            if header == [0; H] {
                return;
            }
            self.0 = vec![0; H].into_boxed_slice();
        }
        self.0[..H].copy_from_slice(&header);
    }

    /// The body: everything after the header.
    pub fn body(&self) -> &[u8] {
        self.0.get(H..).unwrap_or_default()
    }

    /// The body, to change in place.
    pub fn body_mut(&mut self) -> &mut [u8] {
        self.0.get_mut(H..).unwrap_or_default()
    }

    /// Replaces the body's bytes `range` by `bytes`, the buffer resized to exactly fit.
    pub fn splice(&mut self, range: std::ops::Range<usize>, bytes: &[u8]) {
        let mut data = std::mem::take(&mut self.0).into_vec();
        if data.is_empty() {
            data.resize(H, 0);
        }
        data.reserve_exact(bytes.len().saturating_sub(range.len()));
        data.splice(H + range.start..H + range.end, bytes.iter().copied());
        self.0 = data.into_boxed_slice();
    }

    /// Appends `bytes` to the body.
    pub fn extend(&mut self, bytes: &[u8]) {
        let end = self.body().len();
        self.splice(end..end, bytes);
    }

    /// Replaces the whole body, keeping the header.
    pub fn set_body(&mut self, body: &[u8]) {
        let header = self.header();
        let mut data = Vec::with_capacity(H + body.len());
        data.extend_from_slice(&header);
        data.extend_from_slice(body);
        self.0 = data.into_boxed_slice();
    }

    /// Bytes allocated (header and body; the allocator rounds up to its size class).
    pub fn heap_len(&self) -> usize {
        self.0.len()
    }
}

impl<const H: usize> fmt::Debug for PackedBuf<H> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        debug_packed(f, "PackedBuf", &self.header(), self.body().len())
    }
}

/// The `H` header bytes of a packed buffer starting at `at` (zeros before the first write).
fn header_at<const H: usize>(data: &[u8], at: usize) -> [u8; H] {
    match data.get(at..at + H) {
        Some(header) => header.try_into().expect("H bytes"),
        None => [0; H],
    }
}

/// How a packed buffer shows in debug output: its header and its body's length.
fn debug_packed(
    f: &mut fmt::Formatter<'_>,
    name: &str,
    header: &[u8],
    body_len: usize,
) -> fmt::Result {
    f.debug_struct(name)
        .field("header", &header)
        .field("body_len", &body_len)
        .finish()
}

impl Deref for CompactBytes {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        self.as_bytes()
    }
}

impl Borrow<[u8]> for CompactBytes {
    fn borrow(&self) -> &[u8] {
        self.as_bytes()
    }
}

impl PartialEq for CompactBytes {
    fn eq(&self, other: &Self) -> bool {
        self.as_bytes() == other.as_bytes()
    }
}

impl Eq for CompactBytes {}

impl PartialOrd for CompactBytes {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for CompactBytes {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.as_bytes().cmp(other.as_bytes())
    }
}

impl Hash for CompactBytes {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.as_bytes().hash(state);
    }
}

impl fmt::Debug for CompactBytes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}", String::from_utf8_lossy(self.as_bytes()))
    }
}

/// The size class jemalloc (the server's allocator) gives a request of `len` bytes: 8, then
/// multiples of 16 to 128, then four classes between each power of two and the next.
pub fn size_class(len: usize) -> usize {
    if len <= 8 {
        return 8;
    }
    if len <= 128 {
        return (len + 15) & !15;
    }
    let power = usize::BITS - 1 - (len - 1).leading_zeros(); // 2^power < len <= 2^(power+1)
    let spacing = 1usize << (power - 2);
    (len + spacing - 1) & !(spacing - 1)
}

/// A [`PackedBuf`] for packed collections edited often (a list's nodes, pushed and popped at
/// their ends): the same header and body, but the buffer is always the allocator's whole size
/// class for what it holds ([`size_class`]), with the body's length in a 4-byte prefix, so that
/// an edit that stays within the class (most: classes are 12-25% apart) moves bytes without
/// asking the allocator. An exactly sized buffer took the same memory (the allocator rounds
/// it up to the class) and called `realloc` on every edit: 5.8% of a shard's time under
/// pipelined LPUSHes onto one list. Until something is written it allocates nothing.
#[derive(Clone, Default)]
pub struct ClassBuf<const H: usize>(Box<[u8]>);

/// Bytes of a [`ClassBuf`] before its header: the body's length.
const CLASS_BUF_LEN_BYTES: usize = 4;

impl<const H: usize> ClassBuf<H> {
    /// Bytes of the buffer that are not body: the length prefix and the header.
    pub const FRAME: usize = CLASS_BUF_LEN_BYTES + H;

    /// The header (zeros before the first write).
    pub fn header(&self) -> [u8; H] {
        header_at(&self.0, CLASS_BUF_LEN_BYTES)
    }

    /// Writes the header.
    pub fn set_header(&mut self, header: [u8; H]) {
        if self.0.is_empty() {
            if header == [0; H] {
                return;
            }
            self.resize_for(0);
        }
        self.0[CLASS_BUF_LEN_BYTES..Self::FRAME].copy_from_slice(&header);
    }

    fn body_len(&self) -> usize {
        match self.0.get(..CLASS_BUF_LEN_BYTES) {
            Some(len) => u32::from_le_bytes(len.try_into().expect("4 bytes")) as usize,
            None => 0,
        }
    }

    fn set_body_len(&mut self, len: usize) {
        let len = u32::try_from(len).expect("a packed buffer under 4 GiB");
        self.0[..CLASS_BUF_LEN_BYTES].copy_from_slice(&len.to_le_bytes());
    }

    /// The body.
    pub fn body(&self) -> &[u8] {
        let len = self.body_len();
        self.0
            .get(Self::FRAME..Self::FRAME + len)
            .unwrap_or_default()
    }

    /// Makes the buffer the size class of a body of `body_len` bytes, keeping what fits (the
    /// length prefix is the caller's to set).
    fn resize_for(&mut self, body_len: usize) {
        let class = size_class(Self::FRAME + body_len);
        if class == self.0.len() {
            return;
        }
        let mut data = std::mem::take(&mut self.0).into_vec();
        if class > data.len() {
            data.reserve_exact(class - data.len());
            data.resize(class, 0);
        } else {
            data.truncate(class);
            data.shrink_to_fit();
        }
        self.0 = data.into_boxed_slice();
    }

    /// Replaces the body's bytes `range` by `bytes`.
    pub fn splice(&mut self, range: std::ops::Range<usize>, bytes: &[u8]) {
        self.splice_parts(range, &[bytes]);
    }

    /// Inserts the concatenation of `parts` at body offset `at` (no temporary copy of them).
    pub fn insert_parts(&mut self, at: usize, parts: &[&[u8]]) {
        self.splice_parts(at..at, parts);
    }

    /// Replaces the body's bytes `range` by the concatenation of `parts` (no temporary copy of
    /// them).
    pub fn splice_parts(&mut self, range: std::ops::Range<usize>, parts: &[&[u8]]) {
        let old_len = self.body_len();
        assert!(
            range.start <= range.end && range.end <= old_len,
            "range within the body"
        );
        let added: usize = parts.iter().map(|part| part.len()).sum();
        let new_len = old_len - range.len() + added;
        if new_len > old_len || self.0.is_empty() {
            self.resize_for(new_len);
        }
        let frame = Self::FRAME;
        self.0.copy_within(
            frame + range.end..frame + old_len,
            frame + range.start + added,
        );
        let mut cursor = frame + range.start;
        for part in parts {
            self.0[cursor..cursor + part.len()].copy_from_slice(part);
            cursor += part.len();
        }
        self.set_body_len(new_len);
        if new_len < old_len {
            self.resize_for(new_len);
        }
    }

    /// Replaces the whole body, keeping the header.
    pub fn set_body(&mut self, body: &[u8]) {
        let len = self.body_len();
        self.splice(0..len, body);
    }

    /// Bytes allocated (a whole size class).
    pub fn heap_len(&self) -> usize {
        self.0.len()
    }
}

impl<const H: usize> fmt::Debug for ClassBuf<H> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        debug_packed(f, "ClassBuf", &self.header(), self.body().len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inline_and_heap() {
        assert_eq!(std::mem::size_of::<CompactBytes>(), 24);
        for len in [0, 1, 21, 22, 23, 100] {
            let bytes: Vec<u8> = (0..len as u8).collect();
            let compact = CompactBytes::new(&bytes);
            assert_eq!(compact.as_bytes(), &bytes[..], "len {len}");
            assert_eq!(compact.is_inline(), len <= INLINE_LEN_MAX, "len {len}");
            assert_eq!(CompactBytes::from_vec(bytes.clone()).as_bytes(), &bytes[..]);
        }
    }

    #[test]
    fn size_classes_are_jemallocs() {
        let classes: Vec<usize> = [1, 8, 9, 16, 17, 120, 128, 129, 160, 161, 1025, 2048, 2049]
            .iter()
            .map(|&len| size_class(len))
            .collect();
        assert_eq!(
            classes,
            [8, 8, 16, 16, 32, 128, 128, 160, 160, 192, 1280, 2048, 2560]
        );
        for len in 1..100_000 {
            let class = size_class(len);
            assert!(
                class >= len && size_class(class) == class,
                "{len} -> {class}"
            );
            assert!(
                class - len < class / 4 + 16,
                "{len} -> {class}: at most a quarter more"
            );
        }
    }

    proptest::proptest! {
        #[test]
        fn class_buffers_edit_as_vectors_do(
            edits in proptest::collection::vec(
                (0usize..64, 0usize..8, proptest::collection::vec(proptest::num::u8::ANY, 0..40)),
                1..200,
            )
        ) {
            let mut buf = ClassBuf::<3>::default();
            let mut model: Vec<u8> = Vec::new();
            buf.set_header([7, 8, 9]);
            for (at, removed, bytes) in edits {
                let start = at.min(model.len());
                let end = (start + removed).min(model.len());
                if removed == 0 {
                    buf.insert_parts(start, &[&bytes[..bytes.len() / 2], &bytes[bytes.len() / 2..]]);
                } else {
                    buf.splice(start..end, &bytes);
                }
                model.splice(start..end, bytes.iter().copied());
                proptest::prop_assert_eq!(buf.body(), &model[..]);
                proptest::prop_assert_eq!(buf.header(), [7, 8, 9]);
                proptest::prop_assert_eq!(buf.heap_len(), size_class(ClassBuf::<3>::FRAME + model.len()));
            }
            buf.set_body(b"xy");
            proptest::prop_assert_eq!((buf.body(), buf.header()), (&b"xy"[..], [7, 8, 9]));
        }
    }

    #[test]
    fn packed_buffers_are_exact_and_keep_their_header() {
        assert_eq!(std::mem::size_of::<PackedBuf<4>>(), 16);
        let mut buf = PackedBuf::<4>::default();
        assert_eq!(
            (buf.header(), buf.body(), buf.heap_len()),
            ([0; 4], &b""[..], 0)
        );
        buf.set_header([0; 4]);
        assert_eq!(buf.heap_len(), 0);
        buf.extend(b"abc");
        assert_eq!(
            (buf.header(), buf.body(), buf.heap_len()),
            ([0; 4], &b"abc"[..], 7)
        );
        buf.set_header([1, 2, 3, 4]);
        buf.splice(1..2, b"XYZ");
        assert_eq!((buf.header(), buf.body()), ([1, 2, 3, 4], &b"aXYZc"[..]));
        buf.splice(0..4, b"");
        assert_eq!((buf.body(), buf.heap_len()), (&b"c"[..], 5));
        buf.body_mut()[0] = b'd';
        buf.set_body(b"hello");
        assert_eq!((buf.header(), buf.body()), ([1, 2, 3, 4], &b"hello"[..]));
        let mut fresh = PackedBuf::<2>::default();
        fresh.set_header([7, 0]);
        assert_eq!(
            (fresh.header(), fresh.body(), fresh.heap_len()),
            ([7, 0], &b""[..], 2)
        );
    }
}
