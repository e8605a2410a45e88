//! Consumer groups: XGROUP (CREATE, SETID, DESTROY, CREATECONSUMER, DELCONSUMER, HELP), XACK,
//! XACKDEL, XPENDING, XCLAIM, XAUTOCLAIM, with Redis's checks in Redis's order.

use ember_store::stream::{ClaimOptions, DeleteOutcome, GroupStart, NoGroupContext, StreamEntry};
use ember_store::{StreamError, StreamId, StreamValue, Value};

use super::{
    parse_ids_block, parse_strict_id, reply_entries, reply_id, reply_outcomes, stream_error,
    stream_of, with_stream,
};
use crate::commands::notify::{self, notify};
use crate::commands::{
    errors, is, parse_integer, read_entry, unknown_subcommand_message, CommandError, CommandResult,
    Ctx,
};
use ember_store::stream::parse_range_bound;

/// Raises `xgroup-createconsumer` when a read or a claim created `consumer`.
pub(super) fn note_consumer_created(
    ctx: &mut Ctx<'_>,
    key: &[u8],
    group: &[u8],
    consumer: &[u8],
    had_consumer: bool,
) {
    if !had_consumer && has_consumer(ctx, key, group, consumer) {
        notify(ctx, notify::STREAM, "xgroup-createconsumer", key);
    }
}

/// True when `group` of the stream at `key` has a consumer called `consumer`.
pub(super) fn has_consumer(ctx: &mut Ctx<'_>, key: &[u8], group: &[u8], consumer: &[u8]) -> bool {
    let (db, now_ms) = (ctx.db, ctx.now_ms);
    matches!(
        ctx.keyspace.peek(db, key, now_ms).map(|entry| &entry.value),
        Some(Value::Stream(stream))
            if stream.group(group).is_some_and(|g| g.consumers.contains_key(consumer))
    )
}

/// XGROUP HELP's lines (Redis 7.0's).
const XGROUP_HELP: &[&str] = &[
    "XGROUP <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
    "CREATE <key> <groupname> <id|$> [option]",
    "    Create a new consumer group. Options are:",
    "    * MKSTREAM",
    "      Create the empty stream if it does not exist.",
    "    * ENTRIESREAD entries_read",
    "      Set the group's entries_read counter (internal use).",
    "CREATECONSUMER <key> <groupname> <consumer>",
    "    Create a new consumer in the specified group.",
    "DELCONSUMER <key> <groupname> <consumer>",
    "    Remove the specified consumer.",
    "DESTROY <key> <groupname>",
    "    Remove the specified group.",
    "SETID <key> <groupname> <id|$> [ENTRIESREAD entries_read]",
    "    Set the current group ID and entries_read counter.",
    "HELP",
    "    Prints this help.",
];

/// Replies with help lines, as Redis's `addReplyHelp`.
pub(super) fn reply_help(ctx: &mut Ctx<'_>, lines: &[&str]) {
    ctx.out.array_len(lines.len());
    for line in lines {
        ctx.out.simple(line.as_bytes());
    }
}

/// The subcommand arities of a container (Redis 7's per-subcommand tables).
pub(super) fn subcommand_arity_ok(arity: i32, arg_count: usize) -> bool {
    crate::commands::arity_ok(arity, arg_count)
}

/// XGROUP's syntax error for a subcommand.
fn subcommand_syntax(subcommand: &[u8]) -> CommandError {
    format!(
        "ERR unknown subcommand or wrong number of arguments for '{}'. Try XGROUP HELP.",
        String::from_utf8_lossy(subcommand)
    )
    .into()
}

