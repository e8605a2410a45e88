//! List commands: LPUSH, RPUSH, LPUSHX, RPUSHX, LPOP, RPOP, LLEN, LRANGE, LINDEX, LSET,
//! LINSERT, LREM, LTRIM, LPOS, LMOVE, RPOPLPUSH, LMPOP, and the blocking pops (BLPOP, BRPOP,
//! BLMOVE, BRPOPLPUSH, BLMPOP, in [`blocking`]) with the sorted-set pops that share their
//! facility ([`super::zset_pops`]).
//!
//! A list key never holds an empty list: the pop that takes the last element deletes the key, as
//! in Redis. `list-max-listpack-size` ([`crate::config::Config::list_limits`]) decides when OBJECT
//! ENCODING says `quicklist` rather than `listpack`, as Redis 7.2 would.

pub mod blocking;
#[cfg(test)]
mod tests;

use ember_store::list::{End, ListValue, PositionQuery};
use ember_store::{Change, Entry, Value};

use super::notify::{self, notify, notify_change};
use super::{
    bulk_split, errors, is, movable, parse_integer, read_entry, read_for_reply, split,
    CommandError, CommandResult, CommandSpec, Ctx, KeySpec, Split, NO_KEYS, ONE_KEY, R, R_FAST,
    TWO_KEYS, W, W_FAST, W_OOM, W_OOM_FAST,
};
use super::{command, Handler, F};
use super::{zset_pops, Ks};

/// LPOP/RPOP/ZPOPMIN with a count that is negative or not a number.
pub const COUNT_NOT_POSITIVE: &str = "ERR value is out of range, must be positive";
/// LMPOP/ZMPOP/BLMPOP/BZMPOP with a numkeys below 1 or past the arguments.
pub const NUMKEYS_NOT_POSITIVE: &str = "ERR numkeys should be greater than 0";
/// LMPOP/ZMPOP COUNT below 1.
pub const MPOP_COUNT_NOT_POSITIVE: &str = "ERR count should be greater than 0";

/// Keys of BLPOP, BRPOP, BZPOPMIN, BZPOPMAX: every argument but the name and the timeout.
const ALL_BUT_LAST: KeySpec = KeySpec {
    first: 1,
    last: -2,
    step: 1,
};

const W_BLOCKING: F = F::WRITE.union(F::BLOCKING);
const W_OOM_BLOCKING: F = F::WRITE.union(F::DENYOOM).union(F::BLOCKING);
/// Redis 7.0's blocking pops refuse to run from scripts (`noscript`); BLMPOP and BZMPOP do not.
const W_BLOCKING_NOSCRIPT: F = W_BLOCKING.union(F::NOSCRIPT);
const W_OOM_BLOCKING_NOSCRIPT: F = W_OOM_BLOCKING.union(F::NOSCRIPT);

