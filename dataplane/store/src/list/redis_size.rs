//! The bytes Redis's listpack would take for a list's elements (and a stream node's), for the decisions
//! Redis makes from them (`quicklistNodeExceedsLimit`).

use crate::value::parse_canonical_i64;

/// A listpack's header (total bytes and element count) and end marker.
pub(super) const LISTPACK_EMPTY_BYTES: usize = 7;
/// The size limits of `list-max-listpack-size` -1 to -5.
const SIZE_LIMITS: [usize; 5] = [4096, 8192, 16384, 32768, 65536];
/// With a count limit Redis still caps a listpack at 8 KB (`SIZE_SAFETY_LIMIT`).
const SIZE_SAFETY_LIMIT: usize = 8192;

/// Bytes of a listpack integer's encoding (its back-length is one more byte: at most 9 < 128).
fn integer_encoded_bytes(value: i64) -> usize {
    match value {
        0..=127 => 1,
        -4096..=4095 => 2,
        -32768..=32767 => 3,
        -8_388_608..=8_388_607 => 4,
        -2_147_483_648..=2_147_483_647 => 5,
        _ => 9,
    }
}

/// One integer's bytes in a listpack, back-length included.
pub(crate) fn integer_entry_bytes(value: i64) -> usize {
    integer_encoded_bytes(value) + 1
}

/// One element's bytes in a listpack: encoding, data and back-length (a string that is a
/// canonical integer is stored as the integer, as Redis stores it).
pub(crate) fn entry_bytes(element: &[u8]) -> usize {
    match parse_canonical_i64(element) {
        Some(value) => integer_entry_bytes(value),
        None => string_entry_bytes(element.len()),
    }
}

/// Longest text of a canonical integer: "-9223372036854775808".
const INTEGER_TEXT_BYTES_MAX: usize = 20;

/// [`entry_bytes`] of the element whose bytes are `head` then `tail` (a list element stored
/// against its node's anchor), without joining them on the heap: only text short enough to be
/// an integer is joined, on the stack.
pub(crate) fn entry_bytes_of_parts(head: &[u8], tail: &[u8]) -> usize {
    let len = head.len() + tail.len();
    if tail.is_empty() {
        return entry_bytes(head);
    }
    if head.is_empty() {
        return entry_bytes(tail);
    }
    if len > INTEGER_TEXT_BYTES_MAX || !matches!(head[0], b'-' | b'0'..=b'9') {
        return string_entry_bytes(len);
    }
    let mut joined = [0u8; INTEGER_TEXT_BYTES_MAX];
    joined[..head.len()].copy_from_slice(head);
    joined[head.len()..len].copy_from_slice(tail);
    entry_bytes(&joined[..len])
}

/// A string's bytes in a listpack: its encoding (a 1, 2 or 5 byte length), data and
/// back-length.
fn string_entry_bytes(len: usize) -> usize {
    let encoded = match len {
        0..=63 => 1 + len,
        64..=4095 => 2 + len,
        _ => 5 + len,
    };
    let back_length = match encoded {
        0..=127 => 1,
        128..=16382 => 2,
        16383..=2_097_150 => 3,
        2_097_151..=268_435_454 => 4,
        _ => 5,
    };
    encoded + back_length
}

/// (size limit, count limit) of a `list-max-listpack-size` setting.
fn limits(setting: i64) -> (usize, usize) {
    if setting >= 0 {
        (
            usize::MAX,
            usize::try_from(setting.max(1)).unwrap_or(usize::MAX),
        )
    } else {
        let level = usize::try_from(-setting - 1).unwrap_or(usize::MAX);
        (SIZE_LIMITS[level.min(SIZE_LIMITS.len() - 1)], usize::MAX)
    }
}

/// True when a listpack of `bytes` and `count` elements is past the setting.
pub(super) fn exceeds(setting: i64, bytes: usize, count: usize) -> bool {
    let (size_limit, count_limit) = limits(setting);
    if size_limit != usize::MAX {
        bytes > size_limit
    } else {
        bytes > SIZE_SAFETY_LIMIT || count > count_limit
    }
}

/// True when a list of `bytes` and `count` elements is within half the setting, where Redis
/// turns a quicklist back into a listpack.
pub(super) fn fits_half(setting: i64, bytes: usize, count: usize) -> bool {
    let (size_limit, count_limit) = limits(setting);
    if size_limit != usize::MAX {
        bytes <= size_limit / 2
    } else {
        bytes <= SIZE_SAFETY_LIMIT / 2 && count <= count_limit / 2
    }
}
