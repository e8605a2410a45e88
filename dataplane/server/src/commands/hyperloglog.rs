//! HyperLogLog commands: PFADD, PFCOUNT, PFMERGE.
//!
//! A HyperLogLog is a plain string in Redis's own format (`ember_store::hyperloglog`), so GET
//! and SET move it between Ember and Redis unchanged and both count it alike. A string that
//! is not one answers Redis's own WRONGTYPE wording. PFCOUNT of one key caches the estimate in
//! the string, as Redis does, so the value changes when the cache was stale. PFCOUNT of several
//! keys and PFMERGE meet keys of several shards in the scratch keyspace.

use ember_store::hyperloglog::{HllEncoding, Registers, REGISTER_COUNT};
use ember_store::{Change, HllError, HyperLogLog, Value};

use super::notify::{self, notify};
use super::{
    command, errors, split, CommandError, CommandResult, CommandSpec, Ctx, Ks, Split, ALL_KEYS,
    ONE_KEY, W_OOM, W_OOM_FAST,
};
use super::{CommandFlags as F, R};

/// PFCOUNT's flags: a read (Redis marks it `readonly` and `may_replicate`, since caching the
/// estimate writes the string).
const PFCOUNT_FLAGS: F = R;

/// This family's commands, in COMMAND's order.
#[rustfmt::skip]
pub static COMMANDS: &[CommandSpec] = &[
    command("pfadd", -2, W_OOM_FAST, ONE_KEY, "hyperloglog", "2.8.9", "Adds elements to a HyperLogLog key. Creates the key if it doesn't exist.", Ks(pfadd)),
    split(command("pfcount", -2, PFCOUNT_FLAGS, ALL_KEYS, "hyperloglog", "2.8.9", "Returns the approximated cardinality of the set(s) observed by the HyperLogLog key(s).", Ks(pfcount)), Split::Scratch),
    split(command("pfmerge", -2, W_OOM, ALL_KEYS, "hyperloglog", "2.8.9", "Merges one or more HyperLogLog values into a single key.", Ks(pfmerge)), Split::Scratch),
];

/// Redis's reply for an HLL failure (its WRONGTYPE wording, or INVALIDOBJ).
fn hll_error(error: HllError) -> CommandError {
    CommandError::from(error.to_string())
}

/// The HyperLogLog in `value`: the ordinary WRONGTYPE for a non-string, Redis's HLL wording for
/// a string that is not one.
fn hll_of(value: &Value) -> Result<HyperLogLog, CommandError> {
    if !value.is_string() {
        return Err(errors::WRONGTYPE.into());
    }
    HyperLogLog::from_bytes(value.to_vec()).map_err(hll_error)
}

/// Reads the HyperLogLogs of PFCOUNT's or PFMERGE's keys in order, merging each into
/// `registers` as it goes, so that the first bad key decides the error as in Redis (a wrong
/// type, or a corrupted value, whichever comes first). Missing keys are left out. Whether any
/// was dense. Each value is dropped once merged: `PFCOUNT k k k ...` holds one copy of `k` at a
/// time, not one per repetition.
fn read_in_order(
    ctx: &mut Ctx<'_>,
    keys: &[&[u8]],
    registers: &mut Registers,
) -> Result<bool, CommandError> {
    let (db, now_ms) = (ctx.db, ctx.now_ms);
    let mut any_dense = false;
    for key in keys {
        if let Some(entry) = ctx.keyspace.get(db, key, now_ms) {
            let hll = hll_of(&entry.value)?;
            hll.merge_into(registers).map_err(hll_error)?;
            any_dense |= hll.encoding() == HllEncoding::Dense;
        }
    }
    Ok(any_dense)
}

/// PFADD key [element ...]: 1 when a register grew or the key was created, else 0.
pub fn pfadd(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> CommandResult {
    let (db, now_ms, key) = (ctx.db, ctx.now_ms, args[1]);
    let sparse_bytes_max = ctx.config.hll_sparse_max_bytes;
    let elements = &args[2..];
    let add_all = |hll: &mut HyperLogLog| -> Result<bool, CommandError> {
        hll.add_all(elements.iter().copied(), sparse_bytes_max)
            .map_err(hll_error)
    };
    let updated = ctx
        .keyspace
        .update(db, key, now_ms, |value| -> Result<_, CommandError> {
            let mut hll = hll_of(value)?;
            // Registers raised before a corrupted opcode stay raised, as in Redis.
            let grew = add_all(&mut hll);
            let changed = matches!(grew, Ok(true)) || hll.as_bytes() != value.to_vec().as_slice();
            if changed {
                *value = Value::from_vec(hll.into_bytes());
            }
            let change = if changed {
                Change::Modified
            } else {
                Change::None
            };
            Ok((grew?, change))
        });
    let grew = match updated {
        Some(grew) => grew?,
        None => {
            let mut hll = HyperLogLog::new();
            add_all(&mut hll)?;
            ctx.keyspace
                .insert(db, key, Value::from_vec(hll.into_bytes()), None, now_ms);
            true
        }
    };
    if grew {
        notify(ctx, notify::STRING, "pfadd", key);
    }
    ctx.out.integer(i64::from(grew));
    Ok(())
}

/// PFCOUNT key [key ...]: one key's estimate (cached in the string), or the estimate of the
/// union of several (nothing cached). Missing keys count as empty.
pub fn pfcount(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> CommandResult {
    let (db, now_ms) = (ctx.db, ctx.now_ms);
    if args.len() == 2 {
        let counted =
            ctx.keyspace
                .update(db, args[1], now_ms, |value| -> Result<_, CommandError> {
                    let mut hll = hll_of(value)?;
                    let was_cached = hll.cached_count().is_some();
                    let count = hll.count().map_err(hll_error)?;
                    if was_cached {
                        return Ok((count, Change::None));
                    }
                    *value = Value::from_vec(hll.into_bytes());
                    Ok((count, Change::Modified))
                });
        ctx.stats.count_lookup(counted.is_some());
        let count = counted.transpose()?.unwrap_or(0);
        ctx.out.integer(count as i64);
        return Ok(());
    }
    let mut registers = [0u8; REGISTER_COUNT];
    read_in_order(ctx, &args[1..], &mut registers)?;
    let count = HyperLogLog::estimate_registers(&registers);
    ctx.out.integer(count as i64);
    Ok(())
}

/// PFMERGE destkey [sourcekey ...]: the destination (created when missing) becomes the union
/// of itself and every source that exists.
pub fn pfmerge(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> CommandResult {
    let (db, now_ms) = (ctx.db, ctx.now_ms);
    // The destination is checked first, then each source, as Redis does; the registers end
    // as the union of all of them (the destination's own included, which changes nothing).
    let mut registers = [0u8; REGISTER_COUNT];
    let any_dense = read_in_order(ctx, &args[1..], &mut registers)?;
    let (mut destination, expire_at_ms) = match ctx.keyspace.get(db, args[1], now_ms) {
        Some(entry) => (hll_of(&entry.value)?, entry.expire_at_ms()),
        None => (HyperLogLog::new(), None),
    };
    destination
        .merge_registers(&registers, any_dense, ctx.config.hll_sparse_max_bytes)
        .map_err(hll_error)?;
    ctx.keyspace.insert(
        db,
        args[1],
        Value::from_vec(destination.into_bytes()),
        expire_at_ms,
        now_ms,
    );
    // Redis names PFMERGE's event `pfadd`.
    notify(ctx, notify::STRING, "pfadd", args[1]);
    ctx.out.ok();
    Ok(())
}
