//! Per-field expiry, as Redis 7.4 defines it (HEXPIRE, HPEXPIRE, HEXPIREAT, HPEXPIREAT, HTTL,
//! HPTTL, HEXPIRETIME, HPEXPIRETIME, HPERSIST), and Redis 8.0's HGETDEL, HGETEX, HSETEX.
//!
//! Every command names its fields as `FIELDS numfields field...`; the type is checked before
//! the other arguments (except HSETEX's, which Redis parses first), and a missing key answers
//! for each field as a hash without it would.

use ember_store::hash::{ExpireCondition, FieldExpiry, FieldTtl};

use super::super::notify::{self, notify_change};
use super::super::{arity_message, is, parse_integer, CommandError, CommandResult, Ctx};
use super::{check_hash_type, read_for_reply_hash, reply_optional, write_hash};

/// The latest field expiry Redis accepts, in Unix milliseconds (`HFE_MAX_ABS_TIME_MSEC`:
/// ebuckets' 48-bit time, with two bits kept back), so relative times cannot overflow.
pub const FIELD_EXPIRE_AT_MS_MAX: i64 = ((1i64 << 48) - 1) >> 2;

/// Redis's reply when `FIELDS` is not where the command expects it.
const FIELDS_MISSING: &str =
    "ERR Mandatory argument FIELDS is missing or not at the right position";
/// Redis's reply when the count of fields disagrees with the arguments.
const FIELDS_MISMATCH: &str = "ERR The `numfields` parameter must match the number of arguments";
/// HEXPIRE's wording for a bad count of fields; the other commands use [`FIELD_COUNT_INVALID`].
const FIELD_COUNT_NOT_POSITIVE: &str = "ERR Parameter `numFields` should be greater than 0";
const FIELD_COUNT_INVALID: &str = "ERR Number of fields must be a positive integer";

/// Seconds or milliseconds.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Unit {
    Seconds,
    Milliseconds,
}

/// The fields named by `FIELDS numfields field...` with `FIELDS` at `at`, which must end the
/// arguments.
fn parse_fields<'a>(
    args: &[&'a [u8]],
    at: usize,
    count_error: &'static str,
) -> Result<Vec<&'a [u8]>, CommandError> {
    if !args.get(at).is_some_and(|word| is(word, "FIELDS")) {
        return Err(FIELDS_MISSING.into());
    }
    let count = args
        .get(at + 1)
        .and_then(|arg| ember_resp::parse_i64(arg))
        .filter(|count| *count >= 1)
        .ok_or(CommandError::from(count_error))?;
    let names = &args[at + 2..];
    if count as u64 != names.len() as u64 {
        return Err(FIELDS_MISMATCH.into());
    }
    Ok(names.to_vec())
}

/// Redis's `parseExpireTime`: a non-negative time in `unit`, relative to `base_ms` (0 for an
/// absolute time), as Unix milliseconds within [`FIELD_EXPIRE_AT_MS_MAX`].
fn parse_expire_time(
    arg: &[u8],
    unit: Unit,
    base_ms: u64,
    command: &str,
) -> Result<u64, CommandError> {
    let mut value = parse_integer(arg)?;
    if value < 0 {
        return Err("ERR invalid expire time, must be >= 0".into());
    }
    let invalid = || CommandError::from(format!("ERR invalid expire time in '{command}' command"));
    if unit == Unit::Seconds {
        if value > FIELD_EXPIRE_AT_MS_MAX / 1000 {
            return Err(invalid());
        }
        value *= 1000;
    }
    if value > FIELD_EXPIRE_AT_MS_MAX - base_ms as i64 {
        return Err(invalid());
    }
    Ok(value as u64 + base_ms)
}

/// Answers `code` for every field of a missing key.
fn reply_codes_for_missing(ctx: &mut Ctx<'_>, count: usize, code: i64) {
    ctx.out.array_len(count);
    for _ in 0..count {
        ctx.out.integer(code);
    }
}