/// This family's commands, in COMMAND's order.
#[rustfmt::skip]
pub static COMMANDS: &[CommandSpec] = &[
    command("lpush", -3, W_OOM_FAST, ONE_KEY, "list", "1.0.0", "Prepends one or more elements to a list. Creates the key if it doesn't exist.", Ks(lpush)),
    command("rpush", -3, W_OOM_FAST, ONE_KEY, "list", "1.0.0", "Appends one or more elements to a list. Creates the key if it doesn't exist.", Ks(rpush)),
    command("lpushx", -3, W_OOM_FAST, ONE_KEY, "list", "2.2.0", "Prepends one or more elements to a list only when the list exists.", Ks(lpushx)),
    command("rpushx", -3, W_OOM_FAST, ONE_KEY, "list", "2.2.0", "Appends an element to a list only when the list exists.", Ks(rpushx)),
    command("lpop", -2, W_FAST, ONE_KEY, "list", "1.0.0", "Returns the first elements in a list after removing it. Deletes the list if the last element was popped.", Ks(lpop)),
    command("rpop", -2, W_FAST, ONE_KEY, "list", "1.0.0", "Returns and removes the last elements of a list. Deletes the list if the last element was popped.", Ks(rpop)),
    command("llen", 2, R_FAST, ONE_KEY, "list", "1.0.0", "Returns the length of a list.", Ks(llen)),
    command("lrange", 4, R, ONE_KEY, "list", "1.0.0", "Returns a range of elements from a list.", Ks(lrange)),
    command("lindex", 3, R, ONE_KEY, "list", "1.0.0", "Returns an element from a list by its index.", Ks(lindex)),
    command("lset", 4, W_OOM, ONE_KEY, "list", "1.0.0", "Sets the value of an element in a list by its index.", Ks(lset)),
    command("linsert", 5, W_OOM, ONE_KEY, "list", "2.2.0", "Inserts an element before or after another element in a list.", Ks(linsert)),
    command("lrem", 4, W, ONE_KEY, "list", "1.0.0", "Removes elements from a list. Deletes the list if the last element was removed.", Ks(lrem)),
    command("ltrim", 4, W, ONE_KEY, "list", "1.0.0", "Removes elements from both ends a list. Deletes the list if all elements were trimmed.", Ks(ltrim)),
    command("lpos", -3, R, ONE_KEY, "list", "6.0.6", "Returns the index of matching elements in a list.", Ks(lpos)),
    split(command("lmove", 5, W_OOM, TWO_KEYS, "list", "6.2.0", "Returns an element after popping it from one list and pushing it to another. Deletes the list if the last element was moved.", Ks(lmove)), Split::Scratch),
    split(command("rpoplpush", 3, W_OOM, TWO_KEYS, "list", "1.2.0", "Returns the last element of a list after removing and pushing it to another list. Deletes the list if the last element was popped.", Ks(rpoplpush)), Split::Scratch),
    split(movable(command("lmpop", -4, W, NO_KEYS, "list", "7.0.0", "Returns multiple elements from a list after removing them. Deletes the list if the last element was popped.", Ks(lmpop)), keys_after_numkeys::<1>), Split::Scratch),
    command("blpop", -3, W_BLOCKING_NOSCRIPT, ALL_BUT_LAST, "list", "2.0.0", "Removes and returns the first element in a list. Blocks until an element is available otherwise. Deletes the list if the last element was popped.", Handler::Blocking(&blocking::BLPOP)),
    command("brpop", -3, W_BLOCKING_NOSCRIPT, ALL_BUT_LAST, "list", "2.0.0", "Removes and returns the last element in a list. Blocks until an element is available otherwise. Deletes the list if the last element was popped.", Handler::Blocking(&blocking::BRPOP)),
    command("blmove", 6, W_OOM_BLOCKING_NOSCRIPT, TWO_KEYS, "list", "6.2.0", "Pops an element from a list, pushes it to another list and returns it. Blocks until an element is available otherwise. Deletes the list if the last element was moved.", Handler::Blocking(&blocking::BLMOVE)),
    command("brpoplpush", 4, W_OOM_BLOCKING_NOSCRIPT, TWO_KEYS, "list", "2.2.0", "Pops an element from a list, pushes it to another list and returns it. Block until an element is available otherwise. Deletes the list if the last element was popped.", Handler::Blocking(&blocking::BRPOPLPUSH)),
    movable(command("blmpop", -5, W_BLOCKING, NO_KEYS, "list", "7.0.0", "Pops the first element from one of multiple lists. Blocks until an element is available otherwise. Deletes the list if the last element was popped.", Handler::Blocking(&blocking::BLMPOP)), keys_after_numkeys::<2>),
    // Sorted-set pops: their blocking forms share this family's facility.
    command("zpopmin", -2, W_FAST, ONE_KEY, "sorted_set", "5.0.0", "Returns the lowest-scoring members from a sorted set after removing them. Deletes the sorted set if the last member was popped.", Ks(zset_pops::zpopmin)),
    command("zpopmax", -2, W_FAST, ONE_KEY, "sorted_set", "5.0.0", "Returns the highest-scoring members from a sorted set after removing them. Deletes the sorted set if the last member was popped.", Ks(zset_pops::zpopmax)),
    split(movable(command("zmpop", -4, W, NO_KEYS, "sorted_set", "7.0.0", "Returns the highest- or lowest-scoring members from one or more sorted sets after removing them. Deletes the sorted set if the last member was popped.", Ks(zset_pops::zmpop)), keys_after_numkeys::<1>), Split::Scratch),
    command("bzpopmin", -3, W_BLOCKING_NOSCRIPT.union(F::FAST), ALL_BUT_LAST, "sorted_set", "5.0.0", "Removes and returns the member with the lowest score from one or more sorted sets. Blocks until a member is available otherwise. Deletes the sorted set if the last element was popped.", Handler::Blocking(&zset_pops::BZPOPMIN)),
    command("bzpopmax", -3, W_BLOCKING_NOSCRIPT.union(F::FAST), ALL_BUT_LAST, "sorted_set", "5.0.0", "Removes and returns the member with the highest score from one or more sorted sets. Blocks until a member available otherwise.  Deletes the sorted set if the last element was popped.", Handler::Blocking(&zset_pops::BZPOPMAX)),
    movable(command("bzmpop", -5, W_BLOCKING, NO_KEYS, "sorted_set", "7.0.0", "Removes and returns a member by score from one or more sorted sets. Blocks until a member is available otherwise. Deletes the sorted set if the last element was popped.", Handler::Blocking(&zset_pops::BZMPOP)), keys_after_numkeys::<2>),
];

