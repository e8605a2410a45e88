//! HRANDFIELD and HSCAN: the hash commands that answer a sample or a slice of the fields.

use ember_resp::Protocol;
use ember_store::glob::glob_match;
use ember_store::{Change, Value};

use super::super::read_for_reply;
use super::super::sets::RANDOM_REPEATED_COUNT_MAX;
use super::super::{errors, is, parse_integer, CommandError, CommandResult, Ctx};
use super::hash_of;

/// HSCAN's COUNT when none is given, as Redis's.
const SCAN_COUNT_DEFAULT: usize = 10;

/// HRANDFIELD key [count [WITHVALUES]]. Due fields are removed first, as Redis 7.4 does
/// (`hashTypeExpireIfNeeded`), so none is ever picked; the key goes if that empties it.
pub fn hrandfield(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> CommandResult {
    let (count, with_values) = parse_random_arguments(args)?;
    let (db, now_ms, protocol) = (ctx.db, ctx.now_ms, ctx.protocol);
    let out = &mut *ctx.out;
    let mut rng = rand::thread_rng();
    let answered = ctx.keyspace.update(db, args[1], now_ms, |value| {
        let Value::Hash(hash) = value else {
            return Err(CommandError::from(errors::WRONGTYPE));
        };
        let removed = hash.remove_all_expired(now_ms);
        let change = if hash.is_empty() {
            Change::Emptied
        } else if removed > 0 {
            Change::Modified
        } else {
            Change::None
        };
        let Some(count) = count else {
            match hash.random_field(&mut rng) {
                Some((name, _)) => out.bulk(&name),
                None => out.null(),
            }
            return Ok(((), change));
        };
        let picked = hash.random_fields(count, &mut rng);
        match (with_values, protocol) {
            (false, _) => out.array_len(picked.len()),
            (true, Protocol::Resp3) => out.array_len(picked.len()),
            (true, Protocol::Resp2) => out.array_len(picked.len() * 2),
        }
        for (name, value) in picked {
            if with_values && protocol == Protocol::Resp3 {
                out.array_len(2);
            }
            out.bulk(&name);
            if with_values {
                out.bulk(value);
            }
        }
        Ok(((), change))
    });
    ctx.stats.count_lookup(answered.is_some());
    match answered {
        Some(result) => result,
        None => {
            match count {
                Some(_) => ctx.out.array_len(0),
                None => ctx.out.null(),
            }
            Ok(())
        }
    }
}

/// HRANDFIELD's count and WITHVALUES, checked as Redis checks them, plus Ember's bound on a
/// count with repeats (see [`RANDOM_REPEATED_COUNT_MAX`]).
fn parse_random_arguments(args: &[&[u8]]) -> Result<(Option<i64>, bool), CommandError> {
    let Some(count_arg) = args.get(2) else {
        return Ok((None, false));
    };
    let count = parse_integer(count_arg)?;
    if count == i64::MIN {
        return Err(format!(
            "ERR value is out of range, value must between {} and {}",
            -i64::MAX,
            i64::MAX
        )
        .into());
    }
    let with_values = match args.get(3) {
        None => false,
        Some(word) if args.len() == 4 && is(word, "WITHVALUES") => true,
        Some(_) => return Err(errors::SYNTAX.into()),
    };
    if with_values && !(-i64::MAX / 2..=i64::MAX / 2).contains(&count) {
        return Err("ERR value is out of range".into());
    }
    if count < 0 && count.unsigned_abs() > RANDOM_REPEATED_COUNT_MAX {
        return Err(format!(
            "ERR HRANDFIELD returns at most {RANDOM_REPEATED_COUNT_MAX} fields with repeats"
        )
        .into());
    }
    Ok((Some(count), with_values))
}

/// A SCAN cursor as Redis reads it (`strtoull`): digits, an optional sign, wrapping.
fn parse_cursor(arg: &[u8]) -> Option<u64> {
    let (negative, digits) = match arg.first() {
        Some(b'-') => (true, &arg[1..]),
        Some(b'+') => (false, &arg[1..]),
        _ => (false, arg),
    };
    if digits.is_empty() || !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let magnitude: u64 = std::str::from_utf8(digits).ok()?.parse().ok()?;
    Some(if negative {
        magnitude.wrapping_neg()
    } else {
        magnitude
    })
}

/// HSCAN key cursor [MATCH pattern] [COUNT count] [NOVALUES]. As in Redis, the cursor is
/// checked first, a missing key answers an empty scan before the options are read, and a
/// packed hash answers whole in one call.
pub fn hscan(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> CommandResult {
    let cursor = parse_cursor(args[2]).ok_or(CommandError::from("ERR invalid cursor"))?;
    let now_ms = ctx.now_ms;
    let (entry, out) = read_for_reply(ctx, args[1]);
    let Some(entry) = entry else {
        out.array_len(2);
        out.bulk(b"0");
        out.array_len(0);
        return Ok(());
    };
    let hash = hash_of(entry)?;
    let (mut pattern, mut count, mut with_values) = (None, SCAN_COUNT_DEFAULT, true);
    let mut index = 3;
    while index < args.len() {
        if is(args[index], "NOVALUES") {
            with_values = false;
            index += 1;
            continue;
        }
        let value = args
            .get(index + 1)
            .ok_or(CommandError::from(errors::SYNTAX))?;
        if is(args[index], "MATCH") {
            pattern = (*value != b"*").then_some(*value);
        } else if is(args[index], "COUNT") {
            let parsed = parse_integer(value)?;
            if parsed < 1 {
                return Err(errors::SYNTAX.into());
            }
            count = usize::try_from(parsed).unwrap_or(usize::MAX);
        } else {
            return Err(errors::SYNTAX.into());
        }
        index += 2;
    }
    let (next_cursor, found) = hash.scan(cursor, count, now_ms);
    let found: Vec<_> = found
        .into_iter()
        .filter(|(name, _)| pattern.is_none_or(|pattern| glob_match(pattern, name)))
        .collect();
    out.array_len(2);
    out.bulk(next_cursor.to_string().as_bytes());
    out.array_len(found.len() * if with_values { 2 } else { 1 });
    for (name, value) in found {
        out.bulk(&name);
        if with_values {
            out.bulk(value);
        }
    }
    Ok(())
}
