//! Set commands: SADD, SREM, SMEMBERS, SISMEMBER, SMISMEMBER, SCARD, SRANDMEMBER, SPOP (in the
//! core table), and in this file's table SMOVE, the set algebra (`algebra`) and SSCAN.
//!
//! A set key never holds an empty set: the command that removes the last member deletes the key,
//! as in Redis.

mod algebra;
pub(crate) mod scan;

use ember_store::set::SetEncoding;
use ember_store::{Change, Entry, SetValue, Value};

use super::key_finders::count_then_keys;
use super::notify::{self, notify};
use super::{
    command, errors, movable, parse_integer, read_entry, read_for_reply, split, CommandError,
    CommandResult, CommandSpec, Ctx, Ks, Split, ALL_KEYS, NO_KEYS, ONE_KEY, R, TWO_KEYS, W_FAST,
    W_OOM,
};

/// This family's commands beyond the core table, in COMMAND's order.
#[rustfmt::skip]
pub static COMMANDS: &[CommandSpec] = &[
    split(command("smove", 4, W_FAST, TWO_KEYS, "set", "1.0.0", "Moves a member from one set to another.", Ks(algebra::smove)), Split::Scratch),
    split(command("sinter", -2, R, ALL_KEYS, "set", "1.0.0", "Returns the intersect of multiple sets.", Ks(algebra::sinter)), Split::Scratch),
    split(movable(command("sintercard", -3, R, NO_KEYS, "set", "7.0.0", "Returns the number of members of the intersect of multiple sets.", Ks(algebra::sintercard)), count_then_keys), Split::Scratch),
    split(command("sunion", -2, R, ALL_KEYS, "set", "1.0.0", "Returns the union of multiple sets.", Ks(algebra::sunion)), Split::Scratch),
    split(command("sdiff", -2, R, ALL_KEYS, "set", "1.0.0", "Returns the difference of multiple sets.", Ks(algebra::sdiff)), Split::Scratch),
    split(command("sinterstore", -3, W_OOM, ALL_KEYS, "set", "1.0.0", "Stores the intersect of multiple sets in a key.", Ks(algebra::sinterstore)), Split::Scratch),
    split(command("sunionstore", -3, W_OOM, ALL_KEYS, "set", "1.0.0", "Stores the union of multiple sets in a key.", Ks(algebra::sunionstore)), Split::Scratch),
    split(command("sdiffstore", -3, W_OOM, ALL_KEYS, "set", "1.0.0", "Stores the difference of multiple sets in a key.", Ks(algebra::sdiffstore)), Split::Scratch),
    command("sscan", -3, R, ONE_KEY, "set", "2.8.0", "Iterates over members of a set.", Ks(sscan)),
];

/// Most members one SRANDMEMBER with a negative count may return. Repeats make the reply
/// independent of the set's size, so only a bound keeps one command from filling the shard's
/// memory with its output (Redis has none and relies on the client output buffer limit).
pub const RANDOM_REPEATED_COUNT_MAX: u64 = 1 << 20;

/// The set of `entry`, or WRONGTYPE.
fn set_of(entry: &Entry) -> Result<&SetValue, CommandError> {
    match &entry.value {
        Value::Set(set) => Ok(set),
        _ => Err(errors::WRONGTYPE.into()),
    }
}

/// The set at `key` for a read command (hit or miss counted), or WRONGTYPE.
fn read_set<'a>(ctx: &'a mut Ctx<'_>, key: &[u8]) -> Result<Option<&'a SetValue>, CommandError> {
    read_entry(ctx, key).map(set_of).transpose()
}