/// HEXPIRE / HPEXPIRE / HEXPIREAT / HPEXPIREAT key time [NX|XX|GT|LT] FIELDS numfields field...
fn expire_generic(
    ctx: &mut Ctx<'_>,
    args: &[&[u8]],
    unit: Unit,
    relative: bool,
    command: &str,
) -> CommandResult {
    check_hash_type(ctx, args[1])?;
    let base_ms = if relative { ctx.now_ms } else { 0 };
    let at_ms = parse_expire_time(args[2], unit, base_ms, command)?;
    let condition = [
        ("NX", ExpireCondition::Nx),
        ("XX", ExpireCondition::Xx),
        ("GT", ExpireCondition::Gt),
        ("LT", ExpireCondition::Lt),
    ]
    .into_iter()
    .find(|(word, _)| is(args[3], word))
    .map(|(_, condition)| condition);
    let fields_at = if condition.is_some() { 4 } else { 3 };
    let names = parse_fields(args, fields_at, FIELD_COUNT_NOT_POSITIVE)?;
    let condition = condition.unwrap_or(ExpireCondition::Always);
    let codes = write_hash(ctx, args[1], false, |hash, _, now_ms, _| {
        let codes: Vec<i64> = names
            .iter()
            .map(|name| hash.expire_field(name, at_ms, condition, now_ms).code())
            .collect();
        let changed = codes.iter().any(|&code| code == 1 || code == 2);
        Ok((codes, changed))
    })?;
    if let Some(codes) = &codes {
        let deleted: Vec<&[u8]> = names
            .iter()
            .zip(codes)
            .filter(|(_, &code)| code == 2)
            .map(|(name, _)| *name)
            .collect();
        let expiring: Vec<&[u8]> = names
            .iter()
            .zip(codes)
            .filter(|(_, &code)| code == 1)
            .map(|(name, _)| *name)
            .collect();
        propagate_field_expiry(ctx, args[1], at_ms, &expiring, &deleted);
        // Redis 7.4's hashTypeSetExDone: `hdel` when a time in the past removed fields,
        // else `hexpire`; `del` with the last field.
        if codes.contains(&2) {
            notify_change(ctx, notify::HASH, "hdel", args[1]);
        } else if codes.contains(&1) {
            notify_change(ctx, notify::HASH, "hexpire", args[1]);
        }
    }
    match codes {
        Some(codes) => {
            ctx.out.array_len(codes.len());
            for code in codes {
                ctx.out.integer(code);
            }
        }
        None => reply_codes_for_missing(ctx, names.len(), -2),
    }
    Ok(())
}

/// Logs what a field expiry did ([`crate::aof`]): HPEXPIREAT at its absolute time for the
/// fields it set, HDEL for those a time already past removed (a replay keeps every TTL live,
/// so the time alone would not remove them then). Nothing when it changed nothing.
fn propagate_field_expiry(
    ctx: &mut Ctx<'_>,
    key: &[u8],
    at_ms: u64,
    expiring: &[&[u8]],
    deleted: &[&[u8]],
) {
    if !ctx.propagating() {
        return;
    }
    ctx.propagation.suppress();
    if !deleted.is_empty() {
        let mut record: Vec<&[u8]> = vec![b"HDEL", key];
        record.extend_from_slice(deleted);
        ctx.propagate(&record);
    }
    if !expiring.is_empty() {
        let (at_text, count_text) = (at_ms.to_string(), expiring.len().to_string());
        let mut record: Vec<&[u8]> = vec![
            b"HPEXPIREAT",
            key,
            at_text.as_bytes(),
            b"FIELDS",
            count_text.as_bytes(),
        ];
        record.extend_from_slice(expiring);
        ctx.propagate(&record);
    }
}

