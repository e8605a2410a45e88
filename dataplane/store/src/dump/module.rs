//! Module values (`RDB_TYPE_MODULE_2`) of the RedisBloom types whose `rdb_save` Ember writes:
//! Bloom filters (`MBbloom--`, encoding version 4), cuckoo filters (`MBbloomCF`, version 4)
//! and count-min sketches (`CMSk-TYPE`, version 0).
//! The object is the module id (the 9-character type name in Redis's 6-bit charset and the
//! encoding version, as one RDB length), then each saved field as an opcode and its value
//! (unsigned: an RDB length; double: 8 bytes; buffer: an RDB string), then the EOF opcode.

use super::rdb::{put_length, put_raw_string, Read, Reader};
use super::DumpError;
use crate::probabilistic::{BloomChain, CountMinSketch, CuckooFilter, ModuleField};
use crate::value::Value;

/// `RDB_TYPE_MODULE_2`.
pub(super) const TYPE_MODULE_2: u8 = 7;

/// `RDB_MODULE_OPCODE_*`.
const OPCODE_EOF: u64 = 0;
const OPCODE_SINT: u64 = 1;
const OPCODE_UINT: u64 = 2;
const OPCODE_FLOAT: u64 = 3;
const OPCODE_DOUBLE: u64 = 4;
const OPCODE_STRING: u64 = 5;

/// Redis's module type name charset (`ModuleTypeNameCharSet`).
const NAME_CHARSET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

/// RedisBloom's type names and the encoding versions Ember writes and reads.
const BLOOM_TYPE: &[u8; 9] = b"MBbloom--";
const BLOOM_ENCODING: u64 = 4;
const CUCKOO_TYPE: &[u8; 9] = b"MBbloomCF";
const CUCKOO_ENCODING: u64 = 4;
const COUNT_MIN_TYPE: &[u8; 9] = b"CMSk-TYPE";
const COUNT_MIN_ENCODING: u64 = 0;

/// Redis's `moduleTypeEncodeId`: 9 characters of 6 bits, then 10 bits of encoding version.
fn module_id(name: &[u8; 9], encoding: u64) -> u64 {
    let name_bits = name.iter().fold(0u64, |id, character| {
        let index = NAME_CHARSET
            .iter()
            .position(|symbol| symbol == character)
            .expect("type names use the charset");
        (id << 6) | index as u64
    });
    (name_bits << 10) | encoding
}

/// Writes a module object (without its type byte) for a value Ember can save this way;
/// false for any other value.
pub(super) fn write(out: &mut Vec<u8>, value: &Value) -> bool {
    let (name, encoding, fields) = match value {
        Value::Bloom(chain) => (BLOOM_TYPE, BLOOM_ENCODING, chain.rdb_fields()),
        Value::Cuckoo(filter) => (CUCKOO_TYPE, CUCKOO_ENCODING, filter.rdb_fields()),
        Value::CountMin(sketch) => (COUNT_MIN_TYPE, COUNT_MIN_ENCODING, sketch.rdb_fields()),
        _ => return false,
    };
    out.push(TYPE_MODULE_2);
    put_length(out, module_id(name, encoding));
    for field in &fields {
        match field {
            ModuleField::Unsigned(value) => {
                put_length(out, OPCODE_UINT);
                put_length(out, *value);
            }
            ModuleField::Double(value) => {
                put_length(out, OPCODE_DOUBLE);
                out.extend_from_slice(&value.to_le_bytes());
            }
            ModuleField::Buffer(bytes) => {
                put_length(out, OPCODE_STRING);
                put_raw_string(out, bytes);
            }
        }
    }
    put_length(out, OPCODE_EOF);
    true
}

