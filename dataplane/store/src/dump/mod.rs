//! DUMP / RESTORE payloads in Redis's serialized value format.
//!
//! A payload is an RDB object (a type byte and the value), the RDB version in two bytes and a
//! CRC64 (Jones, as Redis's `crc64.c`) of everything before it, both little endian.
//! [`dump`] writes the encodings Redis 7.0 reads (RDB version 10): strings (integer encoded when
//! they fit 32 bits), lists as quicklist 2 (listpack nodes), sets as intset or plain set, sorted
//! sets as listpack or ZSET_2, hashes as listpack or plain hash, streams as STREAM_LISTPACKS_2
//! with their consumer groups and pending entries, Bloom and cuckoo filters and count-min
//! sketches as RedisBloom's module values (`RDB_TYPE_MODULE_2`, see `module.rs`). A hash with field expiries uses Redis 7.4's
//! HASH_METADATA layout and version 12, which Redis before 7.4 refuses as it refuses any newer
//! payload.
//!
//! [`restore`] checks the footer and reads every encoding Redis 2.6 to 7.4 write (raw, integer
//! and LZF strings; list, ziplist quicklist, quicklist 2 and plain nodes; set, intset, set
//! listpack; zset, ZSET_2, zset ziplist and listpack; hash, zipmap, hash ziplist, listpack and the
//! 7.4 field-expiry layouts; stream listpacks v1 to v3). Malformed input of any kind is an error,
//! never a panic: every length is checked against the bytes that are there.
//!
//! ```
//! use ember_store::dump::{dump, restore, RestoreLimits};
//! use ember_store::Value;
//!
//! let payload = dump(&Value::from_bytes(b"hello"), 0);
//! assert_eq!(restore(&payload, &RestoreLimits::default(), 0), Ok(Value::from_bytes(b"hello")));
//! ```

mod file;
mod functions;
mod module;
mod packed;
mod rdb;
mod stream;
#[cfg(test)]
mod tests;

use std::fmt;

use crate::hash::{FieldTtl, HashLimits, HashValue};
use crate::list::{End, ListLimits, ListValue};
use crate::set::{SetEncoding, SetValue};
use crate::stream::StreamLimits;
use crate::value::{parse_canonical_i64, Value};
use crate::zset::{AddOptions, AddOutcome, SortedSet};
use packed::{read_intset, read_listpack, read_ziplist, read_zipmap, Item, ListpackWriter};
use rdb::{put_int_string, put_length, put_raw_string, put_string, Read, Reader};

pub use file::{read_rdb_file, RdbFile, RdbKey, RdbWriter, Section};
pub use functions::{dump_functions, restore_functions};
pub use rdb::{crc64, crc64_update};

/// The RDB version of Redis 7.0, written in every payload but those of hashes with field
/// expiries.
pub const RDB_VERSION: u16 = 10;
/// Redis 7.4's RDB version: the newest payload [`restore`] reads, and the one written for a hash
/// with field expiries (whose layout Redis 7.4 introduced).
pub const RDB_VERSION_MAX: u16 = 12;

const TYPE_STRING: u8 = 0;
const TYPE_LIST: u8 = 1;
const TYPE_SET: u8 = 2;
const TYPE_ZSET: u8 = 3;
const TYPE_HASH: u8 = 4;
const TYPE_ZSET_2: u8 = 5;
const TYPE_HASH_ZIPMAP: u8 = 9;
const TYPE_LIST_ZIPLIST: u8 = 10;
const TYPE_SET_INTSET: u8 = 11;
const TYPE_ZSET_ZIPLIST: u8 = 12;
const TYPE_HASH_ZIPLIST: u8 = 13;
const TYPE_LIST_QUICKLIST: u8 = 14;
const TYPE_STREAM_LISTPACKS: u8 = 15;
const TYPE_HASH_LISTPACK: u8 = 16;
const TYPE_ZSET_LISTPACK: u8 = 17;
const TYPE_LIST_QUICKLIST_2: u8 = 18;
const TYPE_STREAM_LISTPACKS_2: u8 = 19;
const TYPE_SET_LISTPACK: u8 = 20;
const TYPE_STREAM_LISTPACKS_3: u8 = 21;
const TYPE_HASH_METADATA_PRE_GA: u8 = 22;
const TYPE_HASH_LISTPACK_EX_PRE_GA: u8 = 23;
const TYPE_HASH_METADATA: u8 = 24;
const TYPE_HASH_LISTPACK_EX: u8 = 25;

