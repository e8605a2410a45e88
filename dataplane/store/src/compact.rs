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
}
