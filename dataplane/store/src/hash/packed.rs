//! The packed size class: fields back to back in one exactly sized buffer, as a listpack keeps
//! them. The first field's name is stored whole, and every later name against it: the length
//! of the prefix it shares with the first name, then the rest (front coding against one anchor,
//! so that a name is two slices of the buffer and reads need no copy). Fields named after one
//! pattern (`member:000001`, `member:000002`...) then cost their differing bytes; names with
//! nothing in common cost one byte more than before. Each field: LEB128 shared length, LEB128
//! length of the rest, the rest, LEB128 value length, the value, and an expiry tag (0, or 1 and
//! eight little-endian bytes of Unix milliseconds) once any field of the hash was given an
//! expiry; until then fields carry no tag. The buffer's 16-byte header holds the field count and
//! three words of the hash's own counters, so a packed hash is one allocation; the third counter
//! (the hash "had a field TTL") is also what says the fields are tagged.

use crate::compact::PackedBuf;
use crate::split::{shared_prefix, SplitBytes};
use crate::varint;

/// A field read from either size class.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct FieldRef<'a> {
    pub(super) name: SplitBytes<'a>,
    pub(super) value: &'a [u8],
    pub(super) expire_at_ms: Option<u64>,
}

impl FieldRef<'_> {
    pub(super) fn is_due(&self, now_ms: u64) -> bool {
        self.expire_at_ms.is_some_and(|at_ms| at_ms <= now_ms) && !crate::value::expiry_suspended()
    }
}

/// Header bytes: the field count and three counter words of the owner.
const HEADER_BYTES: usize = 16;

#[derive(Clone, Default)]
pub(super) struct Packed {
    buf: PackedBuf<HEADER_BYTES>,
}

/// Appends a field whose name is stored against `anchor` (empty: whole).
fn encode(
    out: &mut Vec<u8>,
    anchor: &[u8],
    name: &[u8],
    value: &[u8],
    expire_at_ms: Option<u64>,
    tagged: bool,
) {
    let shared = shared_prefix(anchor, name);
    varint::push(out, shared as u64);
    varint::push(out, (name.len() - shared) as u64);
    out.extend_from_slice(&name[shared..]);
    encode_value(out, value, expire_at_ms, tagged);
}