/// Quicklist 2 node containers.
const CONTAINER_PLAIN: u64 = 1;
const CONTAINER_PACKED: u64 = 2;

/// Bytes after which [`dump`] starts a new quicklist node (`list-max-listpack-size -2`).
const LIST_NODE_BYTES_MAX: usize = 8 * 1024;
/// Most members written as an intset (`set-max-intset-entries`' default).
const INTSET_ENTRIES_MAX: usize = 512;

/// Why a payload was refused; Display is Redis's error reply.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DumpError {
    /// Shorter than its footer, newer than [`RDB_VERSION_MAX`], or a wrong checksum.
    Checksum,
    /// The value could not be read (also an empty collection, or a hash whose fields have all
    /// expired).
    BadFormat,
}

impl fmt::Display for DumpError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            DumpError::Checksum => "ERR DUMP payload version or checksum are wrong",
            DumpError::BadFormat => "ERR Bad data format",
        })
    }
}

impl std::error::Error for DumpError {}

/// The CONFIG settings that shape restored values.
#[derive(Debug, Clone, Copy, Default)]
pub struct RestoreLimits {
    /// `hash-max-listpack-*`.
    pub hash: HashLimits,
    /// `list-max-listpack-size`.
    pub list: ListLimits,
    /// `stream-node-max-*`.
    pub stream: StreamLimits,
}

/// DUMP of `value` at `now_ms` (hash fields due by then are left out). A tensor, which Redis
/// would write as a module value, has no payload: `None`.
pub fn try_dump(value: &Value, now_ms: u64) -> Option<Vec<u8>> {
    let mut out = Vec::new();
    let version = write_object(&mut out, value, now_ms)?;
    out.extend_from_slice(&version.to_le_bytes());
    let crc = crc64(&out);
    out.extend_from_slice(&crc.to_le_bytes());
    Some(out)
}

/// Appends `value` as an RDB object (its type byte, then the value) and returns the RDB version
/// its encoding needs; `None`, with nothing written, for the types Redis's format cannot hold
/// (tensors, Top-K).
pub(crate) fn write_object(out: &mut Vec<u8>, value: &Value, now_ms: u64) -> Option<u16> {
    let mut version = RDB_VERSION;
    match value {
        Value::Int(int) => {
            out.push(TYPE_STRING);
            put_int_string(out, *int);
        }
        Value::Str(bytes) => {
            out.push(TYPE_STRING);
            put_string(out, bytes);
        }
        Value::List(list) => write_list(out, list),
        Value::Set(set) => write_set(out, set),
        Value::ZSet(zset) => write_zset(out, zset),
        Value::Hash(hash) => {
            if write_hash(out, hash, now_ms) {
                version = RDB_VERSION_MAX;
            }
        }
        Value::Stream(stream) => stream::write(out, stream),
        Value::Bloom(_) | Value::Cuckoo(_) | Value::CountMin(_) => {
            module::write(out, value);
        }
        Value::Tensor(_) | Value::TopK(_) => return None,
    }
    Some(version)
}

/// [`try_dump`] for a value known not to be a tensor (a tensor gives an empty payload, which
/// [`restore`] refuses).
pub fn dump(value: &Value, now_ms: u64) -> Vec<u8> {
    try_dump(value, now_ms).unwrap_or_default()
}

/// Checks a payload's footer (`verifyDumpPayload`): the body and its version.
///
/// # Errors
/// [`DumpError::Checksum`] when it is too short, too new, or its CRC64 does not match.
pub fn verify(payload: &[u8]) -> Result<(&[u8], u16), DumpError> {
    /// Version (2 bytes) and CRC64 (8 bytes).
    const FOOTER_LEN: usize = 10;
    if payload.len() < FOOTER_LEN {
        return Err(DumpError::Checksum);
    }
    let (body, footer) = payload.split_at(payload.len() - FOOTER_LEN);
    let version = u16::from_le_bytes([footer[0], footer[1]]);
    if version > RDB_VERSION_MAX {
        return Err(DumpError::Checksum);
    }
    let crc = u64::from_le_bytes(footer[2..].try_into().expect("8 bytes"));
    if crc64(&payload[..payload.len() - 8]) != crc {
        return Err(DumpError::Checksum);
    }
    Ok((body, version))
}

/// RESTORE's reading of `payload` at `now_ms` (hash fields already due are dropped).
///
/// # Errors
/// [`DumpError::Checksum`] from [`verify`]; [`DumpError::BadFormat`] for anything unreadable.
pub fn restore(payload: &[u8], limits: &RestoreLimits, now_ms: u64) -> Result<Value, DumpError> {
    verify(payload)?;
    // Over the whole payload, footer included, as Redis reads it: a value that runs into the
    // footer is read from it.
    let mut reader = Reader::new(payload);
    let kind = reader.byte()?;
    read_object(&mut reader, kind, limits, now_ms)
}

