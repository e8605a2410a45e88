//! Stream commands over [`StreamValue`]: XADD, XLEN, XRANGE, XREVRANGE, XDEL, XDELEX, XTRIM,
//! XSETID here; XREAD and XREADGROUP in `read`, the consumer-group commands (XGROUP, XACK,
//! XACKDEL, XPENDING, XCLAIM, XAUTOCLAIM) in `groups`, XINFO in `info`.
//!
//! Unlike the other collections, a stream may be empty and keep its key (XDEL, XTRIM), as in
//! Redis. The store's [`StreamError`] Display texts are Redis's replies.

mod groups;
mod info;
mod read;

pub use read::blocking_form;

use ember_resp::ReplySink;
use ember_store::stream::{
    auto_iid, parse_add_id, parse_id, parse_range_bound, AddId, DeleteOutcome, RefPolicy,
    StreamEntry, StreamLimits, TrimOptions, TrimStrategy, IDMP_DURATION_RANGE_S,
    IDMP_MAXSIZE_RANGE,
};
use ember_store::{Change, Entry, StreamError, StreamId, StreamValue, Value};

use super::key_finders::streams_keys;
use super::notify::{self, notify};
use super::{
    command, errors, is, movable, parse_integer, read_for_reply, split, CommandError,
    CommandFlags as F, CommandResult, CommandSpec, Ctx, Ks, Split, NO_KEYS, ONE_KEY, R, R_FAST,
    SECOND_ARG_KEY, W, W_FAST, W_OOM_FAST,
};
use crate::config::Config;

/// This family's commands, in COMMAND's order.
#[rustfmt::skip]
pub static COMMANDS: &[CommandSpec] = &[
    command("xadd", -5, W_OOM_FAST, ONE_KEY, "stream", "5.0.0", "Appends a new message to a stream. Creates the key if it doesn't exist.", Ks(xadd)),
    command("xlen", 2, R_FAST, ONE_KEY, "stream", "5.0.0", "Return the number of messages in a stream.", Ks(xlen)),
    command("xrange", -4, R, ONE_KEY, "stream", "5.0.0", "Returns the messages from a stream within a range of IDs.", Ks(xrange)),
    command("xrevrange", -4, R, ONE_KEY, "stream", "5.0.0", "Returns the messages from a stream within a range of IDs in reverse order.", Ks(xrevrange)),
    command("xdel", -3, W_FAST, ONE_KEY, "stream", "5.0.0", "Returns the number of messages after removing them from a stream.", Ks(xdel)),
    command("xdelex", -5, W_FAST, ONE_KEY, "stream", "8.2.0", "Deletes one or multiple entries from the stream.", Ks(xdelex)),
    command("xtrim", -4, W, ONE_KEY, "stream", "5.0.0", "Deletes messages from the beginning of a stream.", Ks(xtrim)),
    command("xcfgset", -2, W_FAST, ONE_KEY, "stream", "8.6.0", "Sets the IDMP configuration parameters for a stream.", Ks(xcfgset)),
    command("xsetid", -3, W_OOM_FAST, ONE_KEY, "stream", "5.0.0", "An internal command for replicating stream values.", Ks(xsetid)),
    split(movable(command("xread", -4, R.union(F::BLOCKING), NO_KEYS, "stream", "5.0.0", "Returns messages from multiple streams with IDs greater than the ones requested.", Ks(read::xread)), streams_keys), Split::Scratch),
    split(movable(command("xreadgroup", -7, W.union(F::BLOCKING), NO_KEYS, "stream", "5.0.0", "Returns new or historical messages from a stream for a consumer in a group.", Ks(read::xreadgroup)), streams_keys), Split::Scratch),
    command("xgroup", -2, W, SECOND_ARG_KEY, "stream", "5.0.0", "A container for consumer groups commands.", Ks(groups::xgroup)),
    command("xack", -4, W_FAST, ONE_KEY, "stream", "5.0.0", "Returns the number of messages that were successfully acknowledged by the consumer group member of a stream.", Ks(groups::xack)),
    command("xackdel", -6, W_FAST, ONE_KEY, "stream", "8.2.0", "Acknowledges and conditionally deletes one or multiple entries for a stream consumer group.", Ks(groups::xackdel)),
    command("xpending", -3, R, ONE_KEY, "stream", "5.0.0", "Returns the information and entries from a stream consumer group's pending entries list.", Ks(groups::xpending)),
    command("xclaim", -6, W_FAST, ONE_KEY, "stream", "5.0.0", "Changes, or acquires, ownership of a message in a consumer group, as if the message was delivered a consumer group member.", Ks(groups::xclaim)),
    command("xautoclaim", -6, W_FAST, ONE_KEY, "stream", "6.2.0", "Changes, or acquires, ownership of messages in a consumer group, as if the messages were delivered to as consumer group member.", Ks(groups::xautoclaim)),
    command("xinfo", -2, R, SECOND_ARG_KEY, "stream", "5.0.0", "A container for stream introspection commands.", Ks(info::xinfo)),
];

