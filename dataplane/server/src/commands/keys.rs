//! Generic key commands: DEL, EXISTS, TYPE, expiry, RENAME, COPY, MOVE, OBJECT.

use ember_store::keyspace::lru_idle_time_ms;
use ember_store::DATABASE_COUNT;

use super::notify::{self, notify, notify_in};
use super::{
    errors, is, parse_integer, unknown_subcommand_message, CommandError, CommandResult, Ctx,
};

/// DEL key [key ...] and UNLINK key [key ...]
pub fn del(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> CommandResult {
    // UNLINK, or DEL as UNLINK: a large value is freed in the background (crate::lazyfree).
    let lazy = crate::lazyfree::lazy(
        ctx.config,
        ctx.config.lazyfree_lazy_user_del || args[0].eq_ignore_ascii_case(b"unlink"),
    );
    let removed = args[1..]
        .iter()
        .filter(|key| remove_key(ctx, key, lazy))
        .count();
    ctx.out.integer(removed as i64);
    Ok(())
}

/// Deletes `key` as DEL does (its value freed in the background when `lazy`, a `del` event):
/// true when it existed.
pub(super) fn remove_key(ctx: &mut Ctx<'_>, key: &[u8], lazy: bool) -> bool {
    let Some(entry) = ctx.keyspace.remove(ctx.db, key, ctx.now_ms) else {
        return false;
    };
    crate::lazyfree::free_value(entry.value, lazy);
    notify(ctx, notify::GENERIC, "del", key);
    true
}

/// EXISTS key [key ...]: a key named twice counts twice.
pub fn exists(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> CommandResult {
    let found = args[1..]
        .iter()
        .filter(|key| ctx.keyspace.peek(ctx.db, key, ctx.now_ms).is_some())
        .count();
    ctx.out.integer(found as i64);
    Ok(())
}

/// TOUCH key [key ...]: records an access of each key even under CLIENT NO-TOUCH (Redis exempts
/// TOUCH), counting hits and misses as a read does.
pub fn touch(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> CommandResult {
    let found = args[1..]
        .iter()
        .filter(|key| {
            let hit = ctx.keyspace.touch(ctx.db, key, ctx.now_ms);
            ctx.stats.count_lookup(hit);
            hit
        })
        .count();
    ctx.out.integer(found as i64);
    Ok(())
}

/// TYPE key
pub fn type_of(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> CommandResult {
    let name = ctx
        .keyspace
        .peek(ctx.db, args[1], ctx.now_ms)
        .map_or("none", |entry| entry.value.type_name());
    ctx.out.simple(name.as_bytes());
    Ok(())
}

/// EXPIRE-family conditions.
#[derive(Default)]
struct ExpireConditions {
    nx: bool,
    xx: bool,
    gt: bool,
    lt: bool,
}

fn parse_conditions(options: &[&[u8]]) -> Result<ExpireConditions, CommandError> {
    let mut conditions = ExpireConditions::default();
    for option in options {
        if is(option, "NX") {
            conditions.nx = true;
        } else if is(option, "XX") {
            conditions.xx = true;
        } else if is(option, "GT") {
            conditions.gt = true;
        } else if is(option, "LT") {
            conditions.lt = true;
        } else {
            return Err(
                format!("ERR Unsupported option {}", String::from_utf8_lossy(option)).into(),
            );
        }
    }
    if conditions.nx && (conditions.xx || conditions.gt || conditions.lt) {
        return Err("ERR NX and XX, GT or LT options at the same time are not compatible".into());
    }
    if conditions.gt && conditions.lt {
        return Err("ERR GT and LT options at the same time are not compatible".into());
    }
    Ok(conditions)
}

fn expire_generic(
    ctx: &mut Ctx<'_>,
    args: &[&[u8]],
    unit_ms: i64,
    absolute: bool,
    command: &str,
) -> CommandResult {
    let amount = parse_integer(args[2])?;
    let conditions = parse_conditions(&args[3..])?;
    let invalid = || CommandError::from(format!("ERR invalid expire time in '{command}' command"));
    let mut at = amount.checked_mul(unit_ms).ok_or_else(invalid)?;
    if !absolute {
        if at > 0 {
            at = super::expiry_jitter::jittered_ms(ctx.config, at as u64).min(i64::MAX as u64)
                as i64;
        }
        at = at.checked_add(ctx.now_ms as i64).ok_or_else(invalid)?;
    }
    let (db, now_ms, key) = (ctx.db, ctx.now_ms, args[1]);
    let Some(entry) = ctx.keyspace.get(db, key, now_ms) else {
        ctx.propagation.suppress();
        ctx.out.integer(0);
        return Ok(());
    };
    let current = entry.expire_at_ms();
    // No TTL counts as an infinite one for GT and LT.
    let allowed = !(conditions.nx && current.is_some()
        || conditions.xx && current.is_none()
        || conditions.gt && current.is_none_or(|current| at <= current as i64)
        || conditions.lt && current.is_some_and(|current| at >= current as i64));
    if !allowed {
        // Not logged: a relative time compared again on replay could pass then.
        ctx.propagation.suppress();
        ctx.out.integer(0);
        return Ok(());
    }
    if at <= now_ms as i64 && !ember_store::value::expiry_suspended() {
        ctx.keyspace.remove(db, key, now_ms);
        notify(ctx, notify::GENERIC, "del", key);
    } else {
        ctx.keyspace
            .set_expire(db, key, Some(at.max(0) as u64), now_ms);
        notify(ctx, notify::GENERIC, "expire", key);
    }
    // Logged as the absolute time (or the DEL) it came to: a relative one, replayed later,
    // would end later.
    super::propagate_expiry(ctx, key);
    ctx.out.integer(1);
    Ok(())
}

/// EXPIRE key seconds [NX | XX | GT | LT]
pub fn expire(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> CommandResult {
    expire_generic(ctx, args, 1000, false, "expire")
}

/// PEXPIRE key milliseconds [NX | XX | GT | LT]
pub fn pexpire(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> CommandResult {
    expire_generic(ctx, args, 1, false, "pexpire")
}

/// EXPIREAT key unix-time-seconds [NX | XX | GT | LT]
pub fn expireat(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> CommandResult {
    expire_generic(ctx, args, 1000, true, "expireat")
}

/// PEXPIREAT key unix-time-milliseconds [NX | XX | GT | LT]
pub fn pexpireat(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> CommandResult {
    expire_generic(ctx, args, 1, true, "pexpireat")
}

fn ttl_generic(ctx: &mut Ctx<'_>, key: &[u8], milliseconds: bool, absolute: bool) -> CommandResult {
    let reply = match ctx.keyspace.peek(ctx.db, key, ctx.now_ms) {
        None => -2,
        Some(entry) => match entry.expire_at_ms() {
            None => -1,
            Some(at) => {
                let value = if absolute {
                    at as i64
                } else {
                    (at as i64 - ctx.now_ms as i64).max(0)
                };
                if milliseconds {
                    value
                } else {
                    (value + 500) / 1000
                }
            }
        },
    };
    ctx.out.integer(reply);
    Ok(())
}

/// TTL key
pub fn ttl(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> CommandResult {
    ttl_generic(ctx, args[1], false, false)
}

/// PTTL key
pub fn pttl(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> CommandResult {
    ttl_generic(ctx, args[1], true, false)
}

/// EXPIRETIME key
pub fn expiretime(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> CommandResult {
    ttl_generic(ctx, args[1], false, true)
}

/// PEXPIRETIME key
pub fn pexpiretime(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> CommandResult {
    ttl_generic(ctx, args[1], true, true)
}

/// PERSIST key
pub fn persist(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> CommandResult {
    // A write lookup: an access, as Redis's PERSIST.
    let had_ttl = ctx
        .keyspace
        .get(ctx.db, args[1], ctx.now_ms)
        .is_some_and(|entry| entry.expire_at_ms().is_some());
    if had_ttl {
        ctx.keyspace.set_expire(ctx.db, args[1], None, ctx.now_ms);
        notify(ctx, notify::GENERIC, "persist", args[1]);
    }
    ctx.out.integer(i64::from(had_ttl));
    Ok(())
}

fn rename_generic(ctx: &mut Ctx<'_>, args: &[&[u8]], only_if_new: bool) -> CommandResult {
    let (db, now_ms, source, target) = (ctx.db, ctx.now_ms, args[1], args[2]);
    if ctx.keyspace.peek(db, source, now_ms).is_none() {
        return Err(errors::NO_SUCH_KEY.into());
    }
    if source == target {
        if only_if_new {
            ctx.out.integer(0);
        } else {
            ctx.out.ok();
        }
        return Ok(());
    }
    if only_if_new && ctx.keyspace.peek(db, target, now_ms).is_some() {
        ctx.out.integer(0);
        return Ok(());
    }
    let entry = ctx
        .keyspace
        .remove(db, source, now_ms)
        .expect("checked above");
    let expire_at_ms = entry.expire_at_ms();
    ctx.keyspace
        .insert(db, target, entry.value, expire_at_ms, now_ms);
    notify(ctx, notify::GENERIC, "rename_from", source);
    notify(ctx, notify::GENERIC, "rename_to", target);
    if only_if_new {
        ctx.out.integer(1);
    } else {
        ctx.out.ok();
    }
    Ok(())
}

/// RENAME key newkey
pub fn rename(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> CommandResult {
    rename_generic(ctx, args, false)
}

/// RENAMENX key newkey
pub fn renamenx(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> CommandResult {
    rename_generic(ctx, args, true)
}

/// Parses a database index argument.
pub fn parse_db(arg: &[u8]) -> Result<usize, CommandError> {
    let index = parse_integer(arg)?;
    if index < 0 || index as usize >= DATABASE_COUNT {
        return Err(errors::DB_INDEX.into());
    }
    Ok(index as usize)
}

/// COPY source destination [DB destination-db] [REPLACE]
pub fn copy(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> CommandResult {
    let (mut target_db, mut replace) = (ctx.db, false);
    let mut index = 3;
    while index < args.len() {
        if is(args[index], "REPLACE") {
            replace = true;
        } else if is(args[index], "DB") && index + 1 < args.len() {
            target_db = parse_db(args[index + 1])?;
            index += 1;
        } else {
            return Err(errors::SYNTAX.into());
        }
        index += 1;
    }
    let (db, now_ms, source, target) = (ctx.db, ctx.now_ms, args[1], args[2]);
    if source == target && db == target_db {
        return Err("ERR source and destination objects are the same".into());
    }
    let Some(entry) = ctx.keyspace.peek(db, source, now_ms).cloned() else {
        ctx.out.integer(0);
        return Ok(());
    };
    if !replace && ctx.keyspace.peek(target_db, target, now_ms).is_some() {
        ctx.out.integer(0);
        return Ok(());
    }
    let expire_at_ms = entry.expire_at_ms();
    ctx.keyspace
        .insert(target_db, target, entry.value, expire_at_ms, now_ms);
    notify_in(ctx, target_db, notify::GENERIC, "copy_to", target);
    ctx.out.integer(1);
    Ok(())
}

/// MOVE key db
pub fn move_key(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> CommandResult {
    let target_db = parse_db(args[2])?;
    let (db, now_ms, key) = (ctx.db, ctx.now_ms, args[1]);
    if target_db == db {
        return Err("ERR source and destination objects are the same".into());
    }
    if ctx.keyspace.peek(db, key, now_ms).is_none()
        || ctx.keyspace.peek(target_db, key, now_ms).is_some()
    {
        ctx.out.integer(0);
        return Ok(());
    }
    let entry = ctx.keyspace.remove(db, key, now_ms).expect("checked above");
    let expire_at_ms = entry.expire_at_ms();
    ctx.keyspace
        .insert(target_db, key, entry.value, expire_at_ms, now_ms);
    notify(ctx, notify::GENERIC, "move_from", key);
    notify_in(ctx, target_db, notify::GENERIC, "move_to", key);
    ctx.out.integer(1);
    Ok(())
}

const OBJECT_HELP: &[&str] = &[
    "OBJECT <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
    "ENCODING <key>",
    "    Return the kind of internal representation used in order to store the value",
    "    associated with a <key>.",
    "FREQ <key>",
    "    Return the access frequency index of the <key>. The returned integer is",
    "    proportional to the logarithm of the recent access frequency of the key.",
    "IDLETIME <key>",
    "    Return the idle time of the <key>, that is the approximated number of",
    "    seconds elapsed since the last access to the key.",
    "REFCOUNT <key>",
    "    Return the number of references of the value associated with the specified",
    "    <key>.",
    "HELP",
    "    Print this help.",
];

/// OBJECT ENCODING | FREQ | IDLETIME | REFCOUNT key, OBJECT HELP
pub fn object(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> CommandResult {
    let subcommand = args[1];
    if is(subcommand, "HELP") && args.len() == 2 {
        ctx.out.array_len(OBJECT_HELP.len());
        for line in OBJECT_HELP {
            ctx.out.simple(line.as_bytes());
        }
        return Ok(());
    }
    let known = ["ENCODING", "FREQ", "IDLETIME", "REFCOUNT", "HELP"]
        .iter()
        .any(|name| is(subcommand, name));
    if !known {
        return Err(unknown_subcommand_message("object", subcommand).into());
    }
    let arity = if is(subcommand, "HELP") { 2 } else { 3 };
    if args.len() != arity {
        return Err(format!(
            "ERR wrong number of arguments for 'object|{}' command",
            String::from_utf8_lossy(subcommand).to_ascii_lowercase()
        )
        .into());
    }
    // The keyspace's policy, not the config's text: it is what the access words were kept by.
    let lfu = ctx.keyspace.access_policy().is_lfu();
    let Some(entry) = ctx.keyspace.peek(ctx.db, args[2], ctx.now_ms) else {
        ctx.out.null();
        return Ok(());
    };
    if is(subcommand, "ENCODING") {
        ctx.out.bulk(entry.value.encoding_name().as_bytes());
    } else if is(subcommand, "REFCOUNT") {
        ctx.out.integer(1);
    } else if is(subcommand, "IDLETIME") {
        if lfu {
            return Err("ERR An LFU maxmemory policy is selected, idle time not tracked. Please note that when switching between policies at runtime LRU and LFU data will take some time to adjust.".into());
        }
        let idle_ms = lru_idle_time_ms(entry.access, ctx.now_ms);
        ctx.out.integer((idle_ms / 1000) as i64);
    } else if let Some(reads) = ctx.keyspace.read_frequency(args[2]) {
        // allkeys-tinylfu: the read history's estimate (0 to 16), what its eviction ranks keys
        // by, so `redis-cli --hotkeys` works under it as under Redis's LFU policies.
        ctx.out.integer(reads as i64);
    } else {
        if !lfu {
            return Err("ERR An LFU maxmemory policy is not selected, access frequency not tracked. Please note that when switching between policies at runtime LRU and LFU data will take some time to adjust.".into());
        }
        let frequency = ctx
            .keyspace
            .lfu_frequency(ctx.db, args[2], ctx.now_ms)
            .expect("peeked above");
        ctx.out.integer(i64::from(frequency));
    }
    Ok(())
}
