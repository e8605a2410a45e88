//! Hash commands: HSET, HGET, HDEL... and per-field expiry (HEXPIRE, HTTL...).
//!
//! A hash key never holds an empty hash: the command that removes the last field (HDEL,
//! HGETDEL, an expiry in the past, the active field expiry) deletes the key, as in Redis. Due
//! fields are absent to every read; writes remove those they meet (see `ember_store::hash`).
//! The packed/table switch follows `hash-max-listpack-entries` and `hash-max-listpack-value`
//! (or their `ziplist` aliases), so OBJECT ENCODING answers as Redis does.

mod field_expiry;
mod random;

use ember_resp::ReplySink;
use ember_store::{Change, Entry, HashLimits, HashValue, Value};

use super::notify::{self, notify, notify_change};
use super::{
    arity_message, bulk_split, command, errors, parse_float, parse_integer, read_entry,
    read_for_reply, CommandError, CommandResult, CommandSpec, Ctx, Ks, ONE_KEY, R, R_FAST, W_FAST,
    W_OOM_FAST,
};

/// This family's commands, in COMMAND's order.
#[rustfmt::skip]
pub static COMMANDS: &[CommandSpec] = &[
    command("hset", -4, W_OOM_FAST, ONE_KEY, "hash", "2.0.0", "Creates or modifies the value of a field in a hash.", Ks(hset)),
    command("hsetnx", 4, W_OOM_FAST, ONE_KEY, "hash", "2.0.0", "Sets the value of a field in a hash only when the field doesn't exist.", Ks(hsetnx)),
    command("hget", 3, R_FAST, ONE_KEY, "hash", "2.0.0", "Returns the value of a field in a hash.", Ks(hget)),
    command("hmget", -3, R_FAST, ONE_KEY, "hash", "2.0.0", "Returns the values of all fields in a hash.", Ks(hmget)),
    command("hmset", -4, W_OOM_FAST, ONE_KEY, "hash", "2.0.0", "Sets the values of multiple fields.", Ks(hmset)),
    command("hdel", -3, W_FAST, ONE_KEY, "hash", "2.0.0", "Deletes one or more fields and their values from a hash. Deletes the hash if no fields remain.", Ks(hdel)),
    command("hlen", 2, R_FAST, ONE_KEY, "hash", "2.0.0", "Returns the number of fields in a hash.", Ks(hlen)),
    command("hstrlen", 3, R_FAST, ONE_KEY, "hash", "3.2.0", "Returns the length of the value of a field.", Ks(hstrlen)),
    command("hexists", 3, R_FAST, ONE_KEY, "hash", "2.0.0", "Determines whether a field exists in a hash.", Ks(hexists)),
    command("hkeys", 2, R, ONE_KEY, "hash", "2.0.0", "Returns all fields in a hash.", Ks(hkeys)),
    command("hvals", 2, R, ONE_KEY, "hash", "2.0.0", "Returns all values in a hash.", Ks(hvals)),
    command("hgetall", 2, R, ONE_KEY, "hash", "2.0.0", "Returns all fields and values in a hash.", Ks(hgetall)),
    command("hincrby", 4, W_OOM_FAST, ONE_KEY, "hash", "2.0.0", "Increments the integer value of a field in a hash by a number. Uses 0 as initial value if the field doesn't exist.", Ks(hincrby)),
    command("hincrbyfloat", 4, W_OOM_FAST, ONE_KEY, "hash", "2.6.0", "Increments the floating point value of a field by a number. Uses 0 as initial value if the field doesn't exist.", Ks(hincrbyfloat)),
    command("hrandfield", -2, R, ONE_KEY, "hash", "6.2.0", "Returns one or more random fields from a hash.", Ks(random::hrandfield)),
    command("hscan", -3, R, ONE_KEY, "hash", "2.8.0", "Iterates over fields and values of a hash.", Ks(random::hscan)),
    command("hexpire", -6, W_OOM_FAST, ONE_KEY, "hash", "7.4.0", "Set expiry for hash field using relative time to expire (seconds)", Ks(field_expiry::hexpire)),
    command("hpexpire", -6, W_OOM_FAST, ONE_KEY, "hash", "7.4.0", "Set expiry for hash field using relative time to expire (milliseconds)", Ks(field_expiry::hpexpire)),
    command("hexpireat", -6, W_OOM_FAST, ONE_KEY, "hash", "7.4.0", "Set expiry for hash field using an absolute Unix timestamp (seconds)", Ks(field_expiry::hexpireat)),
    command("hpexpireat", -6, W_OOM_FAST, ONE_KEY, "hash", "7.4.0", "Set expiry for hash field using an absolute Unix timestamp (milliseconds)", Ks(field_expiry::hpexpireat)),
    command("httl", -5, R_FAST, ONE_KEY, "hash", "7.4.0", "Returns the TTL in seconds of a hash field.", Ks(field_expiry::httl)),
    command("hpttl", -5, R_FAST, ONE_KEY, "hash", "7.4.0", "Returns the TTL in milliseconds of a hash field.", Ks(field_expiry::hpttl)),
    command("hexpiretime", -5, R_FAST, ONE_KEY, "hash", "7.4.0", "Returns the expiration time of a hash field as a Unix timestamp, in seconds.", Ks(field_expiry::hexpiretime)),
    command("hpexpiretime", -5, R_FAST, ONE_KEY, "hash", "7.4.0", "Returns the expiration time of a hash field as a Unix timestamp, in msec.", Ks(field_expiry::hpexpiretime)),
    command("hpersist", -5, W_FAST, ONE_KEY, "hash", "7.4.0", "Removes the expiration time for each specified field", Ks(field_expiry::hpersist)),
    command("hgetdel", -5, W_FAST, ONE_KEY, "hash", "8.0.0", "Returns the value of a field and deletes it from the hash.", Ks(field_expiry::hgetdel)),
    command("hgetex", -5, W_FAST, ONE_KEY, "hash", "8.0.0", "Get the value of one or more fields of a given hash key, and optionally set their expiration.", Ks(field_expiry::hgetex)),
    command("hsetex", -6, W_OOM_FAST, ONE_KEY, "hash", "8.0.0", "Set the value of one or more fields of a given hash key, and optionally set their expiration.", Ks(field_expiry::hsetex)),
];

