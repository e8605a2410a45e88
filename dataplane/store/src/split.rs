//! Bytes kept in two pieces, the way front coding stores them: a prefix of another stored
//! string (the anchor a packed hash or sorted set stores its names against), then their own
//! bytes. Reading one copies nothing; a reply writes the two pieces one after the other.

use std::borrow::Cow;
use std::cmp::Ordering;

/// A string stored as a prefix of an anchor, then its own bytes.
#[derive(Debug, Clone, Copy)]
pub struct SplitBytes<'a> {
    head: &'a [u8],
    tail: &'a [u8],
}

impl<'a> SplitBytes<'a> {
    /// Bytes stored in one piece.
    pub fn whole(bytes: &'a [u8]) -> Self {
        Self {
            head: &[],
            tail: bytes,
        }
    }

    /// `head` (a prefix of the anchor), then `tail`.
    pub(crate) fn new(head: &'a [u8], tail: &'a [u8]) -> Self {
        Self { head, tail }
    }

    /// Bytes in all.
    pub fn len(self) -> usize {
        self.head.len() + self.tail.len()
    }

    /// True for the empty string.
    pub fn is_empty(self) -> bool {
        self.len() == 0
    }

    /// The two pieces, in order (the first empty when stored whole), to be written one after
    /// the other.
    pub fn parts(self) -> (&'a [u8], &'a [u8]) {
        (self.head, self.tail)
    }

    /// The bytes: borrowed when stored in one piece.
    pub fn bytes(self) -> Cow<'a, [u8]> {
        if self.head.is_empty() {
            Cow::Borrowed(self.tail)
        } else {
            Cow::Owned(self.to_vec())
        }
    }

    /// The bytes, owned.
    pub fn to_vec(self) -> Vec<u8> {
        let mut bytes = Vec::with_capacity(self.len());
        bytes.extend_from_slice(self.head);
        bytes.extend_from_slice(self.tail);
        bytes
    }

    /// Leading bytes shared with `other`.
    pub(crate) fn shared_prefix(self, other: &[u8]) -> usize {
        self.head
            .iter()
            .chain(self.tail)
            .zip(other)
            .take_while(|(x, y)| x == y)
            .count()
    }

    /// Byte order against `other`, as slices compare.
    pub fn cmp_bytes(self, other: &[u8]) -> Ordering {
        let split = self.head.len().min(other.len());
        self.head
            .cmp(&other[..split])
            .then_with(|| self.tail.cmp(&other[split..]))
    }
}

impl PartialEq for SplitBytes<'_> {
    fn eq(&self, other: &Self) -> bool {
        self.len() == other.len()
            && self
                .head
                .iter()
                .chain(self.tail)
                .eq(other.head.iter().chain(other.tail))
    }
}

impl Eq for SplitBytes<'_> {}

impl PartialEq<[u8]> for SplitBytes<'_> {
    fn eq(&self, other: &[u8]) -> bool {
        self.len() == other.len() && self.cmp_bytes(other).is_eq()
    }
}

/// Bytes at the start of both.
pub(crate) fn shared_prefix(a: &[u8], b: &[u8]) -> usize {
    a.iter().zip(b).take_while(|(x, y)| x == y).count()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn compares_as_its_bytes() {
        let anchor = b"member:000042";
        let cases: [&[u8]; 8] = [
            b"",
            b"m",
            b"member",
            b"member:000041",
            b"member:000042",
            b"member:0000420",
            b"member:1",
            b"n",
        ];
        for stored in cases {
            let shared = shared_prefix(anchor, stored);
            for head_len in 0..=shared {
                let split = SplitBytes::new(&anchor[..head_len], &stored[head_len..]);
                assert_eq!(split.bytes(), stored);
                assert_eq!(split.len(), stored.len());
                let (head, tail) = split.parts();
                assert_eq!([head, tail].concat(), stored);
                for other in cases {
                    assert_eq!(split.shared_prefix(other), shared_prefix(stored, other));
                    assert_eq!(
                        split.cmp_bytes(other),
                        stored.cmp(other),
                        "{stored:?} {other:?}"
                    );
                    assert_eq!(*other == *stored, split == *other);
                    assert_eq!(split == SplitBytes::whole(other), stored == other);
                }
            }
        }
        assert!(matches!(SplitBytes::whole(b"x").bytes(), Cow::Borrowed(_)));
    }
}
