//! Streams in a payload: listpack nodes, counters, consumer groups and their pending entries.

use super::packed::{read_listpack, Item, ListpackWriter};
use super::rdb::{put_length, put_raw_id, put_raw_string, Read, Reader};
use super::{DumpError, TYPE_STREAM_LISTPACKS_2};
use crate::compact::CompactBytes;
use crate::stream::{
    AddId, Consumer, ConsumerGroup, PendingEntry, StreamEntry, StreamId, StreamLimits, StreamValue,
};
use crate::value::Value;

/// Entries per written node (`stream-node-max-entries`' default).
const NODE_ENTRIES_MAX: usize = 100;
/// Entry flags.
const FLAG_DELETED: i64 = 1;
const FLAG_SAME_FIELDS: i64 = 2;
/// A read counter Redis does not know (`SCG_INVALID_ENTRIES_READ`, -1 as a length).
const ENTRIES_READ_UNKNOWN: u64 = u64::MAX;
/// A consumer never active (Redis 7.2 writes -1).
const TIME_NEVER: u64 = u64::MAX;

/// Writes `stream` as STREAM_LISTPACKS_2 (Redis 7.0).
pub(super) fn write(out: &mut Vec<u8>, stream: &StreamValue) {
    out.push(TYPE_STREAM_LISTPACKS_2);
    let entries = stream.range(StreamId::MIN, StreamId::MAX, 0);
    let nodes: Vec<&[StreamEntry]> = entries.chunks(NODE_ENTRIES_MAX).collect();
    put_length(out, nodes.len() as u64);
    for node in nodes {
        let master = &node[0];
        let mut key = Vec::with_capacity(16);
        put_raw_id(&mut key, master.id.ms, master.id.seq);
        put_raw_string(out, &key);
        put_raw_string(out, &write_node(node));
    }
    let info = stream.info();
    put_length(out, info.length as u64);
    for id in [
        info.last_generated_id,
        info.recorded_first_entry_id,
        info.max_deleted_entry_id,
    ] {
        put_length(out, id.ms);
        put_length(out, id.seq);
    }
    put_length(out, info.entries_added);
    let groups: Vec<(&[u8], &ConsumerGroup)> = stream.groups().collect();
    put_length(out, groups.len() as u64);
    for (name, group) in groups {
        put_raw_string(out, name);
        put_length(out, group.last_id.ms);
        put_length(out, group.last_id.seq);
        put_length(out, group.entries_read.unwrap_or(ENTRIES_READ_UNKNOWN));
        put_length(out, group.pending.len() as u64);
        for (id, pending) in &group.pending {
            put_raw_id(out, id.ms, id.seq);
            out.extend_from_slice(&pending.delivery_time_ms.to_le_bytes());
            put_length(out, pending.delivery_count);
        }
        put_length(out, group.consumers.len() as u64);
        for (name, consumer) in &group.consumers {
            put_raw_string(out, name);
            out.extend_from_slice(&consumer.seen_time_ms.to_le_bytes());
            put_length(out, consumer.pending.len() as u64);
            for id in &consumer.pending {
                put_raw_id(out, id.ms, id.seq);
            }
        }
    }
}

/// One node's listpack: the master entry (the first entry's field names), then every entry as
/// flags, ID deltas, values (or fields and values) and its element count.
fn write_node(node: &[StreamEntry]) -> Vec<u8> {
    let master = &node[0];
    let master_fields: Vec<&[u8]> = master.fields.iter().step_by(2).map(Vec::as_slice).collect();
    let mut listpack = ListpackWriter::new();
    listpack.push_int(node.len() as i64);
    listpack.push_int(0);
    listpack.push_int(master_fields.len() as i64);
    for field in &master_fields {
        listpack.push(field);
    }
    listpack.push_int(0);
    for entry in node {
        let same_fields = entry.fields.len() == 2 * master_fields.len()
            && entry
                .fields
                .iter()
                .step_by(2)
                .zip(&master_fields)
                .all(|(field, master)| field.as_slice() == *master);
        let pairs = entry.fields.len() / 2;
        listpack.push_int(if same_fields { FLAG_SAME_FIELDS } else { 0 });
        listpack.push_int(entry.id.ms.wrapping_sub(master.id.ms) as i64);
        listpack.push_int(entry.id.seq.wrapping_sub(master.id.seq) as i64);
        if same_fields {
            for value in entry.fields.iter().skip(1).step_by(2) {
                listpack.push(value);
            }
            listpack.push_int(pairs as i64 + 3);
        } else {
            listpack.push_int(pairs as i64);
            for item in &entry.fields {
                listpack.push(item);
            }
            listpack.push_int(2 * pairs as i64 + 4);
        }
    }
    listpack.finish()
}

fn next<'a>(items: &mut std::slice::Iter<'_, Item<'a>>) -> Read<Item<'a>> {
    items.next().copied().ok_or(DumpError::BadFormat)
}

fn next_count(items: &mut std::slice::Iter<'_, Item<'_>>) -> Read<usize> {
    usize::try_from(next(items)?.int()?).map_err(|_| DumpError::BadFormat)
}

