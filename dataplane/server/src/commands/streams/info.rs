//! XINFO STREAM [FULL [COUNT count]], GROUPS, CONSUMERS, HELP: Redis 7.2's fields, a map in
//! RESP3 and a flat array in RESP2.

use ember_resp::ReplySink;
use ember_store::stream::NoGroupContext;
use ember_store::{StreamError, StreamId, StreamValue};

use super::groups::{reply_help, subcommand_arity_ok};
use super::{reply_entries, reply_entry, reply_id, stream_error, stream_of};
use crate::commands::{
    errors, is, parse_integer, read_for_reply, unknown_subcommand_message, CommandError,
    CommandResult, Ctx,
};

/// XINFO HELP's lines (Redis 7.0's).
const XINFO_HELP: &[&str] = &[
    "XINFO <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
    "CONSUMERS <key> <groupname>",
    "    Show consumers of <groupname>.",
    "GROUPS <key>",
    "    Show the stream consumer groups.",
    "STREAM <key> [FULL [COUNT <count>]",
    "    Show information about the stream.",
    "HELP",
    "    Prints this help.",
];

/// Entries XINFO STREAM FULL shows by default (Redis's).
const FULL_COUNT_DEFAULT: usize = 10;

/// A map of `len` pairs: RESP3's map, RESP2's flat array.
fn map_len(out: &mut ReplySink, len: usize) {
    out.map_len(len);
}

fn field(out: &mut ReplySink, name: &str) {
    out.bulk(name.as_bytes());
}

fn optional_integer(out: &mut ReplySink, value: Option<u64>) {
    match value {
        Some(value) => out.integer(value as i64),
        None => out.null(),
    }
}