/// One RDB object of type `kind`.
fn read_object(
    reader: &mut Reader<'_>,
    kind: u8,
    limits: &RestoreLimits,
    now_ms: u64,
) -> Result<Value, DumpError> {
    match kind {
        TYPE_STRING => Ok(Value::from_vec(reader.string()?)),
        TYPE_LIST => {
            let count = reader.count()?;
            let elements = (0..count)
                .map(|_| reader.string())
                .collect::<Read<Vec<_>>>()?;
            list_value(elements, limits)
        }
        TYPE_LIST_ZIPLIST => {
            let blob = reader.string()?;
            list_value(items_to_vecs(&read_ziplist(&blob)?), limits)
        }
        TYPE_LIST_QUICKLIST | TYPE_LIST_QUICKLIST_2 => {
            let nodes = reader.count()?;
            let mut elements = Vec::new();
            for _ in 0..nodes {
                let container = if kind == TYPE_LIST_QUICKLIST_2 {
                    reader.length()?
                } else {
                    CONTAINER_PACKED
                };
                let blob = reader.string()?;
                match (kind, container) {
                    (_, CONTAINER_PLAIN) => elements.push(blob),
                    (TYPE_LIST_QUICKLIST, _) => {
                        elements.extend(items_to_vecs(&read_ziplist(&blob)?));
                    }
                    (_, CONTAINER_PACKED) => {
                        elements.extend(items_to_vecs(&read_listpack(&blob)?));
                    }
                    _ => return Err(DumpError::BadFormat),
                }
            }
            list_value(elements, limits)
        }
        TYPE_SET => {
            let count = reader.count()?;
            let members = (0..count)
                .map(|_| reader.string())
                .collect::<Read<Vec<_>>>()?;
            set_value(members)
        }
        TYPE_SET_INTSET => {
            let blob = reader.string()?;
            let members = read_intset(&blob)?;
            set_value(
                members
                    .into_iter()
                    .map(|m| m.to_string().into_bytes())
                    .collect(),
            )
        }
        TYPE_SET_LISTPACK => {
            let blob = reader.string()?;
            set_value(items_to_vecs(&read_listpack(&blob)?))
        }
        TYPE_ZSET | TYPE_ZSET_2 => {
            let count = reader.count()?;
            let mut pairs = Vec::with_capacity(count);
            for _ in 0..count {
                let member = reader.string()?;
                let score = if kind == TYPE_ZSET_2 {
                    reader.binary_double()?
                } else {
                    reader.text_double()?
                };
                pairs.push((member, score));
            }
            zset_value(pairs)
        }
        TYPE_ZSET_ZIPLIST | TYPE_ZSET_LISTPACK => {
            let blob = reader.string()?;
            let items = if kind == TYPE_ZSET_ZIPLIST {
                read_ziplist(&blob)?
            } else {
                read_listpack(&blob)?
            };
            if items.len() % 2 != 0 {
                return Err(DumpError::BadFormat);
            }
            let pairs = items
                .chunks_exact(2)
                .map(|pair| Ok((pair[0].to_vec(), pair[1].score()?)))
                .collect::<Read<Vec<_>>>()?;
            zset_value(pairs)
        }
        TYPE_HASH | TYPE_HASH_METADATA | TYPE_HASH_METADATA_PRE_GA => {
            let min_expire = if kind == TYPE_HASH_METADATA {
                Some(reader.millis()?)
            } else {
                None
            };
            let count = reader.count()?;
            let mut fields = Vec::with_capacity(count);
            for _ in 0..count {
                let expire_at_ms = match kind {
                    TYPE_HASH => None,
                    TYPE_HASH_METADATA => match reader.length()? {
                        0 => None,
                        ttl => Some(
                            (ttl - 1)
                                .checked_add(min_expire.expect("read above"))
                                .ok_or(DumpError::BadFormat)?,
                        ),
                    },
                    _ => Some(reader.length()?).filter(|&at| at != 0),
                };
                let name = reader.string()?;
                let value = reader.string()?;
                fields.push((name, value, expire_at_ms));
            }
            hash_value(fields, limits, now_ms)
        }
        TYPE_HASH_ZIPMAP => {
            let blob = reader.string()?;
            let fields = read_zipmap(&blob)?
                .into_iter()
                .map(|(name, value)| (name.to_vec(), value.to_vec(), None))
                .collect();
            hash_value(fields, limits, now_ms)
        }
        TYPE_HASH_ZIPLIST | TYPE_HASH_LISTPACK => {
            let blob = reader.string()?;
            let items = if kind == TYPE_HASH_ZIPLIST {
                read_ziplist(&blob)?
            } else {
                read_listpack(&blob)?
            };
            if items.len() % 2 != 0 {
                return Err(DumpError::BadFormat);
            }
            let fields = items
                .chunks_exact(2)
                .map(|pair| (pair[0].to_vec(), pair[1].to_vec(), None))
                .collect();
            hash_value(fields, limits, now_ms)
        }
        TYPE_HASH_LISTPACK_EX | TYPE_HASH_LISTPACK_EX_PRE_GA => {
            if kind == TYPE_HASH_LISTPACK_EX {
                reader.millis()?;
            }
            let blob = reader.string()?;
            let items = read_listpack(&blob)?;
            if items.len() % 3 != 0 {
                return Err(DumpError::BadFormat);
            }
            let fields = items
                .chunks_exact(3)
                .map(|triple| {
                    let at = u64::try_from(triple[2].int()?).map_err(|_| DumpError::BadFormat)?;
                    Ok((
                        triple[0].to_vec(),
                        triple[1].to_vec(),
                        Some(at).filter(|&at| at != 0),
                    ))
                })
                .collect::<Read<Vec<_>>>()?;
            hash_value(fields, limits, now_ms)
        }
        module::TYPE_MODULE_2 => module::read(reader),
        TYPE_STREAM_LISTPACKS | TYPE_STREAM_LISTPACKS_2 | TYPE_STREAM_LISTPACKS_3 => {
            let version = match kind {
                TYPE_STREAM_LISTPACKS => 1,
                TYPE_STREAM_LISTPACKS_2 => 2,
                _ => 3,
            };
            stream::read(reader, version, &limits.stream)
        }
        _ => Err(DumpError::BadFormat),
    }
}

