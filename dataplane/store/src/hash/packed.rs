//! The packed size class: fields back to back in one exactly sized buffer, as a listpack keeps
//! them, each as a LEB128 name length, the name, a LEB128 value length, the value, and an
//! expiry tag (0, or 1 and eight little-endian bytes of Unix milliseconds) once any field of
//! the hash was given an expiry; until then fields carry no tag. The buffer's 16-byte header
//! holds the field count and three words of the hash's own counters, so a packed hash is one
//! allocation; the third counter (the hash "had a field TTL") is also what says the fields are
//! tagged.

use crate::compact::PackedBuf;
use crate::varint;

/// A field read from either size class.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct FieldRef<'a> {
    pub(super) name: &'a [u8],
    pub(super) value: &'a [u8],
    pub(super) expire_at_ms: Option<u64>,
}

impl FieldRef<'_> {
    pub(super) fn is_due(&self, now_ms: u64) -> bool {
        self.expire_at_ms.is_some_and(|at_ms| at_ms <= now_ms)
    }
}

/// Header bytes: the field count and three counter words of the owner.
const HEADER_BYTES: usize = 16;

#[derive(Clone, Default)]
pub(super) struct Packed {
    buf: PackedBuf<HEADER_BYTES>,
}

fn encode(out: &mut Vec<u8>, name: &[u8], value: &[u8], expire_at_ms: Option<u64>, tagged: bool) {
    varint::push(out, name.len() as u64);
    out.extend_from_slice(name);
    varint::push(out, value.len() as u64);
    out.extend_from_slice(value);
    match expire_at_ms {
        None if tagged => out.push(0),
        None => {}
        Some(at_ms) => {
            assert!(tagged, "an expiry needs the tagged layout");
            out.push(1);
            out.extend_from_slice(&at_ms.to_le_bytes());
        }
    }
}

/// The header word that says fields carry an expiry tag (the owner's third counter).
const TAGGED_WORD: usize = 3;

impl Packed {
    /// Header word `index` (0: the field count; 1 to 3: the owner's).
    fn word(&self, index: usize) -> u32 {
        let header = self.buf.header();
        u32::from_le_bytes(
            header[index * 4..index * 4 + 4]
                .try_into()
                .expect("4 bytes"),
        )
    }

    fn set_word(&mut self, index: usize, word: u32) {
        let mut header = self.buf.header();
        header[index * 4..index * 4 + 4].copy_from_slice(&word.to_le_bytes());
        self.buf.set_header(header);
    }

    pub(super) fn len(&self) -> usize {
        self.word(0) as usize
    }

    fn set_len(&mut self, len: usize) {
        self.set_word(
            0,
            u32::try_from(len).expect("a packed hash holds fewer than 2^32 fields"),
        );
    }

    /// The owner's counter words.
    pub(super) fn counters(&self) -> [u32; 3] {
        [self.word(1), self.word(2), self.word(3)]
    }

    pub(super) fn set_counters(&mut self, counters: [u32; 3]) {
        for (index, word) in counters.into_iter().enumerate() {
            self.set_word(index + 1, word);
        }
    }

    /// True when fields carry an expiry tag.
    fn tagged(&self) -> bool {
        self.word(TAGGED_WORD) != 0
    }

    /// Rewrites every field with an expiry tag (none yet had an expiry).
    fn add_tags(&mut self) {
        let mut tagged = Vec::with_capacity(self.buf.body().len() + self.len());
        for field in self.iter() {
            encode(&mut tagged, field.name, field.value, None, true);
        }
        self.buf.set_body(&tagged);
        self.set_word(TAGGED_WORD, 1);
    }

    /// The field at byte `at` and the byte after it.
    fn decode(&self, mut at: usize) -> (FieldRef<'_>, usize) {
        let data = self.buf.body();
        let name_len = varint::read(data, &mut at) as usize;
        let name = &data[at..at + name_len];
        at += name_len;
        let value_len = varint::read(data, &mut at) as usize;
        let value = &data[at..at + value_len];
        at += value_len;
        let tag = if self.tagged() {
            at += 1;
            data[at - 1]
        } else {
            0
        };
        let expire_at_ms = (tag == 1).then(|| {
            let bytes = data[at..at + 8].try_into().expect("8 bytes");
            at += 8;
            u64::from_le_bytes(bytes)
        });
        let field = FieldRef {
            name,
            value,
            expire_at_ms,
        };
        (field, at)
    }

    pub(super) fn iter(&self) -> impl Iterator<Item = FieldRef<'_>> + '_ {
        let mut at = 0;
        std::iter::from_fn(move || {
            if at >= self.buf.body().len() {
                return None;
            }
            let (field, next) = self.decode(at);
            at = next;
            Some(field)
        })
    }

    /// Byte range of field `index`.
    fn span(&self, index: usize) -> std::ops::Range<usize> {
        let mut at = 0;
        for _ in 0..index {
            at = self.decode(at).1;
        }
        at..self.decode(at).1
    }

    pub(super) fn get(&self, index: usize) -> FieldRef<'_> {
        self.decode(self.span(index).start).0
    }

    pub(super) fn position(&self, name: &[u8]) -> Option<usize> {
        self.iter().position(|field| field.name == name)
    }

    pub(super) fn push(&mut self, name: &[u8], value: &[u8]) {
        // Exactly the field's bytes, as a listpack grows: doubling would leave up to half of
        // every small hash's buffer unused.
        let mut encoded = Vec::with_capacity(
            varint::len(name.len() as u64)
                + name.len()
                + varint::len(value.len() as u64)
                + value.len()
                + 1,
        );
        encode(&mut encoded, name, value, None, self.tagged());
        self.buf.extend(&encoded);
        self.set_len(self.len() + 1);
    }

    /// Rewrites field `index` with this value and expiry (its name kept).
    pub(super) fn replace(&mut self, index: usize, value: &[u8], expire_at_ms: Option<u64>) {
        if expire_at_ms.is_some() && !self.tagged() {
            self.add_tags();
        }
        let span = self.span(index);
        let name = self.decode(span.start).0.name.to_vec();
        let mut encoded = Vec::with_capacity(name.len() + value.len() + 12);
        encode(&mut encoded, &name, value, expire_at_ms, self.tagged());
        self.buf.splice(span, &encoded);
    }

    /// Removes field `index`, keeping the order of the others; its name, value and expiry.
    pub(super) fn remove(&mut self, index: usize) -> (Vec<u8>, Vec<u8>, Option<u64>) {
        let span = self.span(index);
        let field = self.decode(span.start).0;
        let taken = (
            field.name.to_vec(),
            field.value.to_vec(),
            field.expire_at_ms,
        );
        self.buf.splice(span, &[]);
        self.set_len(self.len() - 1);
        taken
    }

    pub(super) fn heap_len(&self) -> usize {
        self.buf.heap_len()
    }
}