/// The keys of an `...MPOP` request: `numkeys` at position `AT`, the keys right after it. A
/// `numkeys` that does not parse or runs past the arguments names no key (the handler then
/// answers the error).
pub fn keys_after_numkeys<const AT: usize>(args: &[&[u8]]) -> Vec<usize> {
    match numkeys(args, AT) {
        Ok(count) => (AT + 1..=AT + count).collect(),
        Err(_) => Vec::new(),
    }
}

/// The `numkeys` argument at `at`: at least 1, and that many arguments after it.
///
/// # Errors
/// [`NUMKEYS_NOT_POSITIVE`] for a count below 1 or not a number; a syntax error when the
/// arguments run out.
pub fn numkeys(args: &[&[u8]], at: usize) -> Result<usize, CommandError> {
    let count = match ember_resp::parse_i64(args[at]) {
        Some(count) if count > 0 => count as u64,
        _ => return Err(NUMKEYS_NOT_POSITIVE.into()),
    };
    if count > (args.len() - at - 1) as u64 {
        return Err(errors::SYNTAX.into());
    }
    Ok(count as usize)
}

/// The list of `entry`, or WRONGTYPE.
pub fn list_of(entry: &Entry) -> Result<&ListValue, CommandError> {
    match &entry.value {
        Value::List(list) => Ok(list),
        _ => Err(errors::WRONGTYPE.into()),
    }
}

/// The list at `key` for a read command (hit or miss counted), or WRONGTYPE.
fn read_list<'a>(ctx: &'a mut Ctx<'_>, key: &[u8]) -> Result<Option<&'a ListValue>, CommandError> {
    read_entry(ctx, key).map(list_of).transpose()
}

/// The change a removal made: the key goes with its last element.
fn removal(removed: bool, empty: bool) -> Change {
    match (removed, empty) {
        (_, true) => Change::Emptied,
        (true, false) => Change::Modified,
        (false, false) => Change::None,
    }
}

/// Pushes `elements` at `end` of the list at `key`, creating it unless `only_existing`; the new
/// length (0 when absent and `only_existing`).
///
/// # Errors
/// WRONGTYPE when `key` holds another type.
pub fn push_elements(
    ctx: &mut Ctx<'_>,
    key: &[u8],
    end: End,
    elements: &[&[u8]],
    only_existing: bool,
) -> Result<usize, CommandError> {
    let (db, now_ms, limits) = (ctx.db, ctx.now_ms, ctx.config.list_limits);
    let updated = ctx.keyspace.update(db, key, now_ms, |value| {
        let Value::List(list) = value else {
            return Err(CommandError::from(errors::WRONGTYPE));
        };
        Ok((list.push(end, elements, &limits), Change::Modified))
    });
    let len = match updated {
        Some(len) => len?,
        None if only_existing => return Ok(0),
        None => {
            let mut list = ListValue::new();
            let len = list.push(end, elements, &limits);
            ctx.keyspace
                .insert(db, key, Value::List(list), None, now_ms);
            len
        }
    };
    notify(ctx, notify::LIST, push_event(end), key);
    Ok(len)
}

