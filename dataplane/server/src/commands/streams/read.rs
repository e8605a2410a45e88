//! XREAD and XREADGROUP. What is there now is served by the keyspace command (on every shard
//! of its keys); with BLOCK and nothing to serve, the executor runs the same request as the
//! blocking command [`XREAD`] / [`XREADGROUP`] (see [`blocking_form`]), which waits on the
//! keys' shards for entries after the IDs of the time it blocked.

use std::time::Duration;

use ember_resp::{Protocol, ReplySink};
use ember_store::stream::{GroupRead, NoGroupContext, ReadFrom};
use ember_store::{Change, Keyspace, StreamError, StreamId, StreamValue, Value};

use super::groups::{has_consumer, note_consumer_created};
use super::{parse_strict_id, reply_entry, reply_id, stream_error};
use crate::commands::blocking::{nil_array, BlockingCommand, Parsed, Taken};
use crate::commands::{errors, is, parse_integer, read_entry, CommandError, CommandResult, Ctx};
use crate::shard::PackedArgs;

/// A parsed XREAD / XREADGROUP.
#[derive(Clone, Copy)]
struct ReadRequest<'a> {
    count: usize,
    /// BLOCK's milliseconds (0: for ever).
    block_ms: Option<u64>,
    /// Where the keys start.
    keys_at: usize,
    group: Option<(&'a [u8], &'a [u8])>,
    no_ack: bool,
    keys: &'a [&'a [u8]],
    ids: &'a [&'a [u8]],
}

