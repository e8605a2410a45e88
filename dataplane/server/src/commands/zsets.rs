//! Sorted-set commands: ZADD, ZINCRBY, ZREM, ZSCORE, ZMSCORE, ZCARD, ZRANK, ZREVRANK, ZCOUNT,
//! ZLEXCOUNT, and ZRANGE with its older forms (ZREVRANGE, ZRANGEBYSCORE, ZREVRANGEBYSCORE,
//! ZRANGEBYLEX, ZREVRANGEBYLEX) in the core table; in this file's table ZRANGESTORE and the
//! range removals (`ranges`), the algebra (`algebra`), ZRANDMEMBER and ZSCAN (`random`).
//!
//! Scores reply as doubles: `,` in RESP3, bulk strings in RESP2, in the shortest form that reads
//! back (Redis 7.2's). A sorted-set key never holds an empty set: removing the last member
//! deletes the key, as in Redis.

mod algebra;
mod random;
mod ranges;
mod score;

use ember_resp::Protocol;

use ember_resp::ReplySink;
use ember_store::split::SplitBytes;
use ember_store::zset::{AddOptions, AddOutcome, LexBound, Limit, ScoreBound};
use ember_store::{Change, Entry, SortedSet, Value};

use self::score::{
    parse_lex_bound, parse_score, parse_score_bound, NOT_FLOAT_RANGE, NOT_LEX_RANGE,
};
use super::key_finders::{count_then_keys, destination_count_then_keys};
use super::notify::{self, notify};
use super::{
    bulk_split, command, errors, is, movable, parse_integer, read_entry, read_for_reply, split,
    CommandError, CommandResult, CommandSpec, Ctx, Ks, Split, NO_KEYS, ONE_KEY, R, TWO_KEYS, W,
    W_OOM,
};

/// This family's commands beyond the core table, in COMMAND's order.
#[rustfmt::skip]
pub static COMMANDS: &[CommandSpec] = &[
    split(command("zrangestore", -5, W_OOM, TWO_KEYS, "sorted_set", "6.2.0", "Stores a range of members from sorted set in a key.", Ks(ranges::zrangestore)), Split::Scratch),
    command("zremrangebyrank", 4, W, ONE_KEY, "sorted_set", "2.0.0", "Removes members in a sorted set within a range of indexes. Deletes the sorted set if all members were removed.", Ks(ranges::zremrangebyrank)),
    command("zremrangebyscore", 4, W, ONE_KEY, "sorted_set", "1.2.0", "Removes members in a sorted set within a range of scores. Deletes the sorted set if all members were removed.", Ks(ranges::zremrangebyscore)),
    command("zremrangebylex", 4, W, ONE_KEY, "sorted_set", "2.8.9", "Removes members in a sorted set within a lexicographical range. Deletes the sorted set if all members were removed.", Ks(ranges::zremrangebylex)),
    split(movable(command("zunion", -3, R, NO_KEYS, "sorted_set", "6.2.0", "Returns the union of multiple sorted sets.", Ks(algebra::zunion)), count_then_keys), Split::Scratch),
    split(movable(command("zinter", -3, R, NO_KEYS, "sorted_set", "6.2.0", "Returns the intersect of multiple sorted sets.", Ks(algebra::zinter)), count_then_keys), Split::Scratch),
    split(movable(command("zdiff", -3, R, NO_KEYS, "sorted_set", "6.2.0", "Returns the difference between multiple sorted sets.", Ks(algebra::zdiff)), count_then_keys), Split::Scratch),
    split(movable(command("zunionstore", -4, W_OOM, ONE_KEY, "sorted_set", "2.0.0", "Stores the union of multiple sorted sets in a key.", Ks(algebra::zunionstore)), destination_count_then_keys), Split::Scratch),
    split(movable(command("zinterstore", -4, W_OOM, ONE_KEY, "sorted_set", "2.0.0", "Stores the intersect of multiple sorted sets in a key.", Ks(algebra::zinterstore)), destination_count_then_keys), Split::Scratch),
    split(movable(command("zdiffstore", -4, W_OOM, ONE_KEY, "sorted_set", "6.2.0", "Stores the difference of multiple sorted sets in a key.", Ks(algebra::zdiffstore)), destination_count_then_keys), Split::Scratch),
    split(movable(command("zintercard", -3, R, NO_KEYS, "sorted_set", "7.0.0", "Returns the number of members of the intersect of multiple sorted sets.", Ks(algebra::zintercard)), count_then_keys), Split::Scratch),
    command("zrandmember", -2, R, ONE_KEY, "sorted_set", "6.2.0", "Returns one or more random members from a sorted set.", Ks(random::zrandmember)),
    command("zscan", -3, R, ONE_KEY, "sorted_set", "2.8.0", "Iterates over members and scores of a sorted set.", Ks(random::zscan)),
];