/// The keyspace event of a push at `end`.
fn push_event(end: End) -> &'static str {
    match end {
        End::Front => "lpush",
        End::Back => "rpush",
    }
}

/// The keyspace event of a pop at `end`.
fn pop_event(end: End) -> &'static str {
    match end {
        End::Front => "lpop",
        End::Back => "rpop",
    }
}

fn push_generic(ctx: &mut Ctx<'_>, args: &[&[u8]], end: End, only_existing: bool) -> CommandResult {
    let len = push_elements(ctx, args[1], end, &args[2..], only_existing)?;
    ctx.out.integer(len as i64);
    Ok(())
}

/// LPUSH key element [element ...]
pub fn lpush(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> CommandResult {
    push_generic(ctx, args, End::Front, false)
}

/// RPUSH key element [element ...]
pub fn rpush(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> CommandResult {
    push_generic(ctx, args, End::Back, false)
}

/// LPUSHX key element [element ...]
pub fn lpushx(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> CommandResult {
    push_generic(ctx, args, End::Front, true)
}

/// RPUSHX key element [element ...]
pub fn rpushx(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> CommandResult {
    push_generic(ctx, args, End::Back, true)
}

/// Pops up to `count` elements at `end` of the list at `key`; `None` when the key is absent.
///
/// # Errors
/// WRONGTYPE when `key` holds another type.
pub fn pop_elements(
    ctx: &mut Ctx<'_>,
    key: &[u8],
    end: End,
    count: usize,
) -> Result<Option<Vec<Vec<u8>>>, CommandError> {
    let popped = take_elements(ctx, key, end, count)?;
    if popped.as_ref().is_some_and(|popped| !popped.is_empty()) {
        notify_change(ctx, notify::LIST, pop_event(end), key);
    }
    Ok(popped)
}

/// LPOP/RPOP without a count: the element at `end` of the list at `key`, `None` when the key
/// is absent; the same events as [`pop_elements`].
///
/// # Errors
/// WRONGTYPE when `key` holds another type.
fn pop_one_element(ctx: &mut Ctx<'_>, key: &[u8], end: End) -> Result<bool, CommandError> {
    let (db, now_ms, limits) = (ctx.db, ctx.now_ms, ctx.config.list_limits);
    let out = &mut *ctx.out;
    let popped = ctx
        .keyspace
        .update(db, key, now_ms, |value| {
            let Value::List(list) = value else {
                return Err(CommandError::from(errors::WRONGTYPE));
            };
            let popped = list.pop_into(end, &limits, |head, tail| out.bulk_parts(head, tail));
            let change = removal(popped, list.is_empty());
            Ok((popped, change))
        })
        .transpose()?
        .unwrap_or(false);
    if popped {
        notify_change(ctx, notify::LIST, pop_event(end), key);
    }
    Ok(popped)
}

/// [`pop_elements`] without its keyspace events (LMOVE raises them in Redis's order).
fn take_elements(
    ctx: &mut Ctx<'_>,
    key: &[u8],
    end: End,
    count: usize,
) -> Result<Option<Vec<Vec<u8>>>, CommandError> {
    let (db, now_ms, limits) = (ctx.db, ctx.now_ms, ctx.config.list_limits);
    ctx.keyspace
        .update(db, key, now_ms, |value| {
            let Value::List(list) = value else {
                return Err(CommandError::from(errors::WRONGTYPE));
            };
            let popped = list.pop_many(end, count, &limits);
            let change = removal(!popped.is_empty(), list.is_empty());
            Ok((popped, change))
        })
        .transpose()
}

/// A count argument of LPOP/RPOP/ZPOPMIN/ZPOPMAX: not negative.
///
/// # Errors
/// [`COUNT_NOT_POSITIVE`].
pub fn parse_pop_count(arg: &[u8]) -> Result<usize, CommandError> {
    match ember_resp::parse_i64(arg) {
        Some(count) if count >= 0 => Ok(count as usize),
        _ => Err(COUNT_NOT_POSITIVE.into()),
    }
}

fn pop_generic(ctx: &mut Ctx<'_>, args: &[&[u8]], end: End) -> CommandResult {
    if args.len() > 3 {
        let name = if end == End::Front { "lpop" } else { "rpop" };
        return Err(super::arity_message(name).into());
    }
    let count = args.get(2).map(|arg| parse_pop_count(arg)).transpose()?;
    let Some(count) = count else {
        // The common form: one element, written into the reply straight from the list.
        if !pop_one_element(ctx, args[1], end)? {
            ctx.out.null();
        }
        return Ok(());
    };
    let popped = pop_elements(ctx, args[1], end, count)?;
    match popped {
        None => ctx.out.null_array(),
        Some(popped) => {
            ctx.out.array_len(popped.len());
            for element in &popped {
                ctx.out.bulk(element);
            }
        }
    }
    Ok(())
}

/// LPOP key [count]
pub fn lpop(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> CommandResult {
    pop_generic(ctx, args, End::Front)
}

/// RPOP key [count]
pub fn rpop(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> CommandResult {
    pop_generic(ctx, args, End::Back)
}

/// LLEN key
pub fn llen(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> CommandResult {
    let len = read_list(ctx, args[1])?.map_or(0, ListValue::len);
    ctx.out.integer(len as i64);
    Ok(())
}

/// LRANGE key start stop
pub fn lrange(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> CommandResult {
    let (start, stop) = (parse_integer(args[2])?, parse_integer(args[3])?);
    let (entry, out) = read_for_reply(ctx, args[1]);
    let elements = match entry.map(list_of).transpose()? {
        Some(list) => list.range_parts(start, stop),
        None => Vec::new(),
    };
    out.array_len(elements.len());
    for element in elements {
        bulk_split(out, element);
    }
    Ok(())
}

/// LINDEX key index
pub fn lindex(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> CommandResult {
    // Redis reads the key (and its type) before the index.
    let (entry, out) = read_for_reply(ctx, args[1]);
    let Some(list) = entry.map(list_of).transpose()? else {
        out.null();
        return Ok(());
    };
    match list.get(parse_integer(args[2])?) {
        Some(element) => out.bulk(&element),
        None => out.null(),
    }
    Ok(())
}

/// LSET key index element
pub fn lset(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> CommandResult {
    let (db, now_ms, limits) = (ctx.db, ctx.now_ms, ctx.config.list_limits);
    let index = args[2];
    ctx.keyspace
        .update(db, args[1], now_ms, |value| {
            let Value::List(list) = value else {
                return Err(CommandError::from(errors::WRONGTYPE));
            };
            let index = parse_integer(index)?;
            list.set(index, args[3], &limits)
                .map_err(|error| CommandError::from(error.to_string()))?;
            Ok(((), Change::Modified))
        })
        .unwrap_or(Err(errors::NO_SUCH_KEY.into()))?;
    notify(ctx, notify::LIST, "lset", args[1]);
    ctx.out.ok();
    Ok(())
}

/// LINSERT key BEFORE|AFTER pivot element
pub fn linsert(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> CommandResult {
    let after = if is(args[2], "AFTER") {
        true
    } else if is(args[2], "BEFORE") {
        false
    } else {
        return Err(errors::SYNTAX.into());
    };
    let (db, now_ms, limits) = (ctx.db, ctx.now_ms, ctx.config.list_limits);
    let len = ctx
        .keyspace
        .update(db, args[1], now_ms, |value| {
            let Value::List(list) = value else {
                return Err(CommandError::from(errors::WRONGTYPE));
            };
            Ok(match list.insert(args[3], args[4], after, &limits) {
                Some(len) => (len as i64, Change::Modified),
                None => (-1, Change::None),
            })
        })
        .transpose()?
        .unwrap_or(0);
    if len > 0 {
        notify(ctx, notify::LIST, "linsert", args[1]);
    }
    ctx.out.integer(len);
    Ok(())
}

/// LREM key count element
pub fn lrem(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> CommandResult {
    let count = parse_integer(args[2])?;
    let (db, now_ms, limits) = (ctx.db, ctx.now_ms, ctx.config.list_limits);
    let removed = ctx
        .keyspace
        .update(db, args[1], now_ms, |value| {
            let Value::List(list) = value else {
                return Err(CommandError::from(errors::WRONGTYPE));
            };
            let removed = list.remove(args[3], count, &limits);
            Ok((removed, removal(removed > 0, list.is_empty())))
        })
        .transpose()?
        .unwrap_or(0);
    if removed > 0 {
        notify_change(ctx, notify::LIST, "lrem", args[1]);
    }
    ctx.out.integer(removed as i64);
    Ok(())
}

/// LTRIM key start stop
pub fn ltrim(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> CommandResult {
    let (start, stop) = (parse_integer(args[2])?, parse_integer(args[3])?);
    let (db, now_ms, limits) = (ctx.db, ctx.now_ms, ctx.config.list_limits);
    let trimmed = ctx
        .keyspace
        .update(db, args[1], now_ms, |value| {
            let Value::List(list) = value else {
                return Err(CommandError::from(errors::WRONGTYPE));
            };
            let before = list.len();
            list.trim(start, stop, &limits);
            Ok(((), removal(list.len() != before, list.is_empty())))
        })
        .transpose()?
        .is_some();
    if trimmed {
        // Redis raises `ltrim` whenever the list exists, trimmed or not.
        notify_change(ctx, notify::LIST, "ltrim", args[1]);
    }
    ctx.out.ok();
    Ok(())
}

/// LPOS key element [RANK rank] [COUNT num-matches] [MAXLEN len]
pub fn lpos(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> CommandResult {
    let mut query = PositionQuery::default();
    let mut with_count = false;
    let mut at = 3;
    while at < args.len() {
        let Some(value) = args.get(at + 1) else {
            return Err(errors::SYNTAX.into());
        };
        if is(args[at], "RANK") {
            query.rank = parse_integer(value)?;
            if query.rank == 0 {
                return Err(ember_store::list::ListError::RankZero.to_string().into());
            }
        } else if is(args[at], "COUNT") {
            query.count = match ember_resp::parse_i64(value) {
                Some(count) if count >= 0 => count as usize,
                _ => return Err("ERR COUNT can't be negative".into()),
            };
            with_count = true;
        } else if is(args[at], "MAXLEN") {
            query.maxlen = match ember_resp::parse_i64(value) {
                Some(maxlen) if maxlen >= 0 => maxlen as usize,
                _ => return Err("ERR MAXLEN can't be negative".into()),
            };
        } else {
            return Err(errors::SYNTAX.into());
        }
        at += 2;
    }
    let (entry, out) = read_for_reply(ctx, args[1]);
    let found = match entry.map(list_of).transpose()? {
        Some(list) => list
            .positions(args[2], query)
            .map_err(|error| CommandError::from(error.to_string()))?,
        None => Vec::new(),
    };
    if with_count {
        out.array_len(found.len());
        for index in found {
            out.integer(index as i64);
        }
    } else {
        match found.first() {
            Some(&index) => out.integer(index as i64),
            None => out.null(),
        }
    }
    Ok(())
}

/// LEFT or RIGHT.
///
/// # Errors
/// Syntax error otherwise.
pub fn parse_end(arg: &[u8]) -> Result<End, CommandError> {
    if is(arg, "LEFT") {
        Ok(End::Front)
    } else if is(arg, "RIGHT") {
        Ok(End::Back)
    } else {
        Err(errors::SYNTAX.into())
    }
}

/// LMOVE's work: pops at `from` of `source` and pushes at `to` of `destination`; the element,
/// or `None` when `source` is absent. Both keys are checked for their type before anything
/// moves, as Redis does.
///
/// # Errors
/// WRONGTYPE.
pub fn move_element(
    ctx: &mut Ctx<'_>,
    source: &[u8],
    destination: &[u8],
    from: End,
    to: End,
) -> Result<Option<Vec<u8>>, CommandError> {
    let (db, now_ms) = (ctx.db, ctx.now_ms);
    let Some(entry) = ctx.keyspace.get(db, source, now_ms) else {
        return Ok(None);
    };
    list_of(entry)?;
    if let Some(entry) = ctx.keyspace.get(db, destination, now_ms) {
        list_of(entry)?;
    }
    let mut popped = take_elements(ctx, source, from, 1)?.unwrap_or_default();
    let Some(element) = popped.pop() else {
        return Ok(None);
    };
    // Redis raises the destination's push, then the source's pop (and `del` when emptied).
    push_elements(ctx, destination, to, &[&element], false)?;
    notify_change(ctx, notify::LIST, pop_event(from), source);
    Ok(Some(element))
}

fn move_generic(ctx: &mut Ctx<'_>, args: &[&[u8]], from: End, to: End) -> CommandResult {
    match move_element(ctx, args[1], args[2], from, to)? {
        Some(element) => ctx.out.bulk(&element),
        None => ctx.out.null(),
    }
    Ok(())
}

/// LMOVE source destination LEFT|RIGHT LEFT|RIGHT
pub fn lmove(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> CommandResult {
    let (from, to) = (parse_end(args[3])?, parse_end(args[4])?);
    move_generic(ctx, args, from, to)
}

/// RPOPLPUSH source destination
pub fn rpoplpush(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> CommandResult {
    move_generic(ctx, args, End::Back, End::Front)
}

/// The options of `...MPOP numkeys key [key ...] <end> [COUNT count]` with `numkeys` at
/// `at`: the keys, the word after them (parsed by the caller) and the count.
///
/// # Errors
/// Redis's numkeys, syntax and count errors.
pub fn parse_mpop<'a>(
    args: &[&'a [u8]],
    at: usize,
    parse_word: fn(&[u8]) -> Result<(), CommandError>,
) -> Result<(Vec<&'a [u8]>, &'a [u8], usize), CommandError> {
    let count_of_keys = numkeys(args, at)?;
    let keys = args[at + 1..at + 1 + count_of_keys].to_vec();
    let rest = &args[at + 1 + count_of_keys..];
    let Some((&word, mut options)) = rest.split_first() else {
        return Err(errors::SYNTAX.into());
    };
    parse_word(word)?;
    let mut count = None;
    while let Some((&option, after)) = options.split_first() {
        match after.first() {
            Some(value) if is(option, "COUNT") && count.is_none() => {
                match ember_resp::parse_i64(value) {
                    Some(parsed) if parsed > 0 => count = Some(parsed as usize),
                    _ => return Err(MPOP_COUNT_NOT_POSITIVE.into()),
                }
                options = &after[1..];
            }
            _ => return Err(errors::SYNTAX.into()),
        }
    }
    Ok((keys, word, count.unwrap_or(1)))
}

/// LMPOP's work on the first of `keys` that holds a list: its name and the popped elements.
///
/// # Errors
/// WRONGTYPE when a key before the first list holds another type.
pub fn mpop_lists(
    ctx: &mut Ctx<'_>,
    keys: &[&[u8]],
    end: End,
    count: usize,
) -> Result<Option<(Vec<u8>, Vec<Vec<u8>>)>, CommandError> {
    for key in keys {
        if let Some(popped) = pop_elements(ctx, key, end, count)? {
            return Ok(Some((key.to_vec(), popped)));
        }
    }
    Ok(None)
}

/// Writes `[key, [element ...]]`, LMPOP's and BLMPOP's answer.
pub fn reply_key_and_elements(out: &mut ember_resp::ReplySink, key: &[u8], elements: &[Vec<u8>]) {
    out.array_len(2);
    out.bulk(key);
    out.array_len(elements.len());
    for element in elements {
        out.bulk(element);
    }
}

/// LMPOP numkeys key [key ...] LEFT|RIGHT [COUNT count]
pub fn lmpop(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> CommandResult {
    let (keys, word, count) = parse_mpop(args, 1, |word| parse_end(word).map(|_| ()))?;
    let end = parse_end(word)?;
    match mpop_lists(ctx, &keys, end, count)? {
        Some((key, elements)) => reply_key_and_elements(ctx.out, &key, &elements),
        None => ctx.out.null_array(),
    }
    Ok(())
}