/// Appends what follows a field's name: its value and, in the tagged layout, its expiry tag.
fn encode_value(out: &mut Vec<u8>, value: &[u8], expire_at_ms: Option<u64>, tagged: bool) {
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

    /// The first field's name, which the others are stored against (empty when none).
    fn anchor(&self) -> &[u8] {
        if self.len() == 0 {
            return &[];
        }
        let data = self.buf.body();
        let mut at = 0;
        let shared = varint::read(data, &mut at) as usize;
        debug_assert_eq!(shared, 0, "the first name is stored whole");
        let rest = varint::read(data, &mut at) as usize;
        &data[at..at + rest]
    }

    /// Writes `fields` (name, value, expiry) as the whole body, against the first one's name.
    fn rewrite(&mut self, fields: Vec<(Vec<u8>, Vec<u8>, Option<u64>)>, tagged: bool) {
        let mut body = Vec::with_capacity(self.buf.body().len() + self.len());
        let anchor = fields.first().map_or(&[][..], |(name, _, _)| name);
        for (index, (name, value, expire_at_ms)) in fields.iter().enumerate() {
            let against: &[u8] = if index == 0 { &[] } else { anchor };
            encode(&mut body, against, name, value, *expire_at_ms, tagged);
        }
        self.buf.set_body(&body);
    }

    /// The byte after the name of the field that starts at byte `at`.
    fn name_end(&self, mut at: usize) -> usize {
        let data = self.buf.body();
        let _shared = varint::read(data, &mut at);
        let rest = varint::read(data, &mut at) as usize;
        at + rest
    }

    /// Every field as owned bytes.
    fn owned_fields(&self) -> Vec<(Vec<u8>, Vec<u8>, Option<u64>)> {
        self.iter()
            .map(|field| {
                (
                    field.name.bytes().into_owned(),
                    field.value.to_vec(),
                    field.expire_at_ms,
                )
            })
            .collect()
    }

    /// Rewrites every field with an expiry tag (none yet had an expiry).
    fn add_tags(&mut self) {
        let fields = self.owned_fields();
        self.rewrite(fields, true);
        self.set_word(TAGGED_WORD, 1);
    }

    /// The field at byte `at` and the byte after it, its name read against `anchor`.
    fn decode<'s>(&'s self, anchor: &'s [u8], at: usize) -> (FieldRef<'s>, usize) {
        let data = self.buf.body();
        let mut name_at = at;
        let shared = varint::read(data, &mut name_at) as usize;
        let rest = varint::read(data, &mut name_at) as usize;
        let name = SplitBytes::new(&anchor[..shared], &data[name_at..name_at + rest]);
        let mut at = name_at + rest;
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
        let anchor = self.anchor();
        let mut at = 0;
        std::iter::from_fn(move || {
            if at >= self.buf.body().len() {
                return None;
            }
            let (field, next) = self.decode(anchor, at);
            at = next;
            Some(field)
        })
    }

    /// Byte range of field `index`.
    fn span(&self, index: usize) -> std::ops::Range<usize> {
        let anchor = self.anchor();
        let mut at = 0;
        for _ in 0..index {
            at = self.decode(anchor, at).1;
        }
        at..self.decode(anchor, at).1
    }

    pub(super) fn get(&self, index: usize) -> FieldRef<'_> {
        self.decode(self.anchor(), self.span(index).start).0
    }

    /// The position of the field named `name`.
    pub(super) fn position(&self, name: &[u8]) -> Option<usize> {
        self.find(name).map(|(index, _)| index)
    }

    /// The position and the field named `name`. A stored name that shares more of the first
    /// name than `name` does cannot be it, and one that shares less compares its own bytes only.
    pub(super) fn find(&self, name: &[u8]) -> Option<(usize, FieldRef<'_>)> {
        // Reads only the lengths of a field that is not it (decoding every field was 10% more
        // CPU a HGET of the last of ten fields).
        let data = self.buf.body();
        let anchor = self.anchor();
        let common = shared_prefix(anchor, name);
        let tagged = self.tagged();
        let mut at = 0;
        let mut index = 0;
        while at < data.len() {
            let start = at;
            let shared = varint::read(data, &mut at) as usize;
            let rest = varint::read(data, &mut at) as usize;
            if shared <= common
                && shared + rest == name.len()
                && data[at..at + rest] == name[shared..]
            {
                return Some((index, self.decode(anchor, start).0));
            }
            at += rest;
            let value_len = varint::read(data, &mut at) as usize;
            at += value_len;
            if tagged {
                at += if data[at] == 1 { 9 } else { 1 };
            }
            index += 1;
        }
        None
    }

    pub(super) fn push(&mut self, name: &[u8], value: &[u8]) {
        // Exactly the field's bytes, as a listpack grows: doubling would leave up to half of
        // every small hash's buffer unused.
        let mut encoded = Vec::with_capacity(
            2 + varint::len(name.len() as u64)
                + name.len()
                + varint::len(value.len() as u64)
                + value.len()
                + 1,
        );
        encode(
            &mut encoded,
            self.anchor(),
            name,
            value,
            None,
            self.tagged(),
        );
        self.buf.extend(&encoded);
        self.set_len(self.len() + 1);
    }

    /// Rewrites field `index` with this value and expiry (its name kept as stored).
    pub(super) fn replace(&mut self, index: usize, value: &[u8], expire_at_ms: Option<u64>) {
        if expire_at_ms.is_some() && !self.tagged() {
            self.add_tags();
        }
        let span = self.span(index);
        let name_end = self.name_end(span.start);
        let mut encoded = Vec::with_capacity(value.len() + 12);
        encode_value(&mut encoded, value, expire_at_ms, self.tagged());
        self.buf.splice(name_end..span.end, &encoded);
    }

    /// Removes field `index`, keeping the order of the others; its name, value and expiry.
    pub(super) fn remove(&mut self, index: usize) -> (Vec<u8>, Vec<u8>, Option<u64>) {
        let span = self.span(index);
        let field = self.decode(self.anchor(), span.start).0;
        let taken = (
            field.name.bytes().into_owned(),
            field.value.to_vec(),
            field.expire_at_ms,
        );
        if index == 0 && self.len() > 1 {
            // The anchor goes: the others are written again against the next name.
            let mut rest = self.owned_fields();
            rest.remove(0);
            let tagged = self.tagged();
            self.rewrite(rest, tagged);
        } else {
            self.buf.splice(span, &[]);
        }
        self.set_len(self.len() - 1);
        taken
    }

    pub(super) fn heap_len(&self) -> usize {
        self.buf.heap_len()
    }
}
