//! Set algebra over several keys: SINTER, SINTERCARD, SUNION, SDIFF and their STORE forms, and
//! SMOVE. Keys on several shards run through `Split::Scratch`, so these handlers see every key
//! in one keyspace.

use std::collections::HashSet;

use ember_store::{Change, Keyspace, SetValue, Value};

use super::set_of;
use crate::commands::notify::{self, notify};
use crate::commands::{errors, is, read_entry, CommandError, CommandResult, Ctx};

/// The sets at `keys`, in order (None for a missing key), each lookup counted as a read; a key
/// of another type is WRONGTYPE, whatever the other keys hold, as Redis checks every key.
fn load_sets<'a>(
    ctx: &'a mut Ctx<'_>,
    keys: &[&[u8]],
) -> Result<Vec<Option<&'a SetValue>>, CommandError> {
    for key in keys {
        let _ = read_entry(ctx, key);
    }
    let (db, now_ms) = (ctx.db, ctx.now_ms);
    let keyspace: &'a Keyspace = ctx.keyspace;
    keys.iter()
        .map(|key| keyspace.peek(db, key, now_ms).map(set_of).transpose())
        .collect()
}

/// Members in every set, walking the smallest; `limit` stops early (0: none).
fn intersection<'a>(sets: &[Option<&'a SetValue>], limit: usize) -> Vec<&'a [u8]> {
    let Some(mut present) = sets.iter().copied().collect::<Option<Vec<&SetValue>>>() else {
        return Vec::new(); // A missing key is an empty set.
    };
    present.sort_by_key(|set| set.len());
    let (smallest, others) = present.split_first().expect("at least one key");
    let mut members = Vec::new();
    for member in smallest.iter() {
        if others.iter().all(|set| set.contains(member)) {
            members.push(member);
            if members.len() == limit {
                break;
            }
        }
    }
    members
}

/// Members in any set.
fn union<'a>(sets: &[Option<&'a SetValue>]) -> Vec<&'a [u8]> {
    let mut seen: HashSet<&[u8]> = HashSet::new();
    let mut members = Vec::new();
    for set in sets.iter().flatten() {
        for member in set.iter() {
            if seen.insert(member) {
                members.push(member);
            }
        }
    }
    members
}

/// Members of the first set in none of the others.
fn difference<'a>(sets: &[Option<&'a SetValue>]) -> Vec<&'a [u8]> {
    let Some(Some(first)) = sets.first() else {
        return Vec::new();
    };
    first
        .iter()
        .filter(|member| sets[1..].iter().flatten().all(|set| !set.contains(member)))
        .collect()
}

/// Which set operation.
#[derive(Clone, Copy)]
enum Operation {
    Intersection,
    Union,
    Difference,
}

fn compute<'a>(operation: Operation, sets: &[Option<&'a SetValue>]) -> Vec<&'a [u8]> {
    match operation {
        Operation::Intersection => intersection(sets, 0),
        Operation::Union => union(sets),
        Operation::Difference => difference(sets),
    }
}

/// The reply form: a set in RESP3.
fn reply_members(ctx: &mut Ctx<'_>, operation: Operation, keys: &[&[u8]]) -> CommandResult {
    let members: Vec<Vec<u8>> = compute(operation, &load_sets(ctx, keys)?)
        .into_iter()
        .map(<[u8]>::to_vec)
        .collect();
    ctx.out.set_len(members.len());
    for member in &members {
        ctx.out.bulk(member);
    }
    Ok(())
}

/// The STORE form: the result replaces `destination` (whatever it held, its TTL gone); an empty
/// result deletes it.
fn store_members(
    ctx: &mut Ctx<'_>,
    operation: Operation,
    destination: &[u8],
    keys: &[&[u8]],
) -> CommandResult {
    let result = {
        let members = compute(operation, &load_sets(ctx, keys)?);
        members.first().map(|first| {
            let mut set = SetValue::for_members(first, members.len());
            for member in &members {
                set.insert(member);
            }
            set
        })
    };
    let event = match operation {
        Operation::Intersection => "sinterstore",
        Operation::Union => "sunionstore",
        Operation::Difference => "sdiffstore",
    };
    store_set(ctx, destination, result, event);
    Ok(())
}

/// Writes `result` at `destination` (deleting it when None), raises `event` (or `del` when a
/// key went) and replies with its size.
fn store_set(ctx: &mut Ctx<'_>, destination: &[u8], result: Option<SetValue>, event: &str) {
    let (db, now_ms) = (ctx.db, ctx.now_ms);
    match result {
        Some(set) => {
            let len = set.len();
            ctx.keyspace
                .insert(db, destination, Value::Set(Box::new(set)), None, now_ms);
            ctx.out.integer(len as i64);
            notify(ctx, notify::SET, event, destination);
        }
        None => {
            let removed = ctx.keyspace.remove(db, destination, now_ms).is_some();
            ctx.out.integer(0);
            if removed {
                notify(ctx, notify::GENERIC, "del", destination);
            }
        }
    }
}