/// The shape of blocks: `stream-node-max-bytes` and `stream-node-max-entries`.
pub(crate) fn limits(config: &Config) -> StreamLimits {
    config.stream_limits
}

/// A store error as the reply.
fn stream_error(error: StreamError) -> CommandError {
    error.to_string().into()
}

/// The stream of `entry`, or WRONGTYPE.
fn stream_of(entry: &Entry) -> Result<&StreamValue, CommandError> {
    match &entry.value {
        Value::Stream(stream) => Ok(stream),
        _ => Err(errors::WRONGTYPE.into()),
    }
}

/// An ID argument as Redis's `streamParseStrictIDOrReply` reads it (`-` and `+` refused).
fn parse_strict_id(arg: &[u8]) -> Result<StreamId, CommandError> {
    parse_id(arg, 0).map_err(stream_error)
}

/// An ID as a bulk string, formatted on the stack (XADD answers one per call).
fn reply_id(out: &mut ReplySink, id: StreamId) {
    // Two u64s of at most 20 digits each and the dash.
    let mut text = [0u8; 41];
    let mut at = write_decimal(&mut text, 0, id.ms);
    text[at] = b'-';
    at = write_decimal(&mut text, at + 1, id.seq);
    out.bulk(&text[..at]);
}

/// Writes `value` in decimal at `at` of `text`; the position after it.
fn write_decimal(text: &mut [u8], at: usize, value: u64) -> usize {
    let mut digits = [0u8; 20];
    let (mut rest, mut start) = (value, digits.len());
    loop {
        start -= 1;
        digits[start] = b'0' + (rest % 10) as u8;
        rest /= 10;
        if rest == 0 {
            break;
        }
    }
    let len = digits.len() - start;
    text[at..at + len].copy_from_slice(&digits[start..]);
    at + len
}

/// One entry: `[id, [field, value, ...]]`.
fn reply_entry(out: &mut ReplySink, id: StreamId, fields: &[Vec<u8>]) {
    out.array_len(2);
    reply_id(out, id);
    out.array_len(fields.len());
    for item in fields {
        out.bulk(item);
    }
}

/// Entries, as XRANGE replies.
fn reply_entries(out: &mut ReplySink, entries: &[StreamEntry]) {
    out.array_len(entries.len());
    for entry in entries {
        reply_entry(out, entry.id, &entry.fields);
    }
}

/// XADD's and XTRIM's parsed options.
struct TrimArguments<'a> {
    trim: Option<TrimOptions>,
    /// KEEPREF, DELREF or ACKED (Redis 8.2): what the trim does to the groups' references.
    policy: RefPolicy,
    /// XADD's IDMP or IDMPAUTO (Redis 8.6).
    idempotent: Option<Idempotent<'a>>,
    no_make_stream: bool,
    /// Where XADD's ID is (XTRIM: the argument count).
    next: usize,
}