fn items_to_vecs(items: &[Item<'_>]) -> Vec<Vec<u8>> {
    items.iter().map(|item| item.to_vec()).collect()
}

fn list_value(elements: Vec<Vec<u8>>, limits: &RestoreLimits) -> Result<Value, DumpError> {
    if elements.is_empty() {
        return Err(DumpError::BadFormat);
    }
    let views: Vec<&[u8]> = elements.iter().map(Vec::as_slice).collect();
    let mut list = ListValue::new();
    list.push(End::Back, &views, &limits.list);
    Ok(Value::List(list))
}

fn set_value(members: Vec<Vec<u8>>) -> Result<Value, DumpError> {
    let first = members.first().ok_or(DumpError::BadFormat)?;
    let mut set = SetValue::for_members(first, members.len());
    for member in &members {
        if !set.insert(member) {
            return Err(DumpError::BadFormat);
        }
    }
    Ok(Value::Set(Box::new(set)))
}

fn zset_value(pairs: Vec<(Vec<u8>, f64)>) -> Result<Value, DumpError> {
    if pairs.is_empty() || pairs.iter().any(|(_, score)| score.is_nan()) {
        return Err(DumpError::BadFormat);
    }
    let member_len_max = pairs
        .iter()
        .map(|(member, _)| member.len())
        .max()
        .unwrap_or(0);
    let mut zset = SortedSet::for_members(pairs.len(), member_len_max);
    for (member, score) in &pairs {
        match zset.add(member, *score, AddOptions::default()) {
            Ok(AddOutcome::Added(_)) => {}
            _ => return Err(DumpError::BadFormat),
        }
    }
    Ok(Value::ZSet(zset))
}

type HashField = (Vec<u8>, Vec<u8>, Option<u64>);

fn hash_value(
    fields: Vec<HashField>,
    limits: &RestoreLimits,
    now_ms: u64,
) -> Result<Value, DumpError> {
    /// The latest field expiry Redis 7.4 accepts (`EB_EXPIRE_TIME_MAX`, 2^48 - 1 ms).
    const FIELD_EXPIRE_AT_MAX_MS: u64 = (1 << 48) - 1;
    if fields
        .iter()
        .any(|(_, _, at)| at.is_some_and(|at| at > FIELD_EXPIRE_AT_MAX_MS))
    {
        return Err(DumpError::BadFormat);
    }
    let mut hash = HashValue::new();
    let mut seen = std::collections::HashSet::with_capacity(fields.len());
    for (name, value, expire_at_ms) in &fields {
        if !seen.insert(name.as_slice()) {
            return Err(DumpError::BadFormat);
        }
        let ttl = expire_at_ms.map_or(FieldTtl::Clear, FieldTtl::At);
        hash.set(name, value, ttl, &limits.hash, now_ms);
    }
    if hash.is_empty() {
        return Err(DumpError::BadFormat);
    }
    Ok(Value::Hash(hash))
}

fn write_list(out: &mut Vec<u8>, list: &ListValue) {
    out.push(TYPE_LIST_QUICKLIST_2);
    let mut nodes: Vec<Vec<u8>> = Vec::new();
    let mut node = ListpackWriter::new();
    for element in list.iter() {
        if node.count() > 0 && node.len() + element.len() > LIST_NODE_BYTES_MAX {
            nodes.push(std::mem::replace(&mut node, ListpackWriter::new()).finish());
        }
        node.push(&element);
    }
    if node.count() > 0 {
        nodes.push(node.finish());
    }
    put_length(out, nodes.len() as u64);
    for node in nodes {
        put_length(out, CONTAINER_PACKED);
        put_raw_string(out, &node);
    }
}

fn write_set(out: &mut Vec<u8>, set: &SetValue) {
    let ints: Option<Vec<i64>> = set.iter().map(parse_canonical_i64).collect();
    match ints {
        Some(ints) if set.encoding() == SetEncoding::Intset || ints.len() <= INTSET_ENTRIES_MAX => {
            out.push(TYPE_SET_INTSET);
            put_raw_string(out, &packed::write_intset(ints));
        }
        _ => {
            out.push(TYPE_SET);
            put_length(out, set.len() as u64);
            for member in set.iter() {
                put_string(out, member);
            }
        }
    }
}

fn write_zset(out: &mut Vec<u8>, zset: &SortedSet) {
    if zset.encoding_name() == "listpack" {
        out.push(TYPE_ZSET_LISTPACK);
        let mut listpack = ListpackWriter::new();
        for (member, score) in zset.iter() {
            listpack.push(&member.bytes());
            push_score(&mut listpack, score);
        }
        put_raw_string(out, &listpack.finish());
    } else {
        out.push(TYPE_ZSET_2);
        put_length(out, zset.len() as u64);
        // Highest score first, as Redis writes them (its loader then appends at the head).
        for (member, score) in zset.iter().rev() {
            put_string(out, &member.bytes());
            out.extend_from_slice(&score.to_le_bytes());
        }
    }
}

/// A score in a listpack: an integer when it is one (as Redis's `%.17g` text becomes), else the
/// shortest text that reads back as the same double.
fn push_score(listpack: &mut ListpackWriter, score: f64) {
    /// Beyond this an `f64` no longer holds every integer, and `%.17g` turns to exponents.
    const EXACT_INT_MAX: f64 = 1e17;
    if score.fract() == 0.0
        && score.abs() < EXACT_INT_MAX
        && !(score == 0.0 && score.is_sign_negative())
    {
        listpack.push_int(score as i64);
    } else if score.is_infinite() {
        listpack.push_str(if score > 0.0 { b"inf" } else { b"-inf" });
    } else {
        listpack.push_str(format!("{score:e}").as_bytes());
    }
}

/// Writes a hash; true when it has field expiries (Redis 7.4's layout, version 12).
fn write_hash(out: &mut Vec<u8>, hash: &HashValue, now_ms: u64) -> bool {
    let fields: Vec<_> = hash.fields_with_expiry(now_ms).collect();
    let min_expire = fields.iter().filter_map(|(_, _, at)| *at).min();
    if let Some(min_expire) = min_expire {
        out.push(TYPE_HASH_METADATA);
        out.extend_from_slice(&min_expire.to_le_bytes());
        put_length(out, fields.len() as u64);
        for (name, value, expire_at_ms) in fields {
            put_length(out, expire_at_ms.map_or(0, |at| at - min_expire + 1));
            put_string(out, &name);
            put_string(out, value);
        }
        return true;
    }
    if hash.encoding_name() == "hashtable" {
        out.push(TYPE_HASH);
        put_length(out, fields.len() as u64);
        for (name, value, _) in fields {
            put_string(out, &name);
            put_string(out, value);
        }
    } else {
        out.push(TYPE_HASH_LISTPACK);
        let mut listpack = ListpackWriter::new();
        for (name, value, _) in fields {
            listpack.push(&name);
            listpack.push(value);
        }
        put_raw_string(out, &listpack.finish());
    }
    false
}