/// ZADD INCR and ZINCRBY when the new score would be NaN (+inf plus -inf).
const NAN_RESULT: &str = "ERR resulting score is not a number (NaN)";

/// The sorted set of `entry`, or WRONGTYPE.
fn zset_of(entry: &Entry) -> Result<&SortedSet, CommandError> {
    match &entry.value {
        Value::ZSet(zset) => Ok(zset),
        _ => Err(errors::WRONGTYPE.into()),
    }
}

/// The sorted set at `key` for a read command (hit or miss counted), or WRONGTYPE.
fn read_zset<'a>(ctx: &'a mut Ctx<'_>, key: &[u8]) -> Result<Option<&'a SortedSet>, CommandError> {
    read_entry(ctx, key).map(zset_of).transpose()
}

/// ZADD's totals over its pairs.
#[derive(Default)]
struct Totals {
    added: usize,
    updated: usize,
    /// Pairs not skipped by NX, XX, GT or LT.
    processed: usize,
    /// The score of the last processed pair (ZADD INCR's reply).
    score: f64,
}

/// Adds `pairs` (already parsed scores with their members) to `zset`.
fn add_pairs(
    zset: &mut SortedSet,
    pairs: &[(f64, &[u8])],
    options: AddOptions,
) -> Result<Totals, CommandError> {
    let mut totals = Totals::default();
    for &(score, member) in pairs {
        let outcome = zset
            .add(member, score, options)
            .map_err(|_| CommandError::from(NAN_RESULT))?;
        match outcome {
            AddOutcome::Added(score) => {
                totals.added += 1;
                totals.processed += 1;
                totals.score = score;
            }
            AddOutcome::Updated(score) => {
                totals.updated += 1;
                totals.processed += 1;
                totals.score = score;
            }
            AddOutcome::Unchanged(score) => {
                totals.processed += 1;
                totals.score = score;
            }
            AddOutcome::Skipped => {}
        }
    }
    Ok(totals)
}

/// ZADD and ZINCRBY once the options are read: `arguments` is score, member, score, member...
fn add_generic(
    ctx: &mut Ctx<'_>,
    key: &[u8],
    options: AddOptions,
    changed: bool,
    arguments: &[&[u8]],
) -> CommandResult {
    // Every score is checked before anything changes, so a bad one leaves the set as it was.
    let pairs: Vec<(f64, &[u8])> = arguments
        .chunks_exact(2)
        .map(|pair| Ok((parse_score(pair[0])?, pair[1])))
        .collect::<Result<_, CommandError>>()?;
    let (db, now_ms) = (ctx.db, ctx.now_ms);
    let updated = ctx.keyspace.update(db, key, now_ms, |value| {
        let Value::ZSet(zset) = value else {
            return Err(CommandError::from(errors::WRONGTYPE));
        };
        let totals = add_pairs(zset, &pairs, options)?;
        let change = if totals.added + totals.updated > 0 {
            Change::Modified
        } else {
            Change::None
        };
        Ok((totals, change))
    });
    let totals = match updated {
        Some(totals) => totals?,
        None if options.xx => Totals::default(),
        None => {
            let member_len_max = pairs.iter().map(|(_, m)| m.len()).max().unwrap_or(0);
            let mut zset = SortedSet::for_members(pairs.len(), member_len_max);
            let totals = add_pairs(&mut zset, &pairs, options)?;
            if !zset.is_empty() {
                ctx.keyspace
                    .insert(db, key, Value::ZSet(zset), None, now_ms);
            }
            totals
        }
    };
    if totals.added + totals.updated > 0 {
        let event = if options.incr { "zincr" } else { "zadd" };
        notify(ctx, notify::ZSET, event, key);
    }
    if options.incr {
        if totals.processed > 0 {
            ctx.out.double(totals.score);
        } else {
            ctx.out.null();
        }
    } else {
        let count = totals.added + if changed { totals.updated } else { 0 };
        ctx.out.integer(count as i64);
    }
    Ok(())
}

