//! BITFIELD and BITFIELD_RO: integers of 1 to 64 bits at any bit offset.

use std::fmt;

/// A field's type: `i1`..`i64` or `u1`..`u63` (Redis replies with signed 64-bit integers, so
/// `u64` cannot be returned and is refused).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FieldType {
    /// True for `i`.
    pub signed: bool,
    /// Width in bits.
    pub bits: u32,
}

/// OVERFLOW's behaviours for SET and INCRBY.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Overflow {
    /// Wrap around (the default).
    #[default]
    Wrap,
    /// Saturate at the type's minimum or maximum.
    Sat,
    /// Do nothing and answer nil.
    Fail,
}

/// BITFIELD argument errors; Display is Redis's reply.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BitfieldError {
    /// A type that is not `i1`..`i64` or `u1`..`u63`.
    InvalidType,
    /// An offset that is not a non-negative integer (or `#n`) within range.
    InvalidOffset,
}

impl fmt::Display for BitfieldError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::InvalidType => {
                "ERR Invalid bitfield type. Use something like i16 u8. Note that u64 is not supported but i64 is."
            }
            Self::InvalidOffset => "ERR bit offset is not an integer or out of range",
        })
    }
}

impl std::error::Error for BitfieldError {}

/// Reads a field type such as `i16` or `u8`.
///
/// # Errors
/// [`BitfieldError::InvalidType`].
pub fn parse_bitfield_type(text: &[u8]) -> Result<FieldType, BitfieldError> {
    let (signed, digits) = match text.split_first() {
        Some((b'i' | b'I', digits)) => (true, digits),
        Some((b'u' | b'U', digits)) => (false, digits),
        _ => return Err(BitfieldError::InvalidType),
    };
    let bits: u32 = std::str::from_utf8(digits)
        .ok()
        .filter(|d| !d.is_empty() && d.bytes().all(|b| b.is_ascii_digit()))
        .and_then(|d| d.parse().ok())
        .ok_or(BitfieldError::InvalidType)?;
    let bits_max = if signed { 64 } else { 63 };
    if !(1..=bits_max).contains(&bits) {
        return Err(BitfieldError::InvalidType);
    }
    Ok(FieldType { signed, bits })
}

/// Reads an offset: `n` bits, or `#n` fields of the type's width. `bits_max` is the largest
/// bit offset allowed (Redis: `proto-max-bulk-len` × 8 - 1).
///
/// # Errors
/// [`BitfieldError::InvalidOffset`] for a malformed, negative or too large offset.
pub fn parse_bitfield_offset(
    text: &[u8],
    field: FieldType,
    bits_max: u64,
) -> Result<u64, BitfieldError> {
    let (scaled, digits) = match text.strip_prefix(b"#") {
        Some(digits) => (true, digits),
        None => (false, text),
    };
    let value = crate::value::parse_canonical_i64(digits).ok_or(BitfieldError::InvalidOffset)?;
    let value = u64::try_from(value).map_err(|_| BitfieldError::InvalidOffset)?;
    let offset = if scaled {
        value
            .checked_mul(u64::from(field.bits))
            .ok_or(BitfieldError::InvalidOffset)?
    } else {
        value
    };
    if offset > bits_max {
        return Err(BitfieldError::InvalidOffset);
    }
    Ok(offset)
}

fn read_bits(bytes: &[u8], offset: u64, bits: u32) -> u64 {
    (0..u64::from(bits)).fold(0u64, |value, at| {
        (value << 1) | u64::from(super::get_bit(bytes, offset + at))
    })
}

/// GET type offset: the field's value (bytes past the end read as zero).
pub fn bitfield_get(bytes: &[u8], offset: u64, field: FieldType) -> i64 {
    let raw = read_bits(bytes, offset, field.bits);
    if field.signed && field.bits < 64 && raw >> (field.bits - 1) & 1 == 1 {
        // Sign-extend.
        (raw | (u64::MAX << field.bits)) as i64
    } else {
        raw as i64
    }
}

/// Grows `bytes` to hold the field, as Redis does for every write op before running any,
/// even one that OVERFLOW FAIL then refuses.
fn reserve(bytes: &mut Vec<u8>, offset: u64, bits: u32) {
    let last_byte =
        usize::try_from((offset + u64::from(bits) - 1) >> 3).expect("offset checked by the caller");
    if bytes.len() <= last_byte {
        bytes.resize(last_byte + 1, 0);
    }
}

fn write_bits(bytes: &mut Vec<u8>, offset: u64, bits: u32, value: u64) {
    for at in 0..u64::from(bits) {
        let bit = value >> (u64::from(bits) - 1 - at) & 1 == 1;
        super::set_bit(bytes, offset + at, bit);
    }
}

/// The type's range.
fn limits(field: FieldType) -> (i128, i128) {
    if field.signed {
        let max = (1i128 << (field.bits - 1)) - 1;
        (-max - 1, max)
    } else {
        (0, (1i128 << field.bits) - 1)
    }
}

/// `value` within the type under `overflow`, or `None` for FAIL on overflow.
fn fit(value: i128, field: FieldType, overflow: Overflow) -> Option<i64> {
    let (min, max) = limits(field);
    if (min..=max).contains(&value) {
        return Some(value as i64);
    }
    match overflow {
        Overflow::Fail => None,
        Overflow::Sat => Some(if value > max { max } else { min } as i64),
        Overflow::Wrap => {
            let modulus = 1i128 << field.bits;
            let mut wrapped = value.rem_euclid(modulus);
            if field.signed && wrapped > max {
                wrapped -= modulus;
            }
            Some(wrapped as i64)
        }
    }
}

/// SET type offset value: writes `value` (fitted to the type under `overflow`) and answers the
/// old value, or `None` and no write when OVERFLOW FAIL refuses it (the string still grows to
/// hold the field). An unsigned field takes the
/// value's 64-bit two's complement, as Redis does (so `u8` set to -1 is 255 under WRAP).
pub fn bitfield_set(
    bytes: &mut Vec<u8>,
    offset: u64,
    field: FieldType,
    value: i64,
    overflow: Overflow,
) -> Option<i64> {
    reserve(bytes, offset, field.bits);
    let requested = if field.signed {
        i128::from(value)
    } else {
        i128::from(value as u64)
    };
    let fitted = fit(requested, field, overflow)?;
    let old = bitfield_get(bytes, offset, field);
    write_bits(bytes, offset, field.bits, fitted as u64);
    Some(old)
}

/// INCRBY type offset increment: adds `increment` (fitted under `overflow`) and answers the
/// new value, or `None` and no write when OVERFLOW FAIL refuses it (the string still grows).
pub fn bitfield_increment(
    bytes: &mut Vec<u8>,
    offset: u64,
    field: FieldType,
    increment: i64,
    overflow: Overflow,
) -> Option<i64> {
    reserve(bytes, offset, field.bits);
    let old = bitfield_get(bytes, offset, field);
    let old = if field.signed {
        i128::from(old)
    } else {
        i128::from(old as u64)
    };
    let fitted = fit(old + i128::from(increment), field, overflow)?;
    write_bits(bytes, offset, field.bits, fitted as u64);
    Some(fitted)
}

/// The type's range, for the tests' model.
#[cfg(test)]
pub(super) fn tests_limits(field: FieldType) -> (i128, i128) {
    limits(field)
}
