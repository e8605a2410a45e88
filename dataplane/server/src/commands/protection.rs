//! Traffic protection on keys: rate limiting (`CL.THROTTLE`, redis-cell's GCRA; `CL.WINDOW`, an
//! exact sliding window) and cache-rebuild leases (`GETLEASE`, `SETLEASE`). The arithmetic and
//! the lease table are in [`crate::protection`]; here arguments are parsed, state is read from
//! and written to the key, and replies are made. Each key lives on one shard, which serves its
//! callers one at a time, so every figure is exact under any number of concurrent clients.
//!
//! Filters (`FILTER.*`) are server-wide, not keys: see [`super::filter`].

use std::sync::atomic::AtomicU64;

use ember_store::Value;

use super::notify::{self, notify};
use super::{
    command, errors, is, parse_float, parse_integer, CommandError, CommandResult, CommandSpec, Ctx,
    Ks, ONE_KEY, W_OOM, W_OOM_FAST,
};
use crate::protection::gcra::{self, Quota};
use crate::protection::lease::Grant;
use crate::protection::{bump, window};

/// This family's commands.
#[rustfmt::skip]
pub static COMMANDS: &[CommandSpec] = &[
    command("cl.throttle", -2, W_OOM_FAST, ONE_KEY, "string", "0.1.0", "Rate-limits with GCRA (redis-cell): allows count per period with bursts of max_burst + 1.", Ks(throttle)),
    command("cl.window", -4, W_OOM_FAST, ONE_KEY, "string", "0.1.0", "Rate-limits with an exact sliding window: at most limit per window_ms.", Ks(window_limit)),
    command("increx", -2, W_OOM_FAST, ONE_KEY, "string", "8.8.0", "Increments the number at a key within bounds, optionally saturating, and sets its expiry: replies the new value and the increment applied.", Ks(increx)),
    command("getlease", 3, W_OOM_FAST, ONE_KEY, "string", "0.1.0", "Returns a key's value, and a lease to rebuild it when it is missing or about to expire.", Ks(getlease)),
    command("setlease", -4, W_OOM, ONE_KEY, "string", "0.1.0", "Stores a rebuilt value if the lease token is still the key's live lease.", Ks(setlease)),
];

/// redis-cell's usage error, with its `Cell error:` prefix.
const THROTTLE_USAGE: &str =
    "Cell error: Usage: cl.throttle <key> <max_burst> <count per period> <period> [<quantity>]";

/// Longest CL.THROTTLE period: 10 years, so that every figure fits the arithmetic with room to
/// spare (redis-cell overflows instead).
const PERIOD_S_MAX: i64 = 10 * 365 * 24 * 3600;

/// Longest lease: one day; a rebuild that takes longer is not a cache rebuild.
const LEASE_MS_MAX: i64 = 24 * 3600 * 1000;

/// Longest TTL a limiter key is stored with: 100 years (a far-future TAT is still kept).
const LIMITER_TTL_MS_MAX: u64 = 100 * 365 * 24 * 3600 * 1000;

/// Largest TAT read back from a key: what CL.THROTTLE itself stores stays below 10^37 ns
/// (now plus twice the largest tolerance, 10 years x i64::MAX), and the arithmetic on anything
/// up to it stays inside i128; a larger number was put there by someone else.
const TAT_NS_MAX: i128 = 10i128.pow(37);

/// The current time in nanoseconds since the epoch (CL.THROTTLE works in nanoseconds, as
/// redis-cell does, and reads the clock for each call).
fn now_ns() -> i128 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |elapsed| elapsed.as_nanos() as i128)
}

/// A redis-cell integer argument (Rust's `i64` parse, as redis-cell's), or its error.
fn cell_integer(arg: &[u8]) -> Result<i64, CommandError> {
    std::str::from_utf8(arg)
        .ok()
        .and_then(|text| text.parse::<i64>().ok())
        .ok_or_else(|| {
            CommandError::from(format!(
                "Cell error: Couldn't parse as integer: {}",
                String::from_utf8_lossy(arg)
            ))
        })
}

/// The string stored at `key`, if any: WRONGTYPE for another type.
fn read_string(ctx: &mut Ctx<'_>, key: &[u8]) -> Result<Option<Vec<u8>>, CommandError> {
    match ctx.keyspace.get(ctx.db, key, ctx.now_ms) {
        None => Ok(None),
        Some(entry) if entry.value.is_string() => Ok(Some(entry.value.to_vec())),
        Some(_) => Err(errors::WRONGTYPE.into()),
    }
}

