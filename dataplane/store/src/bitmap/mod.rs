//! Bit operations on string values (SETBIT, GETBIT, BITCOUNT, BITPOS, BITOP, BITFIELD), as pure
//! functions over byte strings, so bitmaps stay ordinary strings that GET, SET, APPEND and
//! SETRANGE share.
//!
//! Bits are numbered as Redis numbers them: bit 0 is the most significant bit of byte 0.
//! Bytes past the end read as zero; writes grow the string with zero bytes. Limits on offsets
//! (`proto-max-bulk-len`) are the server's to check.
//!
//! ```
//! use ember_store::bitmap::{bit_count, set_bit, Unit};
//!
//! let mut bytes = Vec::new();
//! assert!(!set_bit(&mut bytes, 7, true));
//! assert_eq!(bytes, [0b0000_0001]);
//! assert_eq!(bit_count(&bytes, Some((0, -1, Unit::Bit))), 1);
//! ```

mod bitfield;
#[cfg(test)]
mod tests;

pub use bitfield::{
    bitfield_get, bitfield_increment, bitfield_set, parse_bitfield_offset, parse_bitfield_type,
    BitfieldError, FieldType, Overflow,
};

/// Whether BITCOUNT / BITPOS indexes count bytes (the default) or bits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unit {
    /// BYTE.
    Byte,
    /// BIT.
    Bit,
}

/// BITOP's operations.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BitOp {
    /// AND of all inputs.
    And,
    /// OR of all inputs.
    Or,
    /// XOR of all inputs.
    Xor,
    /// NOT of the one input.
    Not,
    /// Bits of the first input set in none of the others (Redis 8.2).
    Diff,
    /// Bits set in one or more of the others and not in the first (Redis 8.2).
    Diff1,
    /// Bits of the first input set in one or more of the others (Redis 8.2).
    AndOr,
    /// Bits set in exactly one input (Redis 8.2).
    One,
}

impl BitOp {
    /// The operation BITOP's word names, in any case.
    pub fn parse(word: &[u8]) -> Option<Self> {
        [
            Self::And,
            Self::Or,
            Self::Xor,
            Self::Not,
            Self::Diff,
            Self::Diff1,
            Self::AndOr,
            Self::One,
        ]
        .into_iter()
        .find(|op| word.eq_ignore_ascii_case(op.name().as_bytes()))
    }

    /// The upper-case name, as Redis's errors spell it.
    pub const fn name(self) -> &'static str {
        match self {
            Self::And => "AND",
            Self::Or => "OR",
            Self::Xor => "XOR",
            Self::Not => "NOT",
            Self::Diff => "DIFF",
            Self::Diff1 => "DIFF1",
            Self::AndOr => "ANDOR",
            Self::One => "ONE",
        }
    }

    /// True for the operations of a first input against the rest, which take two or more.
    pub const fn needs_two(self) -> bool {
        matches!(self, Self::Diff | Self::Diff1 | Self::AndOr)
    }
}

/// GETBIT: the bit at `offset` (0 past the end).
pub fn get_bit(bytes: &[u8], offset: u64) -> bool {
    let Ok(byte) = usize::try_from(offset >> 3) else {
        return false;
    };
    bytes
        .get(byte)
        .is_some_and(|&value| value & (0x80 >> (offset & 7)) != 0)
}

/// SETBIT: sets the bit at `offset`, growing the string as needed; the bit's old value.
///
/// # Panics
/// If `offset / 8` does not fit in memory's address range (the server bounds offsets first).
pub fn set_bit(bytes: &mut Vec<u8>, offset: u64, value: bool) -> bool {
    let byte = usize::try_from(offset >> 3).expect("offset checked by the caller");
    if bytes.len() <= byte {
        bytes.resize(byte + 1, 0);
    }
    let mask = 0x80 >> (offset & 7);
    let old = bytes[byte] & mask != 0;
    if value {
        bytes[byte] |= mask;
    } else {
        bytes[byte] &= !mask;
    }
    old
}

/// Redis's normalisation of a `start`/`end` pair over `total` positions: the inclusive range,
/// or `None` when it is empty.
fn normalize(start: i64, end: i64, total: i64) -> Option<(i64, i64)> {
    let start = if start < 0 { total + start } else { start }.max(0);
    let end = if end < 0 { total + end } else { end }
        .max(0)
        .min(total - 1);
    (start <= end).then_some((start, end))
}

/// The bits `first..=last` (bit positions) of `bytes`, as a count of ones.
fn count_ones_between(bytes: &[u8], first: u64, last: u64) -> u64 {
    let (first_byte, last_byte) = ((first >> 3) as usize, (last >> 3) as usize);
    let mut count: u64 = bytes[first_byte..=last_byte]
        .iter()
        .map(|byte| u64::from(byte.count_ones()))
        .sum();
    // Take off the bits of the edge bytes outside the range.
    let head_mask = !(0xffu8 >> (first & 7));
    count -= u64::from((bytes[first_byte] & head_mask).count_ones());
    if (last & 7) != 7 {
        let tail_mask = 0xffu8 >> ((last & 7) + 1);
        count -= u64::from((bytes[last_byte] & tail_mask).count_ones());
    }
    count
}