/// HEXPIRE key seconds [NX|XX|GT|LT] FIELDS numfields field [field ...]
pub fn hexpire(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> CommandResult {
    expire_generic(ctx, args, Unit::Seconds, true, "hexpire")
}

/// HPEXPIRE key milliseconds [NX|XX|GT|LT] FIELDS numfields field [field ...]
pub fn hpexpire(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> CommandResult {
    expire_generic(ctx, args, Unit::Milliseconds, true, "hpexpire")
}

/// HEXPIREAT key unix-time-seconds [NX|XX|GT|LT] FIELDS numfields field [field ...]
pub fn hexpireat(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> CommandResult {
    expire_generic(ctx, args, Unit::Seconds, false, "hexpireat")
}

/// HPEXPIREAT key unix-time-milliseconds [NX|XX|GT|LT] FIELDS numfields field [field ...]
pub fn hpexpireat(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> CommandResult {
    expire_generic(ctx, args, Unit::Milliseconds, false, "hpexpireat")
}

/// HTTL / HPTTL / HEXPIRETIME / HPEXPIRETIME key FIELDS numfields field...: per field -2 when
/// absent, -1 without a TTL, else the time left (relative) or the Unix time, seconds rounded up
/// as Redis rounds them.
fn ttl_generic(ctx: &mut Ctx<'_>, args: &[&[u8]], unit: Unit, relative: bool) -> CommandResult {
    check_hash_type(ctx, args[1])?;
    let names = parse_fields(args, 2, FIELD_COUNT_INVALID)?;
    let now_ms = ctx.now_ms;
    let base_ms = if relative { now_ms } else { 0 };
    let (hash, out) = read_for_reply_hash(ctx, args[1])?;
    out.array_len(names.len());
    for name in names {
        let code = match hash.map_or(FieldExpiry::NoField, |hash| hash.field_expiry(name, now_ms)) {
            FieldExpiry::NoField => -2,
            FieldExpiry::Persistent => -1,
            FieldExpiry::At(at_ms) => match unit {
                Unit::Seconds => ((at_ms + 999 - base_ms) / 1000) as i64,
                Unit::Milliseconds => (at_ms - base_ms) as i64,
            },
        };
        out.integer(code);
    }
    Ok(())
}

/// HTTL key FIELDS numfields field [field ...]
pub fn httl(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> CommandResult {
    ttl_generic(ctx, args, Unit::Seconds, true)
}

/// HPTTL key FIELDS numfields field [field ...]
pub fn hpttl(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> CommandResult {
    ttl_generic(ctx, args, Unit::Milliseconds, true)
}

/// HEXPIRETIME key FIELDS numfields field [field ...]
pub fn hexpiretime(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> CommandResult {
    ttl_generic(ctx, args, Unit::Seconds, false)
}

/// HPEXPIRETIME key FIELDS numfields field [field ...]
pub fn hpexpiretime(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> CommandResult {
    ttl_generic(ctx, args, Unit::Milliseconds, false)
}

/// HPERSIST key FIELDS numfields field [field ...]: per field -2 when absent, -1 without a
/// TTL, 1 when the TTL was removed.
pub fn hpersist(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> CommandResult {
    check_hash_type(ctx, args[1])?;
    let names = parse_fields(args, 2, FIELD_COUNT_INVALID)?;
    let codes = write_hash(ctx, args[1], false, |hash, _, now_ms, _| {
        let codes: Vec<i64> = names
            .iter()
            .map(|name| hash.persist_field(name, now_ms).code())
            .collect();
        let changed = codes.contains(&1);
        Ok((codes, changed))
    })?;
    if codes.as_ref().is_some_and(|codes| codes.contains(&1)) {
        notify_change(ctx, notify::HASH, "hpersist", args[1]);
    }
    match codes {
        Some(codes) => {
            ctx.out.array_len(codes.len());
            for code in codes {
                ctx.out.integer(code);
            }
        }
        None => reply_codes_for_missing(ctx, names.len(), -2),
    }
    Ok(())
}

/// Answers nil for every field of a missing key.
fn reply_nulls(ctx: &mut Ctx<'_>, count: usize) {
    ctx.out.array_len(count);
    for _ in 0..count {
        ctx.out.null();
    }
}

/// HGETDEL key FIELDS numfields field [field ...]: each field's value (nil when absent), and the
/// field removed; the key goes with its last field.
pub fn hgetdel(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> CommandResult {
    check_hash_type(ctx, args[1])?;
    let names = parse_fields(args, 2, FIELD_COUNT_INVALID)?;
    let answered = write_hash(ctx, args[1], false, |hash, _, now_ms, out| {
        out.array_len(names.len());
        let mut removed = false;
        for name in &names {
            let value = hash.take(name, now_ms);
            removed |= value.is_some();
            reply_optional(out, value.as_deref());
        }
        Ok((removed, removed))
    })?;
    match answered {
        Some(true) => notify_change(ctx, notify::HASH, "hdel", args[1]),
        Some(false) => {}
        None => reply_nulls(ctx, names.len()),
    }
    Ok(())
}

/// What HGETEX does to the TTL of each field it returns.
#[derive(Clone, Copy)]
enum GetExpiry {
    Leave,
    At(u64),
    Persist,
}

/// HGETEX key [EX seconds | PX milliseconds | EXAT unix-time-seconds | PXAT
/// unix-time-milliseconds | PERSIST] FIELDS numfields field [field ...]
pub fn hgetex(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> CommandResult {
    check_hash_type(ctx, args[1])?;
    let now_ms = ctx.now_ms;
    let timed = [
        ("EX", Unit::Seconds, now_ms),
        ("PX", Unit::Milliseconds, now_ms),
        ("EXAT", Unit::Seconds, 0),
        ("PXAT", Unit::Milliseconds, 0),
    ]
    .into_iter()
    .find(|(word, _, _)| is(args[2], word));
    let (expiry, fields_at) = match timed {
        Some((_, unit, base_ms)) => {
            let at_ms = parse_expire_time(args[3], unit, base_ms, "hgetex")?;
            (GetExpiry::At(at_ms), 4)
        }
        None if is(args[2], "PERSIST") => (GetExpiry::Persist, 3),
        None => (GetExpiry::Leave, 2),
    };
    let names = parse_fields(args, fields_at, FIELD_COUNT_INVALID)?;
    // The fields whose TTL it set and those it removed, for the append-only file.
    let (mut expiring, mut removed): (Vec<&[u8]>, Vec<&[u8]>) = (Vec::new(), Vec::new());
    let answered = write_hash(ctx, args[1], false, |hash, _, now_ms, out| {
        out.array_len(names.len());
        let (mut changed, mut deleted) = (false, false);
        for name in &names {
            let value = hash.get(name, now_ms).map(<[u8]>::to_vec);
            reply_optional(out, value.as_deref());
            if value.is_none() {
                continue;
            }
            match expiry {
                GetExpiry::Leave => {}
                GetExpiry::At(at_ms) => {
                    let outcome = hash.expire_field(name, at_ms, ExpireCondition::Always, now_ms);
                    deleted |= outcome.code() == 2;
                    if outcome.code() == 2 {
                        removed.push(name);
                    } else {
                        expiring.push(name);
                    }
                    changed = true;
                }
                GetExpiry::Persist => changed |= hash.persist_field(name, now_ms).code() == 1,
            }
        }
        Ok(((changed, deleted), changed))
    })?;
    match expiry {
        GetExpiry::At(at_ms) => propagate_field_expiry(ctx, args[1], at_ms, &expiring, &removed),
        GetExpiry::Leave => ctx.propagation.suppress(),
        GetExpiry::Persist => {}
    }
    match answered {
        // Redis 8.0's HGETEX: `hdel` for fields a past time removed, else `hexpire` or
        // `hpersist`; `del` with the last field.
        Some((true, true)) => notify_change(ctx, notify::HASH, "hdel", args[1]),
        Some((true, false)) => {
            let event = match expiry {
                GetExpiry::Persist => "hpersist",
                _ => "hexpire",
            };
            notify_change(ctx, notify::HASH, event, args[1]);
        }
        Some((false, _)) => {}
        None => reply_nulls(ctx, names.len()),
    }
    Ok(())
}

/// HSETEX's options.
struct SetExOptions<'a> {
    /// FNX (`Some(false)`: only when no field exists) or FXX (`Some(true)`: only when all do).
    must_exist: Option<bool>,
    ttl: FieldTtl,
    /// Field-value pairs.
    pairs: &'a [&'a [u8]],
}

/// Logs an HSETEX that set its fields ([`crate::aof`]): with an expiry, as the absolute time it
/// came to (HDEL when that time had passed, which removed them); without, as it ran.
fn propagate_setex(ctx: &mut Ctx<'_>, key: &[u8], options: &SetExOptions<'_>, set: bool) {
    if !ctx.propagating() {
        return;
    }
    if !set {
        ctx.propagation.suppress();
        return;
    }
    let FieldTtl::At(at_ms) = options.ttl else {
        return;
    };
    let names: Vec<&[u8]> = options.pairs.chunks_exact(2).map(|pair| pair[0]).collect();
    if super::super::already_expired(at_ms, ctx.now_ms) {
        let mut record: Vec<&[u8]> = vec![b"HDEL", key];
        record.extend_from_slice(&names);
        ctx.propagate(&record);
        return;
    }
    let (at_text, count_text) = (at_ms.to_string(), names.len().to_string());
    let mut record: Vec<&[u8]> = vec![
        b"HSETEX",
        key,
        b"PXAT",
        at_text.as_bytes(),
        b"FIELDS",
        count_text.as_bytes(),
    ];
    record.extend_from_slice(options.pairs);
    ctx.propagate(&record);
}

/// Redis 8.0's `hsetexParseArgs`, with its errors in its order.
fn parse_setex<'a>(args: &'a [&'a [u8]], now_ms: u64) -> Result<SetExOptions<'a>, CommandError> {
    const ONE_EXPIRY: &str =
        "ERR Only one of EX, PX, EXAT, PXAT or KEEPTTL arguments can be specified";
    const ONE_CONDITION: &str = "ERR Only one of FXX or FNX arguments can be specified";
    let mut must_exist = None;
    let mut ttl = None;
    let mut index = 2;
    while index < args.len() {
        let word = args[index];
        if is(word, "FIELDS") {
            if index + 3 >= args.len() {
                return Err(arity_message("hsetex").into());
            }
            let count = ember_resp::parse_i64(args[index + 1])
                .filter(|count| (1..=i64::from(i32::MAX)).contains(count))
                .ok_or(CommandError::from("ERR invalid number of fields"))?;
            let remaining = args.len() - index - 2;
            if remaining % 2 != 0 || count as usize != remaining / 2 {
                return Err(arity_message("hsetex").into());
            }
            return Ok(SetExOptions {
                must_exist,
                ttl: ttl.unwrap_or(FieldTtl::Clear),
                pairs: &args[index + 2..],
            });
        }
        let timed = [
            ("EX", Unit::Seconds, now_ms),
            ("PX", Unit::Milliseconds, now_ms),
            ("EXAT", Unit::Seconds, 0),
            ("PXAT", Unit::Milliseconds, 0),
        ]
        .into_iter()
        .find(|(name, _, _)| is(word, name));
        if let Some((_, unit, base_ms)) = timed {
            if ttl.is_some() {
                return Err(ONE_EXPIRY.into());
            }
            let time = args
                .get(index + 1)
                .ok_or(CommandError::from("ERR missing expire time"))?;
            ttl = Some(FieldTtl::At(parse_expire_time(
                time, unit, base_ms, "hsetex",
            )?));
            index += 2;
            continue;
        }
        if is(word, "KEEPTTL") {
            if ttl.is_some() {
                return Err(ONE_EXPIRY.into());
            }
            ttl = Some(FieldTtl::Keep);
        } else if is(word, "FXX") || is(word, "FNX") {
            if must_exist.is_some() {
                return Err(ONE_CONDITION.into());
            }
            must_exist = Some(is(word, "FXX"));
        } else {
            return Err(format!("ERR unknown argument: {}", String::from_utf8_lossy(word)).into());
        }
        index += 1;
    }
    // No FIELDS at all: Redis asserts this cannot happen past its arity check; say so politely.
    Err(arity_message("hsetex").into())
}

/// HSETEX key [FNX|FXX] [EX seconds | PX milliseconds | EXAT unix-time-seconds | PXAT
/// unix-time-milliseconds | KEEPTTL] FIELDS numfields field value [field value ...]: 1 when
/// every field was set, 0 when FNX or FXX refused.
pub fn hsetex(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> CommandResult {
    let options = parse_setex(args, ctx.now_ms)?;
    check_hash_type(ctx, args[1])?;
    let exists = ctx.keyspace.peek(ctx.db, args[1], ctx.now_ms).is_some();
    if !exists && options.must_exist == Some(true) {
        ctx.out.integer(0);
        return Ok(());
    }
    let set = write_hash(ctx, args[1], true, |hash, limits, now_ms, _| {
        if let Some(must_exist) = options.must_exist {
            let mut names = options.pairs.chunks_exact(2).map(|pair| pair[0]);
            let allowed = if must_exist {
                names.all(|name| hash.contains(name, now_ms))
            } else {
                !names.any(|name| hash.contains(name, now_ms))
            };
            if !allowed {
                return Ok((false, false));
            }
        }
        hash.prepare_for(options.pairs.iter().copied(), limits);
        for pair in options.pairs.chunks_exact(2) {
            hash.set(pair[0], pair[1], options.ttl, limits, now_ms);
        }
        Ok((true, true))
    })?;
    propagate_setex(ctx, args[1], &options, set == Some(true));
    if set == Some(true) {
        notify::notify(ctx, notify::HASH, "hset", args[1]);
        if let FieldTtl::At(at_ms) = options.ttl {
            let event = if at_ms <= ctx.now_ms {
                "hdel"
            } else {
                "hexpire"
            };
            notify_change(ctx, notify::HASH, event, args[1]);
        }
    }
    ctx.out.integer(i64::from(set == Some(true)));
    Ok(())
}
