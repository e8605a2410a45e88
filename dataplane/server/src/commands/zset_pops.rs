//! Sorted-set pops: ZPOPMIN, ZPOPMAX, ZMPOP, and their blocking forms BZPOPMIN, BZPOPMAX, BZMPOP
//! (declared in the list family's table, whose blocking facility they share).
//!
//! Scores reply as doubles (bulk strings in RESP2). A popped-empty sorted set is deleted.

use ember_resp::{Protocol, ReplySink};
use ember_store::{Change, Value};

use super::blocking::{nil_array, BlockingCommand, Parsed, Taken};
use super::lists::blocking::{parse_keys_then_timeout, parse_timeout_then_numkeys};
use super::lists::{parse_mpop, parse_pop_count};
use super::notify::{self, notify_change};
use super::{errors, is, CommandError, CommandResult, Ctx};
use crate::shard::PackedArgs;

/// Which end of the order a pop takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Side {
    /// Lowest scores first.
    Min,
    /// Highest scores first.
    Max,
}

fn parse_side(word: &[u8]) -> Result<Side, CommandError> {
    if is(word, "MIN") {
        Ok(Side::Min)
    } else if is(word, "MAX") {
        Ok(Side::Max)
    } else {
        Err(errors::SYNTAX.into())
    }
}

/// Pops up to `count` members of the sorted set at `key`; `None` when the key is absent.
fn pop_members(
    ctx: &mut Ctx<'_>,
    key: &[u8],
    side: Side,
    count: usize,
) -> Result<Option<Vec<(Vec<u8>, f64)>>, CommandError> {
    let (db, now_ms) = (ctx.db, ctx.now_ms);
    let popped = ctx
        .keyspace
        .update(db, key, now_ms, |value| {
            let Value::ZSet(zset) = value else {
                return Err(CommandError::from(errors::WRONGTYPE));
            };
            if count == 0 {
                return Ok((Vec::new(), Change::None));
            }
            let last = i64::try_from(count - 1).unwrap_or(i64::MAX);
            let popped: Vec<(Vec<u8>, f64)> = zset
                .range_by_rank(0, last, side == Side::Max)
                .into_iter()
                .map(|(member, score)| (member.to_vec(), score))
                .collect();
            for (member, _) in &popped {
                zset.remove(member);
            }
            let change = if zset.is_empty() {
                Change::Emptied
            } else if popped.is_empty() {
                Change::None
            } else {
                Change::Modified
            };
            Ok((popped, change))
        })
        .transpose()?;
    if popped.as_ref().is_some_and(|popped| !popped.is_empty()) {
        let event = match side {
            Side::Min => "zpopmin",
            Side::Max => "zpopmax",
        };
        notify_change(ctx, notify::ZSET, event, key);
    }
    Ok(popped)
}

/// `[member, score]` pairs: flat in RESP2 (and for ZPOPMIN without a count), nested in RESP3.
fn reply_pairs(out: &mut ReplySink, members: &[(Vec<u8>, f64)], nested: bool) {
    if nested {
        out.array_len(members.len());
        for (member, score) in members {
            out.array_len(2);
            out.bulk(member);
            out.double(*score);
        }
    } else {
        out.array_len(members.len() * 2);
        for (member, score) in members {
            out.bulk(member);
            out.double(*score);
        }
    }
}

fn pop_generic(ctx: &mut Ctx<'_>, args: &[&[u8]], side: Side) -> CommandResult {
    if args.len() > 3 {
        return Err(errors::SYNTAX.into());
    }
    let count = args.get(2).map(|arg| parse_pop_count(arg)).transpose()?;
    let popped = pop_members(ctx, args[1], side, count.unwrap_or(1))?.unwrap_or_default();
    let nested = count.is_some() && ctx.protocol == Protocol::Resp3;
    reply_pairs(ctx.out, &popped, nested);
    Ok(())
}

