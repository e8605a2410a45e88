//! Redis's packed blobs: listpack (written and read), ziplist, intset and zipmap (read).

use super::rdb::Read;
use super::DumpError;
use crate::value::parse_canonical_i64;

/// One listpack or ziplist element.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) enum Item<'a> {
    /// An integer-encoded element.
    Int(i64),
    /// A string element.
    Str(&'a [u8]),
}

impl Item<'_> {
    /// The element as Redis returns it: integers as their decimal text.
    pub(super) fn to_vec(self) -> Vec<u8> {
        match self {
            Item::Int(int) => int.to_string().into_bytes(),
            Item::Str(bytes) => bytes.to_vec(),
        }
    }

    /// The element as an integer (stream counters, IDs and flags are integers).
    pub(super) fn int(self) -> Read<i64> {
        match self {
            Item::Int(int) => Ok(int),
            Item::Str(bytes) => parse_canonical_i64(bytes).ok_or(DumpError::BadFormat),
        }
    }

    /// The element as a score.
    pub(super) fn score(self) -> Read<f64> {
        match self {
            Item::Int(int) => Ok(int as f64),
            Item::Str(bytes) => super::rdb::parse_score(bytes),
        }
    }
}

/// Listpack header: total bytes (u32) and element count (u16), little endian.
const LISTPACK_HEADER_LEN: usize = 6;
/// The element count a listpack header holds when it has 65535 or more.
const LISTPACK_COUNT_UNKNOWN: usize = u16::MAX as usize;
const LISTPACK_END: u8 = 0xFF;

/// Builds a listpack as Redis 7.0 writes one.
pub(super) struct ListpackWriter {
    buf: Vec<u8>,
    count: usize,
}

impl ListpackWriter {
    pub(super) fn new() -> Self {
        Self {
            buf: vec![0; LISTPACK_HEADER_LEN],
            count: 0,
        }
    }

    /// Bytes so far (header included, terminator not).
    pub(super) fn len(&self) -> usize {
        self.buf.len()
    }

    /// Elements so far.
    pub(super) fn count(&self) -> usize {
        self.count
    }

    /// Appends `bytes`, as an integer when it is one's canonical text (as `lpAppend` does).
    pub(super) fn push(&mut self, bytes: &[u8]) {
        match parse_canonical_i64(bytes) {
            Some(int) => self.push_int(int),
            None => self.push_str(bytes),
        }
    }

    /// Appends an integer in the smallest encoding that holds it.
    pub(super) fn push_int(&mut self, int: i64) {
        let start = self.buf.len();
        if (0..=127).contains(&int) {
            self.buf.push(int as u8);
        } else if (-4096..=4095).contains(&int) {
            let bits = (int as u64 & 0x1fff) as u16;
            self.buf
                .extend_from_slice(&[0xC0 | (bits >> 8) as u8, bits as u8]);
        } else if let Ok(small) = i16::try_from(int) {
            self.buf.push(0xF1);
            self.buf.extend_from_slice(&small.to_le_bytes());
        } else if (-(1 << 23)..(1 << 23)).contains(&int) {
            self.buf.push(0xF2);
            self.buf.extend_from_slice(&(int as i32).to_le_bytes()[..3]);
        } else if let Ok(small) = i32::try_from(int) {
            self.buf.push(0xF3);
            self.buf.extend_from_slice(&small.to_le_bytes());
        } else {
            self.buf.push(0xF4);
            self.buf.extend_from_slice(&int.to_le_bytes());
        }
        self.finish_entry(start);
    }

    /// Appends a string element.
    pub(super) fn push_str(&mut self, bytes: &[u8]) {
        let start = self.buf.len();
        let len = bytes.len();
        if len < 64 {
            self.buf.push(0x80 | len as u8);
        } else if len < 4096 {
            self.buf
                .extend_from_slice(&[0xE0 | (len >> 8) as u8, len as u8]);
        } else {
            self.buf.push(0xF0);
            self.buf.extend_from_slice(&(len as u32).to_le_bytes());
        }
        self.buf.extend_from_slice(bytes);
        self.finish_entry(start);
    }

    /// Appends the back length of the entry that starts at `start`.
    fn finish_entry(&mut self, start: usize) {
        let len = (self.buf.len() - start) as u64;
        let digits = backlen_size(len as usize);
        for digit in (0..digits).rev() {
            let seven = ((len >> (7 * digit)) & 127) as u8;
            // Every byte but the most significant one carries the continuation bit.
            let continued = if digit == digits - 1 { 0 } else { 128 };
            self.buf.push(seven | continued);
        }
        self.count += 1;
    }

