//! Bitmap commands: SETBIT, GETBIT, BITCOUNT, BITPOS, BITOP, BITFIELD, BITFIELD_RO.
//!
//! Bitmaps are ordinary string values (the bit arithmetic is `ember_store::bitmap`'s), so GET,
//! SET, APPEND and SETRANGE see the same bytes. Offsets stay below `proto-max-bulk-len` bytes,
//! as Redis bounds them, so no command grows a string past what SETRANGE could.

use std::borrow::Cow;

use ember_store::bitmap::{
    bit_count, bit_op, bit_position, bitfield_get, bitfield_increment, bitfield_set, get_bit,
    parse_bitfield_offset, parse_bitfield_type, set_bit, BitOp, FieldType, Overflow, Unit,
};
use ember_store::{parse_canonical_i64, Change, Value};

use super::notify::{self, notify};

use super::{
    command, errors, is, parse_integer, read_entry, split, CommandError, CommandResult,
    CommandSpec, Ctx, KeySpec, Ks, Split, ONE_KEY, R, R_FAST, W_OOM,
};

/// BITOP's keys: the destination after the operation's name, then every source.
const BITOP_KEYS: KeySpec = KeySpec {
    first: 2,
    last: -1,
    step: 1,
};

/// This family's commands, in COMMAND's order.
#[rustfmt::skip]
pub static COMMANDS: &[CommandSpec] = &[
    command("setbit", 4, W_OOM, ONE_KEY, "bitmap", "2.2.0", "Sets or clears the bit at offset of the string value. Creates the key if it doesn't exist.", Ks(setbit)),
    command("getbit", 3, R_FAST, ONE_KEY, "bitmap", "2.2.0", "Returns a bit value by offset.", Ks(getbit)),
    command("bitcount", -2, R, ONE_KEY, "bitmap", "2.6.0", "Counts the number of set bits (population counting) in a string.", Ks(bitcount)),
    command("bitpos", -3, R, ONE_KEY, "bitmap", "2.8.7", "Finds the first set (1) or clear (0) bit in a string.", Ks(bitpos)),
    split(command("bitop", -4, W_OOM, BITOP_KEYS, "bitmap", "2.6.0", "Performs bitwise operations on multiple strings, and stores the result.", Ks(bitop)), Split::Scratch),
    command("bitfield", -2, W_OOM, ONE_KEY, "bitmap", "3.2.0", "Performs arbitrary bitfield integer operations on strings.", Ks(bitfield)),
    command("bitfield_ro", -2, R_FAST, ONE_KEY, "bitmap", "6.0.0", "Performs arbitrary read-only bitfield integer operations on strings.", Ks(bitfield_ro)),
];

/// Redis's reply to an offset that is malformed, negative or past `proto-max-bulk-len`.
const BIT_OFFSET_INVALID: &str = "ERR bit offset is not an integer or out of range";

/// Runs `read` on the bytes at `key` (`None` when missing) without copying them, or answers
/// WRONGTYPE; the hit or miss is counted.
fn read_string<R>(
    ctx: &mut Ctx<'_>,
    key: &[u8],
    read: impl FnOnce(Option<&[u8]>) -> R,
) -> Result<R, CommandError> {
    match read_entry(ctx, key).map(|entry| &entry.value) {
        None => Ok(read(None)),
        Some(Value::Str(bytes)) => Ok(read(Some(bytes))),
        Some(value @ Value::Int(_)) => Ok(read(Some(&value.to_vec()))),
        Some(_) => Err(errors::WRONGTYPE.into()),
    }
}