/// The hash of `entry`, or WRONGTYPE.
fn hash_of(entry: &Entry) -> Result<&HashValue, CommandError> {
    match &entry.value {
        Value::Hash(hash) => Ok(hash),
        _ => Err(errors::WRONGTYPE.into()),
    }
}

/// The hash at `key` for a read command (hit or miss counted), or WRONGTYPE.
fn read_hash<'a>(ctx: &'a mut Ctx<'_>, key: &[u8]) -> Result<Option<&'a HashValue>, CommandError> {
    read_entry(ctx, key).map(hash_of).transpose()
}

/// [`read_for_reply`] of a hash: the hash (or none), and the reply sink; WRONGTYPE for another
/// type.
fn read_for_reply_hash<'c>(
    ctx: &'c mut Ctx<'_>,
    key: &[u8],
) -> Result<(Option<&'c HashValue>, &'c mut ReplySink), CommandError> {
    let (entry, out) = read_for_reply(ctx, key);
    Ok((entry.map(hash_of).transpose()?, out))
}

/// WRONGTYPE when `key` holds something other than a hash; for the commands that check the
/// type before they read their other arguments, as Redis's do.
fn check_hash_type(ctx: &Ctx<'_>, key: &[u8]) -> CommandResult {
    match ctx.keyspace.peek(ctx.db, key, ctx.now_ms) {
        Some(entry) if !matches!(entry.value, Value::Hash(_)) => Err(errors::WRONGTYPE.into()),
        _ => Ok(()),
    }
}

/// Runs `apply` (called with the hash, the size limits, the time and the reply sink; answers
/// its result and whether it changed the hash) on the hash at `key`: WRONGTYPE for another type; for a missing key, on a new
/// hash that is stored only if it ends up with fields, when `create`, else not at all (`None`).
/// A hash that ends up empty goes with its key; removals of due fields count as changes.
fn write_hash<R>(
    ctx: &mut Ctx<'_>,
    key: &[u8],
    create: bool,
    mut apply: impl FnMut(
        &mut HashValue,
        &HashLimits,
        u64,
        &mut ReplySink,
    ) -> Result<(R, bool), CommandError>,
) -> Result<Option<R>, CommandError> {
    let (db, now_ms, limits) = (ctx.db, ctx.now_ms, ctx.config.hash_limits);
    let out = &mut *ctx.out;
    let updated = ctx
        .keyspace
        .update(db, key, now_ms, |value| -> Result<_, CommandError> {
            let Value::Hash(hash) = value else {
                return Err(CommandError::from(errors::WRONGTYPE));
            };
            let len_before = hash.len();
            let (result, changed) = apply(hash, &limits, now_ms, out)?;
            let change = if hash.is_empty() {
                Change::Emptied
            } else if changed || hash.len() != len_before {
                Change::Modified
            } else {
                Change::None
            };
            Ok((result, change))
        });
    match updated {
        Some(result) => result.map(Some),
        None if create => {
            let mut hash = HashValue::new();
            let (result, _) = apply(&mut hash, &limits, now_ms, ctx.out)?;
            if !hash.is_empty() {
                ctx.keyspace
                    .insert(db, key, Value::Hash(hash), None, now_ms);
            }
            Ok(Some(result))
        }
        None => Ok(None),
    }
}