/// XGROUP CREATE | SETID | DESTROY | CREATECONSUMER | DELCONSUMER | HELP
pub fn xgroup(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> CommandResult {
    let subcommand = args[1];
    let arity = [
        ("create", -5),
        ("setid", -5),
        ("destroy", 4),
        ("createconsumer", 5),
        ("delconsumer", 5),
        ("help", 2),
    ]
    .into_iter()
    .find(|(name, _)| is(subcommand, name));
    let Some((name, arity)) = arity else {
        return Err(unknown_subcommand_message("xgroup", subcommand).into());
    };
    if !subcommand_arity_ok(arity, args.len()) {
        return Err(format!("ERR wrong number of arguments for 'xgroup|{name}' command").into());
    }
    if name == "help" {
        reply_help(ctx, XGROUP_HELP);
        return Ok(());
    }
    let (key, group) = (args[2], args[3]);
    let mut make_stream = false;
    let mut entries_read: Option<u64> = None;
    if name == "create" || name == "setid" {
        let mut index = 5;
        while index < args.len() {
            if name == "create" && is(args[index], "MKSTREAM") {
                make_stream = true;
                index += 1;
            } else if is(args[index], "ENTRIESREAD") && index + 1 < args.len() {
                let read = parse_integer(args[index + 1])?;
                if read < -1 {
                    return Err("ERR value for ENTRIESREAD must be positive or -1".into());
                }
                entries_read = u64::try_from(read).ok();
                index += 2;
            } else {
                return Err(subcommand_syntax(subcommand));
            }
        }
    }
    let stream = read_entry(ctx, key).map(stream_of).transpose()?;
    let group_exists = stream.is_some_and(|stream| stream.group(group).is_some());
    let stream_exists = stream.is_some();
    if !make_stream {
        if !stream_exists {
            return Err("ERR The XGROUP subcommand requires the key to exist. Note that for CREATE you may want to use the MKSTREAM option to create an empty stream automatically.".into());
        }
        if !group_exists && matches!(name, "setid" | "createconsumer" | "delconsumer") {
            return Err(StreamError::no_group_reply(key, group, NoGroupContext::Group).into());
        }
    }
    let subcommand_ok = match name {
        "create" => args.len() <= 8,
        "setid" => args.len() == 5 || args.len() == 7,
        _ => true,
    };
    if !subcommand_ok {
        return Err(subcommand_syntax(subcommand));
    }
    let now_ms = ctx.now_ms;
    match name {
        "create" | "setid" => {
            let start = if args[4] == b"$" {
                GroupStart::LastId
            } else {
                // Redis reads this ID as `streamParseIDOrReply`: `-` and `+` are 0-0 and the
                // largest ID.
                GroupStart::Id(match args[4] {
                    b"-" => StreamId::MIN,
                    b"+" => StreamId::MAX,
                    id => parse_strict_id(id)?,
                })
            };
            if !stream_exists {
                ctx.keyspace.insert(
                    ctx.db,
                    key,
                    Value::Stream(Box::new(StreamValue::new())),
                    None,
                    now_ms,
                );
            }
            with_stream(ctx, key, |stream| {
                let done = if name == "create" {
                    stream.create_group(group, start, entries_read)
                } else {
                    stream.set_group_id(group, start, entries_read)
                };
                done.map_err(stream_error)?;
                Ok(((), true))
            })
            .expect("the stream exists")?;
            let event = if name == "create" {
                "xgroup-create"
            } else {
                "xgroup-setid"
            };
            notify(ctx, notify::STREAM, event, key);
            ctx.out.ok();
        }
        "destroy" => {
            let destroyed = with_stream(ctx, key, |stream| {
                let destroyed = stream.destroy_group(group);
                Ok((destroyed, destroyed))
            })
            .expect("the stream exists")?;
            if destroyed {
                notify(ctx, notify::STREAM, "xgroup-destroy", key);
            }
            ctx.out.integer(i64::from(destroyed));
        }
        "createconsumer" => {
            let created = with_stream(ctx, key, |stream| {
                let created = stream
                    .create_consumer(group, args[4], now_ms)
                    .map_err(stream_error)?;
                Ok((created, created))
            })
            .expect("the stream exists")?;
            if created {
                notify(ctx, notify::STREAM, "xgroup-createconsumer", key);
            }
            ctx.out.integer(i64::from(created));
        }
        _ => {
            let pending = with_stream(ctx, key, |stream| {
                let existed = stream
                    .group(group)
                    .is_some_and(|g| g.consumers.contains_key(args[4]));
                let pending = stream
                    .delete_consumer(group, args[4])
                    .map_err(stream_error)?;
                Ok(((pending, existed), existed))
            })
            .expect("the stream exists")?;
            let (pending, existed) = pending;
            if existed {
                notify(ctx, notify::STREAM, "xgroup-delconsumer", key);
            }
            ctx.out.integer(pending as i64);
        }
    }
    Ok(())
}

/// XACK key group id [id ...]: a missing key or group acknowledges nothing.
pub fn xack(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> CommandResult {
    let (key, group) = (args[1], args[2]);
    let stream = read_entry(ctx, key).map(stream_of).transpose()?;
    if stream.is_none_or(|stream| stream.group(group).is_none()) {
        ctx.out.integer(0);
        return Ok(());
    }
    let ids: Vec<StreamId> = args[3..]
        .iter()
        .map(|arg| parse_strict_id(arg))
        .collect::<Result<_, _>>()?;
    let acknowledged = with_stream(ctx, key, |stream| {
        let acknowledged = stream.ack(group, &ids).map_err(stream_error)?;
        Ok((acknowledged, acknowledged > 0))
    })
    .expect("the stream exists")?;
    ctx.out.integer(acknowledged as i64);
    Ok(())
}

/// XACKDEL key group [KEEPREF | DELREF | ACKED] IDS numids id [id ...] (Redis 8.2): XACK, then
/// the acknowledged entries deleted under the policy; -1, 1 or 2 per ID ([`DeleteOutcome`]).
/// A missing key or group acknowledges nothing, as XACK's 0: every ID answers -1.
pub fn xackdel(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> CommandResult {
    let (key, group) = (args[1], args[2]);
    let (policy, ids) = parse_ids_block(&args[3..])?;
    let stream = read_entry(ctx, key).map(stream_of).transpose()?;
    if stream.is_none_or(|stream| stream.group(group).is_none()) {
        reply_outcomes(ctx.out, &vec![DeleteOutcome::NotFound; ids.len()]);
        return Ok(());
    }
    let outcomes = with_stream(ctx, key, |stream| {
        let outcomes = stream
            .ack_delete(group, &ids, policy)
            .map_err(stream_error)?;
        let changed = outcomes
            .iter()
            .any(|outcome| *outcome != DeleteOutcome::NotFound);
        Ok((outcomes, changed))
    })
    .expect("the stream exists")?;
    if outcomes.contains(&DeleteOutcome::Deleted) {
        notify(ctx, notify::STREAM, "xdel", key);
    }
    reply_outcomes(ctx.out, &outcomes);
    Ok(())
}

/// The stream at `key` holding `group`, or Redis's NOGROUP for the XPENDING/XCLAIM family.
fn stream_with_group<'a>(
    ctx: &'a mut Ctx<'_>,
    key: &[u8],
    group: &[u8],
) -> Result<&'a StreamValue, CommandError> {
    let stream = read_entry(ctx, key).map(stream_of).transpose()?;
    stream
        .filter(|stream| stream.group(group).is_some())
        .ok_or_else(|| StreamError::no_group_reply(key, group, NoGroupContext::Key).into())
}

/// XPENDING key group [[IDLE min-idle-time] start end count [consumer]]
pub fn xpending(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> CommandResult {
    let (key, group) = (args[1], args[2]);
    if args.len() != 3 && !(6..=9).contains(&args.len()) {
        return Err(errors::SYNTAX.into());
    }
    let mut extended = None;
    if args.len() >= 6 {
        let mut start_at = 3;
        let mut min_idle_ms = 0i64;
        if is(args[3], "IDLE") {
            min_idle_ms = parse_integer(args[4])?;
            if args.len() < 8 {
                return Err(errors::SYNTAX.into());
            }
            start_at += 2;
        }
        let count = parse_integer(args[start_at + 2])?.max(0) as usize;
        let start = parse_range_bound(args[start_at], true).map_err(stream_error)?;
        let end = parse_range_bound(args[start_at + 1], false).map_err(stream_error)?;
        let consumer = args.get(start_at + 3).copied();
        extended = Some((start, end, count, consumer, min_idle_ms.max(0) as u64));
    }
    let now_ms = ctx.now_ms;
    let protocol_out = {
        let stream = stream_with_group(ctx, key, group)?;
        match extended {
            None => Pending::Summary(stream.pending_summary(group).map_err(stream_error)?),
            Some((start, end, count, consumer, min_idle_ms)) => Pending::Range(
                stream
                    .pending_range(group, start, end, count, consumer, min_idle_ms, now_ms)
                    .map_err(stream_error)?,
            ),
        }
    };
    let out = &mut *ctx.out;
    match protocol_out {
        Pending::Summary(summary) => {
            out.array_len(4);
            out.integer(summary.count as i64);
            match summary.bounds {
                None => {
                    out.null();
                    out.null();
                    out.null_array();
                }
                Some((first, last)) => {
                    reply_id(out, first);
                    reply_id(out, last);
                    out.array_len(summary.consumers.len());
                    for (name, pending) in &summary.consumers {
                        out.array_len(2);
                        out.bulk(name.as_bytes());
                        out.bulk(pending.to_string().as_bytes());
                    }
                }
            }
        }
        Pending::Range(infos) => {
            out.array_len(infos.len());
            for info in &infos {
                out.array_len(4);
                reply_id(out, info.id);
                out.bulk(info.consumer.as_bytes());
                out.integer(info.idle_ms as i64);
                out.integer(info.delivery_count as i64);
            }
        }
    }
    Ok(())
}

/// XPENDING's two forms.
enum Pending {
    Summary(ember_store::stream::PendingSummary),
    Range(Vec<ember_store::stream::PendingInfo>),
}

/// Claimed entries, or their IDs alone (JUSTID).
fn reply_claimed(ctx: &mut Ctx<'_>, claimed: &[StreamEntry], just_id: bool) {
    if just_id {
        ctx.out.array_len(claimed.len());
        for entry in claimed {
            reply_id(ctx.out, entry.id);
        }
    } else {
        reply_entries(ctx.out, claimed);
    }
}

/// A min-idle-time argument: `message` when it is no integer; negative counts as 0.
fn parse_min_idle(arg: &[u8], message: &'static str) -> Result<u64, CommandError> {
    let idle = ember_resp::parse_i64(arg).ok_or(CommandError::from(message))?;
    Ok(idle.max(0) as u64)
}

/// XCLAIM key group consumer min-idle-time id [id ...] [IDLE ms] [TIME unix-time-ms]
/// [RETRYCOUNT count] [FORCE] [JUSTID] [LASTID lastid]
pub fn xclaim(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> CommandResult {
    let (key, group, consumer) = (args[1], args[2], args[3]);
    stream_with_group(ctx, key, group)?;
    let min_idle_ms = parse_min_idle(args[4], "ERR Invalid min-idle-time argument for XCLAIM")?;
    let mut ids = Vec::new();
    let mut index = 5;
    while index < args.len() {
        match parse_strict_id(args[index]) {
            Ok(id) => ids.push(id),
            Err(_) => break,
        }
        index += 1;
    }
    let now_ms = ctx.now_ms;
    let mut options = ClaimOptions::default();
    while index < args.len() {
        let more = args.len() - 1 - index;
        let option = args[index];
        let number = |message: &'static str| {
            ember_resp::parse_i64(args[index + 1]).ok_or(CommandError::from(message))
        };
        if is(option, "FORCE") {
            options.force = true;
        } else if is(option, "JUSTID") {
            options.just_id = true;
        } else if is(option, "IDLE") && more > 0 {
            let idle = number("ERR Invalid IDLE option argument for XCLAIM")?;
            options.delivery_time_ms = Some((now_ms as i64).saturating_sub(idle));
            index += 1;
        } else if is(option, "TIME") && more > 0 {
            options.delivery_time_ms = Some(number("ERR Invalid TIME option argument for XCLAIM")?);
            index += 1;
        } else if is(option, "RETRYCOUNT") && more > 0 {
            let retry = number("ERR Invalid RETRYCOUNT option argument for XCLAIM")?;
            options.retry_count = Some(retry.max(0) as u64);
            index += 1;
        } else if is(option, "LASTID") && more > 0 {
            options.last_id = Some(parse_strict_id(args[index + 1])?);
            index += 1;
        } else {
            return Err(format!(
                "ERR Unrecognized XCLAIM option '{}'",
                String::from_utf8_lossy(option)
            )
            .into());
        }
        index += 1;
    }
    let just_id = options.just_id;
    // The delivery time the claim records (IDLE is relative to now; a future or negative time
    // becomes now), for the append-only file.
    let delivery_ms = match options.delivery_time_ms {
        Some(at) if at >= 0 && at as u64 <= now_ms => at as u64,
        _ => now_ms,
    };
    let (force, retry_count, last_id) = (options.force, options.retry_count, options.last_id);
    let had_consumer = has_consumer(ctx, key, group, consumer);
    let claimed = with_stream(ctx, key, |stream| {
        let claimed = stream
            .claim(group, consumer, min_idle_ms, &ids, options, now_ms)
            .map_err(stream_error)?;
        Ok((claimed, true))
    })
    .expect("the stream exists")?;
    note_consumer_created(ctx, key, group, consumer, had_consumer);
    if ctx.propagating() {
        let ids: Vec<StreamId> = claimed.iter().map(|entry| entry.id).collect();
        let claim = Claim {
            key,
            group,
            consumer,
            delivery_ms,
            just_id,
            force,
            retry_count,
            last_id,
        };
        propagate_claim(ctx, &claim, &ids, &[], had_consumer);
    }
    reply_claimed(ctx, &claimed, just_id);
    Ok(())
}

/// A claim as the append-only file records it.
struct Claim<'a> {
    key: &'a [u8],
    group: &'a [u8],
    consumer: &'a [u8],
    delivery_ms: u64,
    just_id: bool,
    force: bool,
    retry_count: Option<u64>,
    last_id: Option<StreamId>,
}

/// Logs what XCLAIM or XAUTOCLAIM did ([`crate::aof`]): an XCLAIM of exactly the IDs it took,
/// with no minimum idle time and the delivery time it recorded (its own depends on the clock),
/// an XACK of the pending IDs it dropped because their entries were deleted, and the consumer
/// it created when it took nothing.
fn propagate_claim(
    ctx: &mut Ctx<'_>,
    claim: &Claim<'_>,
    ids: &[StreamId],
    dropped: &[StreamId],
    had_consumer: bool,
) {
    ctx.propagation.suppress();
    let (key, group, consumer) = (claim.key, claim.group, claim.consumer);
    if !ids.is_empty() {
        let id_texts: Vec<String> = ids.iter().map(StreamId::to_string).collect();
        let delivery = claim.delivery_ms.to_string();
        let retry = claim.retry_count.map(|count| count.to_string());
        let last = claim.last_id.map(|id| id.to_string());
        let mut record: Vec<&[u8]> = vec![b"XCLAIM", key, group, consumer, b"0"];
        record.extend(id_texts.iter().map(String::as_bytes));
        record.extend_from_slice(&[b"TIME", delivery.as_bytes()]);
        if let Some(retry) = &retry {
            record.extend_from_slice(&[b"RETRYCOUNT", retry.as_bytes()]);
        }
        if claim.force {
            record.push(b"FORCE");
        }
        if claim.just_id {
            record.push(b"JUSTID");
        }
        if let Some(last) = &last {
            record.extend_from_slice(&[b"LASTID", last.as_bytes()]);
        }
        ctx.propagate(&record);
    } else if !had_consumer && has_consumer(ctx, key, group, consumer) {
        ctx.propagate(&[b"XGROUP", b"CREATECONSUMER", key, group, consumer]);
    }
    if !dropped.is_empty() {
        let id_texts: Vec<String> = dropped.iter().map(StreamId::to_string).collect();
        let mut record: Vec<&[u8]> = vec![b"XACK", key, group];
        record.extend(id_texts.iter().map(String::as_bytes));
        ctx.propagate(&record);
    }
}

/// XAUTOCLAIM's COUNT ceiling: Redis's `LONG_MAX / max(sizeof(streamID), attempts factor)`.
const AUTOCLAIM_COUNT_MAX: i64 = i64::MAX / 16;

/// XAUTOCLAIM key group consumer min-idle-time start [COUNT count] [JUSTID]
pub fn xautoclaim(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> CommandResult {
    let (key, group, consumer) = (args[1], args[2], args[3]);
    // Redis reads every argument before it looks the group up.
    let min_idle_ms = parse_min_idle(args[4], "ERR Invalid min-idle-time argument for XAUTOCLAIM")?;
    let start = parse_range_bound(args[5], true).map_err(stream_error)?;
    let (mut count, mut just_id) = (100usize, false);
    let mut index = 6;
    while index < args.len() {
        let more = args.len() - 1 - index;
        if is(args[index], "COUNT") && more > 0 {
            count = ember_resp::parse_i64(args[index + 1])
                .filter(|count| (1..=AUTOCLAIM_COUNT_MAX).contains(count))
                .ok_or(CommandError::from("ERR COUNT must be > 0"))? as usize;
            index += 1;
        } else if is(args[index], "JUSTID") {
            just_id = true;
        } else {
            return Err(errors::SYNTAX.into());
        }
        index += 1;
    }
    stream_with_group(ctx, key, group)?;
    let now_ms = ctx.now_ms;
    let had_consumer = has_consumer(ctx, key, group, consumer);
    let result = with_stream(ctx, key, |stream| {
        let result = stream
            .auto_claim(group, consumer, min_idle_ms, start, count, just_id, now_ms)
            .map_err(stream_error)?;
        Ok((result, true))
    })
    .expect("the stream exists")?;
    note_consumer_created(ctx, key, group, consumer, had_consumer);
    if ctx.propagating() {
        let ids: Vec<StreamId> = result.claimed.iter().map(|entry| entry.id).collect();
        let claim = Claim {
            key,
            group,
            consumer,
            delivery_ms: now_ms,
            just_id,
            force: false,
            retry_count: None,
            last_id: None,
        };
        propagate_claim(ctx, &claim, &ids, &result.deleted, had_consumer);
    }
    ctx.out.array_len(3);
    reply_id(ctx.out, result.next);
    reply_claimed(ctx, &result.claimed, just_id);
    ctx.out.array_len(result.deleted.len());
    for id in &result.deleted {
        reply_id(ctx.out, *id);
    }
    Ok(())
}