/// XINFO STREAM | GROUPS | CONSUMERS | HELP
pub fn xinfo(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> CommandResult {
    let subcommand = args[1];
    let found = [("stream", -3), ("groups", 3), ("consumers", 4), ("help", 2)]
        .into_iter()
        .find(|(name, _)| is(subcommand, name));
    let Some((name, arity)) = found else {
        return Err(unknown_subcommand_message("xinfo", subcommand).into());
    };
    if !subcommand_arity_ok(arity, args.len()) {
        return Err(format!("ERR wrong number of arguments for 'xinfo|{name}' command").into());
    }
    if name == "help" {
        reply_help(ctx, XINFO_HELP);
        return Ok(());
    }
    let key = args[2];
    let now_ms = ctx.now_ms;
    let (entry, out) = read_for_reply(ctx, key);
    let stream = entry
        .map(stream_of)
        .transpose()?
        .ok_or(CommandError::from(errors::NO_SUCH_KEY))?;
    match name {
        "groups" => reply_groups(out, stream),
        "consumers" => {
            let group = args[3];
            let consumers = stream.consumer_infos(group, now_ms).map_err(|error| {
                if error == StreamError::NoGroup {
                    StreamError::no_group_reply(key, group, NoGroupContext::Group).into()
                } else {
                    stream_error(error)
                }
            })?;
            out.array_len(consumers.len());
            for consumer in &consumers {
                map_len(out, 4);
                field(out, "name");
                out.bulk(consumer.name.as_bytes());
                field(out, "pending");
                out.integer(consumer.pending as i64);
                field(out, "idle");
                out.integer(consumer.idle_ms as i64);
                field(out, "inactive");
                out.integer(consumer.inactive_ms.map_or(-1, |ms| ms as i64));
            }
        }
        _ => {
            let mut full = None;
            if args.len() > 3 {
                if !is(args[3], "FULL") {
                    return Err(errors::SYNTAX.into());
                }
                let mut count = FULL_COUNT_DEFAULT;
                if args.len() > 4 {
                    if args.len() != 6 || !is(args[4], "COUNT") {
                        return Err(errors::SYNTAX.into());
                    }
                    count = parse_integer(args[5])?.max(0) as usize;
                }
                full = Some(count);
            }
            match full {
                None => reply_stream(out, stream),
                Some(count) => reply_stream_full(out, stream, count),
            }
        }
    }
    Ok(())
}

/// The counters both STREAM forms open with.
fn reply_counters(out: &mut ReplySink, stream: &StreamValue) {
    let info = stream.info();
    field(out, "length");
    out.integer(info.length as i64);
    field(out, "radix-tree-keys");
    out.integer(info.blocks as i64);
    // Ember keeps blocks in a B-tree, not a radix tree: Redis's node count for as many keys
    // is about one more than the keys.
    field(out, "radix-tree-nodes");
    out.integer(info.blocks as i64 + 1);
    field(out, "last-generated-id");
    reply_id(out, info.last_generated_id);
    field(out, "max-deleted-entry-id");
    reply_id(out, info.max_deleted_entry_id);
    field(out, "entries-added");
    out.integer(info.entries_added as i64);
    field(out, "recorded-first-entry-id");
    reply_id(out, info.recorded_first_entry_id);
    // Redis 8.6's idempotency fields, for a stream that has used IDMP or XCFGSET: a stream
    // that has not answers as Redis 7 does.
    if let Some(idmp) = stream.idempotency() {
        let figures = [
            ("idmp-duration", idmp.duration_s as i64),
            ("idmp-maxsize", idmp.max_size as i64),
            ("pids-tracked", idmp.pids_tracked() as i64),
            ("iids-tracked", idmp.iids_tracked() as i64),
            ("iids-added", idmp.iids_added as i64),
            ("iids-duplicates", idmp.iids_duplicates as i64),
        ];
        for (name, value) in figures {
            field(out, name);
            out.integer(value);
        }
    }
}

/// The fields [`reply_counters`] adds for a stream's idempotency.
fn idempotency_fields(stream: &StreamValue) -> usize {
    if stream.idempotency().is_some() {
        6
    } else {
        0
    }
}

fn reply_stream(out: &mut ReplySink, stream: &StreamValue) {
    map_len(out, 10 + idempotency_fields(stream));
    reply_counters(out, stream);
    field(out, "groups");
    out.integer(stream.info().groups as i64);
    let edges = stream.edges();
    for (name, which) in [("first-entry", 0), ("last-entry", 1)] {
        field(out, name);
        match &edges {
            Some((first, last)) => {
                let entry = if which == 0 { first } else { last };
                reply_entry(out, entry.id, &entry.fields);
            }
            None => out.null(),
        }
    }
}

fn reply_groups(out: &mut ReplySink, stream: &StreamValue) {
    let groups = stream.group_infos();
    out.array_len(groups.len());
    for group in &groups {
        map_len(out, 6);
        field(out, "name");
        out.bulk(group.name.as_bytes());
        field(out, "consumers");
        out.integer(group.consumers as i64);
        field(out, "pending");
        out.integer(group.pending as i64);
        field(out, "last-delivered-id");
        reply_id(out, group.last_delivered_id);
        field(out, "entries-read");
        optional_integer(out, group.entries_read);
        field(out, "lag");
        optional_integer(out, group.lag);
    }
}

/// At most `count` items (0: all).
fn limited<T>(items: impl Iterator<Item = T>, count: usize) -> Vec<T> {
    if count == 0 {
        items.collect()
    } else {
        items.take(count).collect()
    }
}

fn reply_stream_full(out: &mut ReplySink, stream: &StreamValue, count: usize) {
    map_len(out, 9 + idempotency_fields(stream));
    reply_counters(out, stream);
    field(out, "entries");
    reply_entries(out, &stream.range(StreamId::MIN, StreamId::MAX, count));
    field(out, "groups");
    let infos = stream.group_infos();
    out.array_len(infos.len());
    for (info, (_, group)) in infos.iter().zip(stream.groups()) {
        map_len(out, 7);
        field(out, "name");
        out.bulk(info.name.as_bytes());
        field(out, "last-delivered-id");
        reply_id(out, info.last_delivered_id);
        field(out, "entries-read");
        optional_integer(out, info.entries_read);
        field(out, "lag");
        optional_integer(out, info.lag);
        field(out, "pel-count");
        out.integer(group.pending.len() as i64);
        field(out, "pending");
        let pending = limited(group.pending.iter(), count);
        out.array_len(pending.len());
        for (id, entry) in pending {
            out.array_len(4);
            reply_id(out, *id);
            out.bulk(entry.consumer.as_bytes());
            out.integer(entry.delivery_time_ms as i64);
            out.integer(entry.delivery_count as i64);
        }
        field(out, "consumers");
        out.array_len(group.consumers.len());
        for (name, consumer) in &group.consumers {
            map_len(out, 5);
            field(out, "name");
            out.bulk(name.as_bytes());
            field(out, "seen-time");
            out.integer(consumer.seen_time_ms as i64);
            field(out, "active-time");
            out.integer(consumer.active_time_ms.map_or(-1, |ms| ms as i64));
            field(out, "pel-count");
            out.integer(consumer.pending.len() as i64);
            field(out, "pending");
            let pending = limited(consumer.pending.iter(), count);
            out.array_len(pending.len());
            for id in pending {
                out.array_len(3);
                reply_id(out, *id);
                let entry = &group.pending[id];
                out.integer(entry.delivery_time_ms as i64);
                out.integer(entry.delivery_count as i64);
            }
        }
    }
}