/// SINTER key [key ...]
pub fn sinter(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> CommandResult {
    reply_members(ctx, Operation::Intersection, &args[1..])
}

/// SUNION key [key ...]
pub fn sunion(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> CommandResult {
    reply_members(ctx, Operation::Union, &args[1..])
}

/// SDIFF key [key ...]
pub fn sdiff(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> CommandResult {
    reply_members(ctx, Operation::Difference, &args[1..])
}

/// SINTERSTORE destination key [key ...]
pub fn sinterstore(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> CommandResult {
    store_members(ctx, Operation::Intersection, args[1], &args[2..])
}

/// SUNIONSTORE destination key [key ...]
pub fn sunionstore(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> CommandResult {
    store_members(ctx, Operation::Union, args[1], &args[2..])
}

/// SDIFFSTORE destination key [key ...]
pub fn sdiffstore(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> CommandResult {
    store_members(ctx, Operation::Difference, args[1], &args[2..])
}

/// Parses a key count as Redis's `getRangeLongFromObjectOrReply` with a message: anything but
/// 1..=i64::MAX answers `message`; a count past the arguments left answers Redis's own error.
///
/// # Errors
/// The two above.
pub fn parse_key_count(
    arg: &[u8],
    arguments_left: usize,
    message: &'static str,
) -> Result<usize, CommandError> {
    let count = ember_resp::parse_i64(arg)
        .filter(|&count| count >= 1)
        .ok_or(CommandError::from(message))?;
    if count as u64 > arguments_left as u64 {
        return Err("ERR Number of keys can't be greater than number of args".into());
    }
    Ok(count as usize)
}

/// SINTERCARD numkeys key [key ...] [LIMIT limit]
pub fn sintercard(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> CommandResult {
    let count = parse_key_count(
        args[1],
        args.len() - 2,
        "ERR numkeys should be greater than 0",
    )?;
    let keys = &args[2..2 + count];
    let mut limit = 0usize;
    let mut index = 2 + count;
    while index < args.len() {
        if is(args[index], "LIMIT") && index + 1 < args.len() {
            limit = ember_resp::parse_i64(args[index + 1])
                .and_then(|limit| usize::try_from(limit).ok())
                .ok_or(CommandError::from("ERR LIMIT can't be negative"))?;
            index += 2;
        } else {
            return Err(errors::SYNTAX.into());
        }
    }
    let cardinality = intersection(&load_sets(ctx, keys)?, limit).len();
    ctx.out.integer(cardinality as i64);
    Ok(())
}

/// SMOVE source destination member
pub fn smove(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> CommandResult {
    let (source, destination, member) = (args[1], args[2], args[3]);
    let (db, now_ms) = (ctx.db, ctx.now_ms);
    // Redis's order: a missing source answers 0 before any type check.
    let Some(source_entry) = ctx.keyspace.get(db, source, now_ms) else {
        ctx.out.integer(0);
        return Ok(());
    };
    let source_has = set_of(source_entry)?.contains(member);
    if let Some(entry) = ctx.keyspace.get(db, destination, now_ms) {
        set_of(entry)?;
    }
    if source == destination || !source_has {
        ctx.out
            .integer(i64::from(source_has && source == destination));
        return Ok(());
    }
    ctx.keyspace.update(db, source, now_ms, |value| {
        let Value::Set(set) = value else {
            unreachable!("checked above")
        };
        set.remove(member);
        let change = if set.is_empty() {
            Change::Emptied
        } else {
            Change::Modified
        };
        Ok::<_, CommandError>(((), change))
    });
    notify::notify_change(ctx, notify::SET, "srem", source);
    let added = ctx.keyspace.update(db, destination, now_ms, |value| {
        let Value::Set(set) = value else {
            unreachable!("checked above")
        };
        let inserted = set.insert(member);
        let change = if inserted {
            Change::Modified
        } else {
            Change::None
        };
        Ok::<_, CommandError>((inserted, change))
    });
    let added_to_existing = added == Some(Ok(true));
    if added.is_none() {
        let mut set = SetValue::for_members(member, 1);
        set.insert(member);
        ctx.keyspace
            .insert(db, destination, Value::Set(Box::new(set)), None, now_ms);
    }
    if added.is_none() || added_to_existing {
        notify(ctx, notify::SET, "sadd", destination);
    }
    ctx.out.integer(1);
    Ok(())
}