/// Stores limiter state in `key` with a TTL of `ttl_ms`, or removes the key for empty state.
fn store_state(ctx: &mut Ctx<'_>, key: &[u8], state: Option<Vec<u8>>, ttl_ms: u64) {
    let (db, now_ms) = (ctx.db, ctx.now_ms);
    match state {
        Some(bytes) => {
            let expire_at = now_ms.saturating_add(ttl_ms.clamp(1, LIMITER_TTL_MS_MAX));
            ctx.keyspace
                .insert(db, key, Value::from_vec(bytes), Some(expire_at), now_ms);
            notify(ctx, notify::STRING, "set", key);
        }
        None => {
            if ctx.keyspace.remove(db, key, now_ms).is_some() {
                notify(ctx, notify::GENERIC, "del", key);
            }
        }
    }
}

/// Counts a request, and a refusal.
fn count(requests: &AtomicU64, refused: &AtomicU64, limited: bool) {
    bump(requests, 1);
    if limited {
        bump(refused, 1);
    }
}

/// CL.THROTTLE key max_burst count_per_period period [quantity]: redis-cell's reply
/// `[limited, limit, remaining, retry_after_s, reset_after_s]`; the state is the TAT in
/// nanoseconds, a string key that expires when the bucket is full again.
pub fn throttle(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> CommandResult {
    if args.len() != 5 && args.len() != 6 {
        return Err(THROTTLE_USAGE.into());
    }
    let key = args[1];
    let quota = Quota {
        max_burst: cell_integer(args[2])?,
        count: cell_integer(args[3])?,
        period_s: cell_integer(args[4])?,
    };
    let quantity = args.get(5).map_or(Ok(1), |arg| cell_integer(arg))?;
    if quota.max_burst < 0 || quota.count < 0 || quota.period_s < 0 || quantity < 0 {
        return Err(
            "Cell error: max_burst, count, period and quantity must not be negative".into(),
        );
    }
    if quota.period_s > PERIOD_S_MAX {
        return Err(format!("Cell error: period must be at most {PERIOD_S_MAX} seconds").into());
    }
    if quota.emission_interval_ns() == 0 {
        return Err("Cell error: Zero rates are not supported".into());
    }
    let stored = match read_string(ctx, key)? {
        None => None,
        Some(bytes) => Some(
            std::str::from_utf8(&bytes)
                .ok()
                .and_then(|text| text.parse::<i128>().ok())
                .filter(|tat_ns| (0..=TAT_NS_MAX).contains(tat_ns))
                .ok_or(CommandError::from(
                    "Cell error: the key holds a string that is not a rate limiter's state",
                ))?,
        ),
    };
    let outcome = gcra::throttle(quota, quantity, stored, now_ns());
    if let Some(new_tat) = outcome.new_tat_ns {
        let ttl_ms = gcra::ttl_ms(outcome.reset_after_ns.min(i128::from(u64::MAX)));
        store_state(ctx, key, Some(new_tat.to_string().into_bytes()), ttl_ms);
    }
    let counters = ctx.protection.counters();
    count(
        &counters.throttle_requests,
        &counters.throttle_limited,
        outcome.limited,
    );
    ctx.out.array_len(5);
    ctx.out.integer(i64::from(outcome.limited));
    ctx.out.integer(outcome.limit);
    ctx.out.integer(outcome.remaining);
    ctx.out.integer(gcra::reply_seconds(outcome.retry_after_ns));
    ctx.out.integer(gcra::reply_seconds(outcome.reset_after_ns));
    Ok(())
}

/// CL.WINDOW key limit window_ms [cost]: `[limited, limit, remaining, retry_after_ms,
/// reset_after_ms]` (retry_after_ms -1 when allowed, or when cost exceeds limit).
pub fn window_limit(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> CommandResult {
    if args.len() > 5 {
        return Err(errors::SYNTAX.into());
    }
    let key = args[1];
    let limit = parse_integer(args[2])?;
    let window_ms = parse_integer(args[3])?;
    let cost = args.get(4).map_or(Ok(1), |arg| parse_integer(arg))?;
    if !(1..=window::LIMIT_MAX).contains(&limit) {
        return Err(format!("ERR limit must be between 1 and {}", window::LIMIT_MAX).into());
    }
    if !(1..=window::WINDOW_MS_MAX).contains(&window_ms) {
        return Err(format!(
            "ERR window must be between 1 and {} milliseconds",
            window::WINDOW_MS_MAX
        )
        .into());
    }
    if cost < 0 {
        return Err("ERR cost must not be negative".into());
    }
    let log = match read_string(ctx, key)? {
        None => Vec::new(),
        Some(bytes) => window::decode(&bytes).ok_or(CommandError::from(
            "ERR the key holds a string that is not a sliding window",
        ))?,
    };
    let outcome = window::request(log, limit, window_ms, cost, ctx.now_ms);
    let state = (!outcome.log.is_empty()).then(|| window::encode(&outcome.log));
    let ttl_ms = outcome.reset_after_ms.max(1) as u64;
    store_state(ctx, key, state, ttl_ms);
    let counters = ctx.protection.counters();
    count(
        &counters.window_requests,
        &counters.window_limited,
        outcome.limited,
    );
    ctx.out.array_len(5);
    ctx.out.integer(i64::from(outcome.limited));
    ctx.out.integer(limit);
    ctx.out.integer(outcome.remaining);
    ctx.out.integer(outcome.retry_after_ms);
    ctx.out.integer(outcome.reset_after_ms);
    Ok(())
}

/// GETLEASE key lease_ms: `[value, token, wait_ms]`. With the value there and more than
/// `lease_ms` of TTL left: `[value, 0, 0]`. Missing, or within `lease_ms` of expiring: the
/// first caller gets a lease, `[value or nil, token, 0]`, and must rebuild; while that lease
/// lives the others get `[value, 0, 0]` (the value still there) or `[nil, 0, wait_ms]`.
pub fn getlease(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> CommandResult {
    let (db, now_ms, key) = (ctx.db, ctx.now_ms, args[1]);
    let lease_ms = parse_integer(args[2])?;
    if !(1..=LEASE_MS_MAX).contains(&lease_ms) {
        return Err("ERR invalid lease time in 'getlease' command".into());
    }
    let (value, expire_at_ms) = match ctx.keyspace.get(db, key, now_ms) {
        None => (None, None),
        Some(entry) if entry.value.is_string() => {
            (Some(entry.value.to_vec()), entry.expire_at_ms())
        }
        Some(_) => return Err(errors::WRONGTYPE.into()),
    };
    ctx.stats.count_lookup(value.is_some());
    let fresh = value.is_some()
        && expire_at_ms.is_none_or(|at| at.saturating_sub(now_ms) > lease_ms as u64);
    let (token, wait_ms) = if fresh {
        (0, 0)
    } else {
        let mut expired = 0;
        let grant = ctx.protection.leases.borrow_mut().acquire(
            db,
            key,
            lease_ms as u64,
            now_ms,
            &mut expired,
        );
        let counters = ctx.protection.counters();
        bump(&counters.leases_expired, expired);
        match grant? {
            Grant::Granted(token) => {
                bump(&counters.leases_granted, 1);
                (token, 0)
            }
            Grant::Held(_) if value.is_some() => (0, 0),
            Grant::Held(left_ms) => {
                bump(&counters.lease_waits, 1);
                (0, left_ms)
            }
        }
    };
    ctx.out.array_len(3);
    match &value {
        Some(bytes) => ctx.out.bulk(bytes),
        None => ctx.out.null(),
    }
    ctx.out.integer(token as i64);
    ctx.out.integer(wait_ms as i64);
    Ok(())
}

/// SETLEASE key token value [EX seconds | PX milliseconds]: stores the value and ends the lease
/// when `token` is the key's live lease (`OK`); otherwise stores nothing (nil).
pub fn setlease(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> CommandResult {
    let (db, now_ms, key) = (ctx.db, ctx.now_ms, args[1]);
    let token = parse_integer(args[2])?;
    let expire_at = match &args[4..] {
        [] => None,
        [unit, amount] if is(unit, "ex") || is(unit, "px") => {
            let amount = parse_integer(amount)?;
            let scale = if is(unit, "ex") { 1000 } else { 1 };
            let ttl_ms = amount
                .checked_mul(scale)
                .filter(|ttl_ms| *ttl_ms > 0)
                .and_then(|ttl_ms| now_ms.checked_add(ttl_ms as u64))
                .ok_or(CommandError::from(
                    "ERR invalid expire time in 'setlease' command",
                ))?;
            Some(ttl_ms)
        }
        _ => return Err(errors::SYNTAX.into()),
    };
    let mut expired = 0;
    let redeemed = token > 0
        && ctx
            .protection
            .leases
            .borrow_mut()
            .redeem(db, key, token as u64, now_ms, &mut expired);
    let counters = ctx.protection.counters();
    bump(&counters.leases_expired, expired);
    if !redeemed {
        ctx.out.null();
        return Ok(());
    }
    bump(&counters.leases_fulfilled, 1);
    ctx.keyspace
        .insert(db, key, Value::from_bytes(args[3]), expire_at, now_ms);
    notify(ctx, notify::STRING, "set", key);
    if expire_at.is_some() {
        notify(ctx, notify::GENERIC, "expire", key);
    }
    ctx.out.ok();
    Ok(())
}

/// An INCREX number: BYINT works on 64-bit integers, BYFLOAT on doubles.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Number {
    Int(i64),
    Float(f64),
}

/// INCREX's expiry option.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum IncrexExpiry {
    /// None given: the key keeps its TTL (as INCRBY).
    Keep,
    /// PERSIST: the key loses its TTL.
    Persist,
    /// EX/PX/EXAT/PXAT, as an absolute time in milliseconds.
    At(u64),
}

/// INCREX's parsed options.
#[derive(Debug)]
struct Increx {
    by: Number,
    lower: Option<Number>,
    upper: Option<Number>,
    saturate: bool,
    expiry: IncrexExpiry,
    /// ENX: set the expiry only when the key has none.
    enx: bool,
}

/// Reads INCREX's options (after the key). Every option at most once; BYINT and BYFLOAT
/// exclude each other, so do the expiry options; ENX needs EX/PX/EXAT/PXAT. Bounds are read
/// as the increment is (integers for BYINT, the default, doubles for BYFLOAT).
fn parse_increx(ctx: &Ctx<'_>, options: &[&[u8]]) -> Result<Increx, CommandError> {
    let syntax = || CommandError::from(errors::SYNTAX);
    let mut by: Option<(bool, &[u8])> = None;
    let (mut lower, mut upper) = (None, None);
    let (mut saturate, mut enx) = (false, false);
    let mut expiry: Option<(u64, bool, &[u8])> = None;
    let mut persist = false;
    let mut index = 0;
    while index < options.len() {
        let option = options[index];
        let value = options.get(index + 1).copied();
        let takes_value = if is(option, "BYINT") || is(option, "BYFLOAT") {
            if by.is_some() {
                return Err(syntax());
            }
            by = Some((is(option, "BYFLOAT"), value.ok_or_else(syntax)?));
            true
        } else if is(option, "LBOUND") || is(option, "UBOUND") {
            let slot = if is(option, "LBOUND") {
                &mut lower
            } else {
                &mut upper
            };
            if slot.is_some() {
                return Err(syntax());
            }
            *slot = Some(value.ok_or_else(syntax)?);
            true
        } else if ["EX", "PX", "EXAT", "PXAT"]
            .iter()
            .any(|word| is(option, word))
        {
            if expiry.is_some() || persist {
                return Err(syntax());
            }
            let unit_ms = if is(option, "EX") || is(option, "EXAT") {
                1000
            } else {
                1
            };
            let absolute = is(option, "EXAT") || is(option, "PXAT");
            expiry = Some((unit_ms, absolute, value.ok_or_else(syntax)?));
            true
        } else if is(option, "PERSIST") && !persist && expiry.is_none() {
            persist = true;
            false
        } else if is(option, "SATURATE") && !saturate {
            saturate = true;
            false
        } else if is(option, "ENX") && !enx {
            enx = true;
            false
        } else {
            return Err(syntax());
        };
        index += if takes_value { 2 } else { 1 };
    }
    if enx && expiry.is_none() {
        return Err(syntax());
    }
    let float = by.is_some_and(|(float, _)| float);
    let number = |arg: &[u8]| -> Result<Number, CommandError> {
        Ok(if float {
            let value = parse_float(arg)?;
            Number::Float(value)
        } else {
            Number::Int(parse_integer(arg)?)
        })
    };
    let by = match by {
        Some((_, arg)) => number(arg)?,
        None => Number::Int(1),
    };
    if matches!(by, Number::Float(value) if value.is_infinite()) {
        return Err("ERR increment would produce NaN or Infinity".into());
    }
    let lower = lower.map(number).transpose()?;
    let upper = upper.map(number).transpose()?;
    let out_of_order = match (lower, upper) {
        (Some(Number::Int(low)), Some(Number::Int(high))) => low > high,
        (Some(Number::Float(low)), Some(Number::Float(high))) => low > high,
        _ => false,
    };
    if out_of_order {
        return Err("ERR LBOUND must not be greater than UBOUND".into());
    }
    let expiry = match expiry {
        Some((unit_ms, absolute, arg)) => {
            IncrexExpiry::At(increx_expire_at(ctx, unit_ms, absolute, arg)?)
        }
        None if persist => IncrexExpiry::Persist,
        None => IncrexExpiry::Keep,
    };
    Ok(Increx {
        by,
        lower,
        upper,
        saturate,
        expiry,
        enx,
    })
}

/// An EX/PX/EXAT/PXAT amount as an absolute time, with SET's checks and wording.
fn increx_expire_at(
    ctx: &Ctx<'_>,
    unit_ms: u64,
    absolute: bool,
    arg: &[u8],
) -> Result<u64, CommandError> {
    let invalid = || CommandError::from("ERR invalid expire time in 'increx' command");
    let amount = parse_integer(arg)?;
    if amount <= 0 {
        return Err(invalid());
    }
    let ms = (amount as u64)
        .checked_mul(unit_ms)
        .filter(|ms| *ms <= i64::MAX as u64)
        .ok_or_else(invalid)?;
    if absolute {
        return Ok(ms);
    }
    ctx.now_ms
        .checked_add(ms)
        .filter(|at| *at <= i64::MAX as u64)
        .ok_or_else(invalid)
}

/// INCREX's arithmetic on integers: the new value, or `None` when the sum would leave
/// `[lower, upper]` (the i64 range when a bound is absent) and `saturate` is off. With
/// `saturate` the sum is clamped to the bound it crossed. A current value already outside
/// the bounds moves to the nearest bound when saturating, and is refused otherwise unless
/// the sum lands inside.
fn increx_int(current: i64, by: i64, lower: i64, upper: i64, saturate: bool) -> Option<i64> {
    let sum = i128::from(current) + i128::from(by);
    let (low, high) = (i128::from(lower), i128::from(upper));
    if (low..=high).contains(&sum) {
        Some(sum as i64)
    } else if saturate {
        Some(sum.clamp(low, high) as i64)
    } else {
        None
    }
}

/// INCREX's arithmetic on doubles, as [`increx_int`] (bounds default to the infinities).
fn increx_float(current: f64, by: f64, lower: f64, upper: f64, saturate: bool) -> Option<f64> {
    let sum = current + by;
    if (lower..=upper).contains(&sum) {
        Some(sum)
    } else if saturate {
        Some(sum.clamp(lower, upper))
    } else {
        None
    }
}

/// A double as INCREX (and Ember's INCRBYFLOAT) writes it.
fn format_float(value: f64) -> String {
    format!("{value}")
}

/// INCREX key [BYINT n | BYFLOAT f] [LBOUND l] [UBOUND u] [SATURATE]
/// [EX s | PX ms | EXAT t | PXAT t | PERSIST] [ENX]: `[new value, applied increment]`.
///
/// The increment (BYINT 1 by default) is applied when the sum stays inside the bounds; when
/// it would leave them it is refused (`[current, 0]`, nothing written, no key created), or,
/// with SATURATE, the value is clamped to the bound and the reply's increment is what
/// actually changed. An applied increment writes the key (created at 0 when missing) and its
/// expiry option; ENX sets the expiry only on a key without one. BYFLOAT replies bulk
/// strings, as INCRBYFLOAT does; BYINT replies integers. Redis 8.8's source was not
/// available: docs/protection.md lists the choices made here.
pub fn increx(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> CommandResult {
    let (db, now_ms, key) = (ctx.db, ctx.now_ms, args[1]);
    let options = parse_increx(ctx, &args[2..])?;
    let (current, expire_at) = match ctx.keyspace.get(db, key, now_ms) {
        None => (None, None),
        Some(entry) if entry.value.is_string() => {
            (Some(entry.value.to_vec()), entry.expire_at_ms())
        }
        Some(_) => return Err(errors::WRONGTYPE.into()),
    };
    let float = matches!(options.by, Number::Float(_));
    // The new value's text (None when refused), the reply's two figures.
    let (written, reply): (Option<Value>, [Number; 2]) = match options.by {
        Number::Int(by) => {
            let current = match &current {
                None => 0,
                Some(bytes) => {
                    ember_resp::parse_i64(bytes).ok_or(CommandError::from(errors::NOT_INTEGER))?
                }
            };
            let bound = |bound: Option<Number>, default: i64| match bound {
                Some(Number::Int(value)) => value,
                _ => default,
            };
            let lower = bound(options.lower, i64::MIN);
            let upper = bound(options.upper, i64::MAX);
            match increx_int(current, by, lower, upper, options.saturate) {
                None => (None, [Number::Int(current), Number::Int(0)]),
                Some(next) => {
                    let applied = next
                        .checked_sub(current)
                        .ok_or(CommandError::from(errors::OVERFLOW))?;
                    (
                        Some(Value::Int(next)),
                        [Number::Int(next), Number::Int(applied)],
                    )
                }
            }
        }
        Number::Float(by) => {
            let current = match &current {
                None => 0.0,
                Some(bytes) => parse_float(bytes)?,
            };
            let bound = |bound: Option<Number>, default: f64| match bound {
                Some(Number::Float(value)) => value,
                _ => default,
            };
            let lower = bound(options.lower, f64::NEG_INFINITY);
            let upper = bound(options.upper, f64::INFINITY);
            match increx_float(current, by, lower, upper, options.saturate) {
                None => (None, [Number::Float(current), Number::Float(0.0)]),
                Some(next) if !next.is_finite() => {
                    return Err("ERR increment would produce NaN or Infinity".into());
                }
                Some(next) => (
                    Some(Value::from_bytes(format_float(next).as_bytes())),
                    [Number::Float(next), Number::Float(next - current)],
                ),
            }
        }
    };
    if let Some(value) = written {
        let had_ttl = expire_at.is_some();
        let expire = match options.expiry {
            IncrexExpiry::Keep => expire_at,
            IncrexExpiry::Persist => None,
            IncrexExpiry::At(_) if options.enx && had_ttl => expire_at,
            IncrexExpiry::At(at) => Some(at),
        };
        ctx.keyspace.insert(db, key, value, expire, now_ms);
        notify(
            ctx,
            notify::STRING,
            if float { "incrbyfloat" } else { "incrby" },
            key,
        );
        if expire != expire_at {
            if expire.is_some() {
                notify(ctx, notify::GENERIC, "expire", key);
            } else {
                notify(ctx, notify::GENERIC, "persist", key);
            }
        }
        if expire.is_some_and(|at| at <= now_ms) && ctx.keyspace.remove(db, key, now_ms).is_some() {
            notify(ctx, notify::GENERIC, "del", key);
        }
    }
    ctx.out.array_len(2);
    for figure in reply {
        match figure {
            Number::Int(value) => ctx.out.integer(value),
            Number::Float(value) => ctx.out.bulk(format_float(value).as_bytes()),
        }
    }
    Ok(())
}

#[cfg(test)]
mod increx_tests {
    use super::*;

    #[test]
    fn integer_bounds_refuse_or_saturate() {
        assert_eq!(increx_int(5, 3, 0, 10, false), Some(8));
        assert_eq!(increx_int(9, 3, 0, 10, false), None);
        assert_eq!(increx_int(9, 3, 0, 10, true), Some(10));
        assert_eq!(increx_int(1, -3, 0, 10, false), None);
        assert_eq!(increx_int(1, -3, 0, 10, true), Some(0));
        // No bound given: the i64 range is the bound, so overflow refuses or saturates.
        assert_eq!(increx_int(i64::MAX, 1, i64::MIN, i64::MAX, false), None);
        assert_eq!(
            increx_int(i64::MAX - 1, 5, i64::MIN, i64::MAX, true),
            Some(i64::MAX)
        );
        // A value already above the upper bound moves down to it only when saturating.
        assert_eq!(increx_int(20, 1, 0, 10, false), None);
        assert_eq!(increx_int(20, 1, 0, 10, true), Some(10));
        assert_eq!(increx_int(20, -15, 0, 10, false), Some(5));
    }

    #[test]
    fn float_bounds_refuse_or_saturate() {
        assert_eq!(increx_float(0.5, 0.25, 0.0, 1.0, false), Some(0.75));
        assert_eq!(increx_float(0.5, 0.75, 0.0, 1.0, false), None);
        assert_eq!(increx_float(0.5, 0.75, 0.0, 1.0, true), Some(1.0));
        assert_eq!(
            increx_float(0.0, -2.5, -1.0, f64::INFINITY, true),
            Some(-1.0)
        );
    }
}
