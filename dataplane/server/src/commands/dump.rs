//! DUMP and RESTORE (and RESTORE-ASKING): values in Redis's serialized format
//! ([`ember_store::dump`]), so a payload moves between Ember and Redis either way.

use ember_store::dump::{self, RestoreLimits};
use ember_store::keyspace::{lru_clock, LRU_CLOCK_MAX};
use ember_store::lfu;
use ember_store::Value;

use super::notify::{self, notify};
use super::{errors, is, parse_integer, read_entry, CommandError, CommandResult, Ctx};

/// DUMP key: the serialized value, nil when there is no key.
pub fn dump(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> CommandResult {
    let now_ms = ctx.now_ms;
    let Some(entry) = read_entry(ctx, args[1]) else {
        ctx.out.null();
        return Ok(());
    };
    let payload = payload(&entry.value, now_ms)?;
    ctx.out.bulk(&payload);
    Ok(())
}

/// The DUMP payload of `value` (DUMP's reply, MIGRATE's RESTORE argument).
///
/// # Errors
/// For the types Redis's format has no encoding for (Ember's own: tensors and the like).
pub fn payload(value: &Value, now_ms: u64) -> Result<Vec<u8>, CommandError> {
    dump::try_dump(value, now_ms).ok_or_else(|| {
        format!(
            "ERR DUMP is not supported for values of type {}",
            value.type_name()
        )
        .into()
    })
}

/// RESTORE key ttl payload [REPLACE] [ABSTTL] [IDLETIME seconds] [FREQ frequency], with Redis's
/// order of checks: options, BUSYKEY, the TTL, the footer, the value.
pub fn restore(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> CommandResult {
    let (mut replace, mut absolute) = (false, false);
    let (mut idle_seconds, mut frequency) = (None, None);
    let mut index = 4;
    while index < args.len() {
        let has_value = index + 1 < args.len();
        if is(args[index], "REPLACE") {
            replace = true;
        } else if is(args[index], "ABSTTL") {
            absolute = true;
        } else if is(args[index], "IDLETIME") && has_value && frequency.is_none() {
            let idle = parse_integer(args[index + 1])?;
            if idle < 0 {
                return Err("ERR Invalid IDLETIME value, must be >= 0".into());
            }
            idle_seconds = Some(idle);
            index += 1;
        } else if is(args[index], "FREQ") && has_value && idle_seconds.is_none() {
            let freq = parse_integer(args[index + 1])?;
            if !(0..=255).contains(&freq) {
                return Err("ERR Invalid FREQ value, must be >= 0 and <= 255".into());
            }
            frequency = Some(freq as u8);
            index += 1;
        } else {
            return Err(errors::SYNTAX.into());
        }
        index += 1;
    }
    let (db, now_ms, key) = (ctx.db, ctx.now_ms, args[1]);
    if !replace && ctx.keyspace.peek(db, key, now_ms).is_some() {
        return Err("BUSYKEY Target key name already exists.".into());
    }
    let ttl = parse_integer(args[2])?;
    if ttl < 0 {
        return Err("ERR Invalid TTL value, must be >= 0".into());
    }
    let limits = RestoreLimits {
        hash: ctx.config.hash_limits,
        list: ctx.config.list_limits,
        stream: super::streams::limits(ctx.config),
    };
    let value = dump::restore(args[3], &limits, now_ms).map_err(|error| error.to_string())?;
    let deleted = replace && ctx.keyspace.remove(db, key, now_ms).is_some();
    let expire_at_ms = match ttl {
        0 => None,
        ttl if absolute => Some(ttl as u64),
        ttl => Some(now_ms.saturating_add(ttl as u64)),
    };
    if expire_at_ms.is_some_and(|at| super::already_expired(at, now_ms)) {
        if deleted {
            notify(ctx, notify::GENERIC, "del", key);
        }
        ctx.propagate(&[b"DEL", key]);
        ctx.out.ok();
        return Ok(());
    }
    // A relative TTL is logged as the absolute time it came to.
    if let (Some(at_ms), false) = (expire_at_ms, absolute) {
        if ctx.propagating() {
            let at_text = at_ms.to_string();
            let mut record: Vec<&[u8]> = vec![args[0], key, at_text.as_bytes()];
            record.extend_from_slice(&args[3..]);
            record.push(b"ABSTTL");
            ctx.propagate(&record);
        }
    }
    ctx.keyspace.insert(db, key, value, expire_at_ms, now_ms);
    let policy = ctx.keyspace.access_policy();
    let access = match (policy.is_lfu(), frequency, idle_seconds) {
        (true, Some(freq), _) => Some(lfu::pack(lfu::minutes(now_ms), freq)),
        (false, _, Some(idle)) => Some(idle_access(idle, now_ms)),
        _ => None,
    };
    if let Some(access) = access {
        if let Some(entry) = ctx.keyspace.get_mut(db, key, now_ms) {
            entry.access = access;
        }
    }
    notify(ctx, notify::GENERIC, "restore", key);
    ctx.out.ok();
    Ok(())
}

/// The LRU clock of a key last used `idle_seconds` ago (Redis's `objectSetLRUOrLFU`), wrapping
/// as the clock does.
fn idle_access(idle_seconds: i64, now_ms: u64) -> u32 {
    let clock = i64::from(lru_clock(now_ms));
    let idle = idle_seconds % (i64::from(LRU_CLOCK_MAX) + 1);
    let at = clock - idle;
    if at < 0 {
        (at + i64::from(LRU_CLOCK_MAX)) as u32
    } else {
        at as u32
    }
}
