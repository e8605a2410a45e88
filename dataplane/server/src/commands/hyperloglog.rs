//! HyperLogLog commands: PFADD, PFCOUNT, PFMERGE, and Redis's debugging pair PFDEBUG and
//! PFSELFTEST.
//!
//! A HyperLogLog is a plain string in Redis's own format (`ember_store::hyperloglog`), so GET
//! and SET move it between Ember and Redis unchanged and both count it alike. A string that
//! is not one answers Redis's own WRONGTYPE wording. PFCOUNT of one key caches the estimate in
//! the string, as Redis does, so the value changes when the cache was stale. PFCOUNT of several
//! keys and PFMERGE meet keys of several shards in the scratch keyspace.

use ember_store::hyperloglog::{sparse, HllEncoding, Registers, HEADER_LEN, REGISTER_COUNT};
use ember_store::{Change, HllError, HyperLogLog, Value};

use super::notify::{self, notify};
use super::{
    command, errors, is, split, CommandError, CommandResult, CommandSpec, Connection,
    ConnectionCtx, Ctx, Ks, Split, ALL_KEYS, NO_KEYS, ONE_KEY, SECOND_ARG_KEY, W_OOM, W_OOM_FAST,
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
    command("pfdebug", 3, F::WRITE.union(F::DENYOOM).union(F::ADMIN), SECOND_ARG_KEY, "hyperloglog", "2.8.9", "Internal commands for debugging HyperLogLog values", Ks(pfdebug)),
    command("pfselftest", 1, F::ADMIN, NO_KEYS, "hyperloglog", "2.8.9", "An internal command for testing HyperLogLog values", Connection(pfselftest)),
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

/// PFDEBUG GETREG | DECODE | ENCODING | TODENSE key: Redis's view into a HyperLogLog value.
/// GETREG and TODENSE turn a sparse value dense (and keep it so), as Redis's do; DECODE shows
/// a sparse value's opcodes (`z:` and `Z:` runs of zeros, `v:value,run`).
pub fn pfdebug(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> CommandResult {
    let (db, now_ms, subcommand, key) = (ctx.db, ctx.now_ms, args[1], args[2]);
    let Some(entry) = ctx.keyspace.get(db, key, now_ms) else {
        return Err("ERR The specified key does not exist".into());
    };
    let mut hll = hll_of(&entry.value)?;
    if is(subcommand, "GETREG") || is(subcommand, "TODENSE") {
        let converted = hll.encoding() == HllEncoding::Sparse;
        if converted {
            hll.to_dense().map_err(hll_error)?;
            let bytes = hll.as_bytes().to_vec();
            ctx.keyspace
                .update(db, key, now_ms, |value| -> Result<_, CommandError> {
                    *value = Value::from_vec(bytes);
                    Ok(((), Change::Modified))
                })
                .transpose()?;
        }
        if is(subcommand, "TODENSE") {
            ctx.out.integer(i64::from(converted));
            return Ok(());
        }
        let registers = hll.registers().map_err(hll_error)?;
        ctx.out.array_len(REGISTER_COUNT);
        for register in registers.iter() {
            ctx.out.integer(i64::from(*register));
        }
    } else if is(subcommand, "DECODE") {
        if hll.encoding() != HllEncoding::Sparse {
            return Err("ERR HLL encoding is not sparse".into());
        }
        let decoded: Vec<String> = sparse::opcodes(&hll.as_bytes()[HEADER_LEN..])
            .map(|opcode| match opcode {
                sparse::Opcode::Zero { run } => format!("z:{run}"),
                sparse::Opcode::Xzero { run } => format!("Z:{run}"),
                sparse::Opcode::Val { value, run } => format!("v:{value},{run}"),
            })
            .collect();
        ctx.out.bulk(decoded.join(" ").as_bytes());
    } else if is(subcommand, "ENCODING") {
        ctx.out.simple(hll.encoding_name().as_bytes());
    } else {
        return Err(format!(
            "ERR Unknown PFDEBUG subcommand '{}'",
            String::from_utf8_lossy(subcommand)
        )
        .into());
    }
    Ok(())
}

/// PFSELFTEST: checks the sparse and dense representations against each other and the
/// estimate against its promised error ([`ember_store::hyperloglog::self_test`]).
pub fn pfselftest(ctx: &mut ConnectionCtx<'_>, _args: &[&[u8]]) -> CommandResult {
    ember_store::hyperloglog::self_test().map_err(CommandError::from)?;
    ctx.out.ok();
    Ok(())
}