/// Changes the string at `key` (empty when missing) with `apply`, which answers its result and
/// whether it changed the bytes; the string is stored back, or created, only when changed.
/// Returns the result and whether it changed.
fn write_bytes<R>(
    ctx: &mut Ctx<'_>,
    key: &[u8],
    len_needed: u64,
    mut apply: impl FnMut(&mut Vec<u8>) -> (R, bool),
) -> Result<(R, bool), CommandError> {
    let (db, now_ms, config) = (ctx.db, ctx.now_ms, ctx.config);
    // A far offset grows the string by up to proto-max-bulk-len: charged before it happens.
    let refuses =
        |len: usize| crate::memory::refuses_request(config, len_needed.saturating_sub(len as u64));
    let updated = ctx.keyspace.update(db, key, now_ms, |value| {
        if !value.is_string() {
            return Err(CommandError::from(errors::WRONGTYPE));
        }
        if refuses(value.string_len()) {
            return Err(CommandError::from(crate::memory::OOM_ERROR));
        }
        // Taken out and put back, so a long bitmap is changed in place, not copied.
        let mut bytes = match std::mem::replace(value, Value::Int(0)) {
            Value::Str(bytes) => bytes.into_vec(),
            other => other.to_vec(),
        };
        let (result, changed) = apply(&mut bytes);
        *value = Value::from_vec(bytes);
        let change = if changed {
            Change::Modified
        } else {
            Change::None
        };
        Ok(((result, changed), change))
    });
    match updated {
        Some(result) => result,
        None => {
            if refuses(0) {
                return Err(crate::memory::OOM_ERROR.into());
            }
            let mut bytes = Vec::new();
            let (result, changed) = apply(&mut bytes);
            if changed {
                ctx.keyspace
                    .insert(db, key, Value::from_vec(bytes), None, now_ms);
            }
            Ok((result, changed))
        }
    }
}

/// A SETBIT / GETBIT offset: a plain non-negative integer below `proto-max-bulk-len` bytes.
fn parse_bit_offset(ctx: &Ctx<'_>, arg: &[u8]) -> Result<u64, CommandError> {
    parse_canonical_i64(arg)
        .and_then(|offset| u64::try_from(offset).ok())
        .filter(|offset| offset >> 3 < ctx.config.proto_max_bulk_len as u64)
        .ok_or(CommandError::from(BIT_OFFSET_INVALID))
}