/// ZADD key [NX | XX] [GT | LT] [CH] [INCR] score member [score member ...]
pub fn zadd(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> CommandResult {
    let mut options = AddOptions::default();
    let mut changed = false;
    let mut first_score = 2;
    while let Some(option) = args.get(first_score) {
        if is(option, "NX") {
            options.nx = true;
        } else if is(option, "XX") {
            options.xx = true;
        } else if is(option, "CH") {
            changed = true;
        } else if is(option, "INCR") {
            options.incr = true;
        } else if is(option, "GT") {
            options.gt = true;
        } else if is(option, "LT") {
            options.lt = true;
        } else {
            break;
        }
        first_score += 1;
    }
    let arguments = &args[first_score..];
    if arguments.is_empty() || arguments.len() % 2 != 0 {
        return Err(errors::SYNTAX.into());
    }
    if options.nx && options.xx {
        return Err("ERR XX and NX options at the same time are not compatible".into());
    }
    if options.nx && (options.gt || options.lt) || options.gt && options.lt {
        return Err("ERR GT, LT, and/or NX options at the same time are not compatible".into());
    }
    if options.incr && arguments.len() > 2 {
        return Err("ERR INCR option supports a single increment-element pair".into());
    }
    add_generic(ctx, args[1], options, changed, arguments)
}

/// ZINCRBY key increment member
pub fn zincrby(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> CommandResult {
    let options = AddOptions {
        incr: true,
        ..AddOptions::default()
    };
    add_generic(ctx, args[1], options, false, &args[2..4])
}

/// ZREM key member [member ...]
pub fn zrem(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> CommandResult {
    let (db, now_ms, key) = (ctx.db, ctx.now_ms, args[1]);
    let removed = ctx
        .keyspace
        .update(db, key, now_ms, |value| {
            let Value::ZSet(zset) = value else {
                return Err(CommandError::from(errors::WRONGTYPE));
            };
            let removed = args[2..]
                .iter()
                .filter(|member| zset.remove(member))
                .count();
            let change = if zset.is_empty() {
                Change::Emptied
            } else if removed > 0 {
                Change::Modified
            } else {
                Change::None
            };
            Ok(((removed, zset.is_empty()), change))
        })
        .transpose()?
        .unwrap_or((0, false));
    let (removed, emptied) = removed;
    if removed > 0 {
        notify(ctx, notify::ZSET, "zrem", key);
        if emptied {
            notify(ctx, notify::GENERIC, "del", key);
        }
    }
    ctx.out.integer(removed as i64);
    Ok(())
}

/// ZSCORE key member
pub fn zscore(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> CommandResult {
    let score = read_zset(ctx, args[1])?.and_then(|zset| zset.score(args[2]));
    match score {
        Some(score) => ctx.out.double(score),
        None => ctx.out.null(),
    }
    Ok(())
}

/// ZMSCORE key member [member ...]
pub fn zmscore(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> CommandResult {
    let scores: Vec<Option<f64>> = match read_zset(ctx, args[1])? {
        Some(zset) => args[2..].iter().map(|member| zset.score(member)).collect(),
        None => vec![None; args.len() - 2],
    };
    ctx.out.array_len(scores.len());
    for score in scores {
        match score {
            Some(score) => ctx.out.double(score),
            None => ctx.out.null(),
        }
    }
    Ok(())
}

/// ZCARD key
pub fn zcard(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> CommandResult {
    let len = read_zset(ctx, args[1])?.map_or(0, SortedSet::len);
    ctx.out.integer(len as i64);
    Ok(())
}

/// ZRANK and ZREVRANK: key member [WITHSCORE] (WITHSCORE as Redis 7.2).
fn rank_generic(ctx: &mut Ctx<'_>, args: &[&[u8]], reverse: bool, command: &str) -> CommandResult {
    if args.len() > 4 {
        return Err(super::arity_message(command).into());
    }
    let with_score = match args.get(3) {
        Some(option) if is(option, "WITHSCORE") => true,
        Some(_) => return Err(errors::SYNTAX.into()),
        None => false,
    };
    let rank = read_zset(ctx, args[1])?.and_then(|zset| zset.rank(args[2], reverse));
    match (rank, with_score) {
        (Some((rank, _)), false) => ctx.out.integer(rank as i64),
        (Some((rank, score)), true) => {
            ctx.out.array_len(2);
            ctx.out.integer(rank as i64);
            ctx.out.double(score);
        }
        (None, false) => ctx.out.null(),
        (None, true) => ctx.out.null_array(),
    }
    Ok(())
}

/// ZRANK key member [WITHSCORE]
pub fn zrank(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> CommandResult {
    rank_generic(ctx, args, false, "zrank")
}

/// ZREVRANK key member [WITHSCORE]
pub fn zrevrank(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> CommandResult {
    rank_generic(ctx, args, true, "zrevrank")
}

/// ZCOUNT key min max
pub fn zcount(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> CommandResult {
    let (min, max) = parse_score_bound(args[2])
        .zip(parse_score_bound(args[3]))
        .ok_or(CommandError::from(NOT_FLOAT_RANGE))?;
    let count = read_zset(ctx, args[1])?.map_or(0, |zset| zset.count_by_score(min, max));
    ctx.out.integer(count as i64);
    Ok(())
}

/// ZLEXCOUNT key min max
pub fn zlexcount(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> CommandResult {
    let (min, max) = parse_lex_bound(args[2])
        .zip(parse_lex_bound(args[3]))
        .ok_or(CommandError::from(NOT_LEX_RANGE))?;
    let count = read_zset(ctx, args[1])?.map_or(0, |zset| {
        zset.range_by_lex(&min, &max, false, Limit::ALL).len()
    });
    ctx.out.integer(count as i64);
    Ok(())
}

/// How ZRANGE reads its min and max.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum RangeKind {
    /// Indexes (the default).
    Rank,
    /// BYSCORE
    Score,
    /// BYLEX
    Lex,
}

/// A parsed range.
enum Range {
    Rank(i64, i64),
    Score(ScoreBound, ScoreBound),
    Lex(LexBound, LexBound),
}

/// A parsed ZRANGE (or one of its older forms).
struct RangeRequest {
    range: Range,
    reverse: bool,
    limit: Limit,
    with_scores: bool,
}

/// Parses ZRANGE's arguments after the key: `min max` and the options. The older commands fix
/// the kind and direction, which makes BYSCORE, BYLEX and REV syntax errors there, as in Redis.
fn parse_range(
    args: &[&[u8]],
    fixed_kind: Option<RangeKind>,
    fixed_reverse: Option<bool>,
) -> Result<RangeRequest, CommandError> {
    let (mut kind, mut reverse) = (fixed_kind, fixed_reverse);
    let mut with_scores = false;
    let mut limit = Limit::ALL;
    let mut index = 4;
    while index < args.len() {
        let option = args[index];
        let left = args.len() - index - 1;
        if is(option, "WITHSCORES") {
            with_scores = true;
        } else if is(option, "LIMIT") && left >= 2 {
            limit = Limit {
                offset: parse_integer(args[index + 1])?,
                count: parse_integer(args[index + 2])?,
            };
            index += 2;
        } else if reverse.is_none() && is(option, "REV") {
            reverse = Some(true);
        } else if kind.is_none() && is(option, "BYLEX") {
            kind = Some(RangeKind::Lex);
        } else if kind.is_none() && is(option, "BYSCORE") {
            kind = Some(RangeKind::Score);
        } else {
            return Err(errors::SYNTAX.into());
        }
        index += 1;
    }
    let kind = kind.unwrap_or(RangeKind::Rank);
    let reverse = reverse.unwrap_or(false);
    // Redis tells "a LIMIT was given" by its count not being -1, so LIMIT x -1 passes here.
    if limit.count != -1 && kind == RangeKind::Rank {
        return Err(
            "ERR syntax error, LIMIT is only supported in combination with either BYSCORE or BYLEX"
                .into(),
        );
    }
    if with_scores && kind == RangeKind::Lex {
        return Err("ERR syntax error, WITHSCORES not supported in combination with BYLEX".into());
    }
    // By score or by lex, a reversed range names its maximum first.
    let (min, max) = if reverse && kind != RangeKind::Rank {
        (args[3], args[2])
    } else {
        (args[2], args[3])
    };
    let range = match kind {
        RangeKind::Rank => Range::Rank(parse_integer(min)?, parse_integer(max)?),
        RangeKind::Score => {
            let (min, max) = parse_score_bound(min)
                .zip(parse_score_bound(max))
                .ok_or(CommandError::from(NOT_FLOAT_RANGE))?;
            Range::Score(min, max)
        }
        RangeKind::Lex => {
            let (min, max) = parse_lex_bound(min)
                .zip(parse_lex_bound(max))
                .ok_or(CommandError::from(NOT_LEX_RANGE))?;
            Range::Lex(min, max)
        }
    };
    Ok(RangeRequest {
        range,
        reverse,
        limit,
        with_scores,
    })
}

/// Members with scores: a flat array in RESP2; in RESP3 an array of [member, score] pairs.
fn reply_with_scores(out: &mut ReplySink, members: &[(SplitBytes<'_>, f64)], protocol: Protocol) {
    match protocol {
        Protocol::Resp2 => out.array_len(members.len() * 2),
        Protocol::Resp3 => out.array_len(members.len()),
    }
    for (member, score) in members {
        if protocol == Protocol::Resp3 {
            out.array_len(2);
        }
        bulk_split(out, *member);
        out.double(*score);
    }
}

/// The members `request` selects from `zset`, in its order.
fn members_in<'a>(zset: &'a SortedSet, request: &RangeRequest) -> Vec<(SplitBytes<'a>, f64)> {
    match &request.range {
        Range::Rank(start, stop) => zset.range_by_rank(*start, *stop, request.reverse),
        Range::Score(min, max) => zset.range_by_score(*min, *max, request.reverse, request.limit),
        Range::Lex(min, max) => zset.range_by_lex(min, max, request.reverse, request.limit),
    }
}

fn range_generic(
    ctx: &mut Ctx<'_>,
    args: &[&[u8]],
    fixed_kind: Option<RangeKind>,
    fixed_reverse: Option<bool>,
) -> CommandResult {
    let request = parse_range(args, fixed_kind, fixed_reverse)?;
    let protocol = ctx.protocol;
    let (entry, out) = read_for_reply(ctx, args[1]);
    let Some(zset) = entry.map(zset_of).transpose()? else {
        out.array_len(0);
        return Ok(());
    };
    let members = members_in(zset, &request);
    if request.with_scores {
        reply_with_scores(out, &members, protocol);
    } else {
        out.array_len(members.len());
        for (member, _) in members {
            bulk_split(out, member);
        }
    }
    Ok(())
}

/// ZRANGE key start stop [BYSCORE | BYLEX] [REV] [LIMIT offset count] [WITHSCORES]
pub fn zrange(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> CommandResult {
    range_generic(ctx, args, None, None)
}

/// ZREVRANGE key start stop [WITHSCORES]
pub fn zrevrange(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> CommandResult {
    range_generic(ctx, args, Some(RangeKind::Rank), Some(true))
}

/// ZRANGEBYSCORE key min max [WITHSCORES] [LIMIT offset count]
pub fn zrangebyscore(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> CommandResult {
    range_generic(ctx, args, Some(RangeKind::Score), Some(false))
}

/// ZREVRANGEBYSCORE key max min [WITHSCORES] [LIMIT offset count]
pub fn zrevrangebyscore(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> CommandResult {
    range_generic(ctx, args, Some(RangeKind::Score), Some(true))
}

/// ZRANGEBYLEX key min max [LIMIT offset count]
pub fn zrangebylex(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> CommandResult {
    range_generic(ctx, args, Some(RangeKind::Lex), Some(false))
}

/// ZREVRANGEBYLEX key max min [LIMIT offset count]
pub fn zrevrangebylex(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> CommandResult {
    range_generic(ctx, args, Some(RangeKind::Lex), Some(true))
}
