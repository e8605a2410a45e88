//! RDB primitives: lengths, strings (integer and LZF encodings), times, doubles, CRC64.

use super::DumpError;
use crate::value::parse_canonical_i64;

/// Result of a read from a payload: any short or malformed input is [`DumpError::BadFormat`].
pub(super) type Read<T> = Result<T, DumpError>;

/// A cursor over a payload.
pub(super) struct Reader<'a> {
    data: &'a [u8],
    at: usize,
}

/// Length prefix special forms (`11xxxxxx`): integers of 1, 2 or 4 bytes, LZF.
const ENC_INT8: u64 = 0;
const ENC_INT16: u64 = 1;
const ENC_INT32: u64 = 2;
const ENC_LZF: u64 = 3;

impl<'a> Reader<'a> {
    pub(super) fn new(data: &'a [u8]) -> Self {
        Self { data, at: 0 }
    }

    /// Bytes not read yet.
    pub(super) fn remaining(&self) -> usize {
        self.data.len() - self.at
    }

    pub(super) fn byte(&mut self) -> Read<u8> {
        let byte = *self.data.get(self.at).ok_or(DumpError::BadFormat)?;
        self.at += 1;
        Ok(byte)
    }

    pub(super) fn take(&mut self, len: usize) -> Read<&'a [u8]> {
        let end = self.at.checked_add(len).ok_or(DumpError::BadFormat)?;
        let bytes = self.data.get(self.at..end).ok_or(DumpError::BadFormat)?;
        self.at = end;
        Ok(bytes)
    }

    fn array<const N: usize>(&mut self) -> Read<[u8; N]> {
        Ok(self.take(N)?.try_into().expect("N bytes"))
    }

    /// A length or, with `true`, the code of a special string encoding.
    fn length_or_encoding(&mut self) -> Read<(u64, bool)> {
        let first = self.byte()?;
        let low = u64::from(first & 0x3f);
        match first >> 6 {
            0 => Ok((low, false)),
            1 => Ok(((low << 8) | u64::from(self.byte()?), false)),
            2 => match first {
                0x80 => Ok((u64::from(u32::from_be_bytes(self.array()?)), false)),
                0x81 => Ok((u64::from_be_bytes(self.array()?), false)),
                _ => Err(DumpError::BadFormat),
            },
            _ => Ok((low, true)),
        }
    }

    /// An RDB length.
    pub(super) fn length(&mut self) -> Read<u64> {
        match self.length_or_encoding()? {
            (length, false) => Ok(length),
            _ => Err(DumpError::BadFormat),
        }
    }

    /// A count of items that follow, each at least one byte long: larger than what is left is
    /// malformed (this bounds every allocation by the payload's size).
    pub(super) fn count(&mut self) -> Read<usize> {
        let count = self.length()?;
        if count > self.remaining() as u64 {
            return Err(DumpError::BadFormat);
        }
        Ok(count as usize)
    }

    /// An RDB string: raw, integer-encoded or LZF-compressed.
    pub(super) fn string(&mut self) -> Read<Vec<u8>> {
        let (length, encoded) = self.length_or_encoding()?;
        if !encoded {
            let length = usize::try_from(length).map_err(|_| DumpError::BadFormat)?;
            return Ok(self.take(length)?.to_vec());
        }
        let int = match length {
            ENC_INT8 => i64::from(self.byte()? as i8),
            ENC_INT16 => i64::from(i16::from_le_bytes(self.array()?)),
            ENC_INT32 => i64::from(i32::from_le_bytes(self.array()?)),
            ENC_LZF => {
                let compressed_len = self.length()?;
                let plain_len = self.length()?;
                let compressed_len =
                    usize::try_from(compressed_len).map_err(|_| DumpError::BadFormat)?;
                let input = self.take(compressed_len)?;
                return lzf_decompress(input, plain_len);
            }
            _ => return Err(DumpError::BadFormat),
        };
        Ok(int.to_string().into_bytes())
    }

    /// A millisecond time: 8 bytes, little endian.
    pub(super) fn millis(&mut self) -> Read<u64> {
        Ok(u64::from_le_bytes(self.array()?))
    }

    /// A double in binary (ZSET_2): 8 bytes, little endian.
    pub(super) fn binary_double(&mut self) -> Read<f64> {
        Ok(f64::from_le_bytes(self.array()?))
    }

    /// A double as text (the old ZSET type): a length byte, 253 NaN, 254 +inf, 255 -inf.
    pub(super) fn text_double(&mut self) -> Read<f64> {
        match self.byte()? {
            253 => Ok(f64::NAN),
            254 => Ok(f64::INFINITY),
            255 => Ok(f64::NEG_INFINITY),
            len => parse_score(self.take(usize::from(len))?),
        }
    }

    /// A stream ID as 16 raw bytes (ms, seq; big endian).
    pub(super) fn raw_id(&mut self) -> Read<(u64, u64)> {
        let ms = u64::from_be_bytes(self.array()?);
        let seq = u64::from_be_bytes(self.array()?);
        Ok((ms, seq))
    }
}