/// SETBIT key offset value: the bit's old value.
pub fn setbit(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> CommandResult {
    let offset = parse_bit_offset(ctx, args[2])?;
    let value = match parse_canonical_i64(args[3]) {
        Some(0) => false,
        Some(1) => true,
        _ => return Err("ERR bit is not an integer or out of range".into()),
    };
    let (old, changed) = write_bytes(ctx, args[1], offset / 8 + 1, |bytes| {
        let len_before = bytes.len();
        let old = set_bit(bytes, offset, value);
        (old, old != value || bytes.len() != len_before)
    })?;
    // Redis raises `setbit` when the key was created or grew, or the bit changed.
    if changed {
        notify(ctx, notify::STRING, "setbit", args[1]);
    }
    ctx.out.integer(i64::from(old));
    Ok(())
}

/// GETBIT key offset
pub fn getbit(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> CommandResult {
    let offset = parse_bit_offset(ctx, args[2])?;
    let bit = read_string(ctx, args[1], |bytes| {
        bytes.is_some_and(|bytes| get_bit(bytes, offset))
    })?;
    ctx.out.integer(i64::from(bit));
    Ok(())
}

/// BYTE or BIT.
fn parse_unit(arg: &[u8]) -> Result<Unit, CommandError> {
    if is(arg, "BIT") {
        Ok(Unit::Bit)
    } else if is(arg, "BYTE") {
        Ok(Unit::Byte)
    } else {
        Err(errors::SYNTAX.into())
    }
}

/// BITCOUNT key [start end [BYTE|BIT]]: arguments are read before the key, as Redis 7.2 does.
pub fn bitcount(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> CommandResult {
    let range = match args.len() {
        2 => None,
        4 | 5 => {
            let (start, end) = (parse_integer(args[2])?, parse_integer(args[3])?);
            let unit = match args.get(4) {
                Some(arg) => parse_unit(arg)?,
                None => Unit::Byte,
            };
            Some((start, end, unit))
        }
        _ => return Err(errors::SYNTAX.into()),
    };
    let count = read_string(ctx, args[1], |bytes| {
        bytes.map_or(0, |bytes| bit_count(bytes, range))
    })?;
    ctx.out.integer(count as i64);
    Ok(())
}

/// BITPOS key bit [start [end [BYTE|BIT]]]
pub fn bitpos(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> CommandResult {
    let bit = match parse_integer(args[2])? {
        0 => false,
        1 => true,
        _ => return Err("ERR The bit argument must be 1 or 0.".into()),
    };
    if args.len() > 6 {
        return Err(errors::SYNTAX.into());
    }
    let start = args.get(3).map(|arg| parse_integer(arg)).transpose()?;
    let unit = match args.get(5) {
        Some(arg) => parse_unit(arg)?,
        None => Unit::Byte,
    };
    let end = args.get(4).map(|arg| parse_integer(arg)).transpose()?;
    let position = read_string(ctx, args[1], |bytes| match bytes {
        Some(bytes) => bit_position(bytes, bit, start, end, unit),
        // A missing key is all zeros: the first clear bit is bit 0, and no bit is set.
        None if bit => -1,
        None => 0,
    })?;
    ctx.out.integer(position);
    Ok(())
}

/// BITOP AND|OR|XOR|NOT|DIFF|DIFF1|ANDOR|ONE destkey key [key ...]: the result's length; an
/// empty result deletes the destination, as Redis does. Keys on several shards meet in the
/// scratch keyspace.
pub fn bitop(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> CommandResult {
    let op = BitOp::parse(args[1]).ok_or(CommandError::from(errors::SYNTAX))?;
    if op == BitOp::Not && args.len() != 4 {
        return Err("ERR BITOP NOT must be called with a single source key.".into());
    }
    if op.needs_two() && args.len() < 5 {
        return Err(format!(
            "ERR BITOP {} must be called with at least two source keys.",
            op.name()
        )
        .into());
    }
    let (db, now_ms) = (ctx.db, ctx.now_ms);
    // First every source is looked up (expiring it if due, recording the access) and checked
    // to be a string, in argument order as Redis does.
    for key in &args[3..] {
        if ctx
            .keyspace
            .get(db, key, now_ms)
            .is_some_and(|entry| !entry.value.is_string())
        {
            return Err(errors::WRONGTYPE.into());
        }
    }
    // Then the sources are borrowed, not copied: `BITOP OR dst k k k ...` with a large `k`
    // must cost one result, not a copy of `k` per repetition. Only an integer-encoded string
    // (at most 20 bytes) is written out.
    let keyspace = &*ctx.keyspace;
    let sources: Vec<Cow<'_, [u8]>> = args[3..]
        .iter()
        .map(
            |key| match keyspace.peek(db, key, now_ms).map(|entry| &entry.value) {
                None => Cow::Borrowed(&[][..]),
                Some(Value::Str(bytes)) => Cow::Borrowed(&bytes[..]),
                Some(value) => Cow::Owned(value.to_vec()),
            },
        )
        .collect();
    let inputs: Vec<&[u8]> = sources.iter().map(|source| &source[..]).collect();
    let result = bit_op(op, &inputs);
    drop(inputs);
    drop(sources);
    let len = result.len();
    if result.is_empty() {
        if ctx.keyspace.remove(db, args[2], now_ms).is_some() {
            notify(ctx, notify::GENERIC, "del", args[2]);
        }
    } else {
        ctx.keyspace
            .insert(db, args[2], Value::from_vec(result), None, now_ms);
        notify(ctx, notify::STRING, "set", args[2]);
    }
    ctx.out.integer(len as i64);
    Ok(())
}

/// One BITFIELD operation.
#[derive(Clone, Copy)]
enum FieldOp {
    Get,
    Set(i64),
    IncrBy(i64),
}

/// A parsed BITFIELD operation with the OVERFLOW in force where it was given.
#[derive(Clone, Copy)]
struct Operation {
    op: FieldOp,
    field: FieldType,
    offset: u64,
    overflow: Overflow,
}

/// Redis's `bitfieldGeneric` parse: subcommands with enough arguments, OVERFLOW as it comes.
fn parse_operations(ctx: &Ctx<'_>, args: &[&[u8]]) -> Result<Vec<Operation>, CommandError> {
    let bits_max = (ctx.config.proto_max_bulk_len as u64)
        .saturating_mul(8)
        .saturating_sub(1);
    let mut operations = Vec::new();
    let mut overflow = Overflow::Wrap;
    let mut index = 2;
    while index < args.len() {
        let remaining = args.len() - index - 1;
        let word = args[index];
        let takes_value = if is(word, "GET") && remaining >= 2 {
            false
        } else if (is(word, "SET") || is(word, "INCRBY")) && remaining >= 3 {
            true
        } else if is(word, "OVERFLOW") && remaining >= 1 {
            let kind = args[index + 1];
            overflow = if is(kind, "WRAP") {
                Overflow::Wrap
            } else if is(kind, "SAT") {
                Overflow::Sat
            } else if is(kind, "FAIL") {
                Overflow::Fail
            } else {
                return Err("ERR Invalid OVERFLOW type specified".into());
            };
            index += 2;
            continue;
        } else {
            return Err(errors::SYNTAX.into());
        };
        let field = parse_bitfield_type(args[index + 1])
            .map_err(|error| CommandError::from(error.to_string()))?;
        let offset = parse_bitfield_offset(args[index + 2], field, bits_max)
            .map_err(|error| CommandError::from(error.to_string()))?;
        let op = if takes_value {
            let value = parse_integer(args[index + 3])?;
            if is(word, "SET") {
                FieldOp::Set(value)
            } else {
                FieldOp::IncrBy(value)
            }
        } else {
            FieldOp::Get
        };
        operations.push(Operation {
            op,
            field,
            offset,
            overflow,
        });
        index += if takes_value { 4 } else { 3 };
    }
    Ok(operations)
}

/// Runs `operations` on `bytes`: each operation's reply (nil where OVERFLOW FAIL refused), and
/// whether a field changed value (growth of the string is seen by the caller).
fn run_operations(bytes: &mut Vec<u8>, operations: &[Operation]) -> (Vec<Option<i64>>, bool) {
    let mut changed = false;
    let results = operations
        .iter()
        .map(|operation| {
            let (offset, field, overflow) = (operation.offset, operation.field, operation.overflow);
            let before = bitfield_get(bytes, offset, field);
            let result = match operation.op {
                FieldOp::Get => return Some(before),
                FieldOp::Set(value) => bitfield_set(bytes, offset, field, value, overflow),
                FieldOp::IncrBy(increment) => {
                    bitfield_increment(bytes, offset, field, increment, overflow)
                }
            };
            changed |= result.is_some() && bitfield_get(bytes, offset, field) != before;
            result
        })
        .collect();
    (results, changed)
}

fn reply_results(ctx: &mut Ctx<'_>, results: Vec<Option<i64>>) {
    ctx.out.array_len(results.len());
    for result in results {
        match result {
            Some(value) => ctx.out.integer(value),
            None => ctx.out.null(),
        }
    }
}

/// BITFIELD key [GET type offset | SET type offset value | INCRBY type offset increment |
/// OVERFLOW WRAP|SAT|FAIL ...]: with only GETs it reads (a missing key reads as zeros).
pub fn bitfield(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> CommandResult {
    let operations = parse_operations(ctx, args)?;
    let writes = operations
        .iter()
        .any(|operation| !matches!(operation.op, FieldOp::Get));
    if !writes {
        return bitfield_read(ctx, args[1], &operations);
    }
    let len_needed = operations
        .iter()
        .filter(|operation| !matches!(operation.op, FieldOp::Get))
        .map(|operation| (operation.offset + u64::from(operation.field.bits)).div_ceil(8))
        .max()
        .unwrap_or(0);
    let (results, changed) = write_bytes(ctx, args[1], len_needed, |bytes| {
        let len_before = bytes.len();
        let (results, changed) = run_operations(bytes, &operations);
        (results, changed || bytes.len() != len_before)
    })?;
    // Redis raises `setbit` when a SET or INCRBY ran (OVERFLOW FAIL skips its operation) and
    // the key was created or grew, or a field changed.
    let ran_a_write = operations
        .iter()
        .zip(&results)
        .any(|(operation, result)| !matches!(operation.op, FieldOp::Get) && result.is_some());
    if changed && ran_a_write {
        notify(ctx, notify::STRING, "setbit", args[1]);
    }
    reply_results(ctx, results);
    Ok(())
}

fn bitfield_read(ctx: &mut Ctx<'_>, key: &[u8], operations: &[Operation]) -> CommandResult {
    let results = read_string(ctx, key, |bytes| {
        let bytes = bytes.unwrap_or_default();
        operations
            .iter()
            .map(|operation| Some(bitfield_get(bytes, operation.offset, operation.field)))
            .collect()
    })?;
    reply_results(ctx, results);
    Ok(())
}

/// BITFIELD_RO key [GET type offset ...]
pub fn bitfield_ro(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> CommandResult {
    let operations = parse_operations(ctx, args)?;
    if operations
        .iter()
        .any(|operation| !matches!(operation.op, FieldOp::Get))
    {
        return Err("ERR BITFIELD_RO only supports the GET subcommand".into());
    }
    bitfield_read(ctx, args[1], &operations)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bitop_keys_start_at_the_destination() {
        let positions: Vec<usize> = BITOP_KEYS.positions(6).collect();
        assert_eq!(positions, [2, 3, 4, 5]);
    }
}