    /// The finished listpack.
    pub(super) fn finish(mut self) -> Vec<u8> {
        self.buf.push(LISTPACK_END);
        let total = self.buf.len() as u32;
        self.buf[..4].copy_from_slice(&total.to_le_bytes());
        let count = self.count.min(LISTPACK_COUNT_UNKNOWN) as u16;
        self.buf[4..6].copy_from_slice(&count.to_le_bytes());
        self.buf
    }
}

/// Bytes of the back length of an entry of `len` bytes.
fn backlen_size(len: usize) -> usize {
    match len {
        0..=127 => 1,
        128..=16_383 => 2,
        16_384..=2_097_151 => 3,
        2_097_152..=268_435_455 => 4,
        _ => 5,
    }
}

fn slice(data: &[u8], start: usize, len: usize) -> Read<&[u8]> {
    let end = start.checked_add(len).ok_or(DumpError::BadFormat)?;
    data.get(start..end).ok_or(DumpError::BadFormat)
}

fn le_int(bytes: &[u8]) -> i64 {
    let mut buf = [0u8; 8];
    buf[..bytes.len()].copy_from_slice(bytes);
    let shift = 64 - 8 * bytes.len() as u32;
    (i64::from_le_bytes(buf) << shift) >> shift
}

/// Reads every element of a listpack, checking its header, lengths and terminator.
pub(super) fn read_listpack(data: &[u8]) -> Read<Vec<Item<'_>>> {
    let header = slice(data, 0, LISTPACK_HEADER_LEN)?;
    let total = u32::from_le_bytes(header[..4].try_into().expect("4 bytes")) as usize;
    let count = usize::from(u16::from_le_bytes(
        header[4..6].try_into().expect("2 bytes"),
    ));
    if total != data.len() {
        return Err(DumpError::BadFormat);
    }
    let mut items = Vec::new();
    let mut at = LISTPACK_HEADER_LEN;
    loop {
        let first = *data.get(at).ok_or(DumpError::BadFormat)?;
        if first == LISTPACK_END {
            break;
        }
        let (item, entry_len) = match first {
            0x00..=0x7F => (Item::Int(i64::from(first)), 1),
            0x80..=0xBF => {
                let len = usize::from(first & 0x3f);
                (Item::Str(slice(data, at + 1, len)?), 1 + len)
            }
            0xC0..=0xDF => {
                let bits = (i64::from(first & 0x1f) << 8)
                    | i64::from(*slice(data, at + 1, 1)?.first().expect("1 byte"));
                let int = if bits >= 1 << 12 {
                    bits - (1 << 13)
                } else {
                    bits
                };
                (Item::Int(int), 2)
            }
            0xE0..=0xEF => {
                let len =
                    (usize::from(first & 0x0f) << 8) | usize::from(slice(data, at + 1, 1)?[0]);
                (Item::Str(slice(data, at + 2, len)?), 2 + len)
            }
            0xF0 => {
                let len =
                    u32::from_le_bytes(slice(data, at + 1, 4)?.try_into().expect("4")) as usize;
                (Item::Str(slice(data, at + 5, len)?), 5 + len)
            }
            0xF1 => (Item::Int(le_int(slice(data, at + 1, 2)?)), 3),
            0xF2 => (Item::Int(le_int(slice(data, at + 1, 3)?)), 4),
            0xF3 => (Item::Int(le_int(slice(data, at + 1, 4)?)), 5),
            0xF4 => (Item::Int(le_int(slice(data, at + 1, 8)?)), 9),
            _ => return Err(DumpError::BadFormat),
        };
        at += entry_len + backlen_size(entry_len);
        if at > data.len() {
            return Err(DumpError::BadFormat);
        }
        items.push(item);
    }
    if at + 1 != data.len() || (count != LISTPACK_COUNT_UNKNOWN && count != items.len()) {
        return Err(DumpError::BadFormat);
    }
    Ok(items)
}

/// Ziplist header: total bytes (u32), tail offset (u32), count (u16).
const ZIPLIST_HEADER_LEN: usize = 10;