/// A score written as text (listpack / ziplist entries, the old ZSET type), as `strtod` reads it.
pub(super) fn parse_score(text: &[u8]) -> Read<f64> {
    std::str::from_utf8(text)
        .ok()
        .and_then(|text| text.parse::<f64>().ok())
        .ok_or(DumpError::BadFormat)
}

/// Decompresses LZF `input` that must expand to exactly `plain_len` bytes.
pub(super) fn lzf_decompress(input: &[u8], plain_len: u64) -> Read<Vec<u8>> {
    // Every input byte yields at most 264 output bytes: a larger claim is malformed.
    if plain_len == 0 || plain_len > (input.len() as u64).saturating_mul(264) {
        return Err(DumpError::BadFormat);
    }
    let plain_len = plain_len as usize;
    let mut out = Vec::with_capacity(plain_len);
    let mut at = 0;
    while at < input.len() {
        let control = usize::from(input[at]);
        at += 1;
        if control < 32 {
            let literal = input
                .get(at..at + control + 1)
                .ok_or(DumpError::BadFormat)?;
            out.extend_from_slice(literal);
            at += control + 1;
        } else {
            let mut len = control >> 5;
            if len == 7 {
                len += usize::from(*input.get(at).ok_or(DumpError::BadFormat)?);
                at += 1;
            }
            let low = usize::from(*input.get(at).ok_or(DumpError::BadFormat)?);
            at += 1;
            let back = ((control & 0x1f) << 8) + low + 1;
            if back > out.len() {
                return Err(DumpError::BadFormat);
            }
            for _ in 0..len + 2 {
                out.push(out[out.len() - back]);
            }
        }
        if out.len() > plain_len {
            return Err(DumpError::BadFormat);
        }
    }
    if out.len() != plain_len {
        return Err(DumpError::BadFormat);
    }
    Ok(out)
}

/// Appends an RDB length.
pub(super) fn put_length(out: &mut Vec<u8>, length: u64) {
    if length < 1 << 6 {
        out.push(length as u8);
    } else if length < 1 << 14 {
        out.extend_from_slice(&[0x40 | (length >> 8) as u8, length as u8]);
    } else if let Ok(length) = u32::try_from(length) {
        out.push(0x80);
        out.extend_from_slice(&length.to_be_bytes());
    } else {
        out.push(0x81);
        out.extend_from_slice(&length.to_be_bytes());
    }
}

/// Appends an integer as an RDB string: integer-encoded when it fits 32 bits, as Redis does.
pub(super) fn put_int_string(out: &mut Vec<u8>, int: i64) {
    if let Ok(small) = i8::try_from(int) {
        out.extend_from_slice(&[0xC0, small as u8]);
    } else if let Ok(small) = i16::try_from(int) {
        out.push(0xC1);
        out.extend_from_slice(&small.to_le_bytes());
    } else if let Ok(small) = i32::try_from(int) {
        out.push(0xC2);
        out.extend_from_slice(&small.to_le_bytes());
    } else {
        put_raw_string(out, int.to_string().as_bytes());
    }
}

/// Appends an RDB string, integer-encoded when it is a short canonical integer.
pub(super) fn put_string(out: &mut Vec<u8>, bytes: &[u8]) {
    if bytes.len() <= 11 {
        if let Some(int) = parse_canonical_i64(bytes).filter(|&int| i32::try_from(int).is_ok()) {
            put_int_string(out, int);
            return;
        }
    }
    put_raw_string(out, bytes);
}

/// Appends an RDB string as its length and bytes.
pub(super) fn put_raw_string(out: &mut Vec<u8>, bytes: &[u8]) {
    put_length(out, bytes.len() as u64);
    out.extend_from_slice(bytes);
}

/// Appends a stream ID as 16 raw bytes.
pub(super) fn put_raw_id(out: &mut Vec<u8>, ms: u64, seq: u64) {
    out.extend_from_slice(&ms.to_be_bytes());
    out.extend_from_slice(&seq.to_be_bytes());
}

/// CRC-64/Jones as Redis's `crc64.c` computes it (reflected, init 0, no final xor).
pub fn crc64(data: &[u8]) -> u64 {
    crc64_update(0, data)
}

/// [`crc64`] continued over `data` from `crc`, the CRC of what came before it: a file's
/// checksum computed piece by piece as it is written.
pub fn crc64_update(crc: u64, data: &[u8]) -> u64 {
    static TABLE: std::sync::OnceLock<[u64; 256]> = std::sync::OnceLock::new();
    let table = TABLE.get_or_init(|| {
        /// 0xad93d23594c935a9 bit-reversed.
        const POLY_REFLECTED: u64 = 0x95ac_9329_ac4b_c9b5;
        let mut table = [0u64; 256];
        for (byte, slot) in table.iter_mut().enumerate() {
            let mut crc = byte as u64;
            for _ in 0..8 {
                crc = if crc & 1 == 1 {
                    (crc >> 1) ^ POLY_REFLECTED
                } else {
                    crc >> 1
                };
            }
            *slot = crc;
        }
        table
    });
    data.iter().fold(crc, |crc, &byte| {
        table[((crc ^ u64::from(byte)) & 0xff) as usize] ^ (crc >> 8)
    })
}