/// BITCOUNT key [start end [BYTE|BIT]]: ones in the range (negative indexes from the end).
pub fn bit_count(bytes: &[u8], range: Option<(i64, i64, Unit)>) -> u64 {
    let Some((start, end, unit)) = range else {
        return bytes.iter().map(|byte| u64::from(byte.count_ones())).sum();
    };
    let total = match unit {
        Unit::Byte => bytes.len() as i64,
        Unit::Bit => bytes.len() as i64 * 8,
    };
    // Redis answers 0 for two negative indexes the wrong way round before normalising.
    if start < 0 && end < 0 && start > end {
        return 0;
    }
    let Some((start, end)) = normalize(start, end, total) else {
        return 0;
    };
    let (first, last) = match unit {
        Unit::Byte => (start as u64 * 8, end as u64 * 8 + 7),
        Unit::Bit => (start as u64, end as u64),
    };
    count_ones_between(bytes, first, last)
}

/// BITPOS key bit [start [end [BYTE|BIT]]]: the first position holding `bit`, or -1.
///
/// `start` and `end` are `None` when not given. Looking for a 0 with no end given treats the
/// string as followed by zeros, so a string of all ones answers its length in bits, as Redis
/// does; with an end given it answers -1. An empty range answers -1. (A missing key is the
/// server's case: Redis answers 0 for a 0 bit and -1 for a 1 bit.)
pub fn bit_position(
    bytes: &[u8],
    bit: bool,
    start: Option<i64>,
    end: Option<i64>,
    unit: Unit,
) -> i64 {
    let total = match unit {
        Unit::Byte => bytes.len() as i64,
        Unit::Bit => bytes.len() as i64 * 8,
    };
    let end_given = end.is_some();
    let Some((start, end)) = normalize(start.unwrap_or(0), end.unwrap_or(total - 1), total) else {
        return -1;
    };
    let (first, last) = match unit {
        Unit::Byte => (start as u64 * 8, end as u64 * 8 + 7),
        Unit::Bit => (start as u64, end as u64),
    };
    if let Some(found) = first_bit_between(bytes, bit, first, last) {
        return found as i64;
    }
    match (bit, end_given) {
        (false, false) => (last + 1) as i64,
        _ => -1,
    }
}

/// The first position in `first..=last` holding `bit`; whole bytes are skipped at a time.
fn first_bit_between(bytes: &[u8], bit: bool, first: u64, last: u64) -> Option<u64> {
    let skip = if bit { 0x00 } else { 0xff };
    let mut position = first;
    while position <= last {
        let byte = bytes[(position >> 3) as usize];
        if position & 7 == 0 && position + 7 <= last && byte == skip {
            position += 8;
            continue;
        }
        if (byte & (0x80 >> (position & 7)) != 0) == bit {
            return Some(position);
        }
        position += 1;
    }
    None
}

/// BITOP: the result of `op` over `inputs` (missing keys passed as empty strings), as long
/// as the longest input, shorter inputs read as zero-padded. NOT uses the first input only.
pub fn bit_op(op: BitOp, inputs: &[&[u8]]) -> Vec<u8> {
    let len = inputs.iter().map(|input| input.len()).max().unwrap_or(0);
    let Some((first, rest)) = inputs.split_first() else {
        return Vec::new();
    };
    let padded = |input: &[u8]| {
        let mut bytes = input.to_vec();
        bytes.resize(len, 0);
        bytes
    };
    match op {
        BitOp::Not => first.iter().map(|byte| !byte).collect(),
        BitOp::And | BitOp::Or | BitOp::Xor => {
            let mut result = padded(first);
            for input in rest {
                for (at, out) in result.iter_mut().enumerate() {
                    let byte = input.get(at).copied().unwrap_or(0);
                    match op {
                        BitOp::And => *out &= byte,
                        BitOp::Or => *out |= byte,
                        _ => *out ^= byte,
                    }
                }
            }
            result
        }
        BitOp::Diff | BitOp::Diff1 | BitOp::AndOr => {
            // The others' union, then each byte of the first against it.
            let mut others = vec![0u8; len];
            for input in rest {
                for (out, byte) in others.iter_mut().zip(input.iter()) {
                    *out |= byte;
                }
            }
            for (at, out) in others.iter_mut().enumerate() {
                let x = first.get(at).copied().unwrap_or(0);
                *out = match op {
                    BitOp::Diff => x & !*out,
                    BitOp::Diff1 => !x & *out,
                    _ => x & *out,
                };
            }
            others
        }
        BitOp::One => {
            // Bits seen once so far, and bits seen more than once.
            let mut once = padded(first);
            let mut more = vec![0u8; len];
            for input in rest {
                for ((once, more), byte) in once.iter_mut().zip(more.iter_mut()).zip(input.iter()) {
                    *more |= *once & byte;
                    *once = (*once ^ byte) & !*more;
                }
            }
            once
        }
    }
}