/// Reads every element of a ziplist (Redis before 7.0).
pub(super) fn read_ziplist(data: &[u8]) -> Read<Vec<Item<'_>>> {
    let header = slice(data, 0, ZIPLIST_HEADER_LEN)?;
    let total = u32::from_le_bytes(header[..4].try_into().expect("4 bytes")) as usize;
    if total != data.len() {
        return Err(DumpError::BadFormat);
    }
    let mut items = Vec::new();
    let mut at = ZIPLIST_HEADER_LEN;
    loop {
        let first = *data.get(at).ok_or(DumpError::BadFormat)?;
        if first == 0xFF {
            break;
        }
        // The previous entry's length: 1 byte, or 0xFE and 4 bytes.
        at += if first < 0xFE { 1 } else { 5 };
        let encoding = *data.get(at).ok_or(DumpError::BadFormat)?;
        let (item, len) = match encoding >> 6 {
            0 => {
                let len = usize::from(encoding & 0x3f);
                (Item::Str(slice(data, at + 1, len)?), 1 + len)
            }
            1 => {
                let len =
                    (usize::from(encoding & 0x3f) << 8) | usize::from(slice(data, at + 1, 1)?[0]);
                (Item::Str(slice(data, at + 2, len)?), 2 + len)
            }
            2 if encoding == 0x80 => {
                let len =
                    u32::from_be_bytes(slice(data, at + 1, 4)?.try_into().expect("4")) as usize;
                (Item::Str(slice(data, at + 5, len)?), 5 + len)
            }
            2 => return Err(DumpError::BadFormat),
            _ => match encoding {
                0xC0 => (Item::Int(le_int(slice(data, at + 1, 2)?)), 3),
                0xD0 => (Item::Int(le_int(slice(data, at + 1, 4)?)), 5),
                0xE0 => (Item::Int(le_int(slice(data, at + 1, 8)?)), 9),
                0xF0 => (Item::Int(le_int(slice(data, at + 1, 3)?)), 4),
                0xFE => (Item::Int(le_int(slice(data, at + 1, 1)?)), 2),
                0xF1..=0xFD => (Item::Int(i64::from(encoding & 0x0f) - 1), 1),
                _ => return Err(DumpError::BadFormat),
            },
        };
        at += len;
        items.push(item);
    }
    if at + 1 != data.len() {
        return Err(DumpError::BadFormat);
    }
    Ok(items)
}

/// Reads an intset's members.
pub(super) fn read_intset(data: &[u8]) -> Read<Vec<i64>> {
    let header = slice(data, 0, 8)?;
    let width = u32::from_le_bytes(header[..4].try_into().expect("4 bytes")) as usize;
    let count = u32::from_le_bytes(header[4..].try_into().expect("4 bytes")) as usize;
    if !matches!(width, 2 | 4 | 8) || data.len() != 8 + width.saturating_mul(count) {
        return Err(DumpError::BadFormat);
    }
    Ok(data[8..].chunks_exact(width).map(le_int).collect())
}

/// Builds an intset of `members` (sorted here), in the narrowest width that holds them all.
pub(super) fn write_intset(mut members: Vec<i64>) -> Vec<u8> {
    members.sort_unstable();
    let width: usize = if members.iter().all(|&m| i16::try_from(m).is_ok()) {
        2
    } else if members.iter().all(|&m| i32::try_from(m).is_ok()) {
        4
    } else {
        8
    };
    let mut out = Vec::with_capacity(8 + width * members.len());
    out.extend_from_slice(&(width as u32).to_le_bytes());
    out.extend_from_slice(&(members.len() as u32).to_le_bytes());
    for member in members {
        out.extend_from_slice(&member.to_le_bytes()[..width]);
    }
    out
}

/// Reads a zipmap's field/value pairs (hashes of Redis before 2.6).
pub(super) fn read_zipmap(data: &[u8]) -> Read<Vec<(&[u8], &[u8])>> {
    fn length(data: &[u8], at: &mut usize) -> Read<usize> {
        let first = *data.get(*at).ok_or(DumpError::BadFormat)?;
        match first {
            0..=253 => {
                *at += 1;
                Ok(usize::from(first))
            }
            254 => {
                let len = u32::from_le_bytes(slice(data, *at + 1, 4)?.try_into().expect("4"));
                *at += 5;
                Ok(len as usize)
            }
            255 => Err(DumpError::BadFormat),
        }
    }
    let mut pairs = Vec::new();
    let mut at = 1;
    loop {
        match data.get(at) {
            None => return Err(DumpError::BadFormat),
            Some(255) => break,
            Some(_) => {}
        }
        let name_len = length(data, &mut at)?;
        let name = slice(data, at, name_len)?;
        at += name_len;
        let value_len = length(data, &mut at)?;
        let free = usize::from(*data.get(at).ok_or(DumpError::BadFormat)?);
        let value = slice(data, at + 1, value_len)?;
        at += 1 + value_len + free;
        pairs.push((name, value));
    }
    if at + 1 != data.len() {
        return Err(DumpError::BadFormat);
    }
    Ok(pairs)
}