/// HSET and HMSET: field-value pairs, the table converted first when an argument is too long
/// for the packed size class (Redis's `hashTypeTryConversion`); how many fields were new.
fn set_pairs(ctx: &mut Ctx<'_>, args: &[&[u8]], command: &str) -> Result<i64, CommandError> {
    if args.len() % 2 != 0 {
        return Err(arity_message(command).into());
    }
    let pairs = &args[2..];
    let created = write_hash(ctx, args[1], true, |hash, limits, now_ms, _| {
        hash.prepare_for(pairs.iter().copied(), limits);
        let created = pairs
            .chunks_exact(2)
            .filter(|pair| hash.insert(pair[0], pair[1], limits, now_ms))
            .count();
        Ok((created as i64, true))
    })?;
    notify(ctx, notify::HASH, "hset", args[1]);
    Ok(created.expect("created when missing"))
}

/// HSET key field value [field value ...]
pub fn hset(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> CommandResult {
    let created = set_pairs(ctx, args, "hset")?;
    ctx.out.integer(created);
    Ok(())
}

/// HMSET key field value [field value ...]
pub fn hmset(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> CommandResult {
    set_pairs(ctx, args, "hmset")?;
    ctx.out.ok();
    Ok(())
}

/// HSETNX key field value
pub fn hsetnx(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> CommandResult {
    let (name, value) = (args[2], args[3]);
    let set = write_hash(ctx, args[1], true, |hash, limits, now_ms, _| {
        let set = hash.insert_if_absent(name, value, limits, now_ms);
        Ok((set, set))
    })?;
    if set == Some(true) {
        notify(ctx, notify::HASH, "hset", args[1]);
    }
    ctx.out.integer(i64::from(set == Some(true)));
    Ok(())
}

/// Replies with one field's value, or nil.
fn reply_optional(out: &mut ReplySink, value: Option<&[u8]>) {
    match value {
        Some(value) => out.bulk(value),
        None => out.null(),
    }
}

/// HGET key field
pub fn hget(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> CommandResult {
    let now_ms = ctx.now_ms;
    let (entry, out) = read_for_reply(ctx, args[1]);
    let hash = entry.map(hash_of).transpose()?;
    let value = hash.and_then(|hash| hash.get(args[2], now_ms));
    let may_be_due = value.is_none() && has_field_ttl(hash);
    reply_optional(out, value);
    if may_be_due {
        remove_due_fields(ctx, args[1], &args[2..3]);
    }
    Ok(())
}

/// True for a hash with fields that have a TTL: only then can an absent field be a due one.
fn has_field_ttl(hash: Option<&HashValue>) -> bool {
    hash.is_some_and(|hash| hash.volatile_len() > 0)
}

/// Redis 7.4's lazy expiry on the reads that name fields (HGET, HMGET, HEXISTS, HSTRLEN): a due
/// field they asked for is removed, and the key goes with its last field. Called only when a
/// named field was absent from a hash with field TTLs, so other reads pay nothing. Raises
/// `hexpired` (and `del` with the last field) as Redis 7.4 does.
fn remove_due_fields(ctx: &mut Ctx<'_>, key: &[u8], names: &[&[u8]]) {
    let removed = write_hash(ctx, key, false, |hash, _, now_ms, _| {
        let len_before = hash.len();
        for name in names {
            // take() of an absent name removes the field when it is stored but due.
            if !hash.contains(name, now_ms) {
                hash.take(name, now_ms);
            }
        }
        Ok((hash.len() < len_before, false))
    });
    debug_assert!(removed.is_ok(), "the key was read as a hash just before");
    if let Ok(Some(true)) = removed {
        notify_change(ctx, notify::HASH, "hexpired", key);
    }
}

/// HMGET key field [field ...]
pub fn hmget(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> CommandResult {
    let now_ms = ctx.now_ms;
    let (entry, out) = read_for_reply(ctx, args[1]);
    let hash = entry.map(hash_of).transpose()?;
    out.array_len(args.len() - 2);
    let mut may_be_due = false;
    for name in &args[2..] {
        let value = hash.and_then(|hash| hash.get(name, now_ms));
        may_be_due |= value.is_none();
        reply_optional(out, value);
    }
    if may_be_due && has_field_ttl(hash) {
        remove_due_fields(ctx, args[1], &args[2..]);
    }
    Ok(())
}

/// HDEL key field [field ...]
pub fn hdel(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> CommandResult {
    let names = &args[2..];
    let removed = write_hash(ctx, args[1], false, |hash, _, _, _| {
        let removed = names.iter().filter(|name| hash.remove(name)).count();
        Ok((removed, removed > 0))
    })?;
    let removed = removed.unwrap_or(0);
    if removed > 0 {
        notify_change(ctx, notify::HASH, "hdel", args[1]);
    }
    ctx.out.integer(removed as i64);
    Ok(())
}

/// HLEN key: stored fields, due ones not yet removed included, as Redis counts them.
pub fn hlen(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> CommandResult {
    let len = read_hash(ctx, args[1])?.map_or(0, HashValue::len);
    ctx.out.integer(len as i64);
    Ok(())
}

/// HSTRLEN key field
pub fn hstrlen(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> CommandResult {
    let now_ms = ctx.now_ms;
    let hash = read_hash(ctx, args[1])?;
    let value_len = hash
        .and_then(|hash| hash.get(args[2], now_ms))
        .map(<[u8]>::len);
    let may_be_due = value_len.is_none() && has_field_ttl(hash);
    ctx.out.integer(value_len.unwrap_or(0) as i64);
    if may_be_due {
        remove_due_fields(ctx, args[1], &args[2..3]);
    }
    Ok(())
}

/// HEXISTS key field
pub fn hexists(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> CommandResult {
    let now_ms = ctx.now_ms;
    let hash = read_hash(ctx, args[1])?;
    let found = hash.is_some_and(|hash| hash.contains(args[2], now_ms));
    let may_be_due = !found && has_field_ttl(hash);
    ctx.out.integer(i64::from(found));
    if may_be_due {
        remove_due_fields(ctx, args[1], &args[2..3]);
    }
    Ok(())
}

/// Which parts of each field HKEYS, HVALS and HGETALL answer.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Parts {
    Names,
    Values,
    Both,
}

fn reply_all(ctx: &mut Ctx<'_>, key: &[u8], parts: Parts) -> CommandResult {
    let now_ms = ctx.now_ms;
    let (entry, out) = read_for_reply(ctx, key);
    let fields: Vec<_> = match entry.map(hash_of).transpose()? {
        Some(hash) => hash.iter(now_ms).collect(),
        None => Vec::new(),
    };
    match parts {
        Parts::Both => out.map_len(fields.len()),
        Parts::Names | Parts::Values => out.array_len(fields.len()),
    }
    for (name, value) in fields {
        if parts != Parts::Values {
            bulk_split(out, name);
        }
        if parts != Parts::Names {
            out.bulk(value);
        }
    }
    Ok(())
}

/// HKEYS key
pub fn hkeys(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> CommandResult {
    reply_all(ctx, args[1], Parts::Names)
}

/// HVALS key
pub fn hvals(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> CommandResult {
    reply_all(ctx, args[1], Parts::Values)
}

/// HGETALL key: a map in RESP3, a flat array of names and values in RESP2.
pub fn hgetall(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> CommandResult {
    reply_all(ctx, args[1], Parts::Both)
}

/// HINCRBY key field increment
pub fn hincrby(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> CommandResult {
    let delta = parse_integer(args[3])?;
    let name = args[2];
    let value = write_hash(ctx, args[1], true, |hash, limits, now_ms, _| {
        let value = hash
            .incr_by(name, delta, limits, now_ms)
            .map_err(|error| CommandError::from(error.to_string()))?;
        Ok((value, true))
    })?;
    notify(ctx, notify::HASH, "hincrby", args[1]);
    ctx.out.integer(value.expect("created when missing"));
    Ok(())
}

/// HINCRBYFLOAT key field increment
pub fn hincrbyfloat(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> CommandResult {
    let delta = parse_float(args[3])?;
    if !delta.is_finite() {
        return Err("ERR value is NaN or Infinity".into());
    }
    let name = args[2];
    let text = write_hash(ctx, args[1], true, |hash, limits, now_ms, _| {
        let text = hash
            .incr_by_float(name, delta, limits, now_ms)
            .map_err(|error| CommandError::from(error.to_string()))?;
        Ok((text, true))
    })?;
    notify(ctx, notify::HASH, "hincrbyfloat", args[1]);
    let text = text.expect("created when missing");
    // The value it came to, as Redis propagates it: a float's text may be read back otherwise.
    ctx.propagate(&[b"HSET", args[1], name, text.as_bytes()]);
    ctx.out.bulk(text.as_bytes());
    Ok(())
}
