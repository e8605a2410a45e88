//! LEB128 varints (seven bits a byte, low bits first, the high bit set on every byte but the
//! last), the length and number encoding of the store's packed buffers: small hashes, small
//! sorted sets and stream blocks.

/// Appends `value`.
pub(crate) fn push(out: &mut Vec<u8>, mut value: u64) {
    loop {
        let low = (value & 0x7f) as u8;
        value >>= 7;
        if value == 0 {
            out.push(low);
            return;
        }
        out.push(low | 0x80);
    }
}

/// Writes `value` into `out` from byte `at` on; the byte after it. For writers that build a
/// few lengths on the stack and insert them with other bytes in one edit, without a temporary
/// vector. `out` must have room (at most 10 bytes for a `u64`).
#[inline]
pub(crate) fn write(out: &mut [u8], mut at: usize, mut value: u64) -> usize {
    while value >= 0x80 {
        out[at] = (value & 0x7f) as u8 | 0x80;
        value >>= 7;
        at += 1;
    }
    out[at] = value as u8;
    at + 1
}

/// Bytes [`push`] writes for `value`.
pub(crate) fn len(value: u64) -> usize {
    (u64::BITS - (value | 1).leading_zeros()).div_ceil(7) as usize
}

/// Reads the varint that starts at `*at` and moves `*at` past it.
pub(crate) fn read(data: &[u8], at: &mut usize) -> u64 {
    let (mut value, mut shift) = (0u64, 0);
    loop {
        let byte = data[*at];
        *at += 1;
        value |= u64::from(byte & 0x7f) << shift;
        if byte & 0x80 == 0 {
            return value;
        }
        shift += 7;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn len_matches_what_is_written_and_values_read_back() {
        for value in [
            0,
            1,
            127,
            128,
            300,
            16_383,
            16_384,
            2_097_151,
            2_097_152,
            u64::from(u32::MAX),
            u64::MAX,
        ] {
            let mut out = vec![0xff];
            push(&mut out, value);
            assert_eq!(len(value), out.len() - 1, "{value}");
            let mut at = 1;
            assert_eq!(read(&out, &mut at), value, "{value}");
            assert_eq!(at, out.len(), "{value}");
            let mut bytes = [0u8; 11];
            let used = write(&mut bytes, 1, value);
            assert_eq!(&bytes[1..used], &out[1..], "{value}");
        }
    }
}