/// Reads a module object after its type byte: a Bloom or cuckoo filter; any other module,
/// or another encoding version, is [`DumpError::BadFormat`].
pub(super) fn read(reader: &mut Reader<'_>) -> Read<Value> {
    let id = reader.length()?;
    let mut fields = Vec::new();
    loop {
        match reader.length()? {
            OPCODE_EOF => break,
            OPCODE_UINT | OPCODE_SINT => fields.push(ModuleField::Unsigned(reader.length()?)),
            OPCODE_DOUBLE => fields.push(ModuleField::Double(reader.binary_double()?)),
            OPCODE_FLOAT => {
                let bytes = reader.take(4)?;
                let value = f32::from_le_bytes(bytes.try_into().expect("4 bytes"));
                fields.push(ModuleField::Double(f64::from(value)));
            }
            OPCODE_STRING => fields.push(ModuleField::Buffer(reader.string()?)),
            _ => return Err(DumpError::BadFormat),
        }
    }
    if id == module_id(BLOOM_TYPE, BLOOM_ENCODING) {
        let chain = BloomChain::from_rdb_fields(&fields).map_err(|_| DumpError::BadFormat)?;
        Ok(Value::Bloom(Box::new(chain)))
    } else if id == module_id(CUCKOO_TYPE, CUCKOO_ENCODING) {
        let filter = CuckooFilter::from_rdb_fields(&fields).ok_or(DumpError::BadFormat)?;
        Ok(Value::Cuckoo(Box::new(filter)))
    } else if id == module_id(COUNT_MIN_TYPE, COUNT_MIN_ENCODING) {
        let sketch = CountMinSketch::from_rdb_fields(&fields).ok_or(DumpError::BadFormat)?;
        Ok(Value::CountMin(Box::new(sketch)))
    } else {
        Err(DumpError::BadFormat)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dump::{dump, restore, try_dump, RestoreLimits};

    #[test]
    fn filters_round_trip_through_dump_and_restore() {
        let mut chain = BloomChain::new(50, 0.01, 2, false).unwrap();
        let mut filter = CuckooFilter::new(64, 2, 20, 1).unwrap();
        for index in 0..300u32 {
            chain.add(&index.to_le_bytes()).unwrap();
            filter.insert(&index.to_le_bytes());
        }
        for value in [
            Value::Bloom(Box::new(chain)),
            Value::Cuckoo(Box::new(filter)),
        ] {
            let payload = dump(&value, 0);
            assert_eq!(payload[0], TYPE_MODULE_2);
            assert_eq!(restore(&payload, &RestoreLimits::default(), 0), Ok(value));
        }
        // The id of RedisBloom's Bloom type at version 4, as Redis encodes it.
        assert_eq!(module_id(BLOOM_TYPE, 4) & 0x3ff, 4);
        assert_eq!(module_id(BLOOM_TYPE, 4) >> 10 >> 48, 12); // 'M'
        let mut sketch = CountMinSketch::new(10, 2).unwrap();
        sketch.increment(b"a", 3);
        let value = Value::CountMin(Box::new(sketch));
        assert_eq!(
            restore(&dump(&value, 0), &RestoreLimits::default(), 0),
            Ok(value)
        );
        let top = crate::probabilistic::TopK::new(3, 8, 7, 0.9).unwrap();
        assert_eq!(try_dump(&Value::TopK(Box::new(top)), 0), None);
    }

    #[test]
    fn damaged_payloads_are_refused() {
        let chain = BloomChain::new(10, 0.01, 2, true).unwrap();
        let payload = dump(&Value::Bloom(Box::new(chain)), 0);
        // Every truncation, each with a fixed-up footer, is refused without a panic.
        for len in 1..payload.len() - 10 {
            let mut cut = payload[..len].to_vec();
            cut.extend_from_slice(&super::super::RDB_VERSION.to_le_bytes());
            let crc = super::super::crc64(&cut);
            cut.extend_from_slice(&crc.to_le_bytes());
            assert!(
                restore(&cut, &RestoreLimits::default(), 0).is_err(),
                "{len}"
            );
        }
    }
}