/// Redis's `streamParseAddOrTrimArgsOrReply`, from argument 2: the trimming strategy (MAXLEN
/// or MINID, `=` or `~`), LIMIT, and for XADD NOMKSTREAM, up to the ID.
fn parse_trim_arguments<'a>(
    args: &[&'a [u8]],
    xadd: bool,
) -> Result<TrimArguments<'a>, CommandError> {
    let mut strategy = None;
    let mut approximate = false;
    let mut limit: Option<usize> = None;
    let mut no_make_stream = false;
    let mut policy = RefPolicy::KeepRef;
    let mut idempotent = None;
    let mut index = 2;
    while index < args.len() {
        let more = args.len() - 1 - index;
        let option = args[index];
        if xadd && option == b"*" {
            break;
        } else if (is(option, "MAXLEN") || is(option, "MINID")) && more > 0 {
            approximate = false;
            let next = args[index + 1];
            if more >= 2 && (next == b"~" || next == b"=") {
                approximate = next == b"~";
                index += 1;
            }
            let value = args[index + 1];
            strategy = Some(if is(option, "MAXLEN") {
                let max_len = parse_integer(value)?;
                if max_len < 0 {
                    return Err("ERR The MAXLEN argument must be >= 0.".into());
                }
                TrimStrategy::MaxLen(max_len as usize)
            } else {
                TrimStrategy::MinId(parse_strict_id(value)?)
            });
            index += 1;
        } else if is(option, "LIMIT") && more > 0 {
            let value = parse_integer(args[index + 1])?;
            if value < 0 {
                return Err("ERR The LIMIT argument must be >= 0.".into());
            }
            limit = Some(value as usize);
            index += 1;
        } else if xadd && is(option, "NOMKSTREAM") {
            no_make_stream = true;
        } else if let Some(named) = RefPolicy::parse(option) {
            policy = named;
        } else if xadd && idempotent.is_none() && is(option, "IDMPAUTO") && more > 0 {
            idempotent = Some(Idempotent::Auto(args[index + 1]));
            index += 1;
        } else if xadd && idempotent.is_none() && is(option, "IDMP") && more > 1 {
            idempotent = Some(Idempotent::Given(args[index + 1], args[index + 2]));
            index += 2;
        } else if xadd {
            break; // The ID, checked by the caller.
        } else {
            return Err(errors::SYNTAX.into());
        }
        index += 1;
    }
    if limit.is_some_and(|limit| limit > 0) && strategy.is_none() {
        return Err(
            "ERR syntax error, LIMIT cannot be used without specifying a trimming strategy".into(),
        );
    }
    if !xadd && strategy.is_none() {
        return Err("ERR syntax error, XTRIM must be called with a trimming strategy".into());
    }
    if limit.is_some() && !approximate {
        return Err("ERR syntax error, LIMIT cannot be used without the special ~ option".into());
    }
    Ok(TrimArguments {
        trim: strategy.map(|strategy| TrimOptions {
            strategy,
            approximate,
            limit,
        }),
        policy,
        idempotent,
        no_make_stream,
        next: index,
    })
}

/// XADD's idempotent production (Redis 8.6).
#[derive(Debug, Clone, Copy)]
enum Idempotent<'a> {
    /// IDMPAUTO pid: the iid computed from the fields.
    Auto(&'a [u8]),
    /// IDMP pid iid.
    Given(&'a [u8], &'a [u8]),
}