/// SADD key member [member ...]
pub fn sadd(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> CommandResult {
    let (db, now_ms, key, members) = (ctx.db, ctx.now_ms, args[1], &args[2..]);
    let updated = ctx.keyspace.update(db, key, now_ms, |value| {
        let Value::Set(set) = value else {
            return Err(CommandError::from(errors::WRONGTYPE));
        };
        let added = members.iter().filter(|member| set.insert(member)).count();
        Ok((
            added,
            if added > 0 {
                Change::Modified
            } else {
                Change::None
            },
        ))
    });
    let added = match updated {
        Some(added) => added?,
        None => {
            let mut set = SetValue::for_members(members[0], members.len());
            let added = members.iter().filter(|member| set.insert(member)).count();
            ctx.keyspace
                .insert(db, key, Value::Set(Box::new(set)), None, now_ms);
            added
        }
    };
    if added > 0 {
        notify(ctx, notify::SET, "sadd", key);
    }
    ctx.out.integer(added as i64);
    Ok(())
}

/// SREM key member [member ...]
pub fn srem(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> CommandResult {
    let (db, now_ms, key) = (ctx.db, ctx.now_ms, args[1]);
    let removed = ctx
        .keyspace
        .update(db, key, now_ms, |value| {
            let Value::Set(set) = value else {
                return Err(CommandError::from(errors::WRONGTYPE));
            };
            let removed = args[2..].iter().filter(|member| set.remove(member)).count();
            Ok(((removed, set.is_empty()), removal(removed, set.is_empty())))
        })
        .transpose()?
        .unwrap_or((0, false));
    let (removed, emptied) = removed;
    if removed > 0 {
        notify(ctx, notify::SET, "srem", key);
        if emptied {
            notify(ctx, notify::GENERIC, "del", key);
        }
    }
    ctx.out.integer(removed as i64);
    Ok(())
}

/// SMEMBERS key
pub fn smembers(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> CommandResult {
    let (entry, out) = read_for_reply(ctx, args[1]);
    match entry.map(set_of).transpose()? {
        Some(set) => {
            out.set_len(set.len());
            for member in set.iter() {
                out.bulk(member);
            }
        }
        None => out.set_len(0),
    }
    Ok(())
}

/// SISMEMBER key member
pub fn sismember(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> CommandResult {
    let found = read_set(ctx, args[1])?.is_some_and(|set| set.contains(args[2]));
    ctx.out.integer(i64::from(found));
    Ok(())
}

/// SMISMEMBER key member [member ...]
pub fn smismember(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> CommandResult {
    let found: Vec<bool> = match read_set(ctx, args[1])? {
        Some(set) => args[2..]
            .iter()
            .map(|member| set.contains(member))
            .collect(),
        None => vec![false; args.len() - 2],
    };
    ctx.out.array_len(found.len());
    for member_found in found {
        ctx.out.integer(i64::from(member_found));
    }
    Ok(())
}

/// SCARD key
pub fn scard(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> CommandResult {
    let len = read_set(ctx, args[1])?.map_or(0, SetValue::len);
    ctx.out.integer(len as i64);
    Ok(())
}

/// SRANDMEMBER key [count]: without a count one member or nil; a positive count that many
/// distinct members (all when the set is smaller); a negative count that many with repeats.
pub fn srandmember(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> CommandResult {
    if args.len() > 3 {
        return Err(errors::SYNTAX.into());
    }
    let count = match args.get(2) {
        Some(arg) => Some(parse_random_count(arg)?),
        None => None,
    };
    let mut rng = rand::thread_rng();
    let (entry, out) = read_for_reply(ctx, args[1]);
    match (entry.map(set_of).transpose()?, count) {
        (None, None) => out.null(),
        (Some(set), None) => {
            let member = set
                .random_member(&mut rng)
                .expect("stored sets are not empty");
            out.bulk(member);
        }
        (None, Some(_)) | (Some(_), Some(0)) => out.array_len(0),
        (Some(set), Some(count)) if count > 0 => {
            let members = set.random_distinct(count as usize, &mut rng);
            out.array_len(members.len());
            for member in members {
                out.bulk(member);
            }
        }
        (Some(set), Some(count)) => {
            out.array_len(count.unsigned_abs() as usize);
            for _ in 0..count.unsigned_abs() {
                let member = set
                    .random_member(&mut rng)
                    .expect("stored sets are not empty");
                out.bulk(member);
            }
        }
    }
    Ok(())
}

/// SRANDMEMBER's count: Redis's range (-i64::MAX to i64::MAX), and Ember's bound on repeats.
fn parse_random_count(arg: &[u8]) -> Result<i64, CommandError> {
    let count = parse_integer(arg)?;
    if count == i64::MIN {
        return Err(format!(
            "ERR value is out of range, value must between {} and {}",
            -i64::MAX,
            i64::MAX
        )
        .into());
    }
    if count < 0 && count.unsigned_abs() > RANDOM_REPEATED_COUNT_MAX {
        return Err(format!(
            "ERR SRANDMEMBER returns at most {RANDOM_REPEATED_COUNT_MAX} members with repeats"
        )
        .into());
    }
    Ok(count)
}

/// SPOP key [count]: without a count one member or nil; with one, a set of up to `count`
/// members. The key goes when its last member does.
pub fn spop(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> CommandResult {
    if args.len() > 3 {
        return Err(errors::SYNTAX.into());
    }
    let count = match args.get(2) {
        // Redis gives this one message for a negative count and for one that is no integer.
        Some(arg) => Some(
            ember_resp::parse_i64(arg)
                .and_then(|count| u64::try_from(count).ok())
                .ok_or(CommandError::from(
                    "ERR value is out of range, must be positive",
                ))?,
        ),
        None => None,
    };
    let (db, now_ms, key) = (ctx.db, ctx.now_ms, args[1]);
    let out = &mut *ctx.out;
    // The members it took, for the append-only file (a replay would take others).
    let mut taken: Option<Vec<Vec<u8>>> = ctx.propagation.is_on().then(Vec::new);
    let popped = ctx.keyspace.update(db, key, now_ms, |value| {
        let Value::Set(set) = value else {
            return Err(CommandError::from(errors::WRONGTYPE));
        };
        let mut rng = rand::thread_rng();
        match count {
            None => {
                let member = set.pop_random(&mut rng).expect("stored sets are not empty");
                out.bulk(&member);
                if let Some(taken) = taken.as_mut() {
                    taken.push(member.to_vec());
                }
            }
            Some(0) => {
                out.set_len(0);
                return Ok((false, Change::None));
            }
            Some(count) => {
                let count = count.min(set.len() as u64);
                out.set_len(count as usize);
                for _ in 0..count {
                    let member = set.pop_random(&mut rng).expect("count within the size");
                    out.bulk(&member);
                    if let Some(taken) = taken.as_mut() {
                        taken.push(member.to_vec());
                    }
                }
            }
        }
        Ok((set.is_empty(), removal(1, set.is_empty())))
    });
    match (taken, &popped) {
        (Some(taken), Some(Ok(_))) if !taken.is_empty() => {
            let mut record: Vec<&[u8]> = vec![b"SREM", key];
            record.extend(taken.iter().map(Vec::as_slice));
            ctx.propagate(&record);
        }
        _ => ctx.propagation.suppress(),
    }
    match popped {
        Some(Ok(emptied)) => {
            if count != Some(0) {
                notify(ctx, notify::SET, "spop", key);
                if emptied {
                    notify(ctx, notify::GENERIC, "del", key);
                }
            }
            Ok(())
        }
        Some(Err(error)) => Err(error),
        None => {
            match count {
                Some(_) => ctx.out.set_len(0),
                None => ctx.out.null(),
            }
            Ok(())
        }
    }
}

/// SSCAN key cursor [MATCH pattern] [COUNT count]: Redis's order of checks (the cursor, then
/// the key, then the options).
pub fn sscan(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> CommandResult {
    let cursor = scan::parse_cursor(args[2])?;
    let (entry, out) = read_for_reply(ctx, args[1]);
    let Some(set) = entry.map(set_of).transpose()? else {
        out.array_len(2);
        out.bulk(b"0");
        out.array_len(0);
        return Ok(());
    };
    let options = scan::parse_options(&args[3..])?;
    let whole = set.encoding() != SetEncoding::Hashtable;
    let (next, found) = scan::select(set.iter().map(|m| (m, ())), cursor, &options, whole);
    out.array_len(2);
    out.bulk(next.to_string().as_bytes());
    out.array_len(found.len());
    for (member, ()) in found {
        out.bulk(member);
    }
    Ok(())
}

/// What removing `removed` members did: the key goes with its last member.
fn removal(removed: usize, emptied: bool) -> Change {
    if emptied {
        Change::Emptied
    } else if removed > 0 {
        Change::Modified
    } else {
        Change::None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn random_counts() {
        assert_eq!(parse_random_count(b"5"), Ok(5));
        assert_eq!(parse_random_count(b"-5"), Ok(-5));
        assert!(parse_random_count(b"-9223372036854775808")
            .unwrap_err()
            .0
            .contains("must between -9223372036854775807"));
        assert!(parse_random_count(b"-1048577").is_err());
        assert_eq!(parse_random_count(b"9223372036854775807"), Ok(i64::MAX));
    }
}