/// Appends a node's live entries to `stream`.
fn read_node(
    stream: &mut StreamValue,
    master_id: StreamId,
    blob: &[u8],
    limits: &StreamLimits,
) -> Read<()> {
    let items = read_listpack(blob)?;
    let mut items = items.iter();
    let live = next_count(&mut items)?;
    let deleted = next_count(&mut items)?;
    let master_field_count = next_count(&mut items)?;
    let master_fields = (0..master_field_count)
        .map(|_| next(&mut items).map(Item::to_vec))
        .collect::<Read<Vec<_>>>()?;
    if next(&mut items)?.int()? != 0 {
        return Err(DumpError::BadFormat);
    }
    let (mut live_seen, mut deleted_seen) = (0, 0);
    while items.len() > 0 {
        let flags = next(&mut items)?.int()?;
        let ms = master_id.ms.wrapping_add(next(&mut items)?.int()? as u64);
        let seq = master_id.seq.wrapping_add(next(&mut items)?.int()? as u64);
        let mut fields = Vec::new();
        if flags & FLAG_SAME_FIELDS != 0 {
            for name in &master_fields {
                fields.push(name.clone());
                fields.push(next(&mut items)?.to_vec());
            }
        } else {
            let count = next_count(&mut items)?;
            for _ in 0..count.checked_mul(2).ok_or(DumpError::BadFormat)? {
                fields.push(next(&mut items)?.to_vec());
            }
        }
        next(&mut items)?.int()?;
        if fields.is_empty() {
            return Err(DumpError::BadFormat);
        }
        if flags & FLAG_DELETED != 0 {
            deleted_seen += 1;
            continue;
        }
        live_seen += 1;
        let views: Vec<&[u8]> = fields.iter().map(Vec::as_slice).collect();
        stream
            .add(AddId::Explicit(StreamId::new(ms, seq)), &views, 0, limits)
            .map_err(|_| DumpError::BadFormat)?;
    }
    if (live_seen, deleted_seen) != (live, deleted) || live + deleted == 0 {
        return Err(DumpError::BadFormat);
    }
    Ok(())
}

fn read_id(reader: &mut Reader<'_>) -> Read<StreamId> {
    Ok(StreamId::new(reader.length()?, reader.length()?))
}

fn read_raw_id(reader: &mut Reader<'_>) -> Read<StreamId> {
    let (ms, seq) = reader.raw_id()?;
    Ok(StreamId::new(ms, seq))
}

/// Reads a stream of layout `version` (1: Redis 5, 2: Redis 7.0, 3: Redis 7.2).
pub(super) fn read(reader: &mut Reader<'_>, version: u8, limits: &StreamLimits) -> Read<Value> {
    let mut stream = StreamValue::new();
    let nodes = reader.count()?;
    for _ in 0..nodes {
        let key = reader.string()?;
        let key: [u8; 16] = key.try_into().map_err(|_| DumpError::BadFormat)?;
        let master_id = StreamId::new(
            u64::from_be_bytes(key[..8].try_into().expect("8 bytes")),
            u64::from_be_bytes(key[8..].try_into().expect("8 bytes")),
        );
        let blob = reader.string()?;
        read_node(&mut stream, master_id, &blob, limits)?;
    }
    let length = reader.length()?;
    let last_id = read_id(reader)?;
    if length != stream.len() as u64 || last_id < stream.last_id() {
        return Err(DumpError::BadFormat);
    }
    let first_entry_id = stream.info().recorded_first_entry_id;
    let (first_id, max_deleted, entries_added) = if version >= 2 {
        (read_id(reader)?, read_id(reader)?, reader.length()?)
    } else {
        (first_entry_id, StreamId::MIN, length)
    };
    if entries_added < length {
        return Err(DumpError::BadFormat);
    }
    stream.restore_counters(last_id, first_id, max_deleted, entries_added);
    let group_count = reader.count()?;
    for _ in 0..group_count {
        let name = reader.string()?;
        let last_id = read_id(reader)?;
        let entries_read = if version >= 2 {
            Some(reader.length()?).filter(|&read| read != ENTRIES_READ_UNKNOWN)
        } else {
            stream.estimated_entries_read(last_id)
        };
        let mut group = ConsumerGroup {
            last_id,
            entries_read,
            ..ConsumerGroup::default()
        };
        let pending_count = reader.count()?;
        for _ in 0..pending_count {
            let id = read_raw_id(reader)?;
            let delivery_time_ms = reader.millis()?;
            let delivery_count = reader.length()?;
            let entry = PendingEntry {
                consumer: CompactBytes::new(b""),
                delivery_time_ms,
                delivery_count,
            };
            if group.pending.insert(id, entry).is_some() {
                return Err(DumpError::BadFormat);
            }
        }
        let consumer_count = reader.count()?;
        let mut owned = std::collections::BTreeSet::new();
        for _ in 0..consumer_count {
            let name = reader.string()?;
            let seen_time_ms = reader.millis()?;
            let active_time_ms = if version >= 3 {
                Some(reader.millis()?).filter(|&at| at != TIME_NEVER)
            } else {
                Some(seen_time_ms)
            };
            let mut consumer = Consumer {
                seen_time_ms,
                active_time_ms,
                ..Consumer::default()
            };
            let pending_count = reader.count()?;
            for _ in 0..pending_count {
                let id = read_raw_id(reader)?;
                let entry = group.pending.get_mut(&id).ok_or(DumpError::BadFormat)?;
                if !owned.insert(id) {
                    return Err(DumpError::BadFormat);
                }
                entry.consumer = CompactBytes::new(&name);
                consumer.pending.insert(id);
            }
            if group
                .consumers
                .insert(CompactBytes::new(&name), consumer)
                .is_some()
            {
                return Err(DumpError::BadFormat);
            }
        }
        // Every pending entry belongs to exactly one consumer.
        if owned.len() != group.pending.len() {
            return Err(DumpError::BadFormat);
        }
        if stream
            .groups_mut()
            .insert(CompactBytes::new(&name), group)
            .is_some()
        {
            return Err(DumpError::BadFormat);
        }
    }
    Ok(Value::Stream(Box::new(stream)))
}