/// Redis's `xreadCommand` option loop, then its checks, in its order.
fn parse<'a>(args: &'a [&'a [u8]], group_form: bool) -> Result<ReadRequest<'a>, CommandError> {
    let name = if group_form { "XREADGROUP" } else { "XREAD" };
    let mut request = ReadRequest {
        count: 0,
        block_ms: None,
        keys_at: 0,
        group: None,
        no_ack: false,
        keys: &[],
        ids: &[],
    };
    let mut streams_at = None;
    let mut index = 1;
    while index < args.len() {
        let more = args.len() - index - 1;
        let option = args[index];
        if is(option, "BLOCK") && more > 0 {
            let timeout = ember_resp::parse_i64(args[index + 1]).ok_or(CommandError::from(
                "ERR timeout is not an integer or out of range",
            ))?;
            if timeout < 0 {
                return Err("ERR timeout is negative".into());
            }
            request.block_ms = Some(timeout as u64);
            index += 1;
        } else if is(option, "COUNT") && more > 0 {
            request.count = parse_integer(args[index + 1])?.max(0) as usize;
            index += 1;
        } else if is(option, "STREAMS") && more > 0 {
            let rest = &args[index + 1..];
            if rest.len() % 2 != 0 {
                let symbol = if group_form { '>' } else { '$' };
                return Err(format!(
                    "ERR Unbalanced {name} list of streams: for each stream key an ID or '{symbol}' must be specified."
                )
                .into());
            }
            streams_at = Some(index + 1);
            break;
        } else if is(option, "GROUP") && more >= 2 {
            if !group_form {
                return Err("ERR The GROUP option is only supported by XREADGROUP. You called XREAD instead.".into());
            }
            request.group = Some((args[index + 1], args[index + 2]));
            index += 2;
        } else if is(option, "NOACK") {
            if !group_form {
                return Err("ERR The NOACK option is only supported by XREADGROUP. You called XREAD instead.".into());
            }
            request.no_ack = true;
        } else {
            return Err(errors::SYNTAX.into());
        }
        index += 1;
    }
    let Some(streams_at) = streams_at else {
        return Err(errors::SYNTAX.into());
    };
    if group_form && request.group.is_none() {
        return Err("ERR Missing GROUP option for XREADGROUP".into());
    }
    let half = (args.len() - streams_at) / 2;
    request.keys_at = streams_at;
    request.keys = &args[streams_at..streams_at + half];
    request.ids = &args[streams_at + half..];
    Ok(request)
}

/// Where one stream's read starts: entries after `after`, or a group's `>` / history.
#[derive(Clone, Copy)]
enum Start {
    After(StreamId),
    Group(ReadFrom),
}

/// Checks every key and ID in Redis's order (type, group, then the ID) and resolves `$`, `+`
/// and `>`.
fn resolve(ctx: &mut Ctx<'_>, request: &ReadRequest<'_>) -> Result<Vec<Start>, CommandError> {
    let mut starts = Vec::with_capacity(request.keys.len());
    for (key, id) in request.keys.iter().zip(request.ids) {
        let stream = match read_entry(ctx, key).map(|entry| &entry.value) {
            None => None,
            Some(Value::Stream(stream)) => Some(&**stream),
            Some(_) => return Err(errors::WRONGTYPE.into()),
        };
        if let Some((group, _)) = request.group {
            if stream.and_then(|stream| stream.group(group)).is_none() {
                return Err(
                    StreamError::no_group_reply(key, group, NoGroupContext::ReadGroup).into(),
                );
            }
        }
        let start = match *id {
            b"$" if request.group.is_some() => return Err("ERR The $ ID is meaningless in the context of XREADGROUP: you want to read the history of this consumer by specifying a proper ID, or use the > ID to get new messages. The $ ID would just return an empty result set.".into()),
            b"$" => Start::After(stream.map_or(StreamId::MIN, StreamValue::last_id)),
            // Redis 7.4's `+`: the last entry.
            b"+" if request.group.is_none() => Start::After(
                stream
                    .and_then(|stream| stream.edges())
                    .and_then(|(_, last)| last.id.previous())
                    .unwrap_or(StreamId::MAX),
            ),
            b">" if request.group.is_none() => return Err("ERR The > ID can be specified only when calling XREADGROUP using the GROUP <group> <consumer> option.".into()),
            b">" => Start::Group(ReadFrom::New),
            _ if request.group.is_some() => Start::Group(ReadFrom::History(parse_strict_id(id)?)),
            _ => Start::After(parse_strict_id(id)?),
        };
        starts.push(start);
    }
    Ok(starts)
}

/// What one stream gave.
enum Served {
    Entries(Vec<(StreamId, Vec<Vec<u8>>)>),
    Group(Vec<GroupRead>),
}

/// Serves one stream now, or None when Redis would not (nothing new).
fn serve(
    keyspace: &mut Keyspace,
    ctx_db: usize,
    now_ms: u64,
    key: &[u8],
    start: Start,
    request: &ReadRequest<'_>,
) -> Result<Option<Served>, CommandError> {
    let Some(entry) = keyspace.get_mut(ctx_db, key, now_ms) else {
        return Ok(None);
    };
    let Value::Stream(stream) = &mut entry.value else {
        return Err(errors::WRONGTYPE.into());
    };
    let last_valid = stream.edges().map(|(_, last)| last.id);
    match start {
        Start::After(after) => {
            if last_valid.is_none_or(|last| last <= after) {
                return Ok(None);
            }
            let Some(first) = after.next() else {
                return Ok(None);
            };
            let entries = stream.range(first, StreamId::MAX, request.count);
            Ok(Some(Served::Entries(
                entries.into_iter().map(|e| (e.id, e.fields)).collect(),
            )))
        }
        Start::Group(from) => {
            let (group, consumer) = request.group.expect("group reads have a group");
            if from == ReadFrom::New {
                let group_last = stream.group(group).map(|g| g.last_id);
                if last_valid.is_none_or(|last| Some(last) <= group_last) {
                    return Ok(None);
                }
            }
            let reads = stream
                .read_group(group, consumer, from, request.count, request.no_ack, now_ms)
                .map_err(stream_error)?;
            Ok(Some(Served::Group(reads)))
        }
    }
}

fn generic(ctx: &mut Ctx<'_>, args: &[&[u8]], group_form: bool) -> CommandResult {
    let request = parse(args, group_form)?;
    let starts = resolve(ctx, &request)?;
    let (db, now_ms) = (ctx.db, ctx.now_ms);
    let mut served = Vec::new();
    for (key, start) in request.keys.iter().zip(starts) {
        let had_consumer = request
            .group
            .is_none_or(|(group, consumer)| has_consumer(ctx, key, group, consumer));
        if let Some(found) = serve(ctx.keyspace, db, now_ms, key, start, &request)? {
            if let Some((group, consumer)) = request.group {
                note_consumer_created(ctx, key, group, consumer, had_consumer);
            }
            served.push((*key, found));
        }
    }
    if request.group.is_some() && !served.is_empty() {
        // Group reads change the stream (the PEL, the consumer's times).
        for (key, _) in &served {
            ctx.keyspace.update(db, key, now_ms, |_| {
                Ok::<_, CommandError>(((), ember_store::Change::Modified))
            });
        }
    }
    if served.is_empty() {
        ctx.out.null_array();
        return Ok(());
    }
    reply_served(ctx.out, ctx.protocol, served);
    Ok(())
}

/// Writes what each stream served: `[[key, entries], ...]` (a map in RESP3).
fn reply_served(out: &mut ReplySink, protocol: Protocol, served: Vec<(&[u8], Served)>) {
    match protocol {
        Protocol::Resp2 => out.array_len(served.len()),
        Protocol::Resp3 => out.map_len(served.len()),
    }
    for (key, found) in served {
        if protocol == Protocol::Resp2 {
            out.array_len(2);
        }
        out.bulk(key);
        match found {
            Served::Entries(entries) => {
                out.array_len(entries.len());
                for (id, fields) in &entries {
                    reply_entry(out, *id, fields);
                }
            }
            Served::Group(reads) => {
                out.array_len(reads.len());
                for read in &reads {
                    match &read.fields {
                        Some(fields) => reply_entry(out, read.id, fields),
                        None => {
                            out.array_len(2);
                            reply_id(out, read.id);
                            out.null_array();
                        }
                    }
                }
            }
        }
    }
}

/// XREAD [COUNT count] [BLOCK milliseconds] STREAMS key [key ...] id [id ...]
pub fn xread(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> CommandResult {
    generic(ctx, args, false)
}

/// XREADGROUP GROUP group consumer [COUNT count] [BLOCK milliseconds] [NOACK] STREAMS key
/// [key ...] id [id ...]
pub fn xreadgroup(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> CommandResult {
    generic(ctx, args, true)
}

/// XREAD BLOCK, once the keyspace command found nothing to serve.
pub static XREAD: BlockingCommand = BlockingCommand {
    parse: parse_blocking_xread,
    serve: serve_blocked,
    serve_pop_only: None,
    prepare: Some(prepare_blocked),
    nil: nil_array,
    nil_without_blocking: nil_array,
};

/// XREADGROUP BLOCK, once the keyspace command found nothing to serve.
pub static XREADGROUP: BlockingCommand = BlockingCommand {
    parse: parse_blocking_xreadgroup,
    serve: serve_blocked,
    serve_pop_only: None,
    prepare: Some(prepare_blocked),
    nil: nil_array,
    nil_without_blocking: nil_array,
};

/// The blocking form of an XREAD / XREADGROUP request that has a BLOCK option and reads only
/// what is to come, or None. An XREADGROUP that reads a consumer's history (an ID other than
/// `>`) never blocks, as in Redis.
pub fn blocking_form(args: &[&[u8]]) -> Option<&'static BlockingCommand> {
    let group_form = is(args[0], "XREADGROUP");
    let request = parse(args, group_form).ok()?;
    request.block_ms?;
    if group_form {
        if request.ids.iter().any(|id| *id != b">") {
            return None;
        }
        return Some(&XREADGROUP);
    }
    Some(&XREAD)
}

fn parse_blocking(args: &[&[u8]], group_form: bool) -> Result<Parsed, CommandError> {
    let request = parse(args, group_form)?;
    let milliseconds = request.block_ms.unwrap_or(0);
    Ok(Parsed {
        keys: (request.keys_at..request.keys_at + request.keys.len()).collect(),
        timeout: (milliseconds > 0).then(|| Duration::from_millis(milliseconds)),
        push_to: None,
    })
}

fn parse_blocking_xread(args: &[&[u8]]) -> Result<Parsed, CommandError> {
    parse_blocking(args, false)
}

fn parse_blocking_xreadgroup(args: &[&[u8]]) -> Result<Parsed, CommandError> {
    parse_blocking(args, true)
}

/// The first attempt on a key's shard: checks the keys that live here as the keyspace command
/// does (WRONGTYPE, NOGROUP, the IDs) and turns XREAD's `$` and `+` into IDs, so the waiter is
/// served by the entries added after it blocked.
fn prepare_blocked(
    ctx: &mut Ctx<'_>,
    args: &[&[u8]],
    keys_here: &[Vec<u8>],
) -> Result<Option<PackedArgs>, CommandError> {
    let group_form = is(args[0], "XREADGROUP");
    let request = parse(args, group_form)?;
    let ids_at = request.keys_at + request.keys.len();
    let mut resolved: Vec<Option<String>> = vec![None; args.len()];
    for (index, (key, id)) in request.keys.iter().zip(request.ids).enumerate() {
        if !keys_here.iter().any(|here| here.as_slice() == *key) {
            continue;
        }
        let one = ReadRequest {
            keys: std::slice::from_ref(key),
            ids: std::slice::from_ref(id),
            ..request
        };
        let starts = resolve(ctx, &one)?;
        if let (false, b"$" | b"+", Start::After(after)) = (group_form, *id, starts[0]) {
            resolved[ids_at + index] = Some(after.to_string());
        }
    }
    if resolved.iter().all(Option::is_none) {
        return Ok(None);
    }
    let mut packed = PackedArgs::default();
    for (arg, replacement) in args.iter().zip(&resolved) {
        match replacement {
            Some(id) => packed.push(id.as_bytes()),
            None => packed.push(arg),
        }
    }
    Ok(Some(packed))
}

/// Serves a blocked XREAD / XREADGROUP when `key` has entries after the waiter's ID (a group's
/// last delivered ID for `>`): like Redis 7.2, which runs the command again, every stream of
/// the request that lives here and has something is in the reply. A blocked XREADGROUP ends
/// with an error when its stream or its group is gone, as Redis 7.0 does.
fn serve_blocked(
    ctx: &mut Ctx<'_>,
    args: &[&[u8]],
    key: &[u8],
) -> Result<Option<Taken>, CommandError> {
    let group_form = is(args[0], "XREADGROUP");
    let request = parse(args, group_form)?;
    let (db, now_ms) = (ctx.db, ctx.now_ms);
    if let Some((group, _)) = request.group {
        match ctx.keyspace.peek(db, key, now_ms).map(|entry| &entry.value) {
            Some(Value::Stream(stream)) if stream.group(group).is_some() => {}
            Some(Value::Stream(_)) => {
                ctx.out.error(
                    "NOGROUP the consumer group this client was blocked on no longer exists",
                );
                return Ok(Some(Taken { undo: None }));
            }
            _ => {
                ctx.out.error("UNBLOCKED the stream key no longer exists");
                return Ok(Some(Taken { undo: None }));
            }
        }
    }
    let mut served = Vec::new();
    for (each, id) in request.keys.iter().zip(request.ids) {
        // Streams that live on other shards are not in this keyspace; XREAD keeps waiting
        // while a key is missing or holds another type.
        let start = match ctx
            .keyspace
            .peek(db, each, now_ms)
            .map(|entry| &entry.value)
        {
            Some(Value::Stream(stream)) => match request.group {
                Some((group, _)) if stream.group(group).is_some() => Start::Group(ReadFrom::New),
                Some(_) => continue,
                None => match parse_strict_id(id) {
                    Ok(after) => Start::After(after),
                    Err(_) => continue,
                },
            },
            _ => continue,
        };
        let had_consumer = request
            .group
            .is_none_or(|(group, consumer)| has_consumer(ctx, each, group, consumer));
        let Some(found) = serve(ctx.keyspace, db, now_ms, each, start, &request)? else {
            continue;
        };
        if let Some((group, consumer)) = request.group {
            note_consumer_created(ctx, each, group, consumer, had_consumer);
            ctx.keyspace.update(db, each, now_ms, |_| {
                Ok::<_, CommandError>(((), Change::Modified))
            });
        }
        served.push((*each, found));
    }
    if served.is_empty() {
        return Ok(None);
    }
    reply_served(ctx.out, ctx.protocol, served);
    // A read takes nothing that could be given back; a group read's deliveries stay pending.
    Ok(Some(Taken { undo: None }))
}