/// XADD key [NOMKSTREAM] [KEEPREF | DELREF | ACKED] [IDMPAUTO pid | IDMP pid iid] [MAXLEN |
/// MINID [= | ~] threshold [LIMIT count]] * | id field value [field value ...]
///
/// With IDMP or IDMPAUTO, an XADD repeating a pair (producer, idempotent ID) the stream
/// remembers adds nothing and answers the entry the first one added.
pub fn xadd(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> CommandResult {
    let parsed = parse_trim_arguments(args, true)?;
    let id_at = parsed.next;
    let fields = args.get(id_at + 1..).unwrap_or(&[]);
    if id_at >= args.len() {
        return Err(super::arity_message("xadd").into());
    }
    let id = parse_add_id(args[id_at]).map_err(stream_error)?;
    if fields.is_empty() || fields.len() % 2 != 0 {
        return Err(super::arity_message("xadd").into());
    }
    if id == AddId::Explicit(StreamId::MIN) {
        return Err(stream_error(StreamError::IdZero));
    }
    let idempotent = match parsed.idempotent {
        None => None,
        Some(_) if id != AddId::Auto => {
            return Err("ERR IDMP and IDMPAUTO can be used only with an auto-generated ID".into());
        }
        Some(Idempotent::Auto(pid)) => Some((pid, auto_iid(fields).to_vec())),
        Some(Idempotent::Given(pid, iid)) => Some((pid, iid.to_vec())),
    };
    if idempotent
        .as_ref()
        .is_some_and(|(pid, iid)| pid.is_empty() || iid.is_empty())
    {
        return Err("ERR The producer ID and the idempotent ID must not be empty".into());
    }
    let (db, now_ms, key) = (ctx.db, ctx.now_ms, args[1]);
    let limits = limits(ctx.config);
    // The entry's ID, whether it is new (not an idempotent repeat), and whether the trim
    // deleted anything.
    let add = |stream: &mut StreamValue| -> Result<(StreamId, bool, bool), CommandError> {
        if let Some((pid, iid)) = &idempotent {
            if let Some(existing) = stream.idempotent_entry(pid, iid, now_ms) {
                return Ok((existing, false, false));
            }
        }
        let new_id = stream
            .add(id, fields, now_ms, &limits)
            .map_err(stream_error)?;
        if let Some((pid, iid)) = &idempotent {
            stream.remember_idempotent(pid, iid, new_id, now_ms);
        }
        let trimmed = parsed
            .trim
            .is_some_and(|trim| stream.trim_with(trim, parsed.policy, &limits) > 0);
        Ok((new_id, true, trimmed))
    };
    let updated = ctx.keyspace.update(db, key, now_ms, |value| {
        let Value::Stream(stream) = value else {
            return Err(CommandError::from(errors::WRONGTYPE));
        };
        let added = add(stream)?;
        let change = if added.1 {
            Change::Modified
        } else {
            Change::None
        };
        Ok((added, change))
    });
    let (new_id, added, trimmed) = match updated {
        Some(result) => result?,
        None if parsed.no_make_stream => {
            ctx.out.null();
            return Ok(());
        }
        None => {
            let mut stream = StreamValue::new();
            let added = add(&mut stream)?;
            ctx.keyspace
                .insert(db, key, Value::Stream(Box::new(stream)), None, now_ms);
            added
        }
    };
    if !added {
        reply_id(ctx.out, new_id);
        return Ok(());
    }
    notify(ctx, notify::STREAM, "xadd", key);
    if trimmed {
        notify(ctx, notify::STREAM, "xtrim", key);
    }
    propagate_add(ctx, key, new_id, trimmed, fields);
    reply_id(ctx.out, new_id);
    Ok(())
}

/// Logs an XADD as the entry it added, with the ID it chose (`*` would choose another on
/// replay) and, when it trimmed, the exact length it trimmed to (an approximate trim depends
/// on the stream's node size, which may differ then).
fn propagate_add(ctx: &mut Ctx<'_>, key: &[u8], id: StreamId, trimmed: bool, fields: &[&[u8]]) {
    if !ctx.propagating() {
        return;
    }
    let len = ctx
        .keyspace
        .peek(ctx.db, key, ctx.now_ms)
        .and_then(|entry| match &entry.value {
            Value::Stream(stream) => Some(stream.len()),
            _ => None,
        })
        .unwrap_or(0);
    let (id_text, len_text) = (id.to_string(), len.to_string());
    let mut record: Vec<&[u8]> = vec![b"XADD", key];
    if trimmed {
        record.extend_from_slice(&[b"MAXLEN", b"=", len_text.as_bytes()]);
    }
    record.push(id_text.as_bytes());
    record.extend_from_slice(fields);
    ctx.propagate(&record);
}

/// XLEN key
pub fn xlen(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> CommandResult {
    let (entry, out) = read_for_reply(ctx, args[1]);
    let len = entry
        .map(stream_of)
        .transpose()?
        .map_or(0, StreamValue::len);
    out.integer(len as i64);
    Ok(())
}

/// XRANGE and XREVRANGE: `first` and `second` are the arguments as given (end first when
/// reversed).
fn range_generic(ctx: &mut Ctx<'_>, args: &[&[u8]], reverse: bool) -> CommandResult {
    let (start_arg, end_arg) = if reverse {
        (args[3], args[2])
    } else {
        (args[2], args[3])
    };
    let start = parse_range_bound(start_arg, true).map_err(stream_error)?;
    let end = parse_range_bound(end_arg, false).map_err(stream_error)?;
    let mut count: Option<usize> = None;
    let mut index = 4;
    while index < args.len() {
        if is(args[index], "COUNT") && index + 1 < args.len() {
            count = Some(parse_integer(args[index + 1])?.max(0) as usize);
            index += 2;
        } else {
            return Err(errors::SYNTAX.into());
        }
    }
    let (entry, out) = read_for_reply(ctx, args[1]);
    let Some(stream) = entry.map(stream_of).transpose()? else {
        out.array_len(0);
        return Ok(());
    };
    // Redis answers COUNT 0 (or below) on an existing stream with a null array.
    if count == Some(0) {
        out.null_array();
        return Ok(());
    }
    let limit = count.unwrap_or(0);
    let entries = if reverse {
        stream.rev_range(start, end, limit)
    } else {
        stream.range(start, end, limit)
    };
    reply_entries(out, &entries);
    Ok(())
}

/// XRANGE key start end [COUNT count]
pub fn xrange(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> CommandResult {
    range_generic(ctx, args, false)
}

/// XREVRANGE key end start [COUNT count]
pub fn xrevrange(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> CommandResult {
    range_generic(ctx, args, true)
}

/// XDEL key id [id ...]: Redis looks the key up first (a missing key deletes nothing, whatever
/// the IDs), then checks every ID before anything goes.
pub fn xdel(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> CommandResult {
    let deleted = with_stream(ctx, args[1], |stream| {
        let ids: Vec<StreamId> = args[2..]
            .iter()
            .map(|arg| parse_strict_id(arg))
            .collect::<Result<_, _>>()?;
        let deleted = stream.delete(&ids);
        Ok((deleted, deleted > 0))
    })
    .transpose()?
    .unwrap_or(0);
    if deleted > 0 {
        notify(ctx, notify::STREAM, "xdel", args[1]);
    }
    ctx.out.integer(deleted as i64);
    Ok(())
}

/// The arguments of XDELEX and XACKDEL after the key (and group): a policy word and the
/// `IDS numids id [id ...]` block, in either order (Redis 8.2).
fn parse_ids_block(args: &[&[u8]]) -> Result<(RefPolicy, Vec<StreamId>), CommandError> {
    let (mut policy, mut ids) = (None, None);
    let mut index = 0;
    while index < args.len() {
        if is(args[index], "IDS") && ids.is_none() && index + 1 < args.len() {
            let count = parse_integer(args[index + 1])
                .ok()
                .filter(|&count| count > 0)
                .ok_or("ERR Number of IDs must be a positive integer")?;
            let first = index + 2;
            let end = usize::try_from(count)
                .ok()
                .and_then(|count| first.checked_add(count))
                .filter(|&end| end <= args.len())
                .ok_or("ERR The `numids` parameter must match the number of arguments")?;
            ids = Some(
                args[first..end]
                    .iter()
                    .map(|arg| parse_strict_id(arg))
                    .collect::<Result<Vec<_>, _>>()?,
            );
            index = end;
        } else if let Some(named) = RefPolicy::parse(args[index]).filter(|_| policy.is_none()) {
            policy = Some(named);
            index += 1;
        } else {
            return Err(errors::SYNTAX.into());
        }
    }
    let ids = ids.ok_or(errors::SYNTAX)?;
    Ok((policy.unwrap_or_default(), ids))
}

/// XDELEX's and XACKDEL's reply: one code per ID.
fn reply_outcomes(out: &mut ReplySink, outcomes: &[DeleteOutcome]) {
    out.array_len(outcomes.len());
    for outcome in outcomes {
        out.integer(outcome.code());
    }
}

/// XDELEX key [KEEPREF | DELREF | ACKED] IDS numids id [id ...] (Redis 8.2): XDEL with a say
/// over the consumer groups' references; -1, 1 or 2 per ID ([`DeleteOutcome`]).
pub fn xdelex(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> CommandResult {
    let (policy, ids) = parse_ids_block(&args[2..])?;
    let outcomes = with_stream(ctx, args[1], |stream| {
        let outcomes = stream.delete_with(&ids, policy);
        // DELREF may change a group's pending list without deleting an entry.
        let changed = policy == RefPolicy::DelRef || outcomes.contains(&DeleteOutcome::Deleted);
        Ok((outcomes, changed))
    })
    .transpose()?
    .unwrap_or_else(|| vec![DeleteOutcome::NotFound; ids.len()]);
    if outcomes.contains(&DeleteOutcome::Deleted) {
        notify(ctx, notify::STREAM, "xdel", args[1]);
    }
    reply_outcomes(ctx.out, &outcomes);
    Ok(())
}

/// Runs `change` on the stream at `key` and bumps its version when `change` says so.
pub(super) fn with_stream<R>(
    ctx: &mut Ctx<'_>,
    key: &[u8],
    change: impl FnOnce(&mut StreamValue) -> Result<(R, bool), CommandError>,
) -> Option<Result<R, CommandError>> {
    let (db, now_ms) = (ctx.db, ctx.now_ms);
    ctx.keyspace.update(db, key, now_ms, |value| {
        let Value::Stream(stream) = value else {
            return Err(CommandError::from(errors::WRONGTYPE));
        };
        let (result, changed) = change(stream)?;
        Ok((result, modified_if(changed)))
    })
}

/// A stream write's change: streams keep their key when emptied.
fn modified_if(changed: bool) -> Change {
    if changed {
        Change::Modified
    } else {
        Change::None
    }
}

/// XTRIM key MAXLEN | MINID [= | ~] threshold [LIMIT count] [KEEPREF | DELREF | ACKED]
pub fn xtrim(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> CommandResult {
    let parsed = parse_trim_arguments(args, false)?;
    let policy = parsed.policy;
    let trim = parsed.trim.expect("XTRIM's parse requires a strategy");
    let limits = limits(ctx.config);
    let deleted = with_stream(ctx, args[1], |stream| {
        let deleted = stream.trim_with(trim, policy, &limits);
        Ok((deleted, deleted > 0))
    })
    .transpose()?
    .unwrap_or(0);
    if deleted > 0 {
        notify(ctx, notify::STREAM, "xtrim", args[1]);
        // The exact length it came to (see propagate_add).
        if ctx.propagating() {
            let len = ctx
                .keyspace
                .peek(ctx.db, args[1], ctx.now_ms)
                .and_then(|entry| match &entry.value {
                    Value::Stream(stream) => Some(stream.len()),
                    _ => None,
                })
                .unwrap_or(0)
                .to_string();
            ctx.propagate(&[b"XTRIM", args[1], b"MAXLEN", b"=", len.as_bytes()]);
        }
    } else {
        ctx.propagation.suppress();
    }
    ctx.out.integer(deleted as i64);
    Ok(())
}

/// XCFGSET key [IDMP-DURATION seconds] [IDMP-MAXSIZE count] (Redis 8.6): how long the stream
/// remembers idempotent IDs and how many per producer; what it remembered is forgotten.
pub fn xcfgset(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> CommandResult {
    let (mut duration_s, mut max_size) = (None, None);
    let in_range = |arg: &[u8], (min, max): (u64, u64), name: &str| {
        parse_integer(arg)
            .ok()
            .and_then(|value| u64::try_from(value).ok())
            .filter(|value| (min..=max).contains(value))
            .ok_or_else(|| {
                CommandError::from(format!("ERR {name} must be between {min} and {max}"))
            })
    };
    let mut index = 2;
    while index < args.len() {
        let value = args.get(index + 1).ok_or(errors::SYNTAX)?;
        if is(args[index], "IDMP-DURATION") && duration_s.is_none() {
            duration_s = Some(in_range(value, IDMP_DURATION_RANGE_S, "IDMP-DURATION")?);
        } else if is(args[index], "IDMP-MAXSIZE") && max_size.is_none() {
            max_size = Some(in_range(value, IDMP_MAXSIZE_RANGE, "IDMP-MAXSIZE")?);
        } else {
            return Err(errors::SYNTAX.into());
        }
        index += 2;
    }
    if duration_s.is_none() && max_size.is_none() {
        return Err("ERR At least one of IDMP-DURATION or IDMP-MAXSIZE must be specified".into());
    }
    with_stream(ctx, args[1], |stream| {
        stream.configure_idempotency(duration_s, max_size);
        Ok(((), true))
    })
    .ok_or(CommandError::from(errors::NO_SUCH_KEY))??;
    ctx.out.ok();
    Ok(())
}

/// XSETID key last-id [ENTRIESADDED entries-added] [MAXDELETEDID max-deleted-id]
pub fn xsetid(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> CommandResult {
    let last_id = parse_strict_id(args[2])?;
    let (mut entries_added, mut max_deleted) = (None, None);
    let mut index = 3;
    while index < args.len() {
        let more = args.len() - 1 - index;
        if is(args[index], "ENTRIESADDED") && more > 0 {
            let added = parse_integer(args[index + 1])?;
            if added < 0 {
                return Err("ERR entries_added must be positive".into());
            }
            entries_added = Some(added as u64);
        } else if is(args[index], "MAXDELETEDID") && more > 0 {
            let id = parse_strict_id(args[index + 1])?;
            if last_id < id {
                return Err(stream_error(StreamError::SetIdBelowMaxDeleted));
            }
            max_deleted = Some(id);
        } else {
            return Err(errors::SYNTAX.into());
        }
        index += 2;
    }
    let (db, now_ms) = (ctx.db, ctx.now_ms);
    ctx.keyspace
        .update(db, args[1], now_ms, |value| {
            let Value::Stream(stream) = value else {
                return Err(CommandError::from(errors::WRONGTYPE));
            };
            stream
                .set_id(last_id, entries_added, max_deleted)
                .map_err(stream_error)?;
            Ok(((), Change::Modified))
        })
        .ok_or(CommandError::from(errors::NO_SUCH_KEY))??;
    notify(ctx, notify::STREAM, "xsetid", args[1]);
    ctx.out.ok();
    Ok(())
}