/// ZPOPMIN key [count]
pub fn zpopmin(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> CommandResult {
    pop_generic(ctx, args, Side::Min)
}

/// ZPOPMAX key [count]
pub fn zpopmax(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> CommandResult {
    pop_generic(ctx, args, Side::Max)
}

fn check_side(word: &[u8]) -> Result<(), CommandError> {
    parse_side(word).map(|_| ())
}

/// Writes `[key, [[member, score] ...]]`, ZMPOP's and BZMPOP's answer.
fn reply_key_and_pairs(out: &mut ReplySink, key: &[u8], members: &[(Vec<u8>, f64)]) {
    out.array_len(2);
    out.bulk(key);
    reply_pairs(out, members, true);
}

/// ZMPOP numkeys key [key ...] MIN|MAX [COUNT count]
pub fn zmpop(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> CommandResult {
    let (keys, word, count) = parse_mpop(args, 1, check_side)?;
    let side = parse_side(word)?;
    for key in keys {
        if let Some(popped) = pop_members(ctx, key, side, count)? {
            reply_key_and_pairs(ctx.out, key, &popped);
            return Ok(());
        }
    }
    ctx.out.null_array();
    Ok(())
}

/// The request that adds popped members back with their scores.
fn add_back_request(key: &[u8], members: &[(Vec<u8>, f64)]) -> PackedArgs {
    let mut undo = PackedArgs::default();
    undo.push(b"ZADD");
    undo.push(key);
    for (member, score) in members {
        // Rust's shortest round-trip form reads back as the same double ("inf" included).
        undo.push(score.to_string().as_bytes());
        undo.push(member);
    }
    undo
}

/// BZPOPMIN key [key ...] timeout
pub static BZPOPMIN: BlockingCommand = BlockingCommand {
    parse: parse_keys_then_timeout,
    serve: serve_min,
    serve_pop_only: None,
    prepare: None,
    nil: nil_array,
    nil_without_blocking: nil_array,
};

/// BZPOPMAX key [key ...] timeout
pub static BZPOPMAX: BlockingCommand = BlockingCommand {
    parse: parse_keys_then_timeout,
    serve: serve_max,
    serve_pop_only: None,
    prepare: None,
    nil: nil_array,
    nil_without_blocking: nil_array,
};

/// BZMPOP timeout numkeys key [key ...] MIN|MAX [COUNT count]
pub static BZMPOP: BlockingCommand = BlockingCommand {
    parse: parse_bzmpop,
    serve: serve_bzmpop,
    serve_pop_only: None,
    prepare: None,
    nil: nil_array,
    nil_without_blocking: nil_array,
};

fn serve_one_member(
    ctx: &mut Ctx<'_>,
    key: &[u8],
    side: Side,
) -> Result<Option<Taken>, CommandError> {
    let Some(popped) = pop_members(ctx, key, side, 1)? else {
        return Ok(None);
    };
    let (member, score) = &popped[0];
    ctx.out.array_len(3);
    ctx.out.bulk(key);
    ctx.out.bulk(member);
    ctx.out.double(*score);
    Ok(Some(Taken {
        undo: Some(add_back_request(key, &popped)),
    }))
}

fn serve_min(
    ctx: &mut Ctx<'_>,
    _args: &[&[u8]],
    key: &[u8],
) -> Result<Option<Taken>, CommandError> {
    serve_one_member(ctx, key, Side::Min)
}

fn serve_max(
    ctx: &mut Ctx<'_>,
    _args: &[&[u8]],
    key: &[u8],
) -> Result<Option<Taken>, CommandError> {
    serve_one_member(ctx, key, Side::Max)
}

fn parse_bzmpop(args: &[&[u8]]) -> Result<Parsed, CommandError> {
    parse_timeout_then_numkeys(args, check_side)
}

fn serve_bzmpop(
    ctx: &mut Ctx<'_>,
    args: &[&[u8]],
    key: &[u8],
) -> Result<Option<Taken>, CommandError> {
    let (_, word, count) = parse_mpop(args, 2, check_side)?;
    let side = parse_side(word)?;
    let Some(popped) = pop_members(ctx, key, side, count)? else {
        return Ok(None);
    };
    reply_key_and_pairs(ctx.out, key, &popped);
    Ok(Some(Taken {
        undo: Some(add_back_request(key, &popped)),
    }))
}
