//! FUNCTION DUMP / RESTORE payloads, as Redis 7 writes them: for each library the
//! `RDB_OPCODE_FUNCTION2` byte and its code as an RDB string, then the RDB version and the
//! CRC64 footer of a DUMP payload. Redis 7.0's release candidates wrote `RDB_OPCODE_FUNCTION`
//! (name, engine, optional description, code); [`restore_functions`] reads those too, turning
//! them into a `#!<engine> name=<name>` library as Redis does.

use super::rdb::{crc64, put_raw_string, Reader};
use super::{verify, RDB_VERSION};

/// A library in Redis 7.0 GA's format: its whole code.
const OPCODE_FUNCTION2: u8 = 245;
/// A library in Redis 7.0 rc1/rc2's format.
const OPCODE_FUNCTION: u8 = 246;
/// Version (2 bytes) and CRC64 (8 bytes).
const FOOTER_LEN: usize = 10;

/// The FUNCTION DUMP payload of libraries with these codes (each with its shebang).
pub fn dump_functions<'a>(codes: impl IntoIterator<Item = &'a [u8]>) -> Vec<u8> {
    let mut out = Vec::new();
    for code in codes {
        out.push(OPCODE_FUNCTION2);
        put_raw_string(&mut out, code);
    }
    out.extend_from_slice(&RDB_VERSION.to_le_bytes());
    let crc = crc64(&out);
    out.extend_from_slice(&crc.to_le_bytes());
    out
}

/// The libraries' codes in a FUNCTION RESTORE payload, in payload order.
///
/// # Errors
/// Redis's error text (without the `ERR` code): a wrong footer, an entry that is not a
/// library, or one that cannot be read.
pub fn restore_functions(payload: &[u8]) -> Result<Vec<Vec<u8>>, &'static str> {
    verify(payload).map_err(|_| "DUMP payload version or checksum are wrong")?;
    let mut reader = Reader::new(payload);
    let mut codes = Vec::new();
    // Redis reads entries while more than the footer is left.
    while reader.remaining() > FOOTER_LEN {
        let kind = reader.byte().map_err(|_| "can not read data type")?;
        match kind {
            OPCODE_FUNCTION2 => {
                codes.push(
                    reader
                        .string()
                        .map_err(|_| "Failed loading library payload")?,
                );
            }
            OPCODE_FUNCTION => {
                let name = reader.string().map_err(|_| "Failed loading library name")?;
                let engine = reader.string().map_err(|_| "Failed loading engine name")?;
                let has_description = reader
                    .length()
                    .map_err(|_| "Failed loading library description indicator")?;
                if has_description != 0 {
                    reader
                        .string()
                        .map_err(|_| "Failed loading library description")?;
                }
                let code = reader.string().map_err(|_| "Failed loading library blob")?;
                let mut library = b"#!".to_vec();
                library.extend_from_slice(&engine);
                library.extend_from_slice(b" name=");
                library.extend_from_slice(&name);
                library.push(b'\n');
                library.extend_from_slice(&code);
                codes.push(library);
            }
            _ => return Err("given type is not a function"),
        }
    }
    Ok(codes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn libraries_round_trip() {
        let codes: [&[u8]; 2] = [
            b"#!lua name=a\nredis.register_function('f', function() return 1 end)",
            b"#!lua name=b\n",
        ];
        let payload = dump_functions(codes);
        assert_eq!(payload[0], OPCODE_FUNCTION2);
        let restored = restore_functions(&payload).unwrap();
        assert_eq!(restored, codes.map(<[u8]>::to_vec));
        assert_eq!(restore_functions(&dump_functions([])).unwrap().len(), 0);
    }

    #[test]
    fn bad_payloads_are_refused() {
        assert_eq!(
            restore_functions(b"bad_payload"),
            Err("DUMP payload version or checksum are wrong")
        );
        // A key's payload (a string value) is not a function.
        let key = crate::dump::dump(&crate::Value::from_bytes(b"hello"), 0);
        assert_eq!(restore_functions(&key), Err("given type is not a function"));
        // A library whose length runs past the payload.
        let mut short = vec![OPCODE_FUNCTION2, 0x3f, b'x'];
        short.extend_from_slice(&RDB_VERSION.to_le_bytes());
        let crc = crc64(&short);
        short.extend_from_slice(&crc.to_le_bytes());
        assert_eq!(
            restore_functions(&short),
            Err("Failed loading library payload")
        );
    }

    #[test]
    fn release_candidate_format_becomes_a_shebang() {
        let mut body = vec![OPCODE_FUNCTION];
        for text in [&b"lib"[..], b"LUA"] {
            put_raw_string(&mut body, text);
        }
        body.push(1);
        put_raw_string(&mut body, b"desc");
        put_raw_string(&mut body, b"return 1");
        body.extend_from_slice(&RDB_VERSION.to_le_bytes());
        let crc = crc64(&body);
        body.extend_from_slice(&crc.to_le_bytes());
        assert_eq!(
            restore_functions(&body).unwrap(),
            vec![b"#!LUA name=lib\nreturn 1".to_vec()]
        );
    }
}
